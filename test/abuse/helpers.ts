/**
 * Helpers for the abuse tests: a cookie-jar HTTP client, account set-up (signup, TOTP
 * enrolment), TOTP codes, and throw-away PostgreSQL schemas.
 */
import crypto from 'node:crypto';
import pg from 'pg';
import { totpCodeAt } from '../../src/services/totp.js';

export const FAST_ARGON2 = { GATEHOUSE_ARGON2_MEMORY_KIB: '64', GATEHOUSE_ARGON2_ITERATIONS: '1' };
export const PG_URL = 'postgres://postgres@127.0.0.1:5432/test';
export const REDIS_URL = 'redis://127.0.0.1:6379';

export interface Reply {
  status: number;
  body: any;
  text: string;
  headers: Headers;
}

export function uniq(label = 'u'): string {
  return `${label}-${crypto.randomBytes(6).toString('hex')}`;
}

export function uniqueEmail(label = 'abuse'): string {
  return `${uniq(label)}@example.test`;
}

/** One browser (cookie jar) or native client (bearer token). */
export class Client {
  cookies = new Map<string, string>();
  bearer: string | null = null;
  constructor(
    public base: string,
    public extraHeaders: Record<string, string> = {},
  ) {}

  withBase(base: string): Client {
    const c = new Client(base, this.extraHeaders);
    c.cookies = new Map(this.cookies);
    c.bearer = this.bearer;
    return c;
  }

  async req(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Reply> {
    const h: Record<string, string> = { ...this.extraHeaders, ...headers };
    if (method === 'GET' || method === 'HEAD') body = undefined;
    if (body !== undefined) h['content-type'] ??= 'application/json';
    if (this.cookies.size) h.cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    if (this.bearer) h.authorization = `Bearer ${this.bearer}`;
    const res = await fetch(this.base + path, {
      method,
      headers: h,
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq).trim();
      const value = pair!.slice(eq + 1).trim();
      if (value === '' || /max-age=0|expires=thu, 01 jan 1970/i.test(line)) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    const text = await res.text();
    let parsed: unknown = null;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      parsed = null;
    }
    return { status: res.status, body: parsed, text, headers: res.headers };
  }
  post(path: string, body?: unknown, headers?: Record<string, string>) {
    return this.req('POST', path, body, headers);
  }
  get(path: string, headers?: Record<string, string>) {
    return this.req('GET', path, undefined, headers);
  }
}

export const PASSWORD = 'correct horse battery staple 42';

export async function signup(base: string, email = uniqueEmail(), password = PASSWORD, headers: Record<string, string> = {}) {
  const c = new Client(base, headers);
  const r = await c.post('/api/auth/signup', { email, password });
  if (r.status !== 201) throw new Error(`signup ${r.status} ${r.text}`);
  return { client: c, email, password, userId: r.body.user.id as string };
}

/** TOTP code for the step `offsetSteps` after the current one. */
export function totp(secret: string, offsetSteps = 0): string {
  return totpCodeAt(secret, Date.now() + offsetSteps * 30_000);
}

export function wrongTotp(secret: string): string {
  const bad = new Set([-1, 0, 1].map((o) => totp(secret, o)));
  for (;;) {
    const c = String(crypto.randomInt(0, 1_000_000)).padStart(6, '0');
    if (!bad.has(c)) return c;
  }
}

/** Signs up and enrols TOTP: returns the secret and the ten recovery codes. */
export async function mfaAccount(base: string, email = uniqueEmail(), headers: Record<string, string> = {}) {
  const acct = await signup(base, email, PASSWORD, headers);
  const setup = await acct.client.post('/api/mfa/totp/setup');
  if (setup.status !== 200) throw new Error(`setup ${setup.status} ${setup.text}`);
  const secret = setup.body.secret as string;
  const confirm = await acct.client.post('/api/mfa/totp/confirm', { code: totp(secret) });
  if (confirm.status !== 200) throw new Error(`confirm ${confirm.status} ${confirm.text}`);
  return { ...acct, secret, factorId: setup.body.factorId as string, recoveryCodes: confirm.body.recoveryCodes as string[] };
}

/** A fresh pending session (password verified, second factor outstanding). */
export async function pending(base: string, email: string, headers: Record<string, string> = {}): Promise<Client> {
  const c = new Client(base, headers);
  const r = await c.post('/api/auth/login', { email, password: PASSWORD });
  if (r.status !== 202) throw new Error(`login ${r.status} ${r.text}`);
  return c;
}

export function expect429(r: Reply): number {
  if (r.status !== 429) throw new Error(`expected 429, got ${r.status} ${r.text}`);
  const body = Number(r.body?.retryAfter);
  const header = Number(r.headers.get('retry-after'));
  if (!(body >= 1) || body !== header) throw new Error(`retryAfter body ${body} header ${header}`);
  return body;
}

/** A schema of its own in the shared test database, dropped by `drop()`. */
export async function pgSchema(label = 'abuse') {
  const schema = `gh_${label}_${crypto.randomBytes(5).toString('hex')}`;
  const admin = new pg.Client({ connectionString: PG_URL });
  await admin.connect();
  await admin.query(`CREATE SCHEMA ${schema}`);
  await admin.end();
  const url = `${PG_URL}?options=${encodeURIComponent(`-c search_path=${schema}`)}`;
  return {
    schema,
    url,
    async drop() {
      const c = new pg.Client({ connectionString: PG_URL });
      await c.connect();
      await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await c.end();
    },
  };
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** A server in a child process (`npx tsx`), in its own process group so SIGKILL takes it all. */
export async function spawnServer(env: Record<string, string>) {
  const { spawn } = await import('node:child_process');
  const child = spawn('npx', ['tsx', 'test/abuse/fixtures/child-server.ts'], {
    env: { ...process.env, HOST: '127.0.0.1', PORT: '0', GATEHOUSE_LOG_LEVEL: 'info', ...env },
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`child server did not start: ${stderr}`)), 45_000);
    child.stderr!.on('data', (d) => {
      stderr += d;
      const m = /READY (\S+)/.exec(stderr);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    child.on('exit', (code) => reject(new Error(`child server exited ${code}: ${stderr}`)));
  });
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  return {
    url,
    pid: child.pid!,
    logs: () => stdout,
    async kill(signal: NodeJS.Signals = 'SIGKILL') {
      try {
        process.kill(-child.pid!, signal);
      } catch {
        /* already gone */
      }
      await exited;
    },
  };
}

/** Two servers on one shared database, started one after the other (the first migrates); on failure the schema is dropped. */
export async function startPair(env: Record<string, string>, drop: () => Promise<void>) {
  const { startTestServer } = await import('../helpers/server.js');
  const started: Awaited<ReturnType<typeof startTestServer>>[] = [];
  try {
    started.push(await startTestServer(env));
    started.push(await startTestServer(env));
    return started as [(typeof started)[0], (typeof started)[0]];
  } catch (err) {
    for (const s of started) await s.close();
    await drop();
    throw err;
  }
}
