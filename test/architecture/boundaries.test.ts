/**
 * The dependency rules (.dependency-cruiser.cjs) bite: each fixture tree under
 * fixtures/ is a tiny copy of Gatehouse's layout with one forbidden import, and
 * depcruise must fail on exactly that rule; the clean tree and the real tree pass.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '../..');
const depcruise = path.join(root, 'node_modules/.bin/depcruise');
const config = path.join(root, '.dependency-cruiser.cjs');

interface Outcome {
  exitCode: number;
  rules: string[];
}

async function cruise(cwd: string): Promise<Outcome> {
  try {
    const { stdout } = await promisify(execFile)(depcruise, ['--config', config, '--output-type', 'err', 'src'], { cwd, maxBuffer: 64 * 1024 * 1024 });
    return { exitCode: 0, rules: rulesOf(stdout) };
  } catch (err) {
    const e = err as { code?: number; stdout?: string };
    if (typeof e.code !== 'number' || e.stdout === undefined) throw err;
    return { exitCode: e.code, rules: rulesOf(e.stdout) };
  }
}

/** Rule names from the `err` reporter's lines ("  error core-does-no-io: a → b"). */
function rulesOf(output: string): string[] {
  return [...new Set([...output.matchAll(/^\s*error ([a-z-]+):/gm)].map((m) => m[1]!))].sort();
}

const fixture = (name: string) => path.join(import.meta.dirname, 'fixtures', name);

describe('dependency rules', () => {
  it('the clean fixture tree passes (the rules do not fail on everything)', async () => {
    expect(await cruise(fixture('clean'))).toEqual({ exitCode: 0, rules: [] });
  });

  it.each([
    ['core-imports-fs', ['core-does-no-io']],
    ['core-imports-services', ['core-is-pure', 'no-circular']],
    ['audit-imports-services', ['audit-is-http-only']],
    ['services-import-mail', ['no-circular', 'services-never-import-mail']],
    ['library-imports-demo', ['library-without-demo-or-auditor', 'no-circular']],
  ])('a tree where %s fails on %j', async (name, rules) => {
    const outcome = await cruise(fixture(name));
    expect(outcome.exitCode).not.toBe(0);
    expect(outcome.rules).toEqual(rules);
  });

  it("Gatehouse's own tree passes", async () => {
    expect(await cruise(root)).toEqual({ exitCode: 0, rules: [] });
  }, 60_000);
});
