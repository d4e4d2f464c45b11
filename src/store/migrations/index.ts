import { migration0001 } from './0001-initial.ts';
import type { Migration } from './migration.ts';

/** Every migration, in version order. Append new ones; never edit one that has shipped. */
export const MIGRATIONS: readonly Migration[] = [migration0001];
