/**
 * Custom fields by NAME (design.md §8.6): mapping files say "Plan"; Pipedrive wants the account's
 * 40-character key (crm-reference §3.3). The resolver reads each entity's fields API once, caches
 * it for `ttlMs`, and notices renames and deletions — a name that no longer resolves is a `config`
 * error naming the field (and what happened to its key), never a silent skip.
 */
import { CrmhubError } from '../../src/connector-kit/errors.ts';
import type { FieldDef, PipedriveClient, PipedriveEntity } from './client.ts';
import { OBJECT_BY_ENTITY } from './declaration.ts';

export interface FieldCatalogue {
  defs: FieldDef[];
  byName: Map<string, FieldDef>;
  byKey: Map<string, FieldDef>;
  loadedAt: number;
}

export class FieldResolver {
  private readonly cache = new Map<PipedriveEntity, FieldCatalogue>();
  private readonly loading = new Map<PipedriveEntity, Promise<FieldCatalogue>>();
  /** Names resolved before, with their key: lets a miss say "renamed" or "deleted". */
  private readonly resolved = new Map<string, string>();

  /**
   * @param ttlMs how long a catalogue is trusted before it is read again (default 60 s): renames
   *   are noticed within this time, or at once when a write is refused for an unknown key.
   * @param minRefreshMs a cache miss re-reads the catalogue at most this often (default 5 s).
   */
  constructor(
    private readonly client: PipedriveClient,
    private readonly now: () => number = Date.now,
    private readonly ttlMs = 60_000,
    private readonly minRefreshMs = 5_000,
  ) {}

  async catalogue(entity: PipedriveEntity, force = false): Promise<FieldCatalogue> {
    const hit = this.cache.get(entity);
    if (hit && !force && this.now() - hit.loadedAt < this.ttlMs) return hit;
    const pending = this.loading.get(entity);
    if (pending) return pending;
    const load = (async () => {
      const defs = await this.client.fields(entity);
      // Custom fields take precedence over a standard field's display name ("Name", "Owner").
      const byName = new Map<string, FieldDef>();
      for (const d of defs) if (d.is_custom_field) byName.set(d.field_name, d);
      const cat: FieldCatalogue = { defs, byName, byKey: new Map(defs.map((d) => [d.field_code, d])), loadedAt: this.now() };
      this.cache.set(entity, cat);
      return cat;
    })();
    this.loading.set(entity, load);
    try {
      return await load;
    } finally {
      this.loading.delete(entity);
    }
  }

  /** Forgets a catalogue (after Pipedrive refused one of its keys). */
  invalidate(entity: PipedriveEntity): void {
    const hit = this.cache.get(entity);
    if (hit) hit.loadedAt = -Infinity;
  }

  /** The custom field named `name`; rejects with a `config` error naming it when it is gone. */
  async customField(entity: PipedriveEntity, name: string): Promise<FieldDef> {
    let cat = await this.catalogue(entity);
    let def = cat.byName.get(name);
    if (!def && this.now() - cat.loadedAt >= this.minRefreshMs) {
      cat = await this.catalogue(entity, true);
      def = cat.byName.get(name);
    }
    const memo = `${entity}\u0000${name}`;
    if (def) {
      this.resolved.set(memo, def.field_code);
      return def;
    }
    const object = OBJECT_BY_ENTITY[entity];
    const oldKey = this.resolved.get(memo);
    const now = oldKey ? cat.byKey.get(oldKey) : undefined;
    const what = oldKey ? (now ? `was renamed to "${now.field_name}"` : 'was deleted') : 'does not exist';
    throw new CrmhubError('config', `Pipedrive ${object} field "${name}" ${what}; update the mapping`, {
      code: 'PIPEDRIVE_UNKNOWN_FIELD',
      context: { connector: 'pipedrive', object, field: name },
    });
  }

  /** A custom field named by its 40-character key (mappings resolved with `resolverFromSchema`). */
  async customByKey(entity: PipedriveEntity, key: string): Promise<FieldDef> {
    let cat = await this.catalogue(entity);
    let def = cat.byKey.get(key);
    if (!def && this.now() - cat.loadedAt >= this.minRefreshMs) {
      cat = await this.catalogue(entity, true);
      def = cat.byKey.get(key);
    }
    if (def?.is_custom_field) return def;
    const object = OBJECT_BY_ENTITY[entity];
    throw new CrmhubError('config', `Pipedrive ${object} custom field key ${key} does not exist (deleted?); update the mapping`, {
      code: 'PIPEDRIVE_UNKNOWN_FIELD',
      context: { connector: 'pipedrive', object, field: key },
    });
  }

  /** Whether `name` is a custom field of the entity right now (cached). */
  async hasCustom(entity: PipedriveEntity, name: string): Promise<boolean> {
    return (await this.catalogue(entity)).byName.has(name);
  }
}
