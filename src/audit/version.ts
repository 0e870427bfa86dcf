/**
 * The auditor's version: the `version` of the nearest package.json above this file. Found
 * by walking up rather than by a fixed relative path, so it holds for the sources
 * (src/audit), the build (dist/audit) and an installed package (node_modules/gatehouse).
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export function packageVersion(from: string = fileURLToPath(import.meta.url)): string {
  for (let dir = path.dirname(from); ; dir = path.dirname(dir)) {
    const file = path.join(dir, 'package.json');
    if (fs.existsSync(file)) {
      const { version } = JSON.parse(fs.readFileSync(file, 'utf8')) as { version?: unknown };
      if (typeof version !== 'string') throw new Error(`${file} names no version`);
      return version;
    }
    if (path.dirname(dir) === dir) throw new Error(`no package.json above ${from}`);
  }
}
