/**
 * `crmhub profiles get TYPE:VALUE|ID [--json]`: one profile with its identifiers and traits with
 * provenance. A table by default; the Profile JSON of design.md §6 with `--json`. Exit 1 when no
 * profile matches, 2 when the argument is malformed or the settings are invalid.
 */
import type { Command } from 'commander';
import { isCrmhubError } from '../../connector-kit/errors.ts';
import { parseIdentifierArg, type Profile } from '../../core/types.ts';
import { loadConfig } from '../../config/load-config.ts';
import { getProfileView } from '../../identity/profile-view.ts';
import { scrubSecrets } from '../../server/logger.ts';
import { openStore } from '../../store/open-store.ts';
import { CliExit } from '../cli-exit.ts';

/** Profile ids look like `prf_…` (src/store/ids.ts). */
const PROFILE_ID = /^prf_[A-Za-z0-9]+$/;

/** Checks the argument: a `prf_…` id or `TYPE:VALUE`; returns a usage message when malformed. */
export function checkProfileArg(arg: string): string | null {
  const trimmed = arg.trim();
  if (PROFILE_ID.test(trimmed)) return null;
  if (!trimmed.includes(':')) return `expected TYPE:VALUE (e.g. email:ada@example.com) or a profile id (prf_…), got ${JSON.stringify(arg)}`;
  const parsed = parseIdentifierArg(trimmed);
  if (parsed === null || parsed.type.trim() === '' || parsed.value.trim() === '') {
    return `expected TYPE:VALUE with both parts non-empty, got ${JSON.stringify(arg)}`;
  }
  if (!/^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)?$/i.test(parsed.type)) {
    return `identifier type ${JSON.stringify(parsed.type)} is not a registry type (user_id, anonymous_id, email, phone, group_id, <slug>.<object>)`;
  }
  return null;
}

/** The human-readable view: header, identifiers table, traits table. */
export function formatProfile(profile: Profile): string {
  const lines: string[] = [];
  lines.push(`Profile ${profile.id} (${profile.kind})`);
  lines.push(`created ${profile.createdAt}   updated ${profile.updatedAt}`);
  if (profile.mergedFrom.length > 0) lines.push(`merged from ${profile.mergedFrom.join(', ')}`);
  lines.push('', 'IDENTIFIERS');
  lines.push(...table(['TYPE', 'VALUE', 'SOURCE'], profile.identifiers.map((i) => [i.type, i.value, i.source])));
  lines.push('', 'TRAITS');
  const traits = Object.entries(profile.traits).sort(([a], [b]) => a.localeCompare(b));
  lines.push(...table(['KEY', 'VALUE', 'SOURCE', 'CHANGED AT'], traits.map(([key, t]) => [key, shorten(typeof t.value === 'string' ? t.value : JSON.stringify(t.value)), t.source, t.changedAt])));
  return `${lines.join('\n')}\n`;
}

function shorten(text: string, max = 60): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

function table(header: string[], rows: string[][]): string[] {
  if (rows.length === 0) return ['(none)'];
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? '').length)));
  const line = (cells: string[]): string => cells.map((cell, c) => cell.padEnd(widths[c] ?? 0)).join('  ').trimEnd();
  return [line(header), ...rows.map(line)];
}

export function registerProfiles(program: Command): void {
  const profiles = program.command('profiles').description('read unified profiles');
  profiles
    .command('get <identifier>')
    .description('show a profile by TYPE:VALUE (e.g. email:ada@example.com) or id, with identifiers and traits with provenance')
    .option('--json', 'print the Profile JSON')
    .action(async (arg: string, options: { json?: boolean }) => {
      const problem = checkProfileArg(arg);
      if (problem !== null) throw new CliExit(2, `crmhub profiles get: ${problem}`);
      let config;
      try {
        config = loadConfig(process.env);
      } catch (error) {
        if (isCrmhubError(error) && error.kind === 'config') throw new CliExit(2, `crmhub profiles get: ${error.message}`);
        throw error;
      }
      let store;
      try {
        store = await openStore(config.databaseUrl);
      } catch (error) {
        const message = scrubSecrets(error instanceof Error ? error.message : String(error), config.secrets);
        throw new CliExit(isCrmhubError(error) && error.kind === 'config' ? 2 : 1, `crmhub profiles get: cannot open the store: ${message}`);
      }
      try {
        const profile = await getProfileView(store.read(), arg.trim());
        if (profile === null) throw new CliExit(1, `crmhub profiles get: no profile matches ${arg.trim()}`);
        process.stdout.write(options.json === true ? `${JSON.stringify(profile)}\n` : formatProfile(profile));
      } finally {
        await store.close();
      }
    });
}
