// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/**', 'dist/**', 'coverage/**', '.crmhub/**', 'bin/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false } }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/only-throw-error': 'error',
      'no-restricted-syntax': [
        'error',
        {
          selector: "NewExpression[callee.name='Error'][arguments.length>0]",
          message: 'Throw a CrmhubError (src/connector-kit/errors.ts) so the taxonomy decides retries.',
        },
      ],
    },
  },
  // Layering (design.md §2): core imports nothing of ours; sync knows no vendor; connectors import
  // only the connector kit and core; mapping is pure.
  {
    files: ['src/core/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: ['../*', '../../*'], message: 'src/core imports nothing of ours.' }] }],
    },
  },
  {
    files: ['src/sync/**/*.ts', 'src/mapping/**/*.ts', 'src/queue/**/*.ts', 'src/store/**/*.ts', 'src/identity/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: ['**/connectors/**'], message: 'Only the composition root (src/cli, src/server start-up) knows connectors.' }] }],
    },
  },
  {
    files: ['connectors/*/*.ts', 'connectors/*/!(sandbox)/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [
        { group: ['**/src/sync/**', '**/src/store/**', '**/src/identity/**', '**/src/server/**', '**/src/cli/**'], message: 'A connector imports only src/connector-kit and src/core.' },
        { group: ['../hubspot/**', '../salesforce/**', '../pipedrive/**', '../../hubspot/**', '../../salesforce/**', '../../pipedrive/**'], message: 'A connector never imports another connector.' },
      ] }],
    },
  },
  {
    files: ['test/**/*.ts', 'bench/**/*.ts', '**/*.test.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
      'no-restricted-syntax': 'off',
    },
  },
  { files: ['*.js', '*.mjs'], ...tseslint.configs.disableTypeChecked },
);
