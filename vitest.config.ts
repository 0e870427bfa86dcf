import { defineConfig } from 'vitest/config';

export default defineConfig({
  // The examples import the library by its package name, as a host app would.
  resolve: { alias: [{ find: /^gatehouse$/, replacement: new URL('./src/index.ts', import.meta.url).pathname }] },
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Every HTTP test starts its own server on its own temporary data dir, so files may run in parallel.
    pool: 'forks',
    maxWorkers: 2,
  },
});
