/**
 * Accounts for HTTP tests: unique e-mails, signup, signup with a confirmed TOTP factor,
 * and logins (pending or completed with a recovery code).
 */
import crypto from 'node:crypto';
import { Client } from './http-client.js';
import { TotpClock, totpAt } from './totp.js';

export const PASSWORD = 'violet-kettle-29-harbour';

export function uniqueEmail(label = 'u'): string {
  return `${label}-${crypto.randomBytes(6).toString('hex')}@example.test`;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface SignupOptions {
  email?: string;
  password?: string;
  /** Headers the account's client sends with every request (e.g. X-Forwarded-For). */
  headers?: Record<string, string>;
  /** `token`: the session comes as a bearer token, which the client then sends. */
  transport?: 'cookie' | 'token';
}

export interface Account {
  email: string;
  password: string;
  /** A client holding a full session. */
  client: Client;
  userId: string;
  /** The signup's outcome: `authenticated`, or `enrollment_required` when a factor is required first. */
  status: string;
}

export async function signup(base: string, options: SignupOptions = {}): Promise<Account> {
  const email = options.email ?? uniqueEmail();
  const password = options.password ?? PASSWORD;
  const client = new Client(base, options.headers);
  const res = await client.post(
    '/api/auth/signup',
    options.transport ? { email, password, transport: options.transport } : { email, password },
  );
  if (res.status !== 201) throw new Error(`signup failed: ${res.status} ${res.text}`);
  if (options.transport === 'token') client.bearer = res.body.sessionToken;
  return { email, password, client, userId: res.body.user.id, status: res.body.status };
}

export interface MfaAccount extends Account {
  secret: string;
  factorId: string;
  recoveryCodes: string[];
  /** Codes at the steps after the confirming one, oldest first. */
  totp: TotpClock;
}

/**
 * Signs up and enrols TOTP (the signup session is fresh by its password). The confirming
 * code is by default the *previous* step's (within drift), so the current and next steps
 * remain usable for two further TOTP verifications; `confirmStep: 0` confirms with the
 * current step's.
 */
export async function signupWithTotp(base: string, options: SignupOptions & { confirmStep?: number } = {}): Promise<MfaAccount> {
  const account = await signup(base, options);
  const setup = await account.client.post('/api/mfa/totp/setup');
  if (setup.status !== 200) throw new Error(`setup failed: ${setup.status} ${setup.text}`);
  const step = options.confirmStep ?? -1;
  // A step boundary between computing the code and the server checking it would move the
  // drift window past the previous step: start clear of one.
  const leftInStep = 30_000 - (Date.now() % 30_000);
  if (leftInStep < 1_500) await sleep(leftInStep + 50);
  const confirm = await account.client.post('/api/mfa/totp/confirm', { code: totpAt(setup.body.secret, step) });
  if (confirm.status !== 200) throw new Error(`confirm failed: ${confirm.status} ${confirm.text}`);
  return {
    ...account,
    secret: setup.body.secret,
    factorId: setup.body.factorId,
    recoveryCodes: [...confirm.body.recoveryCodes],
    totp: new TotpClock(setup.body.secret, step + 1),
  };
}

/** A new client that has logged in with the password (pending when the account has a factor). */
export async function login(base: string, account: { email: string; password: string }, extra: Record<string, unknown> = {}) {
  const client = new Client(base);
  const res = await client.post('/api/auth/login', { email: account.email, password: account.password, ...extra });
  if (extra.transport === 'token' && res.body?.sessionToken) client.bearer = res.body.sessionToken;
  return { client, res };
}

/** A fresh pending session (password verified, second factor outstanding). */
export async function loginPending(base: string, email: string, headers: Record<string, string> = {}): Promise<Client> {
  const client = new Client(base, headers);
  const res = await client.post('/api/auth/login', { email, password: PASSWORD });
  if (res.status !== 202) throw new Error(`login ${res.status} ${res.text}`);
  return client;
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
