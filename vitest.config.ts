import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const source = (path: string) => fileURLToPath(new URL(path, import.meta.url));

export default defineConfig({
  // The examples import the package by name: the source tree, as tsconfig.json's paths say.
  resolve: {
    alias: [
      { find: /^gatehouse$/, replacement: source('./src/index.ts') },
      { find: /^gatehouse\/express$/, replacement: source('./src/adapters/express.ts') },
      { find: /^gatehouse\/node$/, replacement: source('./src/adapters/node.ts') },
    ],
  },
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Every HTTP test starts its own server on its own temporary data dir, so files may run in parallel.
    pool: 'forks',
    maxWorkers: 2,
  },
});
