// The pieces the safety and report promises rest on: one origin, a request budget, a rate,
// masking, escaping, SARIF shape, exit codes, and TOTP steps that never go backwards.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CheckResult, Status } from '../../src/audit/checks/types.js';
import { CodeSupply } from '../../src/audit/factors.js';
import { AuditAbort, HttpClient, type Exchange } from '../../src/audit/http-client.js';
import { maskExchange, SecretRegistry } from '../../src/audit/mask.js';
import { countStatuses, exitCodeFor, type AuditReport } from '../../src/audit/report.js';
import { escapeHtml, renderHtml } from '../../src/audit/reports/html.js';
import { renderSarif } from '../../src/audit/reports/sarif.js';
import { renderPlan } from '../../src/audit/plan.js';
import { selectedChecks } from '../../src/audit/runner.js';
import { Session } from '../../src/audit/session.js';
import { fixtureProfile } from './helpers.js';

describe('HTTP client', () => {
  let server: Server;
  let origin: string;
  let hits = 0;
  beforeAll(async () => {
    server = createServer((_req, res) => {
      hits++;
      res.writeHead(302, { location: 'http://elsewhere.example/', 'set-cookie': ['a=1; Path=/', 'b=2'] }).end('{"x":1}');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  const client = (over: Partial<ConstructorParameters<typeof HttpClient>[0]> = {}) =>
    new HttpClient({ target: origin, maxRequests: 100, requestsPerSecond: 1000, burst: 5, timeoutMs: 2000, ...over });

  it('refuses any other origin and does not follow redirects', async () => {
    const c = client();
    await expect(c.send({ method: 'GET', path: '//elsewhere.example/x', note: 't' })).rejects.toBeInstanceOf(AuditAbort);
    const before = hits;
    const res = await c.send({ method: 'GET', path: '/r', note: 't' });
    expect(res.status).toBe(302);
    expect(res.location).toBe('http://elsewhere.example/');
    expect(res.setCookies).toEqual(['a=1; Path=/', 'b=2']);
    expect(hits).toBe(before + 1);
  });

  it('stops at the request budget', async () => {
    const c = client({ maxRequests: 2 });
    await c.send({ method: 'GET', path: '/', note: '1' });
    await c.send({ method: 'GET', path: '/', note: '2' });
    await expect(c.send({ method: 'GET', path: '/', note: '3' })).rejects.toThrow(/request budget exhausted/);
  });

  it('keeps to the global rate after the burst', async () => {
    const c = client({ requestsPerSecond: 20, burst: 2 });
    const t0 = Date.now();
    await Promise.all(Array.from({ length: 6 }, (_, i) => c.send({ method: 'GET', path: '/', note: String(i) })));
    // 2 at once, then 4 more at 20/s: at least ~200 ms.
    expect(Date.now() - t0).toBeGreaterThanOrEqual(180);
  });
});

describe('session', () => {
  it('keeps cookies, drops expired ones, and presents a bearer token', () => {
    const s = new Session({ header: 'X-Token', scheme: '' });
    s.absorbSetCookies(['sid=abc; Path=/; HttpOnly', 'old=1', 'old=; Max-Age=0', 'gone=x; Expires=Thu, 01 Jan 1970 00:00:00 GMT']);
    s.bearer = 'tok';
    expect(s.headers()).toEqual({ cookie: 'sid=abc', 'x-token': 'tok' });
    const copy = s.clone();
    s.absorbSetCookies(['sid=new']);
    expect(copy.headers().cookie).toBe('sid=abc');
  });
});

describe('masking', () => {
  const exchange = (body: string, headers: Record<string, string> = {}): Exchange => ({
    note: 'n',
    at: '',
    durationMs: 0,
    request: {
      method: 'POST',
      url: 'http://t/login',
      headers: { cookie: 'sid=s3cr3t-session; theme=dark', authorization: 'Bearer tok-123456', ...headers },
      body,
    },
    response: {
      status: 200,
      headers: { 'set-cookie': ['sid=s3cr3t-2; Path=/; HttpOnly'] },
      body: '{"token":"api-xyz","user":{"name":"al"},"codes":["a1b2c3d4"],"recoveryCodesRemaining":9}',
    },
  });

  it('masks secrets by value and by field name, keeping the shape readable', () => {
    const secrets = new SecretRegistry();
    secrets.add('hunter2-pass', 'x');
    const masked = maskExchange(exchange('username=al&password=hunter2-pass&otp=123456&note=hi'), secrets);
    expect(masked.request.body).toBe('username=al&password=«masked»&otp=«masked»&note=hi');
    expect(masked.request.headers.cookie).toBe('sid=«masked»; theme=«masked»');
    expect(masked.request.headers.authorization).toBe('Bearer «masked»');
    expect(masked.response?.headers['set-cookie']).toEqual(['sid=«masked»; Path=/; HttpOnly']);
    expect(JSON.parse(masked.response?.body ?? '')).toEqual({
      token: '«masked»',
      user: { name: 'al' },
      codes: '«masked»',
      recoveryCodesRemaining: 9,
    });
  });

  it('masks known secrets anywhere, e.g. in a JSON request body or an echoed page', () => {
    const secrets = new SecretRegistry();
    secrets.add('alice-rc-00-7f3a9c');
    const masked = maskExchange(exchange('{"backup":"alice-rc-00-7f3a9c"}'), secrets);
    expect(masked.request.body).toBe('{"backup":"«masked»"}');
    expect(secrets.maskText('<p>you used alice-rc-00-7f3a9c</p>')).toBe('<p>you used «masked»</p>');
  });
});

function fakeReport(results: Partial<CheckResult>[]): AuditReport {
  const full = results.map((r, i): CheckResult => ({
    id: `check-${i}`,
    title: 'T',
    severity: 'high',
    references: ['WSTG-ATHN-11'],
    description: 'd',
    fixHint: 'f',
    status: 'blocked',
    summary: 's',
    durationMs: 1,
    evidence: [],
    ...r,
  }));
  const counts = countStatuses(full);
  return {
    tool: { name: 'gatehouse-audit', version: '1' },
    target: 'http://t',
    profile: 'p',
    startedAt: 'a',
    finishedAt: 'b',
    durationMs: 1,
    requestCount: 0,
    preflight: [],
    results: full,
    counts,
    exitCode: exitCodeFor(counts, undefined),
  };
}

describe('reports', () => {
  it('HTML escapes everything a target or profile controls', () => {
    const evil = '<script>alert(1)</script>';
    const report = fakeReport([
      {
        status: 'bypassed',
        summary: evil,
        evidence: [
          {
            note: evil,
            at: '',
            durationMs: 0,
            request: { method: 'GET', url: 'http://t/%3Cscript%3E', headers: { 'x-h': evil } },
            response: { status: 200, headers: { 'x-r': `"'${evil}` }, body: `</pre>${evil}` },
          },
        ],
      },
    ]);
    report.profile = evil;
    const html = renderHtml(report);
    expect(html).not.toContain('<script');
    expect(html).not.toContain('</pre><script');
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(escapeHtml(`"'&<>`)).toBe('&quot;&#39;&amp;&lt;&gt;');
  });

  it('SARIF: one rule and one result per check, kinds by status, levels by severity', () => {
    const sarif = JSON.parse(
      renderSarif(
        fakeReport([
          { status: 'bypassed', severity: 'critical' },
          { status: 'blocked' },
          { status: 'not_applicable' },
          { status: 'error', severity: 'medium' },
        ]),
      ),
    ) as {
      version: string;
      $schema: string;
      runs: { tool: { driver: { rules: unknown[] } }; results: { kind: string; level: string; ruleIndex: number }[] }[];
    };
    expect(sarif.version).toBe('2.1.0');
    expect(sarif.$schema).toMatch(/sarif-2\.1\.0/);
    expect(sarif.runs[0]?.tool.driver.rules).toHaveLength(4);
    expect(sarif.runs[0]?.results.map((r) => [r.kind, r.level, r.ruleIndex])).toEqual([
      ['fail', 'error', 0],
      ['pass', 'none', 1],
      ['notApplicable', 'none', 2],
      ['review', 'none', 3],
    ]);
  });

  it('exit codes: a bypass outranks an incomplete run', () => {
    const c = (s: Partial<Record<Status, number>>) => ({ blocked: 0, bypassed: 0, not_applicable: 0, inconclusive: 0, error: 0, ...s });
    expect(exitCodeFor(c({ blocked: 3, not_applicable: 2 }), undefined)).toBe(0);
    expect(exitCodeFor(c({ bypassed: 1, error: 1 }), 'stopped')).toBe(1);
    expect(exitCodeFor(c({ blocked: 1, error: 1 }), undefined)).toBe(2);
    expect(exitCodeFor(c({}), 'preflight failed')).toBe(2);
    // A limiter that kept a check from concluding leaves the run incomplete, never clean.
    expect(exitCodeFor(c({ blocked: 5, inconclusive: 1 }), undefined)).toBe(2);
    expect(exitCodeFor(c({ bypassed: 1, inconclusive: 1 }), undefined)).toBe(1);
  });

  it('reports carry the package version and cite ASVS 5.0', async () => {
    const { readFileSync } = await import('node:fs');
    const { AUDITOR_VERSION } = await import('../../src/audit/report.js');
    const { allChecks } = await import('../../src/audit/checks/index.js');
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    expect(AUDITOR_VERSION).toBe(pkg.version);
    const asvs = allChecks.flatMap((c) => c.references.filter((r) => r.startsWith('ASVS')));
    expect(asvs.length).toBeGreaterThanOrEqual(allChecks.length);
    for (const r of asvs) expect(r).toMatch(/^ASVS 5\.0 V[67]\.\d+\.\d+$/);
  });

  it('--only pulls in the checks a check builds on, in run order', () => {
    expect(selectedChecks(['xff-rate-limit-evasion', 'totp-replay']).map((c) => c.id)).toEqual([
      'totp-replay',
      'mfa-guess-unlimited',
      'xff-rate-limit-evasion',
    ]);
    expect(() => selectedChecks(['no-such-check'])).toThrow(/unknown check id/);
  });

  it('the dry-run plan names the target, the safety limits and every check', () => {
    const plan = renderPlan('http://127.0.0.1:1/x', fixtureProfile());
    expect(plan).toContain('requests only to http://127.0.0.1:1;');
    expect(plan).toContain('account-changing checks ALLOWED');
    expect(plan).toMatch(/\[15\/20\] password-reset-session: .*not applicable, the profile has no passwordReset/);
    expect(plan).toContain('wait until the preflight session is older than stepUp.maxAgeSeconds (2s)');
  });
});

describe('TOTP code supply', () => {
  const secret = 'JBSWY3DPEHPK3PXP';

  it('hands out strictly increasing steps: current, then the drift window, then waits', () => {
    let now = 1_000_000 * 30_000 + 5_000; // 5 s into step 1 000 000
    const supply = new CodeSupply(secret, [], 1, () => now);
    expect(supply.totpWaitMs()).toBe(0);
    expect(supply.takeTotp().step).toBe(1_000_000);
    expect(supply.totpWaitMs()).toBe(0);
    expect(supply.takeTotp().step).toBe(1_000_001);
    // Step 1 000 002 is acceptable once real time reaches step 1 000 001.
    expect(supply.totpWaitMs()).toBe(25_000);
    now += 25_000;
    expect(supply.takeTotp().step).toBe(1_000_002);
  });

  it('with no drift window every further code waits for its own step', () => {
    const now = 2_000 * 30_000;
    const supply = new CodeSupply(secret, [], 0, () => now);
    supply.takeTotp();
    expect(supply.totpWaitMs()).toBe(30_000);
  });

  it('keeps reserved recovery codes for the checks that need them', () => {
    const supply = new CodeSupply(undefined, ['r1', 'r2', 'r3'], 1);
    supply.reserveRecovery(2);
    expect(supply.takeRecovery()?.code).toBe('r1');
    expect(supply.takeRecovery()).toBeUndefined();
    expect(supply.takeRecovery(true)?.code).toBe('r2');
    expect(supply.takeRecovery(true)?.code).toBe('r3');
    expect(supply.takeRecovery(true)).toBeUndefined();
  });

  it('makes wrong guesses that are never valid near now', () => {
    const supply = new CodeSupply(secret, [], 1);
    for (let i = 0; i < 50; i++) expect(supply.isNearValid(supply.wrongTotp())).toBe(false);
    expect(supply.isNearValid(supply.peekTotp())).toBe(true);
  });
});

describe('independence from Gatehouse', () => {
  it('src/audit imports only itself, Node built-ins and npm packages', async () => {
    const { readdir, readFile } = await import('node:fs/promises');
    const { dirname, join, relative, resolve } = await import('node:path');
    const root = resolve(import.meta.dirname, '../../src/audit');
    const files = (await readdir(root, { recursive: true })).filter((f) => f.endsWith('.ts'));
    expect(files.length).toBeGreaterThan(10);
    const offenders: string[] = [];
    let seen = 0;
    for (const file of files) {
      const text = await readFile(join(root, file), 'utf8');
      const specs = [
        ...text.matchAll(/^(?:import|export)\b[^;]*?\bfrom\s+'([^']+)'/gm),
        ...text.matchAll(/^import\s+'([^']+)'/gm),
        ...text.matchAll(/\bimport\(\s*'([^']+)'\s*\)/g),
      ].map((m) => m[1] ?? '');
      seen += specs.length;
      for (const spec of specs) {
        if (spec.startsWith('node:')) continue;
        if (!spec.startsWith('.')) {
          // oidc-provider: the auditor's own upstream OpenID Provider (upstream.ts), not Gatehouse's.
          if (!['yaml', 'zod', 'undici', 'otpauth', 'parse5', 'tough-cookie', '@levischuck/tiny-cbor', 'oidc-provider'].includes(spec))
            offenders.push(`${file}: ${spec} (unexpected package)`);
          continue;
        }
        const target = relative(root, resolve(dirname(join(root, file)), spec));
        if (target.startsWith('..')) offenders.push(`${file}: ${spec}`);
      }
    }
    expect(seen).toBeGreaterThan(50); // the scan really found the imports
    expect(offenders).toEqual([]);
  });
});
