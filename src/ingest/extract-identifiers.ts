/**
 * Which identifiers an event carries (design.md §5, "Identifiers are taken from known places"):
 * `userId` → `user_id`, `anonymousId` → `anonymous_id`, `traits.email` (identify) and
 * `context.traits.email` → `email`, `context.externalIds[]` → their own `type` (e.g.
 * `hubspot.contact`), and for `group` calls `groupId` → `group_id` of an account profile.
 *
 * Values are passed raw (trimmed); the identity registry normalises them and drops blocked values
 * (`null`, `anonymous`, …), so nothing here decides what counts as a real id.
 */
import type { Identifier } from '../core/types.ts';
import type { IngestEvent } from './validate-events.ts';

/** Source recorded on identifiers and traits that came from the event API. */
export const EVENT_SOURCE = 'event';

export interface EventIdentifiers {
  /** Identifiers of the person who did it (may be empty for an alias; see `previousId`). */
  person: Identifier[];
  /** For `group`: the account's identifiers (`group_id` plus `externalIds` in an account collection). */
  account: Identifier[];
  /**
   * For `alias`: the earlier id. Its type is not known from the message — it is a `user_id` when
   * the store already knows it as one, else an `anonymous_id` (the usual case).
   */
  previousId: string | null;
}

/** Segment `externalIds` collections that name companies rather than people. */
const ACCOUNT_COLLECTION = /^(accounts?|groups?|compan(y|ies)|organi[sz]ations?)$/i;

export function extractIdentifiers(event: IngestEvent): EventIdentifiers {
  const person: Identifier[] = [];
  const account: Identifier[] = [];
  const add = (list: Identifier[], type: string, value: unknown): void => {
    if (typeof value === 'number' && Number.isFinite(value)) value = String(value);
    if (typeof value !== 'string') return;
    const trimmed = value.trim();
    if (trimmed === '') return;
    if (list.some((i) => i.type === type && i.value === trimmed)) return;
    list.push({ type, value: trimmed, source: EVENT_SOURCE });
  };
  add(person, 'user_id', event.userId);
  add(person, 'anonymous_id', event.anonymousId);
  if (event.type === 'identify' && event.traits !== null) add(person, 'email', event.traits.email);
  const context = event.context;
  if (context !== null) {
    const traits = context.traits;
    if (typeof traits === 'object' && traits !== null && !Array.isArray(traits)) add(person, 'email', traits.email);
    const externalIds = context.externalIds;
    if (Array.isArray(externalIds)) {
      for (const ext of externalIds) {
        if (typeof ext !== 'object' || ext === null || Array.isArray(ext)) continue;
        if (typeof ext.type !== 'string' || ext.type.trim() === '') continue;
        const toAccount = typeof ext.collection === 'string' && ACCOUNT_COLLECTION.test(ext.collection);
        add(toAccount ? account : person, ext.type.trim(), ext.id);
      }
    }
  }
  if (event.type === 'group') add(account, 'group_id', event.groupId);
  return { person, account, previousId: event.type === 'alias' ? event.previousId : null };
}
