// Lint rules that keep a long-running daemon alive: no floating or misused promises.
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'models/**', 'coverage/**', '**/*.js', '**/*.mjs'] },
  {
    files: ['src/**/*.ts'],
    extends: [tseslint.configs.base],
    languageOptions: {
      // Each file is checked with the nearest tsconfig.json: the review page's script
      // (src/review/page/*.ts) with its own, for the browser.
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false } }],
      '@typescript-eslint/await-thenable': 'error',
    },
  },
  {
    // The daemon meets the other stages through their public surfaces (each folder's index.ts).
    files: ['src/daemon/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ regex: '^\\.\\./(?!.*/index\\.js$).+/', message: "Import another stage through its index.ts (add what is missing there)." }] }],
    },
  },
);
