/**
 * Loads a mappings folder (`<dir>/<connector>/<object>.yaml`): reads each file, validates it
 * (against the live schema when a `describe` function is given, else the built-in catalogue), and
 * compiles the valid ones. Never throws for bad files: everything wrong is an issue.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { ObjectSchema } from '../connector-kit/connector.ts';
import type { CompiledMapping } from './compile-mapping.ts';
import { compileMapping, mappingHash } from './compile-mapping.ts';
import type { Issue } from './issue.ts';
import { hasErrors } from './issue.ts';
import { validateMappingSource } from './validate-mapping.ts';

/** Fetches the live schema of a CRM object (wired by the composition root; `--remote`). */
export type DescribeObject = (connector: string, object: string) => Promise<ObjectSchema>;

export interface LoadedFile {
  /** Path as `path.join(dir, relative)`. */
  file: string;
  /** sha256 hex of the file's bytes. */
  hash: string;
  /** Present when the file has no errors (warnings allowed). */
  compiled?: CompiledMapping;
  issues: Issue[];
}

export interface LoadResult {
  files: LoadedFile[];
  /** Every issue of every file, in file order. */
  issues: Issue[];
}

async function listYaml(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string, depth: number): Promise<void> => {
    const entries = await readdir(path.join(dir, rel), { withFileTypes: true });
    for (const e of entries) {
      const child = rel === '' ? e.name : `${rel}/${e.name}`;
      if (e.isDirectory() && depth < 1 && !e.name.startsWith('.')) await walk(child, depth + 1);
      else if (e.isFile() && /\.ya?ml$/.test(e.name)) out.push(child);
    }
  };
  await walk('', 0);
  return out.sort();
}

/** Validates and compiles one file's text. `rel` is `<connector>/<object>.yaml` when it follows the layout. */
export function loadMappingText(
  file: string,
  rel: string,
  text: string,
  remoteSchema?: ObjectSchema,
): LoadedFile {
  const parts = rel.split('/');
  const expected =
    parts.length === 2 && parts[0] !== undefined && parts[1] !== undefined
      ? { connector: parts[0], object: parts[1].replace(/\.ya?ml$/, '') }
      : undefined;
  const hash = mappingHash(text);
  const result = validateMappingSource(text, {
    file,
    ...(expected ? { expected } : {}),
    ...(remoteSchema ? { remoteSchema } : {}),
  });
  const loaded: LoadedFile = { file, hash, issues: result.issues };
  if (result.doc && !hasErrors(result.issues)) loaded.compiled = compileMapping(result.doc, { hash, file });
  return loaded;
}

/** Loads every mapping file under `dir`. With `describe`, fields are checked against the live CRM. */
export async function loadMappingDir(
  dir: string,
  options: { describe?: DescribeObject } = {},
): Promise<LoadResult> {
  let rels: string[];
  try {
    rels = await listYaml(dir);
  } catch (error) {
    const issue: Issue = {
      file: dir,
      line: 1,
      col: 1,
      code: 'E_READ_FILE',
      path: '',
      message: `cannot read folder: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
      severity: 'error',
    };
    return { files: [], issues: [issue] };
  }
  const files: LoadedFile[] = [];
  const seen = new Map<string, string>();
  for (const rel of rels) {
    const file = path.join(dir, rel);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (error) {
      files.push({
        file,
        hash: '',
        issues: [
          {
            file,
            line: 1,
            col: 1,
            code: 'E_READ_FILE',
            path: '',
            message: `cannot read file: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
            severity: 'error',
          },
        ],
      });
      continue;
    }
    let loaded = loadMappingText(file, rel, text);
    if (options.describe && loaded.compiled) {
      const { connector, object } = loaded.compiled;
      try {
        loaded = loadMappingText(file, rel, text, await options.describe(connector, object));
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        loaded = {
          file,
          hash: loaded.hash,
          issues: [
            ...loaded.issues,
            {
              file,
              line: 1,
              col: 1,
              code: 'E_REMOTE_SCHEMA',
              path: '',
              message: `cannot read the live schema of ${connector} ${object}: ${message}`,
              severity: 'error',
            },
          ],
        };
      }
    }
    if (loaded.compiled) {
      const key = `${loaded.compiled.connector}/${loaded.compiled.object}`;
      const first = seen.get(key);
      if (first !== undefined) {
        const { compiled: _dropped, ...rest } = loaded;
        loaded = {
          ...rest,
          issues: [
            ...rest.issues,
            {
              file,
              line: 1,
              col: 1,
              code: 'E_DUPLICATE_FILE',
              path: '',
              message: `${key} is already mapped by ${first}`,
              severity: 'error',
            },
          ],
        };
      } else seen.set(key, file);
    }
    files.push(loaded);
  }
  return { files, issues: files.flatMap((f) => f.issues) };
}
