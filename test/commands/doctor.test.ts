/**
 * `gatehouse doctor` lists stored addresses the grammar refuses (accounts, pending changes,
 * queued mail) and changes nothing.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { findAddressProblems } from '../../src/commands/doctor.js';
import { signup } from '../helpers/accounts.js';
import { FAST_ENV, startTestServer } from '../helpers/server.js';

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatehouse-doctor-'));
afterAll(() => fs.rmSync(dataDir, { recursive: true, force: true }));
const env = { ...FAST_ENV, GATEHOUSE_DATA_DIR: dataDir, GATEHOUSE_SECRET_KEY: 'doctor-test-key-material-000000000001-00000' };

describe('gatehouse doctor', () => {
  it('lists invalid and non-canonical stored addresses without changing them; a clean database has no findings', async () => {
    const server = await startTestServer(env);
    let good: string;
    try {
      good = (await signup(server.url)).email;
    } finally {
      await server.close();
    }
    expect(await findAddressProblems(env)).toEqual([]);

    // Rows as an older Gatehouse stored them.
    const file = path.join(dataDir, 'gatehouse.sqlite');
    const sqlite = new Database(file);
    const now = Date.now();
    const insert = sqlite.prepare(
      "INSERT INTO users (id, email, email_normalized, password_hash, factor_methods, created_at, updated_at) VALUES (?, ?, ?, 'x', '[]', ?, ?)",
    );
    insert.run('u-list', 'a,victim@example.test', 'a,victim@example.test', now, now);
    insert.run('u-zwsp', 'victim@example.test\u200B', 'victim@example.test\u200B', now, now);
    insert.run('u-idn', 'user@B\u00FCcher.example', 'user@b\u00FCcher.example', now, now);
    sqlite
      .prepare(
        'INSERT INTO email_changes (id, user_id, new_email, token_hash, created_at, expires_at, used_at) VALUES (?, ?, ?, ?, ?, ?, NULL)',
      )
      .run('c-1', 'u-idn', 'x<other@evil.test>', 'h1', now, now + 3_600_000);
    const before = sqlite.prepare('SELECT id, email, email_normalized FROM users ORDER BY id').all();
    sqlite.close();

    const findings = await findAddressProblems(env);
    const byId = Object.fromEntries(findings.map((f) => [f.id, f]));
    expect(byId['u-list']).toMatchObject({ kind: 'account', status: 'invalid' });
    expect(byId['u-zwsp']).toMatchObject({ kind: 'account', status: 'invalid', stored: 'victim@example.test\\u{200B}' });
    expect(byId['u-idn']).toMatchObject({
      kind: 'account',
      status: 'not_canonical',
      canonical: { address: 'user@xn--bcher-kva.example', key: 'user@xn--bcher-kva.example' },
    });
    expect(byId['c-1']).toMatchObject({ kind: 'pending_change', status: 'invalid' });
    expect(findings.map((f) => f.stored)).not.toContain(good!);
    expect(findings).toHaveLength(4);

    const after = new Database(file);
    expect(after.prepare('SELECT id, email, email_normalized FROM users ORDER BY id').all()).toEqual(before);
    after.close();
  });
});
