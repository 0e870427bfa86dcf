/**
 * What `npm pack` ships: the build (JavaScript and types) and the README, nothing of the
 * tests, fixtures, sources or tooling; and the packed commands run from the unpacked
 * package: `gatehouse --version`, `gatehouse-audit --version` and the auditor's report
 * version all say the package's version, as the sources do.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '../..');
const { version, bin, exports: subpaths } = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));

describe('the packed package', () => {
  const unpacked = fs.mkdtempSync(path.join(os.tmpdir(), 'gatehouse-pack-'));
  const pkg = path.join(unpacked, 'package');
  let files: string[] = [];

  beforeAll(async () => {
    await run('npm', ['run', 'build'], { cwd: root });
    const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', unpacked], { cwd: root });
    const [packed] = JSON.parse(stdout) as Array<{ filename: string; files: Array<{ path: string }> }>;
    files = packed!.files.map((f) => f.path);
    await run('tar', ['-xzf', path.join(unpacked, packed!.filename), '-C', unpacked]);
    // The dependencies as an installation would provide them.
    fs.symlinkSync(path.join(root, 'node_modules'), path.join(pkg, 'node_modules'), 'dir');
  }, 300_000);
  afterAll(() => fs.rmSync(unpacked, { recursive: true, force: true }));

  it('holds only the build, the package file and the README', () => {
    expect(files.length).toBeGreaterThan(50);
    const stray = files.filter((f) => !(/^dist\/.+\.(js|d\.ts)$/.test(f) || f === 'package.json' || f === 'README.md'));
    expect(stray).toEqual([]);
    expect(files.filter((f) => /(^|\/)(test|tests|fixtures|__tests__)\/|\.test\.|\.map$|^src\//.test(f))).toEqual([]);
  });

  it('holds every bin and subpath export it declares', () => {
    for (const target of Object.values(bin as Record<string, string>)) expect(files).toContain(target);
    for (const entry of Object.values(subpaths as Record<string, string | { types: string; default: string }>)) {
      if (typeof entry === 'string') continue;
      expect(files).toContain(entry.default.replace(/^\.\//, ''));
      expect(files).toContain(entry.types.replace(/^\.\//, ''));
    }
  });

  it('its commands say the package version, as the sources do', async () => {
    expect((await run('node', [path.join(pkg, 'dist/cli.js'), '--version'])).stdout).toBe(`gatehouse ${version}\n`);
    expect((await run('node', [path.join(pkg, 'dist/audit/cli.js'), '--version'])).stdout).toBe(`gatehouse-audit ${version}\n`);
    const help = await run('node', [path.join(pkg, 'dist/audit/cli.js'), '--help']);
    expect(help.stdout).toContain('Usage: gatehouse-audit --target URL');
    expect((await run('node', [path.join(root, 'dist/cli.js'), '--version'])).stdout).toBe(`gatehouse ${version}\n`);
    const tsx = path.join(root, 'node_modules/.bin/tsx');
    expect((await run(tsx, [path.join(root, 'src/cli.ts'), '--version'])).stdout).toBe(`gatehouse ${version}\n`);
  }, 60_000);

  it("the auditor's subpath export loads by name and reports the package version", async () => {
    const consumer = fs.mkdtempSync(path.join(os.tmpdir(), 'gatehouse-consumer-'));
    try {
      fs.mkdirSync(path.join(consumer, 'node_modules'));
      fs.symlinkSync(pkg, path.join(consumer, 'node_modules/gatehouse'), 'dir');
      const script = `const audit = await import('gatehouse/audit');
        process.stdout.write(JSON.stringify({ names: Object.keys(audit), version: audit.AUDITOR_VERSION }));`;
      const { stdout } = await run('node', ['--input-type=module', '-e', script], { cwd: consumer });
      const loaded = JSON.parse(stdout) as { names: string[]; version: string };
      expect(loaded.names).toEqual(expect.arrayContaining(['runAudit', 'auditCommand', 'loadProfile', 'AUDITOR_VERSION']));
      expect(loaded.version).toBe(version);
    } finally {
      fs.rmSync(consumer, { recursive: true, force: true });
    }
  }, 60_000);
});
