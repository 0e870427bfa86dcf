// A profile mistake must be reported, with where it is, rather than silently turning a
// check into "not applicable".
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { deepMerge, loadProfile, parseProfile, ProfileError } from '../../src/audit/profile.js';
import { allChecks } from '../../src/audit/checks/index.js';

const minimal = () => ({
  login: { path: '/login', mfaRequired: { status: 202 } },
  secondFactor: { totp: { path: '/mfa' } },
  whoami: { path: '/me' },
  accounts: [{ username: 'a@example.test', password: 'pw-123456', totpSecret: 'JBSWY3DPEHPK3PXP' }],
});

function problems(raw: unknown): string[] {
  try {
    parseProfile(raw, 'test');
  } catch (err) {
    if (err instanceof ProfileError) return err.problems;
    throw err;
  }
  return [];
}

describe('profile validation', () => {
  it('accepts a minimal profile and fills in defaults', () => {
    const p = parseProfile(minimal());
    expect(p.login.method).toBe('POST');
    expect(p.login.encoding).toBe('json');
    expect(p.login.usernameField).toBe('email');
    expect(p.whoami.method).toBe('GET');
    expect(p.session.transport).toBe('cookie');
    expect(p.secondFactor.limited).toEqual({ status: 429 });
    expect(p.safety.allowAccountChanges).toBe(false);
    expect(p.accounts[0]?.recoveryCodes).toEqual([]);
  });

  it('names every mistake with its path', () => {
    const raw = {
      ...minimal(),
      login: { path: 'https://evil.example/login', method: 'FETCH', mfaRequired: {} },
      whoami: { path: '/me', sucess: { status: 200 } },
      accounts: [],
    };
    const found = problems(raw);
    expect(found).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^login\.path: must be a path on the target/),
        expect.stringMatching(/^login\.method: /),
        expect.stringMatching(/^login\.mfaRequired: give at least one of/),
        expect.stringMatching(/^whoami: .*sucess/),
        expect.stringMatching(/^accounts: give at least one test account/),
      ]),
    );
    expect(found).toHaveLength(5);
  });

  it('refuses protocol-relative paths, bad TOTP secrets and bearer without a token field', () => {
    expect(problems({ ...minimal(), whoami: { path: '//evil.example/me' } })).toEqual([
      expect.stringMatching(/^whoami\.path: must be a path/),
    ]);
    expect(problems({ ...minimal(), accounts: [{ username: 'a', password: 'b', totpSecret: 'not base32!' }] })).toEqual([
      expect.stringMatching(/^accounts\.0\.totpSecret: must be a base32 TOTP secret/),
    ]);
    expect(problems({ ...minimal(), session: { transport: 'bearer' } })).toEqual([
      expect.stringMatching(/^session: transport "bearer" needs tokenField/),
    ]);
  });

  it('upstreamLogin: the auditor listens on loopback only; the callback defaults to startPath/callback', () => {
    const upstream = { issuer: 'http://127.0.0.1:4455', clientId: 'gh', startPath: '/sign-in/upstream/audit' };
    expect(parseProfile({ ...minimal(), upstreamLogin: upstream }).upstreamLogin).toMatchObject({
      callbackPath: '/sign-in/upstream/audit/callback',
      clientAuth: 'client_secret_basic',
    });
    for (const issuer of ['http://0.0.0.0:4455', 'https://127.0.0.1:4455', 'http://idp.example:4455', 'http://127.0.0.1'])
      expect(problems({ ...minimal(), upstreamLogin: { ...upstream, issuer } })).toEqual([
        expect.stringMatching(/^upstreamLogin\.issuer: must be http:\/\/127\.0\.0\.1:PORT/),
      ]);
    expect(problems({ ...minimal(), upstreamLogin: { ...upstream, startPath: 'https://evil.example/x' } })).toEqual([
      expect.stringMatching(/^upstreamLogin\.startPath: must be a path/),
    ]);
  });

  it('needs a way to finish a login', () => {
    expect(problems({ ...minimal(), accounts: [{ username: 'a', password: 'b' }] })).toEqual([
      expect.stringMatching(/^accounts: the first account needs a totpSecret, recoveryCodes or a passkey/),
    ]);
    expect(problems({ ...minimal(), accounts: [{ username: 'a', password: 'b', recoveryCodes: ['x'] }] })).toEqual([
      expect.stringMatching(/^secondFactor\.recoveryCode: accounts give recoveryCodes but/),
    ]);
  });

  it('extends the built-in Gatehouse profile; null drops a section; unknown built-ins are named', () => {
    const p = parseProfile({ extends: 'builtin:gatehouse', accounts: minimal().accounts, tokenLogin: null });
    expect(p.login.path).toBe('/api/auth/login');
    expect(p.tokenLogin).toBeUndefined();
    expect(p.sensitiveActions.map((a) => a.kind)).toContain('disable_mfa');
    expect(problems({ extends: 'builtin:nope' })).toEqual([
      expect.stringMatching(/unknown built-in profile "builtin:nope" \(known: builtin:gatehouse\)/),
    ]);
    // On its own the built-in profile lacks accounts, and says so.
    expect(problems({ extends: 'builtin:gatehouse' })).toEqual([expect.stringMatching(/^accounts: /)]);
  });

  it('merges objects and replaces lists', () => {
    expect(deepMerge({ a: { b: 1, c: [1, 2] }, d: 1 }, { a: { c: [3] }, e: 2 })).toEqual({ a: { b: 1, c: [3] }, d: 1, e: 2 });
  });

  it('loads YAML and JSON files and reports syntax errors', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'audit-profile-'));
    try {
      await writeFile(join(dir, 'p.json'), JSON.stringify(minimal()));
      expect((await loadProfile(join(dir, 'p.json'))).whoami.path).toBe('/me');
      await writeFile(join(dir, 'bad.yaml'), 'login: [unclosed\n');
      await expect(loadProfile(join(dir, 'bad.yaml'))).rejects.toThrow(/not valid JSON\/YAML/);
      await expect(loadProfile(join(dir, 'missing.yaml'))).rejects.toThrow(/cannot read the file/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('docs/audit.md', () => {
  const doc = readFileSync(fileURLToPath(new URL('../../docs/audit.md', import.meta.url)), 'utf8');
  const blocks = [...doc.matchAll(/```(yaml|json)\n([\s\S]*?)```/g)].map((m) => ({ lang: m[1], text: m[2] ?? '' }));

  it('has two complete examples (and a Gatehouse one) that validate', () => {
    const profiles = blocks.filter((b) => /accounts/.test(b.text));
    expect(profiles.map((b) => b.lang)).toEqual(['yaml', 'json', 'yaml']);
    for (const b of profiles) {
      const raw = b.lang === 'json' ? (JSON.parse(b.text) as unknown) : (parse(b.text) as unknown);
      expect(() => parseProfile(raw, `docs ${b.lang} example`)).not.toThrow();
    }
  });

  it('lists every check', () => {
    for (const c of allChecks) expect(doc).toContain(`| \`${c.id}\` | ${c.title} |`);
  });
});
