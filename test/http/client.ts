/**
 * A tiny HTTP client for the HTTP tests: a cookie jar, optional Bearer token, raw
 * control over headers (no automatic Origin / Sec-Fetch-* headers), JSON in and out.
 */
import crypto from 'node:crypto';
import { request } from 'undici';
import { totpCodeAt } from '../../src/services/totp.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

export interface Res<T = any> {
  status: number;
  body: T;
  headers: Record<string, string | string[] | undefined>;
  setCookies: string[];
}

export interface ReqOptions {
  json?: unknown;
  raw?: string | Buffer;
  contentType?: string;
  headers?: Record<string, string>;
  /** Send no cookies and no bearer from this client. */
  bare?: boolean;
}

/** Settings that keep HTTP tests fast: cheap argon2. */
export const FAST_ENV = { GATEHOUSE_ARGON2_MEMORY_KIB: '1024', GATEHOUSE_ARGON2_ITERATIONS: '1' };

export function startServer(env: Record<string, string> = {}): Promise<TestServer> {
  return startTestServer({ ...FAST_ENV, ...env });
}

export class Client {
  readonly cookies = new Map<string, string>();
  bearer: string | null = null;
  constructor(readonly base: string) {}

  get sessionCookie(): string | undefined {
    return this.cookies.get('gatehouse_session');
  }

  async req<T = any>(method: string, path: string, options: ReqOptions = {}): Promise<Res<T>> {
    const headers: Record<string, string> = { ...(options.headers ?? {}) };
    if (!options.bare) {
      if (this.cookies.size && !headers.cookie) headers.cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
      if (this.bearer && !headers.authorization) headers.authorization = `Bearer ${this.bearer}`;
    }
    let body: string | Buffer | undefined;
    if (options.raw !== undefined) {
      body = options.raw;
      headers['content-type'] ??= options.contentType ?? 'application/json';
    } else if (options.json !== undefined) {
      body = JSON.stringify(options.json);
      headers['content-type'] ??= 'application/json';
    }
    const res = await request(this.base + path, { method: method as 'GET', headers, body });
    const text = await res.body.text();
    const raw = res.headers['set-cookie'];
    const setCookies = raw === undefined ? [] : Array.isArray(raw) ? raw : [raw];
    for (const line of setCookies) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq).trim();
      const value = pair!.slice(eq + 1).trim();
      const expired =
        value === '' ||
        attrs.some((a) => /^\s*max-age=0\s*$/i.test(a)) ||
        attrs.some((a) => /^\s*expires=/i.test(a) && Date.parse(a.split('=')[1]!) < Date.now());
      if (expired) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    let parsed: unknown = text;
    try {
      parsed = text === '' ? null : JSON.parse(text);
    } catch {
      /* not JSON */
    }
    return { status: res.statusCode, body: parsed as T, headers: res.headers, setCookies };
  }

  get<T = any>(path: string, options?: ReqOptions) {
    return this.req<T>('GET', path, options);
  }
  post<T = any>(path: string, json?: unknown, options: ReqOptions = {}) {
    return this.req<T>('POST', path, { json, ...options });
  }
  delete<T = any>(path: string, options?: ReqOptions) {
    return this.req<T>('DELETE', path, options);
  }
}

export function uniqueEmail(tag = 'u'): string {
  return `${tag}-${crypto.randomBytes(6).toString('hex')}@example.com`;
}

export const PASSWORD = 'violet-kettle-29-harbour';

export interface Account {
  email: string;
  password: string;
  /** A client holding a full session. */
  client: Client;
  userId: string;
}

export async function signup(base: string, options: { email?: string; password?: string } = {}): Promise<Account> {
  const email = options.email ?? uniqueEmail();
  const password = options.password ?? PASSWORD;
  const client = new Client(base);
  const res = await client.post('/api/auth/signup', { email, password });
  if (res.status !== 201) throw new Error(`signup failed: ${res.status} ${JSON.stringify(res.body)}`);
  return { email, password, client, userId: res.body.user.id };
}

export interface MfaAccount extends Account {
  secret: string;
  factorId: string;
  recoveryCodes: string[];
}

/**
 * Signs up and enrols TOTP. The confirming code is the *previous* step's (within drift),
 * so the current and next steps remain usable for two further TOTP verifications.
 */
export async function signupWithTotp(base: string, options: { email?: string; password?: string } = {}): Promise<MfaAccount> {
  const account = await signup(base, options);
  const setup = await account.client.post('/api/mfa/totp/setup');
  if (setup.status !== 200) throw new Error(`setup failed: ${setup.status} ${JSON.stringify(setup.body)}`);
  const confirm = await account.client.post('/api/mfa/totp/confirm', { code: totpCodeAt(setup.body.secret, Date.now() - 30_000) });
  if (confirm.status !== 200) throw new Error(`confirm failed: ${confirm.status} ${JSON.stringify(confirm.body)}`);
  return { ...account, secret: setup.body.secret, factorId: setup.body.factorId, recoveryCodes: confirm.body.recoveryCodes };
}

/** A new client that has logged in with the password (pending when the account has a factor). */
export async function login(base: string, account: { email: string; password: string }, extra: Record<string, unknown> = {}) {
  const client = new Client(base);
  const res = await client.post('/api/auth/login', { email: account.email, password: account.password, ...extra });
  if (extra.transport === 'token' && res.body?.sessionToken) client.bearer = res.body.sessionToken;
  return { client, res };
}

/** Logs in and completes the second factor with a recovery code; returns a full client. */
export async function loginFull(base: string, account: MfaAccount): Promise<Client> {
  const { client } = await login(base, account);
  const code = account.recoveryCodes.pop();
  if (!code) throw new Error('out of recovery codes');
  const res = await client.post('/api/auth/mfa/verify', { method: 'recovery_code', code });
  if (res.status !== 200) throw new Error(`verify failed: ${res.status} ${JSON.stringify(res.body)}`);
  return client;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
