import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { validateMappingSource } from '../../src/mapping/validate-mapping.ts';

const here = path.dirname(new URL(import.meta.url).pathname);
const dir = (kind: string): string => path.join(here, 'fixtures', kind);
const yamlFiles = (kind: string): string[] =>
  readdirSync(dir(kind))
    .filter((f) => f.endsWith('.yaml'))
    .sort();

/** `# expect: CODE path` lines at the top of an invalid fixture. */
function expectations(text: string): { code: string; path: string }[] {
  return [...text.matchAll(/^# expect: (\S+)(?: (\S+))?$/gm)].map((m) => ({ code: m[1]!, path: m[2] ?? '' }));
}

describe('invalid mapping fixtures', () => {
  const files = yamlFiles('invalid');
  it('has fixtures for every structural and CRM-schema check', () => {
    expect(files.length).toBeGreaterThanOrEqual(12);
  });
  for (const name of files) {
    it(`${name} produces exactly the issues it names`, () => {
      const text = readFileSync(path.join(dir('invalid'), name), 'utf8');
      const expected = expectations(text);
      expect(expected.length).toBeGreaterThan(0);
      const { issues } = validateMappingSource(text, { file: name });
      const errors = issues.filter((i) => i.severity === 'error');
      // One YAML mistake may yield several parser errors; compare distinct (code, path) pairs.
      const got = [...new Set(errors.map((i) => `${i.code} ${i.path}`))].map((s) => {
        const [code = '', p = ''] = s.split(' ');
        return { code, path: p };
      });
      expect(got.sort((a, b) => a.path.localeCompare(b.path) || a.code.localeCompare(b.code))).toEqual(
        expected.sort((a, b) => a.path.localeCompare(b.path) || a.code.localeCompare(b.code)),
      );
      for (const issue of errors) {
        expect(issue.line).toBeGreaterThan(1); // line 1 is the expect comment: every issue points into the document
        expect(issue.col).toBeGreaterThan(0);
      }
    });
  }
});

describe('valid mapping fixtures', () => {
  for (const name of yamlFiles('valid')) {
    it(`${name} validates without errors`, () => {
      const text = readFileSync(path.join(dir('valid'), name), 'utf8');
      const result = validateMappingSource(text, { file: name });
      expect(result.issues.filter((i) => i.severity === 'error')).toEqual([]);
      expect(result.doc).toBeDefined();
    });
  }
});

describe('issue positions and suggestions', () => {
  const read = (name: string): string => readFileSync(path.join(dir('invalid'), name), 'utf8');

  it('points an unknown key at the key itself and suggests the right one', () => {
    const { issues } = validateMappingSource(read('unknown-key.yaml'), { file: 'unknown-key.yaml' });
    const issue = issues.find((i) => i.code === 'E_UNKNOWN_KEY');
    expect(issue).toMatchObject({ line: 14, col: 5, suggestion: 'remote' });
  });

  it('suggests lifecyclestage for lifecyclestag', () => {
    const { issues } = validateMappingSource(read('unknown-field.yaml'), { file: 'f.yaml' });
    expect(issues[0]).toMatchObject({
      code: 'E_UNKNOWN_FIELD',
      line: 11,
      col: 13,
      suggestion: 'lifecyclestage',
    });
  });

  it('suggests a Pipedrive custom field by its name', () => {
    const { issues } = validateMappingSource(read('pipedrive-custom-name.yaml'), { file: 'f.yaml' });
    expect(issues.find((i) => i.code === 'E_UNKNOWN_FIELD')?.suggestion).toBe('Plan');
  });

  it('suggests the closest enum value and transform name', () => {
    const bad = validateMappingSource(read('bad-enum.yaml'), { file: 'f.yaml' }).issues;
    expect(bad.find((i) => i.path === 'fields[0].direction')?.suggestion).toBe('both');
    const tr = validateMappingSource(read('bad-transform.yaml'), { file: 'f.yaml' }).issues;
    expect(tr.find((i) => i.path === 'fields[0].transforms.to_remote[0]')?.suggestion).toBe('email');
  });

  it('collects issues of several kinds in one pass', () => {
    const text = read('unknown-key.yaml').replace(
      '    remote: email\n  - profile',
      '    remote: email\n    direction: sideways\n  - profile',
    );
    const codes = new Set(validateMappingSource(text, { file: 'f.yaml' }).issues.map((i) => i.code));
    expect([...codes].sort()).toEqual(['E_BAD_ENUM', 'E_MISSING_KEY', 'E_UNKNOWN_KEY']);
  });

  it('reports a field missing from the live schema as an error, and unknown offline fields only as warnings', () => {
    const text = readFileSync(path.join(dir('valid'), 'pipedrive-by-name.yaml'), 'utf8');
    const offline = validateMappingSource(text, { file: 'f.yaml' }).issues;
    expect(offline).toEqual([
      expect.objectContaining({ code: 'W_UNKNOWN_FIELD', severity: 'warning', path: 'fields[2].remote' }),
    ]);
    const live = validateMappingSource(text, {
      file: 'f.yaml',
      remoteSchema: {
        object: 'persons',
        fields: [
          {
            name: 'crmhub_hash_aaaa',
            label: 'crmhub id',
            type: 'string',
            readOnly: false,
            unique: true,
            required: false,
            custom: true,
          },
          {
            name: 'abc123',
            label: 'Plan',
            type: 'enum',
            readOnly: false,
            unique: false,
            required: false,
            custom: true,
          },
        ],
      },
    }).issues;
    expect(live.map((i) => `${i.code} ${i.path}`).sort()).toEqual([
      'E_UNKNOWN_FIELD fields[1].remote',
      'E_UNKNOWN_FIELD fields[2].remote',
    ]);
  });

  it('checks that a file sits at mappings/<connector>/<object>.yaml', () => {
    const text = readFileSync(path.join(dir('valid'), 'pipedrive-by-name.yaml'), 'utf8');
    const { issues } = validateMappingSource(text, {
      file: 'f.yaml',
      expected: { connector: 'pipedrive', object: 'organizations' },
    });
    expect(issues.filter((i) => i.severity === 'error').map((i) => `${i.code} ${i.path}`)).toEqual([
      'E_FILE_PLACE object',
    ]);
  });

  it('warns when records are created but a field the CRM requires is not written', () => {
    const text = read('not-unique.yaml')
      .replace('remote: Email # Salesforce does not enforce unique emails', 'remote: Crmhub_Id__c')
      .replace('identifier: email', 'identifier: profile_id');
    const { issues } = validateMappingSource(text, { file: 'f.yaml' });
    expect(issues).toEqual([
      expect.objectContaining({
        code: 'W_REQUIRED_UNMAPPED',
        severity: 'warning',
        path: 'identity',
        message: expect.stringContaining('"LastName"'),
      }),
    ]);
    const skip = validateMappingSource(
      text.replace('      identifier: profile_id', '      identifier: profile_id\n  on_no_match: skip'),
      { file: 'f.yaml' },
    );
    expect(skip.issues).toEqual([]);
  });
});
