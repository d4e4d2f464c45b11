/**
 * `crmhub mappings validate|schema|preview` (design.md §6, issue 4).
 *
 * `validate` and `schema` need nothing but the files. `validate --remote` and `preview` need live
 * connectors and the store; they reach them through a `MappingsRuntime` that the composition root
 * provides as `openMappingsRuntime()` in `src/cli/runtime.ts` (loaded lazily so `validate` works
 * without any credentials).
 */
import type { Command } from 'commander';
import type { ObjectSchema, RemoteRecord } from '../../connector-kit/connector.ts';
import type { FieldValues, IdentifierInput, JsonValue, Profile } from '../../core/types.ts';
import { parseIdentifierArg } from '../../core/types.ts';
import { resolverFromSchema } from '../../mapping/compile-mapping.ts';
import { formatIssue, hasErrors } from '../../mapping/issue.ts';
import { mappingJsonSchemaText } from '../../mapping/json-schema.ts';
import type { DescribeObject } from '../../mapping/load-mappings.ts';
import { loadMappingDir } from '../../mapping/load-mappings.ts';
import { planRecord } from '../../sync/planner.ts';
import type { RecordPlan } from '../../sync/planner.ts';
import { CliExit } from '../cli-exit.ts';

/** What `validate --remote` and `preview` need from the composition root. */
export interface MappingsRuntime {
  /** Live schema of a CRM object through the configured connector (`Connector.describe`). */
  describe(connector: string, object: string): Promise<ObjectSchema>;
  /** The profile an identifier resolves to (normalised by the identity registry), or null. */
  loadProfile(identifier: IdentifierInput): Promise<Profile | null>;
  /** The CRM record linked to this profile for connector/object (read live), or null when none is linked. */
  readRemote(connector: string, object: string, profile: Profile): Promise<RemoteRecord | null>;
  /** The stored shadow of a linked record (`remote_records.shadow`), or null. */
  getShadow(connector: string, object: string, remoteId: string): Promise<FieldValues | null>;
  /** Releases connections. */
  close(): Promise<void>;
}

export type OpenMappingsRuntime = () => Promise<MappingsRuntime>;

let runtimeOverride: OpenMappingsRuntime | undefined;

/** Replaces how the runtime is opened (tests; or a composition root that prefers to inject). */
export function setMappingsRuntimeFactory(open: OpenMappingsRuntime | undefined): void {
  runtimeOverride = open;
}

async function openRuntime(): Promise<MappingsRuntime> {
  if (runtimeOverride) return runtimeOverride();
  // A variable specifier keeps this file compiling before the composition root exists.
  const specifier = '../runtime.ts';
  let mod: { openMappingsRuntime?: OpenMappingsRuntime };
  try {
    mod = (await import(specifier)) as { openMappingsRuntime?: OpenMappingsRuntime };
  } catch {
    throw new CliExit(
      2,
      'crmhub: this command needs the runtime (src/cli/runtime.ts), which is not available in this build',
    );
  }
  if (typeof mod.openMappingsRuntime !== 'function') {
    throw new CliExit(2, 'crmhub: src/cli/runtime.ts does not export openMappingsRuntime()');
  }
  return mod.openMappingsRuntime();
}

function defaultDir(): string {
  return process.env.CRMHUB_MAPPINGS_DIR ?? './mappings';
}

async function validate(dir: string, options: { remote?: boolean; json?: boolean }): Promise<void> {
  let runtime: MappingsRuntime | undefined;
  let describe: DescribeObject | undefined;
  if (options.remote) {
    runtime = await openRuntime();
    describe = runtime.describe.bind(runtime);
  }
  try {
    const result = await loadMappingDir(dir, describe ? { describe } : {});
    const failed = hasErrors(result.issues);
    if (options.json) {
      const files = result.files.map((f) => ({
        file: f.file,
        hash: f.hash,
        ok: !hasErrors(f.issues),
        connector: f.compiled?.connector ?? null,
        object: f.compiled?.object ?? null,
      }));
      process.stdout.write(`${JSON.stringify({ ok: !failed, files, issues: result.issues })}\n`);
    } else {
      for (const issue of result.issues) process.stdout.write(`${formatIssue(issue)}\n`);
      const errors = result.issues.filter((i) => i.severity === 'error').length;
      const warnings = result.issues.length - errors;
      process.stderr.write(
        `${result.files.length} mapping file(s), ${errors} error(s), ${warnings} warning(s)${options.remote ? ' (checked against the live CRM schema)' : ''}\n`,
      );
    }
    if (failed) throw new CliExit(2);
  } finally {
    await runtime?.close();
  }
}

function show(value: JsonValue | undefined): string {
  if (value === undefined) return '—';
  const text = JSON.stringify(value);
  return text.length > 40 ? `${text.slice(0, 37)}...` : text;
}

function renderPlan(plan: RecordPlan): string {
  const header = ['field', 'profile', 'remote', 'shadow', 'rule', 'outcome', 'reason'];
  const rows = plan.fields.map((f) => [
    f.profilePath === undefined ? f.field : `${f.field} ← ${f.profilePath}`,
    show(f.profileValue),
    show(f.remoteValue),
    show(f.shadowValue),
    f.rule,
    f.outcome,
    f.reason,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string =>
    cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ');
  const out = [line(header), ...rows.map(line)];
  out.push('');
  out.push(`mapping ${plan.connector}/${plan.object} ${plan.mappingHash.slice(0, 12)}`);
  out.push(
    `would send to ${plan.connector}: ${Object.keys(plan.remoteDiff).length === 0 ? 'nothing' : JSON.stringify(plan.remoteDiff)}`,
  );
  out.push(
    `would write traits: ${plan.traitWrites.length === 0 ? 'nothing' : plan.traitWrites.map((t) => `${t.key}=${JSON.stringify(t.value)}`).join(', ')}`,
  );
  if (plan.conflicts.length > 0)
    out.push(`conflicts: ${plan.conflicts.length}${plan.needsReview ? ' (some parked for review)' : ''}`);
  if (plan.missingRequired.length > 0)
    out.push(`missing required fields: ${plan.missingRequired.join(', ')}`);
  return `${out.join('\n')}\n`;
}

async function preview(options: {
  connector: string;
  object: string;
  identifier: string;
  dir?: string;
  json?: boolean;
}): Promise<void> {
  const identifier = parseIdentifierArg(options.identifier);
  if (!identifier)
    throw new CliExit(
      2,
      `crmhub: --identifier must be TYPE:VALUE, got ${JSON.stringify(options.identifier)}`,
    );
  const loaded = await loadMappingDir(options.dir ?? defaultDir());
  const file = loaded.files.find(
    (f) => f.compiled?.connector === options.connector && f.compiled.object === options.object,
  );
  const mapping = file?.compiled;
  if (!mapping) {
    for (const issue of loaded.issues) process.stderr.write(`${formatIssue(issue)}\n`);
    throw new CliExit(2, `crmhub: no valid mapping for ${options.connector} ${options.object}`);
  }
  const runtime = await openRuntime();
  try {
    const profile = await runtime.loadProfile(identifier);
    if (!profile) throw new CliExit(1, `crmhub: no profile for ${identifier.type}:${identifier.value}`);
    const schema = await runtime.describe(mapping.connector, mapping.object);
    const record = await runtime.readRemote(mapping.connector, mapping.object, profile);
    const shadow = record ? await runtime.getShadow(mapping.connector, mapping.object, record.id) : null;
    const identifiers: Record<string, string> = { profile_id: profile.id };
    for (const id of profile.identifiers) identifiers[id.type] ??= id.value;
    const plan = planRecord({
      mapping,
      traits: profile.traits,
      ...(record
        ? {
            remote: {
              fields: record.fields,
              modifiedAt: record.modifiedAt,
              ...(record.fieldChangedAt ? { fieldChangedAt: record.fieldChangedAt } : {}),
            },
          }
        : {}),
      shadow,
      identifiers,
      resolveKey: resolverFromSchema(schema),
    });
    if (options.json) {
      process.stdout.write(
        `${JSON.stringify({ profileId: profile.id, remoteId: record?.id ?? null, plan })}\n`,
      );
    } else {
      process.stdout.write(
        `profile ${profile.id} ↔ ${mapping.connector} ${mapping.object} ${record ? record.id : '(no linked record: would create)'}\n`,
      );
      process.stdout.write(renderPlan(plan));
    }
  } finally {
    await runtime.close();
  }
}

export function registerMappings(program: Command): void {
  const mappings = program
    .command('mappings')
    .description('validate, document and preview field-mapping files');

  mappings
    .command('validate')
    .description('check mapping files; every issue as file:line:col code message (exit 2 on any error)')
    .argument('[dir]', 'mappings folder (default: $CRMHUB_MAPPINGS_DIR or ./mappings)')
    .option('--remote', 'also check fields against the live CRM schema')
    .option('--json', 'machine-readable output on stdout')
    .action(async (dir: string | undefined, options: { remote?: boolean; json?: boolean }) => {
      await validate(dir ?? defaultDir(), options);
    });

  mappings
    .command('schema')
    .description('print the JSON Schema of mapping files')
    .action(() => {
      process.stdout.write(mappingJsonSchemaText());
    });

  mappings
    .command('preview')
    .description('the field-level plan for one profile, writing nothing')
    .requiredOption('--connector <slug>', 'connector slug: hubspot, salesforce, pipedrive')
    .requiredOption('--object <name>', 'CRM object as in the mapping file (contacts, Contact, persons)')
    .requiredOption('--identifier <type:value>', 'the profile, e.g. email:ada@example.com')
    .option('--dir <dir>', 'mappings folder (default: $CRMHUB_MAPPINGS_DIR or ./mappings)')
    .option('--json', 'machine-readable output on stdout')
    .action(
      async (options: {
        connector: string;
        object: string;
        identifier: string;
        dir?: string;
        json?: boolean;
      }) => {
        await preview(options);
      },
    );
}
