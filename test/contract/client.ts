/**
 * Outside conformance suite: a small HTTP client with a cookie jar, an RFC 6238 TOTP
 * implementation, and an SMTP catcher. Written from the HTTP contract only; imports no
 * Gatehouse code (servers are started through test/helpers/server.ts).
 */
import crypto from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { SMTPServer } from 'smtp-server';
import { expect } from 'vitest';

/** Cheap argon2 so the suite stays fast (contract variables). */
export const FAST: Record<string, string> = {
  GATEHOUSE_ARGON2_MEMORY_KIB: '1024',
  GATEHOUSE_ARGON2_ITERATIONS: '1',
};

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ---------------------------------------------------------------- cookies

export interface CookieEntry {
  name: string;
  value: string;
  attrs: Record<string, string | true>;
  raw: string;
}

export function parseSetCookie(raw: string): CookieEntry {
  const parts = raw.split(';').map((s) => s.trim());
  const nv = parts[0] ?? '';
  const eq = nv.indexOf('=');
  const name = eq < 0 ? nv : nv.slice(0, eq);
  const value = eq < 0 ? '' : nv.slice(eq + 1);
  const attrs: Record<string, string | true> = {};
  for (const a of parts.slice(1)) {
    if (!a) continue;
    const i = a.indexOf('=');
    if (i < 0) attrs[a.toLowerCase()] = true;
    else attrs[a.slice(0, i).toLowerCase()] = a.slice(i + 1);
  }
  return { name, value, attrs, raw };
}

/** Seconds the cookie lives, from Max-Age or Expires (Infinity for a browser-session cookie). */
export function cookieLifetime(c: CookieEntry): number {
  const ma = c.attrs['max-age'];
  if (typeof ma === 'string') return Number(ma);
  const ex = c.attrs['expires'];
  if (typeof ex === 'string') return (Date.parse(ex) - Date.now()) / 1000;
  return Infinity;
}

export class Jar {
  map = new Map<string, CookieEntry>();
  absorb(setCookies: string[]): void {
    for (const raw of setCookies) {
      const c = parseSetCookie(raw);
      if (c.value === '' || cookieLifetime(c) <= 0) this.map.delete(c.name);
      else this.map.set(c.name, c);
    }
  }
  header(): string | undefined {
    if (this.map.size === 0) return undefined;
    return [...this.map.values()].map((c) => `${c.name}=${c.value}`).join('; ');
  }
  get(name: string): string | undefined {
    return this.map.get(name)?.value;
  }
  set(name: string, value: string): void {
    this.map.set(name, { name, value, attrs: {}, raw: `${name}=${value}` });
  }
  delete(name: string): void {
    this.map.delete(name);
  }
  names(): string[] {
    return [...this.map.keys()];
  }
  snapshot(): Map<string, string> {
    return new Map([...this.map.values()].map((c) => [c.name, c.value]));
  }
}

// ---------------------------------------------------------------- HTTP

export interface Res {
  status: number;
  body: any;
  text: string;
  headers: Record<string, string | string[] | undefined>;
  setCookies: string[];
}

export interface ReqOpts {
  headers?: Record<string, string>;
  /** raw request body (sent as-is, content-type application/json unless given) */
  raw?: string | Buffer;
  bearer?: string | null;
  /** do not send the jar's cookies */
  noCookies?: boolean;
  /** do not store Set-Cookie into the jar */
  noStore?: boolean;
}

export class Client {
  jar = new Jar();
  bearer: string | undefined;
  headers: Record<string, string> = {};
  constructor(public base: string) {}

  async req(method: string, path: string, body?: unknown, opts: ReqOpts = {}): Promise<Res> {
    const headers: Record<string, string> = { ...this.headers, ...(opts.headers ?? {}) };
    let payload: string | Buffer | undefined;
    if (opts.raw !== undefined) {
      payload = opts.raw;
      if (!Object.keys(headers).some((k) => k.toLowerCase() === 'content-type')) headers['content-type'] = 'application/json';
    } else if (body !== undefined) {
      payload = JSON.stringify(body);
      headers['content-type'] = 'application/json';
    }
    const bearer = opts.bearer === null ? undefined : (opts.bearer ?? this.bearer);
    if (bearer) headers['authorization'] = `Bearer ${bearer}`;
    if (!opts.noCookies) {
      const c = this.jar.header();
      if (c) headers['cookie'] = c;
    }
    const r = await request(this.base + path, { method: method as any, headers, body: payload });
    const text = await r.body.text();
    let parsed: any;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = text;
    }
    const sc = r.headers['set-cookie'];
    const setCookies = sc === undefined ? [] : Array.isArray(sc) ? sc : [sc];
    if (!opts.noStore) this.jar.absorb(setCookies);
    return { status: r.statusCode, body: parsed, text, headers: r.headers as any, setCookies };
  }
  get(path: string, opts?: ReqOpts) {
    return this.req('GET', path, undefined, opts);
  }
  post(path: string, body?: unknown, opts?: ReqOpts) {
    return this.req('POST', path, body, opts);
  }
  del(path: string, opts?: ReqOpts) {
    return this.req('DELETE', path, undefined, opts);
  }
  /** A new client holding a copy of this one's cookies and bearer. */
  clone(): Client {
    const c = new Client(this.base);
    for (const [k, v] of this.jar.map) c.jar.map.set(k, { ...v });
    c.bearer = this.bearer;
    c.headers = { ...this.headers };
    return c;
  }
}

/** Asserts the contract's error shape. */
export function expectError(res: Res, status: number, code: string): void {
  expect({ status: res.status, error: res.body?.error, body: res.body }).toMatchObject({ status, error: code });
  expect(typeof res.body.message).toBe('string');
  if (status === 429) {
    expect(typeof res.body.retryAfter).toBe('number');
    expect(res.body.retryAfter).toBeGreaterThan(0);
    const ra = res.headers['retry-after'];
    expect(ra).toBeDefined();
    expect(Number(ra)).toBeGreaterThan(0);
  }
}

export function expectIso(v: unknown): void {
  expect(typeof v).toBe('string');
  expect(Number.isNaN(Date.parse(v as string))).toBe(false);
  expect(v as string).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}/);
}

// ---------------------------------------------------------------- TOTP (RFC 4226 / 6238)

const B32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
export function base32Decode(s: string): Buffer {
  const clean = s.toUpperCase().replace(/[=\s-]/g, '');
  let bits = 0;
  let value = 0;
  const out: number[] = [];
  for (const ch of clean) {
    const idx = B32.indexOf(ch);
    if (idx < 0) throw new Error(`bad base32 char ${ch}`);
    value = (value << 5) | idx;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

export function hotp(key: Buffer, counter: number): string {
  const buf = Buffer.alloc(8);
  buf.writeBigUInt64BE(BigInt(counter));
  const mac = crypto.createHmac('sha1', key).update(buf).digest();
  const off = mac[mac.length - 1]! & 0x0f;
  const bin = ((mac[off]! & 0x7f) << 24) | (mac[off + 1]! << 16) | (mac[off + 2]! << 8) | mac[off + 3]!;
  return String(bin % 1_000_000).padStart(6, '0');
}

export const currentStep = (ms = Date.now()) => Math.floor(ms / 1000 / 30);

export class Totp {
  last = -Infinity;
  key: Buffer;
  constructor(public secret: string) {
    this.key = base32Decode(secret);
  }
  at(step: number): string {
    return hotp(this.key, step);
  }
  /** A code of a step not used yet and inside the server's one-step drift window, or null. */
  nextOrNull(): string | null {
    const now = Date.now() / 1000;
    const cur = Math.floor(now / 30);
    const into = now - cur * 30;
    const s = Math.max(this.last + 1, into < 24 ? cur - 1 : cur);
    if (s > cur + 1 || (s === cur + 1 && into < 1)) return null;
    this.last = s;
    return this.at(s);
  }
  next(): string {
    const c = this.nextOrNull();
    if (c === null) throw new Error('no unused TOTP step available within drift');
    return c;
  }
  /** A code that is certainly wrong for any step in the window. */
  wrong(): string {
    const cur = currentStep();
    const near = new Set([-2, -1, 0, 1, 2].map((d) => this.at(cur + d)));
    for (let i = 0; ; i++) {
      const c = String((123456 + i * 7919) % 1_000_000).padStart(6, '0');
      if (!near.has(c)) return c;
    }
  }
}

// ---------------------------------------------------------------- SMTP catcher

export interface Mail {
  from: string;
  to: string[];
  raw: string;
  headers: Record<string, string>;
  event: string | undefined;
  text: string;
  tokens: string[];
}

function parseMail(raw: string, from: string, to: string[]): Mail {
  const split = raw.search(/\r?\n\r?\n/);
  const head = split < 0 ? raw : raw.slice(0, split);
  const unfolded = head.replace(/\r?\n[ \t]+/g, ' ');
  const headers: Record<string, string> = {};
  for (const line of unfolded.split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  let text = raw;
  if (/content-transfer-encoding:\s*quoted-printable/i.test(raw)) {
    text = raw.replace(/=\r?\n/g, '').replace(/=([0-9A-Fa-f]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16)));
  }
  const b64 = /content-transfer-encoding:\s*base64[^\n]*\n(?:[^\r\n]+\r?\n)*\r?\n([A-Za-z0-9+/=\r\n]+)/gi;
  for (const m of raw.matchAll(b64)) text += '\n' + Buffer.from(m[1]!.replace(/\s/g, ''), 'base64').toString('utf8');
  text = text.replace(/&amp;/g, '&');
  const tokens = [...new Set([...text.matchAll(/token=([A-Za-z0-9_\-.~%]+)/g)].map((m) => decodeURIComponent(m[1]!)))];
  return { from, to, raw, headers, event: headers['x-gatehouse-event'], text, tokens };
}

export interface MailCatcher {
  port: number;
  url: string;
  mails: Mail[];
  waitFor(pred: (m: Mail) => boolean, timeoutMs?: number): Promise<Mail>;
  to(addr: string): Mail[];
  close(): Promise<void>;
}

export async function startMailCatcher(): Promise<MailCatcher> {
  const mails: Mail[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['AUTH', 'STARTTLS'],
    logger: false,
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const from = session.envelope.mailFrom ? session.envelope.mailFrom.address : '';
        const to = session.envelope.rcptTo.map((a) => a.address);
        mails.push(parseMail(Buffer.concat(chunks).toString('utf8'), from, to));
        cb();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.server.address() as AddressInfo).port;
  return {
    port,
    url: `smtp://127.0.0.1:${port}`,
    mails,
    to: (addr) => mails.filter((m) => m.to.includes(addr)),
    async waitFor(pred, timeoutMs = 5000) {
      const end = Date.now() + timeoutMs;
      for (;;) {
        const m = mails.find(pred);
        if (m) return m;
        if (Date.now() > end) throw new Error('mail not received in time');
        await sleep(25);
      }
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

// ---------------------------------------------------------------- flows

export function uniqueEmail(tag = 'u'): string {
  return `${tag}-${crypto.randomBytes(5).toString('hex')}@example.test`;
}
export function strongPassword(): string {
  return `Gh!${crypto.randomBytes(9).toString('base64url')}x9`;
}

export interface User {
  id: string;
  email: string;
  password: string;
  client: Client;
}

export async function signup(base: string, tag = 'u', email = uniqueEmail(tag)): Promise<User> {
  const client = new Client(base);
  const password = strongPassword();
  const r = await client.post('/api/auth/signup', { email, password });
  expect(r.status, r.text).toBe(201);
  return { id: r.body.user.id, email: r.body.user.email, password, client };
}

export interface MfaUser extends User {
  totp: Totp;
  factorId: string;
  recovery: string[];
}

/** Enrols TOTP for the user's (fresh) session. */
export async function enrolTotp(user: User): Promise<MfaUser> {
  const s = await user.client.post('/api/mfa/totp/setup');
  expect(s.status, s.text).toBe(200);
  const totp = new Totp(s.body.secret);
  const c = await user.client.post('/api/mfa/totp/confirm', { code: totp.next() });
  expect(c.status, c.text).toBe(200);
  return { ...user, totp, factorId: s.body.factorId, recovery: [...c.body.recoveryCodes] };
}

export async function mfaUser(base: string, tag = 'm'): Promise<MfaUser> {
  return enrolTotp(await signup(base, tag));
}

export function takeRecovery(u: MfaUser): string {
  const c = u.recovery.shift();
  if (!c) throw new Error('out of recovery codes');
  return c;
}

export async function login(
  base: string,
  u: { email: string; password: string },
  extra: Record<string, unknown> = {},
  client = new Client(base),
) {
  const res = await client.post('/api/auth/login', { email: u.email, password: u.password, ...extra });
  return { client, res };
}

/** Password + recovery code: a full aal2 session on a new client. */
export async function loginFull(base: string, u: MfaUser, extra: Record<string, unknown> = {}, client = new Client(base)): Promise<Client> {
  const { res } = await login(base, u, extra, client);
  expect(res.status, res.text).toBe(202);
  const v = await client.post('/api/auth/mfa/verify', { method: 'recovery_code', code: takeRecovery(u) });
  expect(v.status, v.text).toBe(200);
  return client;
}
