/**
 * The model of the model-based bypass search (issues 9 and 17): what Gatehouse's accounts,
 * sessions and credentials *should* be after each observed answer, following contract v1.1.
 *
 * The model does not predict status codes. `judge(state, action, obs)` decides whether an
 * observed answer is *admissible* in a state and, if so, what the state is afterwards:
 * refusals (4xx) are admissible almost everywhere and change nothing, successes are
 * admissible only when the contract allows them (freshness, confirmed factors, single use,
 * ownership of setups, revocation). So the same model runs against today's main and the
 * lifecycle fix, and a violation is an answer no correct server could give:
 * "this succeeded although…". Concurrent pairs are judged as linearizability: some serial
 * order of the two must admit both answers (see `judgePair`); probes (`judgeProbe`) check
 * read-only observations (session state, password-only login, factor list) the same way.
 *
 * Covered: accounts (password, e-mail), TOTP and passkey factors, recovery codes, sessions
 * (pending, enrolling, full; cookie and token transport; instance), unconfirmed setups
 * (owner session, start time, voided by account changes, by whom: `I3-void:factor-other`
 * is issue 9 defect 1 / issue 17.1), remember-me chains (issue 18: browsers holding
 * cookies, login and logout presenting them, restores, copies to other browsers, replays
 * of any token of any account, parallel restores with one token; per chain its tokens —
 * live, used, revoked with a reason — the sessions it produced and its flag; invariants:
 * once flagged every session it produced answers 401 and none of its tokens restores, a
 * token restores at most once, a restored session of an account with a factor is pending),
 * replaced session tokens (each probed once on every instance: it opens no protected route,
 * `I5-replaced`; a logout carrying it within 60 s ends the session, `logoutReplaced`),
 * trusted devices, API tokens, reset and e-mail-change tokens, the clock (step-up window,
 * pending TTL, setup TTL, TOTP steps), and ★ freshness judged against the factors the
 * account has when the action takes effect. OIDC sign-ins and refreshes (O-rules).
 * Federated login (docs/security.md F1–F4): upstream identities (`MIdentity`: the account
 * whose address each carries, the account it is linked to) and pending links (`MLink`);
 * rules `F1` / `F1-state` (an upstream sign-in opens a pending session when the account
 * has a second factor, full only with the upstream's trusted MFA), `F1-protected-route`
 * (such a session is refused while pending), F2 (it is never fresh: `upstreamAt` is no
 * password or factor time), `F3-unlinked` / `F3-account` / `F3-link-*` (an identity not
 * linked opens nothing; a link is confirmed only by a full, fresh session of the account
 * it names, within 10 minutes, once), `F4-*` (unlinking is ★, own links only, and an
 * unlinked identity opens nothing), `P3-upstream`.
 * Not covered: wrong codes and guessing limits (other suites hold those), idle/absolute
 * session lifetimes (the search runs with long ones), the HTML pages, scopes of API tokens
 * beyond "a token never performs ★", WebAuthn challenge TTLs, notifications and mails
 * about replays, remember-me expiry (30 days), F5 (upstream flow binding) and F6 (accounts
 * created from an upstream), a remember-me cookie sent alongside a live
 * session (`screenStale`: session requests never carry it here), the account-lock of
 * PostgreSQL under more than two instances.
 *
 * `ModelState.tolerate` (long runs only): rule prefixes of known defects that are noted
 * and passed over, so a search on a server with known defects can reach the next one. */
import type { MfaPolicy } from '../../src/core/session-state.js';

/** How long a replaced session token still ends its session at logout (docs/security.md, I5). */
const REPLACED_TOKEN_LOGOUT_MS = 60_000;

export type FactorKind = 'totp' | 'webauthn';

export const STEP_MS = 30_000;
/** Contract v1.1: an unconfirmed setup lives at most 10 minutes. */
export const SETUP_TTL_MS = 10 * 60_000;
export const RESET_TTL_MS = 30 * 60_000;

export interface MFactor {
  key: string;
  kind: FactorKind;
  serverId: string;
  secret?: string;
  /** The driver's authenticator for a passkey. */
  auth?: number;
  /** Last TOTP step accepted (single use: that step and every earlier one are spent). */
  lastStep: number;
}

export interface MSetup {
  kind: FactorKind;
  /** TOTP secret, or the registration options (JSON) for a passkey. */
  secret?: string;
  options?: unknown;
  auth?: number;
  /** The factor id the server gave at setup (TOTP). */
  serverId?: string;
  startedAt: number;
  /** Why it no longer may be confirmed (factor change, password change, …), if so. */
  voidBy: string | null;
}

export interface MSession {
  id: number;
  account: number;
  instance: number;
  transport: 'cookie' | 'token';
  state: 'pending' | 'enrolling' | 'full' | 'revoked';
  revokedBy?: string;
  createdAt: number;
  passwordAt: number | null;
  mfaAt: number | null;
  trusted: boolean;
  remember: boolean;
  /** The remember-me token the browser of this session holds (cookie), if any. */
  cookie: string | null;
  setups: Partial<Record<FactorKind, MSetup>>;
  /** Opened by an upstream sign-in (federated login) at this time: a first factor, never fresh (F1, F2). */
  upstreamAt?: number;
  /** That sign-in asserted the upstream's trusted MFA (configured amr): full, aal 2, still never fresh. */
  upstreamMfa?: boolean;
}

/**
 * An identity at the search's upstream OpenID Provider (federated login): `owner` is the
 * account whose e-mail address it carries (verified), `linkedTo` the account it signs in
 * to, if linked (F3), and what unlinked it last (F4).
 */
export interface MIdentity {
  sub: string;
  owner: number;
  linkedTo: number | null;
  unlinkedBy?: string;
}

/** A pending link (F3): an unlinked identity's sign-in, waiting for a full, fresh session of `target`. */
export interface MLink {
  id: number;
  sub: string;
  target: number;
  createdAt: number;
  used: boolean;
}

/** A pending link lives 10 minutes (services/federation.ts FEDERATION_FLOW_TTL). */
export const LINK_TTL_MS = 600_000;

/**
 * A remember-me chain (issue 18): its tokens are in `ModelState.rtokens`. `sessions` are
 * the sessions it produced (issued to, or restored from it). Once any token of it that is
 * not live (rotated, or revoked for any reason) is presented to restore, log in or log out,
 * the chain is `flagged`: every session it produced answers 401 and no token of it restores.
 */
export interface MChain {
  id: number;
  account: number;
  sessions: number[];
  flagged: boolean;
}

/**
 * `used`: restored once (rotated); `revoked`: by logout, sign-out, a password change or
 * reset, a newer login with remember-me, or the chain's flag; `unsure`: a live token the
 * server refused for a reason the model does not know (no claim either way, but for the
 * chain's flag).
 */
export interface RToken {
  chain: number;
  state: 'live' | 'used' | 'revoked' | 'unsure';
  reason?: string;
}

export interface MToken {
  kind: 'reset' | 'email' | 'api' | 'recovery';
  token: string;
  createdAt: number;
  spent: string | null;
  newEmail?: string;
}

export interface MAccount {
  idx: number;
  email: string;
  password: string;
  factors: MFactor[];
  /** Recovery codes that must work (the set last handed out, minus used ones). */
  codes: string[];
  tokens: MToken[];
  /** Trusted devices (by driver device id): valid or not. */
  devices: Record<number, boolean>;
  /** An admin reset the factors and no factor was confirmed since: the password alone opens nothing (P3). */
  recoveryPending?: boolean;
}

/**
 * An OIDC grant a relying party holds (refresh token): the assurance its tokens carry,
 * and what revoked it (factor removal, password change or reset, an admin reset), if so.
 */
export interface MGrant {
  id: number;
  account: number;
  acr: string;
  /** auth_time (seconds) of its ID token. */
  authTime: number;
  revokedBy: string | null;
}

export interface ModelState {
  now: number;
  /** This run's prefix of upstream subjects (the upstream and the servers outlive a run). */
  tag: string;
  mfaRequired: MfaPolicy;
  stepUpMs: number;
  pendingMs: number;
  accounts: MAccount[];
  /** By model id (ids are shared with chains and factors, so they are sparse). */
  sessions: Record<number, MSession>;
  chains: Record<number, MChain>;
  grants: Record<number, MGrant>;
  /** Upstream identities seen, by subject. */
  identities: Record<string, MIdentity>;
  /** Pending links, by model id. */
  links: Record<number, MLink>;
  /** Every remember-me token value seen, by value. */
  rtokens: Record<string, RToken>;
  /**
   * Rule prefixes to tolerate (long runs on a server with known defects): a tolerated
   * violation is noted and the answer is taken as the server gave it, so the search goes on
   * to find what else is wrong. Empty in CI.
   */
  tolerate: string[];
  /** Tolerated violations seen (rule names), for the report. */
  tolerated: string[];
  /**
   * False: browsers keep no remember-me cookie, so nothing presents one (for servers older
   * than the remember-me theft detection of issue 18, where the lifecycle is the target).
   */
  rememberMe: boolean;
}

export type Cred = { kind: 'totp'; factor: string } | { kind: 'recovery'; code: string } | { kind: 'webauthn'; factor: string };

/** A resolved action (what the driver sends); ids are model ids. */
export type Action =
  | { t: 'signup'; acct: number; email: string; password: string; newSession: number; transport: 'cookie' | 'token'; instance: number }
  | {
      t: 'login';
      acct: number;
      password: string;
      transport: 'cookie' | 'token';
      remember: boolean;
      instance: number;
      device: number | null;
      newSession: number;
      newChain: number;
      from?: number | null;
    }
  | { t: 'verify'; s: number; cred: Cred; trustDevice: number | null; newChain: number }
  | { t: 'stepUp'; s: number; cred: Cred }
  | { t: 'reauth'; s: number; password: string }
  | { t: 'setup'; s: number; kind: FactorKind; auth?: number }
  | { t: 'confirm'; s: number; kind: FactorKind; owner: number; factorKey: string; newChain: number }
  | { t: 'deleteFactor'; s: number; factor: string }
  | { t: 'regenCodes'; s: number }
  | { t: 'deleteSession'; s: number; target: number }
  | { t: 'logout'; s: number }
  /** A logout carrying the session token this browser held before its last replacement (verify, step-up, reauth, confirm). */
  | { t: 'logoutReplaced'; s: number }
  | { t: 'changePassword'; s: number; current: string; next: string }
  /** The browser of `s` signs in to an OIDC relying party (code flow, PKCE); `none`: prompt=none; `acr2`: acr_values=aal2. */
  | { t: 'oidcSignIn'; s: number; none: boolean; acr2: boolean; newGrant: number }
  /** The relying party uses the refresh token of a grant. */
  | { t: 'oidcRefresh'; acct: number; grant: number; instance: number }
  /**
   * A new browser signs in through the upstream as identity `sub` carrying the e-mail of
   * account `acct` (verified); `mfa`: the upstream asserts its trusted MFA (amr `hwk`,
   * configured), an untrusted `mfa` claim, or a password only.
   */
  | {
      t: 'upstreamSignIn';
      acct: number;
      sub: string;
      mfa: 'trusted' | 'untrusted' | 'none';
      newSession: number;
      newLink: number;
      instance: number;
    }
  /** The browser of `s` (holding the pending link's cookie) confirms the pending link. */
  | { t: 'linkConfirm'; s: number; link: number }
  /** `s` removes the link of identity `sub` (★). */
  | { t: 'unlink'; s: number; sub: string }
  | { t: 'forgot'; acct: number }
  | { t: 'reset'; acct: number; token: number; next: string }
  | { t: 'changeEmail'; s: number; next: string }
  | { t: 'confirmEmail'; acct: number; token: number }
  | { t: 'createToken'; s: number }
  | { t: 'useToken'; acct: number; token: number }
  | { t: 'restore'; from: number | null; token: string; newSession: number; instance: number }
  | { t: 'restoreMany'; from: number; token: string; n: number; newSessions: number[]; instance: number }
  | { t: 'copyCookie'; from: number; to: number }
  | { t: 'advance'; ms: number }
  /** A fresh admin (made by the driver) resets the account's factors through the admin API (P3). */
  | { t: 'adminReset'; acct: number; instance: number }
  /** The owner uses a mailed recovery link with the password in force. */
  | { t: 'recover'; acct: number; token: number; newSession: number; instance: number };

/** What the driver observed: status, body, and material it fetched (mailed tokens, step). */
export interface Obs {
  status: number;
  body: any;
  /** For forgot / changeEmail: the mailed token, if one came. */
  mailed?: string | null;
  /** The TOTP step the driver computed its code for. */
  step?: number;
  /** The remember-me token the browser presented, and the one it holds afterwards. */
  presented?: string | null;
  cookie?: string | null;
  /** restoreMany: each request's answer. */
  many?: { status: number; body: any; cookie: string | null }[];
  /** oidcSignIn / oidcRefresh: where the flow ended and, with tokens, their ID token's assurance. */
  oidc?: { outcome: 'tokens' | 'error' | 'asked'; error?: string; where?: string; acr?: string; amr?: string[]; authTime?: number };
  /** upstreamSignIn: where the callback sent the browser, and the account of a full session it opened. */
  upstream?: { outcome: 'full' | 'pending' | 'enrolling' | 'link' | 'refused'; email?: string };
  /** logoutReplaced: when (server clock) the presented token was replaced; null: the session never had one replaced. */
  replacedAt?: number | null;
  /** For setup / confirm: the setup material the driver used. */
  material?: { secret?: string; options?: unknown; serverId?: string };
}

export interface Violation {
  rule: string;
  detail: string;
}

export type Judgement = { ok: true; next: ModelState } | { ok: false; violation: Violation };

const ok = (next: ModelState): Judgement => ({ ok: true, next });
const bad = (rule: string, detail: string): Judgement => ({ ok: false, violation: { rule, detail } });

/** A violation, unless `m` tolerates its rule: then null (the caller goes on), and it is noted. */
function unless(m: ModelState, rule: string, detail: string): Judgement | null {
  if (m.tolerate.some((t) => rule.startsWith(t))) {
    if (!m.tolerated.includes(rule)) m.tolerated.push(rule);
    return null;
  }
  return bad(rule, detail);
}

/**
 * I3-void, by what voided the set-up: `factor-other` (another session of the account
 * changed a factor: issue 9 defect 1, issue 17.1), `factor-own` (the session's own factor
 * change), `account` (password change, reset, e-mail change, logout, session delete).
 */
function voidRule(s: MSession, why: string): string {
  const by = /^a factor change by s(\d+)$/.exec(why);
  if (!by) return 'I3-void:account';
  return Number(by[1]) === s.id ? 'I3-void:factor-own' : 'I3-void:factor-other';
}

export function initialState(now: number, mfaRequired: MfaPolicy, stepUpSeconds: number, pendingSeconds: number): ModelState {
  return {
    now,
    tag: `r${Math.random().toString(36).slice(2, 10)}`,
    mfaRequired,
    stepUpMs: stepUpSeconds * 1000,
    pendingMs: pendingSeconds * 1000,
    accounts: [],
    sessions: {},
    chains: {},
    grants: {},
    identities: {},
    links: {},
    rtokens: {},
    tolerate: [],
    tolerated: [],
    rememberMe: true,
  };
}

export const clone = (m: ModelState): ModelState => structuredClone(m);
export const stepOf = (t: number) => Math.floor(t / STEP_MS);

export function live(m: ModelState, s: MSession): boolean {
  if (s.state === 'revoked') return false;
  if ((s.state === 'pending' || s.state === 'enrolling') && m.now - s.createdAt > m.pendingMs) return false;
  return true;
}

/** Contract: a fresh check of the strongest factor the account has (trusted devices never count). */
export function fresh(m: ModelState, s: MSession): boolean {
  if (!live(m, s) || s.state === 'pending') return false;
  const within = (t: number | null) => t !== null && m.now - t <= m.stepUpMs;
  if (m.accounts[s.account]!.factors.length > 0) return s.state === 'full' && within(s.mfaAt);
  return within(s.passwordAt) || within(s.mfaAt);
}

/** May verify a second factor: pending, or enrolling after the account gained a factor in another session. */
export const awaitsFactor = (m: ModelState, s: MSession) =>
  s.state === 'pending' || (s.state === 'enrolling' && m.accounts[s.account]!.factors.length > 0);

/** v1.1: adding a factor to an account that has one needs a fresh check of an existing factor. */
export const freshByFactor = (m: ModelState, s: MSession) =>
  s.state === 'full' && m.accounts[s.account]!.factors.length > 0 && s.mfaAt !== null && m.now - s.mfaAt <= m.stepUpMs;

function voidSetups(m: ModelState, acct: number, why: string, except?: number): void {
  for (const s of Object.values(m.sessions)) {
    if (s.account !== acct || s.id === except) continue;
    for (const setup of Object.values(s.setups)) if (setup && !setup.voidBy) setup.voidBy = why;
  }
}

/** Revokes a session; `endChains` (logout, sign-out) also ends the chains that produced it. */
function revokeSession(m: ModelState, s: MSession, why: string, endChains?: string): void {
  if (endChains) for (const c of Object.values(m.chains)) if (c.sessions.includes(s.id)) endChain(m, c, endChains);
  if (s.state === 'revoked') return;
  s.state = 'revoked';
  s.revokedBy = why;
  for (const setup of Object.values(s.setups)) if (setup && !setup.voidBy) setup.voidBy = why;
}

function endChain(m: ModelState, c: MChain, reason: string): void {
  for (const t of Object.values(m.rtokens))
    if (t.chain === c.id && (t.state === 'live' || t.state === 'unsure')) Object.assign(t, { state: 'revoked', reason });
}

/**
 * A token presented to restore, log in or log out: one that is not live flags its chain
 * (issue 18 invariant); returns the token's record when it is live and its chain is not flagged.
 */
function present(m: ModelState, token: string | null | undefined): RToken | null {
  const t = token ? m.rtokens[token] : undefined;
  if (!t) return null;
  const c = m.chains[t.chain]!;
  if (t.state === 'live' && !c.flagged) return t;
  if (t.state === 'unsure' && !c.flagged) return null;
  flagChain(m, c, t.state === 'used' ? 'a rotated token was presented' : `a token revoked by ${t.reason} was presented`);
  return null;
}

function flagChain(m: ModelState, c: MChain, why: string): void {
  c.flagged = true;
  endChain(m, c, 'flagged');
  for (const id of c.sessions) revokeSession(m, m.sessions[id]!, `remember-me chain c${c.id} flagged (${why})`);
}

/** The browser of `s` got `cookie` (a new value: a new chain, when the session asked for one). */
function takeCookie(m: ModelState, s: MSession, cookie: string | null | undefined, chainId: number): void {
  if (cookie === undefined || !m.rememberMe) return;
  s.cookie = cookie;
  if (!cookie || m.rtokens[cookie]) return;
  m.chains[chainId] = { id: chainId, account: s.account, sessions: [s.id], flagged: false };
  m.rtokens[cookie] = { chain: chainId, state: 'live' };
}

/** Password change (keep = the changing session) and reset: every other way in ends. */
function revokeAccountAccess(m: ModelState, acct: number, why: string, keep?: number): void {
  for (const s of Object.values(m.sessions)) if (s.account === acct && s.id !== keep) revokeSession(m, s, why);
  for (const c of Object.values(m.chains)) if (c.account === acct) endChain(m, c, why);
  const a = m.accounts[acct]!;
  for (const d of Object.keys(a.devices)) a.devices[Number(d)] = false;
  for (const t of a.tokens) if ((t.kind === 'reset' || t.kind === 'email') && !t.spent) t.spent = why;
  voidSetups(m, acct, why);
  revokeGrants(m, acct, why);
}

function revokeGrants(m: ModelState, acct: number, why: string): void {
  for (const g of Object.values(m.grants)) if (g.account === acct && !g.revokedBy) g.revokedBy = why;
}

const ACR_AAL2 = 'urn:gatehouse:aal2';
const ACR_PHR = 'urn:gatehouse:phr';
export const OIDC_ACR_AAL2 = ACR_AAL2;

/** A recovery link works for a day (services/admin.ts). */
export const RECOVERY_TTL_MS = 24 * 3_600_000;

/** An admin's factor reset: no factor, no code, every way in ends, API tokens too; the password alone opens nothing. */
function resetFactorsByAdmin(m: ModelState, acct: number): void {
  const a = m.accounts[acct]!;
  revokeAccountAccess(m, acct, 'an admin factor reset');
  for (const t of a.tokens) if (t.kind === 'api' && !t.spent) t.spent = 'an admin factor reset';
  a.factors = [];
  a.codes = [];
  a.recoveryPending = true;
}

function newSession(
  m: ModelState,
  id: number,
  acct: number,
  instance: number,
  transport: 'cookie' | 'token',
  state: MSession['state'],
  extra: Partial<MSession> = {},
): MSession {
  const s: MSession = {
    id,
    account: acct,
    instance,
    transport,
    state,
    createdAt: m.now,
    passwordAt: m.now,
    mfaAt: null,
    trusted: false,
    remember: false,
    cookie: null,
    setups: {},
    ...extra,
  };
  m.sessions[id] = s;
  return s;
}

/** A session that became full and asked to be remembered: its browser got a new chain. */
function issueChainIfAsked(m: ModelState, s: MSession, chainId: number, obs: Obs): void {
  if (s.remember && s.transport === 'cookie') takeCookie(m, s, obs.cookie, chainId);
}

/** Whether `cred` is a factor confirmed now whose code the server may accept (I1, I5). */
function credentialUsable(a: MAccount, cred: Cred, obs: Obs): string | null {
  if (cred.kind === 'recovery') return a.codes.includes(cred.code) ? null : 'a recovery code that was used, replaced or never issued';
  const f = a.factors.find((x) => x.key === cred.factor);
  if (!f) return `factor ${cred.factor}, which is not a confirmed factor (I1)`;
  if (cred.kind === 'totp' && obs.step !== undefined && obs.step <= f.lastStep)
    return `TOTP step ${obs.step} of ${f.key} although step ${f.lastStep} was already used (I5)`;
  return null;
}

function spendCredential(a: MAccount, cred: Cred, obs: Obs): void {
  if (cred.kind === 'recovery') a.codes = a.codes.filter((c) => c !== cred.code);
  else if (cred.kind === 'totp') {
    const f = a.factors.find((x) => x.key === cred.factor)!;
    if (obs.step !== undefined) f.lastStep = Math.max(f.lastStep, obs.step);
  }
}

const success = (status: number) => status >= 200 && status < 300;

/** Judges one observed answer to `action` in state `m0` (never mutates `m0`). */
export function judge(m0: ModelState, action: Action, obs: Obs): Judgement {
  const m = clone(m0);
  if (obs.status >= 500) return unless(m, 'no-5xx', `${action.t} answered ${obs.status}`) ?? ok(m);
  const sess = 's' in action ? m.sessions[action.s]! : undefined;
  const acc = sess ? m.accounts[sess.account]! : 'acct' in action ? m.accounts[action.acct] : undefined;
  const isFull = !!sess && live(m, sess) && sess.state === 'full';
  const star = (what: string): Judgement | null => {
    if (sess && fresh(m, sess)) return null;
    if (sess && !live(m, sess))
      return bad(
        'I5-revoked',
        `${what} succeeded from s${sess.id}, which is ${sess.state === 'revoked' ? `revoked (${sess.revokedBy})` : 'expired'}`,
      );
    return bad('star-without-freshness', `${what} succeeded without a fresh check (session s${sess?.id})`);
  };

  switch (action.t) {
    case 'advance':
      m.now += action.ms;
      return ok(m);

    case 'signup': {
      if (obs.status !== 201) return bad('liveness', `signup answered ${obs.status}`);
      m.accounts[action.acct] = {
        idx: action.acct,
        email: action.email,
        password: action.password,
        factors: [],
        codes: [],
        tokens: [],
        devices: {},
      };
      newSession(m, action.newSession, action.acct, action.instance, action.transport, m.mfaRequired === 'all' ? 'enrolling' : 'full');
      return ok(m);
    }

    case 'login': {
      const a = acc!;
      const hasFactor = a.factors.length > 0;
      const deviceOk = action.device !== null && a.devices[action.device] === true;
      // The browser's cookie is screened before the password is checked (issue 18).
      const held = present(m, obs.presented);
      if (action.from !== undefined && action.from !== null) m.sessions[action.from]!.cookie = null;
      if (obs.status === 429) return ok(m);
      if (obs.status === 401) {
        if (action.password === a.password) return bad('I4-password', `login with the password in force (${a.password}) answered 401`);
        return ok(m);
      }
      if (action.password !== a.password) return bad('password', `login with a password not in force answered ${obs.status}`);
      if (a.recoveryPending && !hasFactor && (obs.status === 200 || obs.status === 202))
        return bad('P3-login', `a password login answered ${obs.status} while an admin reset waits for the recovery link`);
      if (obs.status === 200) {
        if (hasFactor && !deviceOk)
          return bad(
            'I4-login-open',
            `password-only login answered 200 although a${a.factors.map((f) => ` ${f.kind}`).join(',')} factor is confirmed`,
          );
        if (!hasFactor && m.mfaRequired === 'all') return bad('I4-login', 'login answered 200 (full) for an account that must enrol first');
        const s = newSession(m, action.newSession, action.acct, action.instance, action.transport, 'full', {
          trusted: hasFactor,
          remember: action.remember,
        });
        // Remember-me asked: a live token the browser held ends ("superseded"), a new chain starts.
        if (held && action.remember && action.transport === 'cookie') endChain(m, m.chains[held.chain]!, 'a newer login with remember-me');
        issueChainIfAsked(m, s, action.newChain, obs);
        if (!(action.remember && action.transport === 'cookie') && m.rememberMe) s.cookie = obs.cookie ?? null;
        return ok(m);
      }
      if (obs.status === 202) {
        const status = obs.body?.status;
        const j =
          (status === 'mfa_required' && !hasFactor
            ? unless(m, 'I4-login-ghost', 'login asked for a second factor although the account has no confirmed factor')
            : null) ??
          (status === 'enrollment_required' && hasFactor
            ? unless(m, 'I4-login-methods', 'login asked to enrol although a factor is confirmed')
            : null);
        if (j) return j;
        const s = newSession(
          m,
          action.newSession,
          action.acct,
          action.instance,
          action.transport,
          status === 'mfa_required' ? 'pending' : 'enrolling',
          { remember: action.remember },
        );
        if (m.rememberMe) s.cookie = obs.cookie ?? null;
        return ok(m);
      }
      return ok(m);
    }

    case 'verify':
    case 'stepUp': {
      if (!success(obs.status)) return ok(m);
      const s = sess!;
      const admitted = action.t === 'verify' ? awaitsFactor(m, s) : s.state === 'full';
      if (!live(m, s) || !admitted)
        return bad(
          action.t === 'verify' ? 'verify-state' : 'I5-revoked',
          `${action.t} succeeded on a session that is ${live(m, s) ? s.state : `gone (${s.revokedBy ?? 'expired'})`}`,
        );
      const why = credentialUsable(acc!, action.cred, obs);
      if (why) return bad('I1', `${action.t} succeeded with ${why}`);
      spendCredential(acc!, action.cred, obs);
      s.state = 'full';
      s.mfaAt = m.now;
      s.trusted = false;
      if (action.t === 'verify') {
        if (action.trustDevice !== null && s.transport === 'cookie') acc!.devices[action.trustDevice] = true;
        issueChainIfAsked(m, s, action.newChain, obs);
      }
      return ok(m);
    }

    case 'reauth': {
      if (!success(obs.status)) return ok(m);
      if (!isFull) return bad('I5-revoked', `reauth succeeded on a session that is not full and live (s${sess!.id})`);
      if (action.password !== acc!.password) return bad('password', 'reauth accepted a password not in force');
      sess!.passwordAt = m.now;
      return ok(m);
    }

    case 'setup': {
      if (!success(obs.status)) return ok(m);
      const s = sess!;
      if (!live(m, s) || s.state === 'pending')
        return bad('protected-route', `factor setup answered ${obs.status} to a ${live(m, s) ? s.state : 'revoked'} session`);
      const denied = star(`${action.kind} setup`);
      if (denied) return denied;
      s.setups[action.kind] = {
        kind: action.kind,
        secret: obs.material?.secret,
        options: obs.material?.options,
        serverId: obs.material?.serverId,
        auth: action.auth,
        startedAt: m.now,
        voidBy: null,
      };
      return ok(m);
    }

    case 'confirm': {
      if (!success(obs.status)) return ok(m);
      const s = sess!;
      const a = acc!;
      if (!live(m, s) || s.state === 'pending')
        return bad('I5-revoked', `confirm succeeded on a ${live(m, s) ? s.state : `revoked (${s.revokedBy})`} session`);
      const owner = m.sessions[action.owner]!;
      const setup = owner.setups[action.kind];
      if (!setup) return bad('I3-foreign', `confirm succeeded without a setup`);
      if (owner.id !== s.id) {
        const j = unless(m, 'I3-foreign', `s${s.id} confirmed the ${action.kind} setup of s${owner.id}`);
        if (j) return j;
        delete owner.setups[action.kind];
      }
      const first = a.factors.length === 0;
      a.recoveryPending = false;
      const codes: string[] | undefined = obs.body?.recoveryCodes;
      // Checked first: a second set of codes (issue 17.3) names itself even where I2/I3 also fail.
      const second =
        !first && codes
          ? unless(
              m,
              'codes-second-set',
              `adding a factor to an account that has ${a.factors.map((f) => f.kind).join(', ')} handed out recovery codes (the first set stops working)`,
            )
          : null;
      if (second) return second;
      const v =
        (setup.voidBy
          ? unless(
              m,
              voidRule(s, setup.voidBy),
              `s${s.id} (${s.state}${fresh(m, s) ? ', fresh' : ', not fresh'}) confirmed a ${action.kind} setup voided by ${setup.voidBy}`,
            )
          : null) ??
        (m.now - setup.startedAt > SETUP_TTL_MS
          ? unless(
              m,
              'I3-expired',
              `s${s.id} confirmed a ${action.kind} setup started ${Math.round((m.now - setup.startedAt) / 1000)} s ago`,
            )
          : null);
      if (v) return v;
      if (!first && !freshByFactor(m, s)) {
        const j = unless(
          m,
          'I2',
          `s${s.id} (${s.state}, ${s.mfaAt === null ? 'never verified a factor' : `factor verified ${Math.round((m.now - s.mfaAt) / 1000)} s ago`}) added a ${action.kind} factor to an account that has ${a.factors.map((f) => f.kind).join(', ')}`,
        );
        if (j) return j;
        // Tolerated: an enrolling session the server let add a factor is full now.
        if (s.state === 'enrolling') Object.assign(s, { state: 'full', mfaAt: m.now });
      }
      a.factors.push({
        key: action.factorKey,
        kind: action.kind,
        serverId: String(obs.body?.factorId ?? setup.serverId ?? ''),
        secret: setup.secret,
        auth: setup.auth,
        lastStep: obs.step ?? -1,
      });
      if (codes) a.codes = [...codes];
      delete s.setups[action.kind];
      voidSetups(m, s.account, `a factor change by s${s.id}`);
      if (first) {
        s.state = 'full';
        s.mfaAt = m.now;
        issueChainIfAsked(m, s, action.newChain, obs);
      }
      return ok(m);
    }

    case 'deleteFactor': {
      if (!success(obs.status)) return ok(m);
      const denied = star('factor removal');
      if (denied) return denied;
      const a = acc!;
      const before = a.factors.length;
      a.factors = a.factors.filter((f) => f.key !== action.factor);
      if (a.factors.length === before)
        return bad('I4-list', `removing factor ${action.factor}, which is not confirmed, answered ${obs.status}`);
      if (a.factors.length === 0) a.codes = [];
      for (const d of Object.keys(a.devices)) a.devices[Number(d)] = false;
      voidSetups(m, sess!.account, `a factor change by s${sess!.id}`);
      revokeGrants(m, sess!.account, `the removal of factor ${action.factor}`);
      return ok(m);
    }

    case 'regenCodes': {
      if (!success(obs.status)) return ok(m);
      const denied = star('recovery-code regeneration');
      if (denied) return denied;
      if (acc!.factors.length === 0) return bad('codes', 'recovery codes issued for an account without a factor');
      acc!.codes = [...(obs.body?.recoveryCodes ?? [])];
      return ok(m);
    }

    case 'deleteSession': {
      if (!success(obs.status)) return ok(m);
      if (!isFull) return bad('I5-revoked', `session delete succeeded from s${sess!.id}, which is not full and live`);
      revokeSession(m, m.sessions[action.target]!, `session delete by s${sess!.id}`, 'a sign-out from the sessions list');
      return ok(m);
    }

    case 'logout': {
      const held = present(m, obs.presented);
      if (obs.status === 204) {
        revokeSession(m, sess!, 'logout', 'logout');
        if (held) endChain(m, m.chains[held.chain]!, 'logout');
      }
      if (obs.cookie !== undefined && m.rememberMe) sess!.cookie = obs.cookie;
      return ok(m);
    }

    case 'logoutReplaced': {
      // A replaced token ends its session at logout for REPLACED_TOKEN_LOGOUT_MS (a logout
      // racing the replacing request must not leave the session live), and does nothing else.
      if (obs.replacedAt === null || obs.replacedAt === undefined) return ok(m);
      if (obs.status === 204 && m.now - obs.replacedAt < REPLACED_TOKEN_LOGOUT_MS)
        revokeSession(m, sess!, 'logout with its replaced token', 'logout');
      return ok(m);
    }

    case 'oidcSignIn': {
      const o = obs.oidc;
      if (!o || o.outcome !== 'tokens') return ok(m);
      const s = sess!;
      if (!live(m, s) || s.state !== 'full')
        return bad(
          'O1-code',
          `an OIDC sign-in issued tokens for s${s.id}, which is ${live(m, s) ? s.state : s.state === 'revoked' ? `revoked (${s.revokedBy})` : 'expired'}`,
        );
      if (s.transport !== 'cookie')
        return bad('O1-code', `an OIDC sign-in issued tokens for s${s.id}, whose browser holds no session cookie`);
      if (s.passwordAt === null && s.mfaAt === null && s.upstreamAt === undefined)
        return bad(
          'O1-restored',
          `an OIDC sign-in issued tokens for s${s.id}, restored by remember-me, in which no credential was presented`,
        );
      const strong = o.acr === ACR_AAL2 || o.acr === ACR_PHR;
      if (strong && s.mfaAt === null && !s.trusted && !s.upstreamMfa)
        return bad('O6-acr', `tokens for s${s.id} claim ${o.acr}, but it verified no second factor`);
      if (action.acr2 && !strong) return bad('O6-acr-values', `acr_values=${ACR_AAL2} was asked for, the tokens claim ${o.acr}`);
      const lastCredential = Math.max(s.passwordAt ?? 0, s.mfaAt ?? 0, s.upstreamAt ?? 0);
      if ((o.authTime ?? Infinity) > Math.floor(Math.max(lastCredential, s.createdAt) / 1000))
        return bad(
          'O6-auth-time',
          `tokens for s${s.id} claim auth_time ${o.authTime}, after its last credential (${Math.floor(lastCredential / 1000)})`,
        );
      m.grants[action.newGrant] = { id: action.newGrant, account: s.account, acr: o.acr!, authTime: o.authTime!, revokedBy: null };
      return ok(m);
    }

    case 'oidcRefresh': {
      const g = m.grants[action.grant]!;
      if (obs.status !== 200) {
        // Refused (expired, or a rotated refresh token raced): the grant is over either way.
        g.revokedBy ??= `the server (${obs.status} ${obs.oidc?.error ?? ''})`;
        return ok(m);
      }
      if (g.revokedBy) return bad('O4-refresh-revoked', `the refresh token of grant g${g.id} still works after ${g.revokedBy}`);
      if (obs.oidc?.acr !== g.acr || obs.oidc?.authTime !== g.authTime)
        return bad(
          'O3-refresh-assurance',
          `a refresh of grant g${g.id} claims ${obs.oidc?.acr} at ${obs.oidc?.authTime}; the sign-in had ${g.acr} at ${g.authTime}`,
        );
      return ok(m);
    }

    case 'upstreamSignIn':
      return upstreamSignedIn(m, action, obs);

    case 'linkConfirm': {
      if (!success(obs.status)) return ok(m);
      const s = sess!;
      const l = m.links[action.link]!;
      const id = m.identities[l.sub]!;
      const what = `s${s.id} (a${s.account}, ${live(m, s) ? s.state : `gone: ${s.revokedBy ?? 'expired'}`}${fresh(m, s) ? ', fresh' : ', not fresh'}) confirmed the pending link of ${l.sub} (for a${l.target}, ${Math.round((m.now - l.createdAt) / 1000)} s old)`;
      if (l.used) return bad('F3-link-reuse', `${what}, already used`);
      if (m.now - l.createdAt >= LINK_TTL_MS) return bad('F3-link-expired', what);
      if (!live(m, s) || s.state !== 'full') return bad('F3-link-not-full', what);
      if (s.account !== l.target) return bad('F3-link-other-account', what);
      if (!fresh(m, s)) return bad('F3-link-not-fresh', what);
      if (id.linkedTo !== null) return bad('F3-link-twice', `${what}, although it is linked to a${id.linkedTo}`);
      l.used = true;
      id.linkedTo = s.account;
      return ok(m);
    }

    case 'unlink': {
      if (!success(obs.status)) return ok(m);
      const denied = star(`unlinking ${action.sub}`);
      if (denied && !denied.ok) return bad(`F4-${denied.violation.rule}`, denied.violation.detail);
      const id = m.identities[action.sub];
      if (!id || id.linkedTo !== sess!.account)
        return bad('F4-foreign', `s${sess!.id} (a${sess!.account}) unlinked ${action.sub}, linked to ${id?.linkedTo ?? 'no account'}`);
      id.linkedTo = null;
      id.unlinkedBy = `an unlink by s${sess!.id}`;
      return ok(m);
    }

    case 'changePassword': {
      if (!success(obs.status)) return ok(m);
      const denied = star('password change');
      if (denied) return denied;
      if (action.current !== acc!.password) return bad('password', 'password change accepted a current password not in force');
      acc!.password = action.next;
      revokeAccountAccess(m, sess!.account, `password change by s${sess!.id}`, sess!.id);
      return ok(m);
    }

    case 'forgot': {
      if (obs.mailed) acc!.tokens.push({ kind: 'reset', token: obs.mailed, createdAt: m.now, spent: null });
      return ok(m);
    }

    case 'reset': {
      const t = acc!.tokens[action.token]!;
      if (!success(obs.status)) return ok(m);
      if (t.spent) return bad('I5-token', `a reset token already ${t.spent} reset the password`);
      if (m.now - t.createdAt > RESET_TTL_MS) return bad('I5-token', 'an expired reset token reset the password');
      t.spent = 'used';
      acc!.password = action.next;
      revokeAccountAccess(m, action.acct, 'password reset');
      for (const x of acc!.tokens) if (x.kind === 'api') x.spent = 'password reset';
      return ok(m);
    }

    case 'adminReset': {
      if (typeof obs.body?.sessionToken === 'string' || (obs.cookie ?? null) !== null)
        return bad('P3-no-session', 'an admin factor reset answered with a session');
      if (obs.status !== 200) return ok(m);
      resetFactorsByAdmin(m, action.acct);
      for (const t of acc!.tokens) if (t.kind === 'recovery' && !t.spent) t.spent = 'a newer reset';
      if (obs.mailed) acc!.tokens.push({ kind: 'recovery', token: obs.mailed, createdAt: m.now, spent: null });
      return ok(m);
    }

    case 'recover': {
      const t = acc!.tokens[action.token]!;
      if (obs.status !== 202) return ok(m);
      if (t.spent) return bad('P3-token', `a recovery link already ${t.spent} opened a session`);
      if (m.now - t.createdAt > RECOVERY_TTL_MS) return bad('P3-token', 'an expired recovery link opened a session');
      if (obs.body?.status !== 'enrollment_required') return bad('P3-enrolling', `a recovery link opened a ${obs.body?.status} session`);
      t.spent = 'used';
      newSession(m, action.newSession, action.acct, action.instance, 'cookie', 'enrolling');
      return ok(m);
    }

    case 'changeEmail': {
      if (!success(obs.status)) return ok(m);
      const denied = star('e-mail change');
      if (denied) return denied;
      if (obs.mailed) acc!.tokens.push({ kind: 'email', token: obs.mailed, createdAt: m.now, spent: null, newEmail: action.next });
      return ok(m);
    }

    case 'confirmEmail': {
      const t = acc!.tokens[action.token]!;
      if (!success(obs.status)) return ok(m);
      if (t.spent) return bad('I5-token', `an e-mail token already ${t.spent} changed the address`);
      t.spent = 'used';
      acc!.email = t.newEmail!;
      voidSetups(m, action.acct, 'an e-mail change');
      return ok(m);
    }

    case 'createToken': {
      if (!success(obs.status)) return ok(m);
      const denied = star('API token creation');
      if (denied) return denied;
      acc!.tokens.push({ kind: 'api', token: String(obs.body?.token), createdAt: m.now, spent: null });
      return ok(m);
    }

    case 'useToken': {
      const t = acc!.tokens[action.token]!;
      // obs.status: GET /api/account with the token; obs.body.star: its ★ attempt's status.
      if (obs.body?.starStatus !== undefined && success(obs.body.starStatus))
        return bad('star-without-freshness', 'an API token performed a ★ action');
      if (success(obs.status) && t.spent) return bad('I5-revoked', `an API token revoked by ${t.spent} still works`);
      return ok(m);
    }

    case 'copyCookie':
      m.sessions[action.to]!.cookie = m.sessions[action.from]!.cookie;
      return ok(m);

    case 'restore':
      return restored(
        m,
        action.token,
        [{ status: obs.status, body: obs.body, cookie: obs.cookie ?? null }],
        [action.newSession],
        action.instance,
        action.from,
      );

    case 'restoreMany':
      return restored(m, action.token, obs.many ?? [], action.newSessions, action.instance, action.from);
  }
}

/**
 * An upstream sign-in (F1–F4): only a linked identity opens a session, of the account it is
 * linked to, pending when that account has a second factor (full only with the upstream's
 * trusted MFA), never fresh; an unlinked one at most leaves a pending link for the account
 * whose address it carries.
 */
function upstreamSignedIn(m: ModelState, action: Extract<Action, { t: 'upstreamSignIn' }>, obs: Obs): Judgement {
  const id = (m.identities[action.sub] ??= { sub: action.sub, owner: action.acct, linkedTo: null });
  const u = obs.upstream;
  if (!u || u.outcome === 'refused') return ok(m);
  if (u.outcome === 'link') {
    // Also for a linked identity (nothing opens): confirming that link must then fail.
    m.links[action.newLink] = { id: action.newLink, sub: action.sub, target: action.acct, createdAt: m.now, used: false };
    return ok(m);
  }
  if (id.linkedTo === null)
    return id.unlinkedBy
      ? bad('F4-unlinked', `${action.sub}, unlinked by ${id.unlinkedBy.replace(/^an? /, '')}, opened a ${u.outcome} session`)
      : bad('F3-unlinked', `${action.sub}, never linked, opened a ${u.outcome} session (it carries a${action.acct}'s address)`);
  const a = m.accounts[id.linkedTo]!;
  if (u.email !== undefined && u.email !== a.email)
    return bad('F3-account', `${action.sub}, linked to a${a.idx}, opened a session of ${u.email}`);
  if (a.recoveryPending && a.factors.length === 0)
    return bad('P3-upstream', `an upstream sign-in opened a ${u.outcome} session while an admin reset waits for the recovery link`);
  const trusted = action.mfa === 'trusted';
  const want = trusted ? 'full' : a.factors.length > 0 ? 'pending' : m.mfaRequired === 'all' ? 'enrolling' : 'full';
  if (u.outcome !== want)
    return bad(
      u.outcome === 'full' ? 'F1' : 'F1-state',
      `an upstream sign-in (${action.mfa === 'none' ? 'password only' : `${action.mfa} MFA claim`}) of a${a.idx} (${a.factors.length ? a.factors.map((f) => f.kind).join(', ') : 'no factor'}) opened a ${u.outcome} session; it must be ${want}`,
    );
  newSession(m, action.newSession, a.idx, action.instance, 'cookie', want, { passwordAt: null, upstreamAt: m.now, upstreamMfa: trusted });
  return ok(m);
}

const opened = (o: { status: number; body: any }) => o.status === 200 || o.body?.error === 'mfa_required';

/**
 * One or more requests presenting the same remember-me token with no session (a restore;
 * several at once: parallel tabs, or a thief racing the owner). At most one may open a
 * session, only with a live token of a chain not flagged, and only a pending one for an
 * account with a second factor. A refused or losing presentation of a token that was not
 * live flags the chain (issue 18): the losers of a parallel burst presented a used token.
 */
function restored(
  m: ModelState,
  token: string,
  answers: { status: number; body: any; cookie: string | null }[],
  newSessions: number[],
  instance: number,
  from: number | null,
): Judgement {
  const t = m.rtokens[token];
  const wins = answers.flatMap((o, i) => (opened(o) ? [i] : []));
  if (from !== null) m.sessions[from]!.cookie = null;
  if (wins.length > 1)
    return bad('I5-remember-reuse', `${answers.length} restores at once with one remember-me token opened ${wins.length} sessions`);
  if (!t) {
    // A value the model never saw issued (it cannot be, but say so rather than guess).
    return wins.length ? bad('I5-remember-unknown', 'a remember-me token the model never saw issued opened a session') : ok(m);
  }
  const c = m.chains[t.chain]!;
  const a = m.accounts[c.account]!;
  if (wins.length === 0) {
    if (t.state === 'live' && !c.flagged) {
      if (answers.length > 1) flagChain(m, c, 'parallel restores with one token');
      else t.state = 'unsure';
      return ok(m);
    }
    present(m, token);
    return ok(m);
  }
  const o = answers[wins[0]!]!;
  if (c.flagged) return bad('I5-remember-flagged', `a token of remember-me chain c${c.id}, flagged earlier, opened a session`);
  if (t.state === 'used') return bad('I5-remember-reuse', `a remember-me token already used once opened a session (chain c${c.id})`);
  if (t.state === 'revoked')
    return bad('I5-remember-revoked', `a remember-me token revoked by ${t.reason} opened a session (chain c${c.id})`);
  if (o.status === 200 && (a.factors.length > 0 || m.mfaRequired === 'all'))
    return bad('I4-login', 'a remember-me token alone opened a full session of an account with a second factor');
  t.state = 'used';
  const s = newSession(m, newSessions[wins[0]!]!, c.account, instance, 'cookie', o.status === 200 ? 'full' : 'pending', {
    passwordAt: null,
    remember: true,
  });
  c.sessions.push(s.id);
  if (o.cookie && !m.rtokens[o.cookie]) m.rtokens[o.cookie] = { chain: c.id, state: 'live' };
  if (m.rememberMe) s.cookie = o.cookie;
  // The losers of a burst presented a used token: the chain is flagged, the winner's session too.
  if (answers.length > 1) flagChain(m, c, 'parallel restores with one token');
  return ok(m);
}

/** Read-only observations, checked like answers. */
export type Probe =
  | { t: 'session'; s: number; instance: number; status: number; mfaAt: string | null; protectedStatus: number }
  | { t: 'login'; acct: number; instance: number; status: number; body: any }
  | { t: 'factors'; acct: number; ids: string[] }
  | { t: 'codeWorks'; acct: number; code: string; status: number }
  /** A session token replaced during the step, presented to a protected route. */
  | { t: 'replaced'; s: number; instance: number; status: number };

/** Judges a probe; it may learn (a live session the server dropped) but never grants. */
export function judgeProbe(m0: ModelState, p: Probe): Judgement {
  const m = clone(m0);
  switch (p.t) {
    case 'session': {
      const s = m.sessions[p.s]!;
      if (p.status >= 500 || p.protectedStatus >= 500)
        return bad('no-5xx', `GET /api/session or /api/account answered ${p.status}/${p.protectedStatus}`);
      if (!live(m, s) || s.state === 'pending' || s.state === 'enrolling') {
        if (p.status === 200 || p.protectedStatus === 200) {
          const what = s.state === 'revoked' ? `revoked by ${s.revokedBy}` : live(m, s) ? s.state : `an expired ${s.state} session`;
          const rule =
            s.state !== 'revoked'
              ? s.upstreamAt !== undefined
                ? 'F1-protected-route'
                : 'protected-route'
              : s.revokedBy?.startsWith('remember-me chain')
                ? 'I5-remember-session'
                : 'I5-revoked';
          return unless(m, rule, `s${s.id} (${what}) is answered 200 by a protected route on instance ${p.instance}`) ?? ok(m);
        }
        return ok(m);
      }
      if (p.status !== 200) {
        // The server ended a session the model thought live: not a bypass, learn it.
        revokeSession(m, s, `the server (${p.status})`);
        return ok(m);
      }
      const seen = p.mfaAt === null ? null : Date.parse(p.mfaAt);
      if (seen !== s.mfaAt) {
        const j = unless(
          m,
          'I1-I2-fresh',
          `s${s.id} shows mfaAt ${p.mfaAt} but verified no confirmed factor then (model: ${s.mfaAt === null ? 'never' : new Date(s.mfaAt).toISOString()})`,
        );
        if (j) return j;
        s.mfaAt = seen;
      }
      return ok(m);
    }
    case 'replaced':
      if (p.status >= 500) return bad('no-5xx', `GET /api/account with a replaced token answered ${p.status}`);
      if (p.status !== 401)
        return bad(
          'I5-replaced',
          `s${p.s}'s replaced session token is answered ${p.status} by a protected route on instance ${p.instance}`,
        );
      return ok(m);
    case 'login': {
      const a = m.accounts[p.acct]!;
      if (p.status === 429) return ok(m);
      if (p.status === 401) return bad('I4-password', `a login with the password in force answered 401 on instance ${p.instance}`);
      const has = a.factors.length > 0;
      if (a.recoveryPending && !has && (p.status === 200 || p.status === 202))
        return bad(
          'P3-login',
          `a password login on instance ${p.instance} answered ${p.status} while an admin reset waits for the recovery link`,
        );
      if (p.status === 200 && has)
        return bad(
          'I4-login-open',
          `password-only login answered 200 on instance ${p.instance} although ${a.factors.map((f) => f.kind).join(', ')} is confirmed`,
        );
      if (p.status === 202 && p.body?.status === 'mfa_required' && !has)
        return (
          unless(m, 'I4-login-ghost', `login on instance ${p.instance} asks for a factor (${p.body?.methods}) though none is confirmed`) ??
          ok(m)
        );
      if (p.status === 202 && has) {
        const methods: string[] = p.body?.methods ?? [];
        for (const kind of ['totp', 'webauthn'] as const) {
          if (methods.includes(kind) !== a.factors.some((f) => f.kind === kind))
            return (
              unless(
                m,
                'I4-login-methods',
                `login on instance ${p.instance} offers methods ${methods.join(',')} but the confirmed factors are ${a.factors.map((f) => f.kind).join(',')}`,
              ) ?? ok(m)
            );
        }
      }
      return ok(m);
    }
    case 'factors': {
      const want = m.accounts[p.acct]!.factors.map((f) => f.serverId).sort();
      const got = [...p.ids].sort();
      if (JSON.stringify(want) !== JSON.stringify(got))
        return (
          unless(
            m,
            'I4-list',
            `GET /api/mfa lists ${got.length} factor(s) [${got.join(', ')}], the confirmed ones are [${want.join(', ')}]`,
          ) ?? ok(m)
        );
      return ok(m);
    }
    case 'codeWorks': {
      // A set handed out and then replaced by a later one (two regenerations at once) may
      // stop working; the set in force must work, and a replaced one must not.
      const a = m.accounts[p.acct]!;
      const inForce = a.codes.includes(p.code);
      if (p.status === 429) return ok(m);
      if (p.status === 200 && !inForce) return bad('codes', 'a recovery code of a replaced set still works');
      if (p.status !== 200 && inForce)
        return unless(m, 'codes-lost', `a recovery code handed out (and unused) answered ${p.status}`) ?? ok(m);
      a.codes = a.codes.filter((c) => c !== p.code);
      return ok(m);
    }
  }
}

/** A set of states that explain everything observed so far (more than one after a pair). */
export type Candidates = ModelState[];

export interface Checked {
  candidates: Candidates;
  violation?: Violation;
}

/** Keeps the candidates that admit `observe`; a violation when none does. */
export function filter(cands: Candidates, observe: (m: ModelState) => Judgement): Checked {
  const next: ModelState[] = [];
  let first: Violation | undefined;
  for (const m of cands) {
    const j = observe(m);
    if (j.ok) next.push(j.next);
    else first ??= j.violation;
  }
  return next.length ? { candidates: dedupe(next) } : { candidates: cands, violation: first };
}

function dedupe(states: ModelState[]): ModelState[] {
  const seen = new Set<string>();
  return states.filter((s) => {
    const k = JSON.stringify(s);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/** Two actions sent at once: admissible when some serial order admits both answers. */
export function judgePair(cands: Candidates, a: Action, oa: Obs, b: Action, ob: Obs): Checked {
  const next: ModelState[] = [];
  const why: string[] = [];
  for (const m of cands) {
    for (const [x, ox, y, oy, label] of [
      [a, oa, b, ob, 'A then B'],
      [b, ob, a, oa, 'B then A'],
    ] as const) {
      const j1 = judge(m, x, ox);
      if (!j1.ok) {
        why.push(`${label}: ${j1.violation.rule}: ${j1.violation.detail}`);
        continue;
      }
      const j2 = judge(j1.next, y, oy);
      if (!j2.ok) why.push(`${label}: ${j2.violation.rule}: ${j2.violation.detail}`);
      else next.push(j2.next);
    }
  }
  if (next.length) return { candidates: dedupe(next) };
  const rules = [...new Set(why.map((w) => w.split(':')[1]!.trim()))].join('|');
  return {
    candidates: cands,
    violation: { rule: `serial(${a.t}+${b.t}):${rules}`, detail: `no serial order explains both answers — ${why.join(' / ')}` },
  };
}
