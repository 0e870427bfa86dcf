// Provisioning: creates the test accounts an audit needs (the audited one and a second one
// for otp-cross-account) by running the profile's `accountSetup` steps, e.g. sign-up, TOTP
// set-up and confirmation, as any client would. Opt-in (`provision: true` / `--provision`),
// for test deployments only: it leaves accounts behind.
import { CodeSupply } from './factors.js';
import { AuditContext } from './context.js';
import type { HttpClient } from './http-client.js';
import { describeMatcher, fillTemplate, getPath, succeeded } from './matchers.js';
import type { SecretRegistry } from './mask.js';
import type { Account, AccountSetup, Profile } from './profile.js';
import { Inconclusive } from './inconclusive.js';
import { createPasskey } from './passkey.js';

const STEP_MS = 30_000;

export interface Provisioned {
  account: Account;
  /** The TOTP time step its enrolment used, if any: the audit must not use it again. */
  usedTotpStep: number | undefined;
}

/** Creates accounts until the profile has `accountSetup.count` of them (appended to `profile.accounts`). */
export async function provisionAccounts(profile: Profile, http: HttpClient, secrets: SecretRegistry): Promise<Provisioned[]> {
  const setup = profile.accountSetup;
  if (!profile.provision || !setup) return [];
  const made: Provisioned[] = [];
  while (profile.accounts.length < setup.count) {
    const created = await createAccount(profile, setup, http, secrets, profile.accounts.length + 1);
    profile.accounts.push(created.account);
    made.push(created);
  }
  return made;
}

async function createAccount(
  profile: Profile,
  setup: AccountSetup,
  http: HttpClient,
  secrets: SecretRegistry,
  n: number,
): Promise<Provisioned> {
  const nonce = () => Math.random().toString(36).slice(2, 10);
  const base = { nonce: nonce() };
  const username = fillTemplate(setup.username, base);
  const account: Account = {
    username,
    email: setup.email ? fillTemplate(setup.email, { ...base, username }) : username,
    password: fillTemplate(setup.password, { nonce: nonce() }),
    recoveryCodes: [],
  };
  secrets.add(account.password);
  // A context of its own: the new account is "the" account of its steps' placeholders.
  const ctx = new AuditContext({ ...profile, accounts: [account] }, http, secrets);
  const session = ctx.newSession();
  let usedTotpStep: number | undefined;
  let passkeyOptions: unknown;
  for (const [i, step] of setup.steps.entries()) {
    const what = `accountSetup.steps.${i} (${step.method} ${step.path}) for account ${n}`;
    let body = step.body === undefined ? undefined : structuredClone(step.body);
    if (JSON.stringify(body ?? {}).includes('"{passkeyCredential}"')) {
      if (passkeyOptions === undefined) throw new Inconclusive(`${what} uses {passkeyCredential}, but no earlier step has passkeyOptions`);
      try {
        const made = createPasskey(passkeyOptions, http.origin);
        account.passkey = made.credential;
        body = replaceValue(body!, '{passkeyCredential}', made.response);
      } catch (err) {
        throw new Inconclusive(`${what}: the software passkey cannot register: ${(err as Error).message}`);
      }
    }
    const send = (vars: Record<string, string>) =>
      ctx.sendStep(
        step,
        {
          method: step.method,
          path: step.path,
          encoding: step.encoding,
          body: body === undefined ? undefined : structuredClone(body),
          headers: step.headers,
          note: `provision account ${n}: step ${i + 1}`,
        },
        session,
        { takeToken: true, vars },
      );
    const text = JSON.stringify([step.path, step.body, step.query, step.headers]);
    let res;
    if (text.includes('{totp}')) {
      const secret = session.vars.get('totpSecret');
      if (!secret) throw new Inconclusive(`${what} uses {totp}, but no earlier step captured totpSecret`);
      // The previous step's code first (targets accept a step of drift), so the current
      // step stays unused for the audit; the current one if the target refuses that.
      const now = Date.now();
      usedTotpStep = Math.floor(now / STEP_MS) - 1;
      res = await send({ totp: new CodeSupply(secret, [], 0, () => now - STEP_MS).peekTotp() });
      if (!succeeded(res, step.expect)) {
        usedTotpStep = Math.floor(Date.now() / STEP_MS);
        res = await send({ totp: new CodeSupply(secret, [], 0).peekTotp() });
      }
    } else {
      res = await send({});
    }
    if (!succeeded(res, step.expect)) {
      throw new Inconclusive(
        `${what} answered ${res.status}, not ${step.expect ? describeMatcher(step.expect) : 'a 2xx status'}: ${res.text.slice(0, 200)}`,
      );
    }
    if (step.passkeyOptions !== undefined) {
      passkeyOptions = step.passkeyOptions === true ? res.json : getPath(res.json, step.passkeyOptions);
      if (!passkeyOptions) throw new Inconclusive(`${what}: its reply has no passkey creation options`);
    }
    if (step.recoveryCodes !== undefined) {
      const codes = getPath(res.json, step.recoveryCodes);
      if (!Array.isArray(codes) || !codes.every((c) => typeof c === 'string'))
        throw new Inconclusive(`${what}: its reply has no list of recovery codes in ${step.recoveryCodes}`);
      account.recoveryCodes = codes as string[];
      secrets.add(...account.recoveryCodes);
    }
  }
  const secret = session.vars.get('totpSecret');
  if (secret) account.totpSecret = secret.replace(/[\s-]/g, '').toUpperCase();
  if (!account.totpSecret && !account.recoveryCodes.length && !account.passkey) {
    throw new Inconclusive(
      'accountSetup ran, but no step captured totpSecret or recoveryCodes or registered a passkey: the new account has no second factor',
    );
  }
  return { account, usedTotpStep };
}

/** `body` with every string equal to `marker` replaced by `value` (a structured value, e.g. a passkey's response). */
function replaceValue(body: Record<string, unknown>, marker: string, value: unknown): Record<string, unknown> {
  const walk = (v: unknown): unknown =>
    v === marker
      ? value
      : Array.isArray(v)
        ? v.map(walk)
        : v && typeof v === 'object'
          ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]))
          : v;
  return walk(body) as Record<string, unknown>;
}
