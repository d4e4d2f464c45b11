import { migration0001 } from './0001-initial.ts';
import { migration0002 } from './0002-webhook-inbox.ts';
import { migration0003 } from './0003-outbox-sent-fields.ts';
import type { Migration } from './migration.ts';

/** Every migration, in version order. Append new ones; never edit one that has shipped. */
export const MIGRATIONS: readonly Migration[] = [migration0001, migration0002, migration0003];
