/**
 * The dependency rules (.dependency-cruiser.cjs) bite: each fixture tree under fixtures/
 * is a tiny copy of Gatehouse's layout with one forbidden import, and the rules must flag
 * exactly that; the clean tree and the real tree pass. The rules run in-process (fast on
 * a loaded machine); one run of the CLI shows that a violation fails the command.
 */
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { promisify } from 'node:util';
import { cruise, type ICruiseOptions } from 'dependency-cruiser';
import { describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '../..');
const configFile = path.join(root, '.dependency-cruiser.cjs');
const config = createRequire(import.meta.url)(configFile) as {
  forbidden: NonNullable<ICruiseOptions['ruleSet']>['forbidden'];
  options: ICruiseOptions;
};
const fixture = (name: string) => path.join(import.meta.dirname, 'fixtures', name);

/** Names of the rules an `src` tree under `baseDir` breaks (all rules are errors). */
async function brokenRules(baseDir: string): Promise<string[]> {
  const result = await cruise(['src'], { ...config.options, validate: true, ruleSet: { forbidden: config.forbidden }, baseDir });
  if (typeof result.output === 'string') throw new Error('expected a JSON result');
  const violations = result.output.summary.violations;
  expect(violations.every((v) => v.rule.severity === 'error')).toBe(true);
  return [...new Set(violations.map((v) => v.rule.name))].sort();
}

describe('dependency rules', () => {
  it('the clean fixture tree passes (the rules do not flag everything)', async () => {
    expect(await brokenRules(fixture('clean'))).toEqual([]);
  });

  it.each([
    ['core-imports-fs', ['core-does-no-io']],
    ['core-imports-services', ['core-is-pure', 'no-circular']],
    ['audit-imports-services', ['audit-is-http-only']],
    ['services-import-mail', ['no-circular', 'services-never-import-mail']],
    // Once a known exception: no service file is exempt any more.
    ['password-reset-imports-mail', ['no-circular', 'services-never-import-mail']],
    ['library-imports-demo', ['library-without-demo-or-auditor', 'no-circular']],
  ])('a tree where %s breaks %j', async (name, rules) => {
    expect(await brokenRules(fixture(name))).toEqual(rules);
  });

  it('the depcruise command fails on a violation (what npm test runs)', async () => {
    const run = promisify(execFile)(
      path.join(root, 'node_modules/.bin/depcruise'),
      ['--config', configFile, '--output-type', 'err', 'src'],
      {
        cwd: fixture('core-imports-fs'),
      },
    );
    await expect(run).rejects.toMatchObject({ code: 1, stdout: expect.stringContaining('core-does-no-io') });
  }, 60_000);

  it("Gatehouse's own tree passes", async () => {
    expect(await brokenRules(root)).toEqual([]);
  });
});
