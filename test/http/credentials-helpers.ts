/**
 * Helpers for the remember-me, trusted-device and password-change tests: a cookie-jar
 * browser, account set-up (signup, TOTP enrolment) and TOTP codes at distinct steps.
 */
import crypto from 'node:crypto';
import { totpCodeAt } from '../../src/services/totp.js';

export const FAST_ENV = { GATEHOUSE_ARGON2_MEMORY_KIB: '64', GATEHOUSE_ARGON2_ITERATIONS: '1' };
export const PASSWORD = 'violet tractor umbrella 93';

export interface Reply {
  status: number;
  body: any;
  setCookies: string[];
}

export const email = (label: string) => `${label}-${crypto.randomBytes(5).toString('hex')}@example.test`;

/** One browser: a cookie jar that honours Set-Cookie, including deletions. */
export class Browser {
  cookies = new Map<string, string>();
  constructor(readonly base: string) {}

  /** A fresh browser holding only the named cookies of this one. */
  only(...names: string[]): Browser {
    const b = new Browser(this.base);
    for (const n of names) if (this.cookies.has(n)) b.cookies.set(n, this.cookies.get(n)!);
    return b;
  }

  async req(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Reply> {
    const h: Record<string, string> = { ...headers };
    if (body !== undefined) h['content-type'] = 'application/json';
    if (this.cookies.size) h.cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    const res = await fetch(this.base + path, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
    const setCookies = res.headers.getSetCookie();
    for (const line of setCookies) {
      const [pair] = line.split(';');
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq).trim();
      const value = pair!.slice(eq + 1).trim();
      if (value === '' || /max-age=0|expires=thu, 01 jan 1970/i.test(line)) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null, setCookies };
  }
  get(path: string) {
    return this.req('GET', path);
  }
  post(path: string, body?: unknown) {
    return this.req('POST', path, body);
  }
  delete(path: string) {
    return this.req('DELETE', path);
  }
}

/**
 * TOTP codes at distinct steps: a step's code is single-use, and so is every earlier
 * step, so hand them out oldest first (previous step, current, next).
 */
export class TotpClock {
  private offset = -1;
  constructor(readonly secret: string) {}
  next(): string {
    if (this.offset > 1) throw new Error('out of TOTP steps within the drift window: use recovery codes');
    return totpCodeAt(this.secret, Date.now() + this.offset++ * 30_000);
  }
}

export interface Account {
  email: string;
  browser: Browser;
  totp?: TotpClock;
  recoveryCodes: string[];
}

export async function signup(base: string, label: string): Promise<Account> {
  const browser = new Browser(base);
  const address = email(label);
  const r = await browser.post('/api/auth/signup', { email: address, password: PASSWORD });
  if (r.status !== 201) throw new Error(`signup: ${r.status} ${JSON.stringify(r.body)}`);
  return { email: address, browser, recoveryCodes: [] };
}

/** Signup plus a confirmed TOTP factor (the signup session is fresh by its password). */
export async function signupWithTotp(base: string, label: string): Promise<Account & { totp: TotpClock }> {
  const account = await signup(base, label);
  const setup = await account.browser.post('/api/mfa/totp/setup');
  if (setup.status !== 200) throw new Error(`setup: ${setup.status} ${JSON.stringify(setup.body)}`);
  const totp = new TotpClock(setup.body.secret);
  const confirm = await account.browser.post('/api/mfa/totp/confirm', { code: totp.next() });
  if (confirm.status !== 200) throw new Error(`confirm: ${confirm.status} ${JSON.stringify(confirm.body)}`);
  return { ...account, totp, recoveryCodes: [...confirm.body.recoveryCodes] };
}

export function cookieNamed(setCookies: string[], name: string): string | undefined {
  return setCookies.find((c) => c.startsWith(`${name}=`));
}
