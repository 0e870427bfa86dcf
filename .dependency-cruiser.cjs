/**
 * Gatehouse's boundaries, checked by `npm run lint:deps` (part of `npm test`). Paths are
 * relative to the folder depcruise runs in (the repository root; the architecture test
 * runs the same rules on a fixture tree to show that they bite).
 */

// Entry points that assemble the product: the ready-to-run server, the CLIs and the demo
// bank (an example app on the public API). Everything else under src/ is the library.
const ENTRY_POINTS = '^src/(server|demo-bank|audit|bin)/|^src/(cli|main)\\.ts$';

/** Node modules that do I/O: none of them belongs in the pure domain. */
const NODE_IO = [
  'fs',
  'fs/promises',
  'net',
  'http',
  'https',
  'http2',
  'tls',
  'dgram',
  'dns',
  'dns/promises',
  'child_process',
  'cluster',
  'worker_threads',
  'readline',
  'repl',
  'os',
  'process',
  'vm',
  'inspector',
].flatMap((m) => [m, `node:${m}`]);

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'Import cycles make the layers meaningless (and the load order fragile).',
      from: {},
      to: { circular: true },
    },
    {
      name: 'core-is-pure',
      severity: 'error',
      comment: 'src/core is the pure domain: it imports nothing outside src/core.',
      from: { path: '^src/core/' },
      to: { path: '^src/', pathNot: '^src/core/' },
    },
    {
      name: 'core-does-no-io',
      severity: 'error',
      comment: 'src/core does no I/O: no file system, network or process modules.',
      from: { path: '^src/core/' },
      to: { dependencyTypes: ['core'], path: `^(${NODE_IO.join('|')})$` },
    },
    {
      name: 'audit-is-http-only',
      severity: 'error',
      comment: 'The auditor talks to its target over HTTP only: it imports nothing of Gatehouse.',
      from: { path: '^src/audit/' },
      to: { path: '^src/', pathNot: '^src/audit/' },
    },
    {
      name: 'library-without-demo-or-auditor',
      severity: 'error',
      comment: 'The library never imports the demo bank or the auditor (only entry points do).',
      from: { path: '^src/', pathNot: ENTRY_POINTS },
      to: { path: '^src/(demo-bank|audit)/' },
    },
    {
      name: 'demo-bank-uses-public-api',
      severity: 'error',
      comment: 'The demo bank is an example app: it uses the public API (src/index.ts) and nothing else of Gatehouse.',
      from: { path: '^src/demo-bank/' },
      to: { path: '^src/', pathNot: '^src/(demo-bank/|index\\.ts$)' },
    },
    {
      name: 'services-never-import-mail',
      severity: 'error',
      comment: 'Use cases raise typed events; mail subscribes to them. Services never call mail.',
      from: { path: '^src/services/' },
      to: { path: '^src/mail/' },
    },
    {
      name: 'not-to-unresolvable',
      severity: 'error',
      comment: 'An import that does not resolve is a typo or a missing dependency.',
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      extensions: ['.ts', '.js', '.cjs', '.mjs', '.json'],
    },
  },
};
