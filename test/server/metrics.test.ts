/**
 * Prometheus metrics: off unless enabled; then on a listener of their own (never the public
 * port), which ignores cookies, answers only a loopback Host (no DNS rebinding) or, with a
 * token, only the bearer. Counters follow real requests and security events.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { request } from 'undici';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { serve, type ServingInstance } from '../../src/server/serve.js';
import { login, PASSWORD, signupWithTotp, uniqueEmail } from '../helpers/accounts.js';
import { Client } from '../helpers/http-client.js';
import { FAST_ENV } from '../helpers/server.js';
import { wrongTotp } from '../helpers/totp.js';

const instances: ServingInstance[] = [];
const dirs: string[] = [];
afterAll(async () => {
  for (const i of instances) await i.shutdown('test over');
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

async function start(env: Record<string, string>): Promise<ServingInstance> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatehouse-metrics-'));
  dirs.push(dataDir);
  const config = loadConfig({
    ...FAST_ENV,
    HOST: '127.0.0.1',
    PORT: '0',
    GATEHOUSE_LOG_LEVEL: 'silent',
    GATEHOUSE_DATA_DIR: dataDir,
    GATEHOUSE_SECRET_KEY: crypto.randomBytes(32).toString('base64url'),
    GATEHOUSE_METRICS_PORT: '0',
    ...env,
  });
  const instance = await serve(config);
  instances.push(instance);
  return instance;
}

async function scrape(url: string, headers: Record<string, string> = {}) {
  const res = await request(url, { headers });
  return { status: res.statusCode, text: await res.body.text() };
}

/** The value of one sample line, 0 when absent. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-z_]+)(?:\{([^}]*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = (m[2] ?? '').split(',');
    if (want.every((w) => have.includes(w))) return Number(m[3]);
  }
  return 0;
}

describe('metrics', () => {
  it('are off by default: no listener, and /metrics on the public port is a JSON 404', async () => {
    const instance = await start({});
    expect(instance.metrics).toBeNull();
    expect((await new Client(instance.server.url).get('/metrics')).status).toBe(404);
  });

  it('when on: a loopback listener of its own counting requests, logins, second-factor failures, lockouts and queues', async () => {
    const instance = await start({ GATEHOUSE_METRICS: 'on' });
    const base = instance.server.url;
    const url = instance.metrics!.url;
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    // Never on the public port.
    expect((await new Client(base).get('/metrics')).status).toBe(404);

    const owner = await signupWithTotp(base);
    expect((await new Client(base).post('/api/auth/login', { email: uniqueEmail('nobody'), password: PASSWORD })).status).toBe(401);
    const { client, res } = await login(base, owner);
    expect(res.status).toBe(202);
    // Ten wrong codes lock the account (contract: consecutive failures per account).
    for (let i = 0; i < 10; i++) {
      const pending = i < 5 ? client : (await login(base, owner)).client;
      await pending.post('/api/auth/mfa/verify', { method: 'totp', code: wrongTotp(owner.secret, i) });
    }

    // Listeners run just after the event; give them a moment.
    await new Promise((r) => setTimeout(r, 200));
    const { status, text } = await scrape(url);
    expect(status).toBe(200);
    expect(sample(text, 'gatehouse_http_requests_total', { route: '/api/auth/signup', method: 'POST', status: '201' })).toBe(1);
    expect(
      sample(text, 'gatehouse_http_request_duration_seconds_count', { route: '/api/auth/login', method: 'POST', status: '202' }),
    ).toBeGreaterThanOrEqual(2);
    expect(sample(text, 'gatehouse_logins_total', { outcome: 'failed' })).toBe(1);
    expect(sample(text, 'gatehouse_logins_total', { outcome: 'second_factor_pending' })).toBeGreaterThanOrEqual(2);
    expect(sample(text, 'gatehouse_second_factor_failures_total', { method: 'totp' })).toBe(10);
    expect(sample(text, 'gatehouse_lockouts_total', { check: 'second_factor' })).toBe(1);
    expect(text).toContain('gatehouse_password_hash_queue_depth 0');
    expect(text).toMatch(/^gatehouse_mail_outbox_depth \d+$/m);
    expect(text).toMatch(/^gatehouse_mail_outbox_oldest_age_seconds [\d.]+$/m);
    expect(text).toMatch(/^gatehouse_unavailable_responses_total 0$/m);
    // Raw URLs never become labels.
    expect(text).not.toContain(owner.email);
  });

  it('refuses a non-loopback Host (DNS rebinding) and ignores cookies; with a token, only the bearer reads', async () => {
    const open = await start({ GATEHOUSE_METRICS: 'on' });
    expect((await scrape(open.metrics!.url, { host: 'evil.example' })).status).toBe(421);
    expect((await scrape(open.metrics!.url, { host: 'evil.example', cookie: 'gh_session=anything' })).status).toBe(421);
    expect((await scrape(open.metrics!.url, { host: 'localhost' })).status).toBe(200);

    const token = crypto.randomBytes(32).toString('base64url');
    const guarded = await start({ GATEHOUSE_METRICS: 'on', GATEHOUSE_METRICS_TOKEN: token });
    expect((await scrape(guarded.metrics!.url)).status).toBe(401);
    expect((await scrape(guarded.metrics!.url, { authorization: `Bearer ${token}x` })).status).toBe(401);
    expect((await scrape(guarded.metrics!.url, { authorization: `Bearer ${token}` })).status).toBe(200);
  });
});
