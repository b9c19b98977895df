import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import reactHooks from 'eslint-plugin-react-hooks';
import globals from 'globals';

// Package boundaries: the engine is pure TS that runs in a page, a Worker and Node; everything
// else imports it only through src/engine/index.ts; the CLI never touches React.
const nodeBuiltins = ['fs', 'path', 'url', 'os', 'child_process', 'worker_threads', 'stream', 'crypto', 'zlib', 'util', 'process', 'buffer', 'readline', 'events'];
const nodePatterns = ['node:*', ...nodeBuiltins, ...nodeBuiltins.map((m) => `${m}/*`)];
// Everything under src/engine but its public surface.
const ENGINE_INTERNALS = ['**/engine/**', '!**/engine/index.ts'];

export default tseslint.config(
  { ignores: ['dist', 'node_modules', 'public', 'test-results', 'playwright-report', '.tmp', '.gpu'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { ecmaVersion: 2023, globals: { ...globals.browser, ...globals.node } },
    rules: {
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    files: ['src/engine/**/*.ts'],
    ignores: ['src/engine/**/*.test.ts'],
    languageOptions: { globals: { ...globals['shared-node-browser'] } },
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [
          { group: ['react', 'react-dom', 'react/*', 'react-dom/*', 'zustand', 'zustand/*', 'recharts'], message: 'src/engine must not depend on UI libraries.' },
          { group: nodePatterns, message: 'src/engine must not use Node APIs (it also runs in the browser and Workers).' },
          { group: ['**/ui/**', '**/store/**', '**/cli/**', '**/node/**', '**/worker/**', '**/testing/**'], message: 'src/engine imports nothing outside itself.' },
        ],
      }],
      'no-restricted-globals': ['error',
        { name: 'window', message: 'No DOM in src/engine.' },
        { name: 'document', message: 'No DOM in src/engine.' },
        { name: 'localStorage', message: 'No DOM in src/engine.' },
        { name: 'process', message: 'No Node globals in src/engine.' },
        { name: 'Buffer', message: 'No Node globals in src/engine.' },
        { name: 'require', message: 'No Node globals in src/engine.' },
        { name: '__dirname', message: 'No Node globals in src/engine.' },
      ],
    },
  },
  {
    files: ['src/ui/**/*.{ts,tsx}'],
    plugins: { 'react-hooks': reactHooks },
    rules: {
      ...reactHooks.configs.recommended.rules,
      'no-restricted-imports': ['error', {
        patterns: [
          { group: nodePatterns, message: 'The UI runs in the browser.' },
          { group: ['**/cli/**', '**/node/**'], message: 'The UI does not import the CLI or Node glue.' },
          { group: ENGINE_INTERNALS, message: 'The UI imports the engine only through src/engine/index.ts.' },
        ],
      }],
    },
  },
  {
    files: ['src/store/**/*.ts', 'src/worker/**/*.ts', 'src/storage/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [
          { group: nodePatterns, message: 'The store, the Workers and the page storage run in the browser.' },
          { group: ['react', 'react-dom', 'recharts', '**/ui/**', '**/cli/**', '**/node/**'], message: 'No UI/CLI/Node imports here.' },
          { group: ENGINE_INTERNALS, message: 'Outside the engine, import it only through src/engine/index.ts.' },
        ],
      }],
    },
  },
  {
    files: ['src/cli/**/*.ts', 'src/node/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [
          { group: ['react', 'react-dom', 'zustand', 'recharts', '**/ui/**', '**/store/**'], message: 'The CLI runs the engine only.' },
          { group: ENGINE_INTERNALS, message: 'Outside the engine, import it only through src/engine/index.ts.' },
        ],
      }],
    },
  },
  {
    files: ['src/testing/**/*.ts', 'scripts/**/*.ts', 'e2e/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [{ group: ENGINE_INTERNALS, message: 'Outside the engine, import it only through src/engine/index.ts.' }],
      }],
    },
  },
);
