/**
 * The real-server side of the model-based search: Gatehouse servers with a movable clock
 * (one SQLite server, or two instances on one PostgreSQL schema), one `Client` per model
 * session, and `perform(action)` turning a model action into HTTP requests and an `Obs`.
 * Remember-me and trusted-device cookies are kept apart from the session clients, so a
 * session request never silently restores a new session: the remember-me cookie a
 * session's browser holds is in the model (`MSession.cookie`); only login, logout and the
 * restores present it, and every answer's Set-Cookie is reported back (`Obs.cookie`).
 * Federated login: the servers trust one upstream, the auditor's small OpenID Provider
 * (src/audit/upstream.ts), which signs in as whatever identity the driver chooses (e-mail
 * verified; amr `hwk` trusted as MFA, `mfa` not); a pending link's cookie is kept per model
 * link and handed to the browser that confirms it.
 */
import type { MfaPolicy } from '../../src/core/session-state.js';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Agent, setGlobalDispatcher } from 'undici';
import { totpCodeAt } from '../../src/services/totp.js';
import { PASSWORD, uniqueEmail } from '../helpers/accounts.js';
import { Client, cookieNamed, csrfIn, FormBrowser, type Res } from '../helpers/http-client.js';
import { addressedTo, decodeMail } from '../helpers/mail-files.js';
import { FAST_ENV, startPostgresPair, startTestServer, type TestServer } from '../helpers/server.js';
import { SoftAuthenticator } from '../http/webauthn-soft-authenticator.js';
import { follow } from '../oidc/rp.js';
import * as oidc from 'openid-client';
import { ClientRegistry } from '../../src/oidc/clients.js';
import { AuditUpstream } from '../../src/audit/upstream.js';
import { freePort } from '../audit/helpers.js';
import { OIDC_ACR_AAL2, stepOf, type Action, type Cred, type ModelState, type Obs, type Probe } from './model.js';

export type Backend = 'sqlite' | 'postgres';

/** A clock that stands still unless moved: the model knows the server's time exactly. */
export class ModelClock {
  constructor(public t = Date.now()) {}
  readonly now = () => this.t;
  advance(ms: number): number {
    return (this.t += ms);
  }
}

export const STEP_UP_SECONDS = 900;
export const PENDING_SECONDS = 300;

export interface Servers {
  urls: string[];
  dataDirs: string[];
  clock: ModelClock;
  /** Gives an account the `admin` role (through the library facade, as a host app would). */
  grantAdmin(userId: string): Promise<void>;
  /** A relying party registered with the servers' OpenID Provider, discovered on each instance. */
  rp: RelyingParty;
  /**
   * The upstream OpenID Provider of federated login (the auditor's small provider): every
   * authorization completes as the identity the driver chose. Its amr `hwk` is configured
   * as trusted MFA; `mfa` is not.
   */
  upstream: AuditUpstream;
  close(): Promise<void>;
}

/** The servers' one upstream (GATEHOUSE_OIDC_UPSTREAMS) and its client there. */
export const UPSTREAM = 'model';
const UPSTREAM_SECRET = 'model-upstream-client-secret-0123456789abcdef';
/** The upstream's amr value configured as trusted MFA (a hardware key). */
export const UPSTREAM_TRUSTED_AMR = 'hwk';

function startUpstream(issuer: string, origins: string[]): Promise<AuditUpstream> {
  return AuditUpstream.start(
    {
      issuer,
      clientId: `gh-${UPSTREAM}`,
      clientSecret: UPSTREAM_SECRET,
      clientAuth: 'client_secret_basic',
      startPath: `/sign-in/upstream/${UPSTREAM}`,
      callbackPath: `/sign-in/upstream/${UPSTREAM}/callback`,
    },
    origins,
  );
}

/** Servers for a search: long session lifetimes (not modelled), trusted devices on. */
export async function startServers(backend: Backend, mfaRequired: MfaPolicy): Promise<Servers> {
  // The servers close idle keep-alive connections after 5 s (mail waits can be that long):
  // never reuse one that old, or a request dies with ECONNRESET.
  setGlobalDispatcher(new Agent({ keepAliveTimeout: 1_000, keepAliveMaxTimeout: 2_000 }));
  const clock = new ModelClock();
  // The upstream listens where the servers' configuration says once their URLs are known (discovery is lazy).
  const issuer = `http://127.0.0.1:${await freePort()}`;
  const env = {
    ...FAST_ENV,
    GATEHOUSE_MFA_REQUIRED: mfaRequired,
    GATEHOUSE_STEP_UP_MAX_AGE: String(STEP_UP_SECONDS),
    GATEHOUSE_PENDING_TTL: String(PENDING_SECONDS),
    GATEHOUSE_SESSION_IDLE_TTL: String(30 * 86_400),
    GATEHOUSE_SESSION_TTL: String(60 * 86_400),
    GATEHOUSE_TRUSTED_DEVICE_DAYS: '30',
    // Both instances must share the key (else each generates its own and keyed hashes differ).
    GATEHOUSE_SECRET_KEY: crypto.randomBytes(32).toString('base64url'),
    GATEHOUSE_OIDC_UPSTREAMS: JSON.stringify([
      { name: UPSTREAM, issuer, clientId: `gh-${UPSTREAM}`, clientSecret: UPSTREAM_SECRET, trustedAmr: [UPSTREAM_TRUSTED_AMR] },
    ]),
  };
  if (backend === 'sqlite') {
    const s: TestServer = await startTestServer(env, { now: clock.now });
    const upstream = await startUpstream(issuer, [s.url]);
    return {
      urls: [s.url],
      dataDirs: [s.dataDir],
      clock,
      rp: await RelyingParty.register(s),
      upstream,
      grantAdmin: async (id) => void (await s.server.facade.admin.setRoles(id, ['admin'])),
      close: async () => {
        await s.close();
        await upstream.close();
      },
    };
  }
  const pair = await startPostgresPair('model', env, { now: clock.now });
  const upstream = await startUpstream(
    issuer,
    pair.servers.map((s) => s.url),
  );
  return {
    urls: pair.servers.map((s) => s.url),
    dataDirs: pair.servers.map((s) => s.dataDir),
    clock,
    rp: await RelyingParty.register(pair.servers[0]),
    upstream,
    grantAdmin: async (id) => void (await pair.servers[0].server.facade.admin.setRoles(id, ['admin'])),
    close: async () => {
      await pair.cleanup();
      await upstream.close();
    },
  };
}

export const RP_REDIRECT = 'http://127.0.0.1:9/cb';

/** The search's relying party: one confidential client, its provider configuration per instance. */
class RelyingParty {
  private readonly configs = new Map<string, oidc.Configuration>();
  constructor(
    readonly clientId: string,
    private readonly secret: string,
  ) {}

  static async register(server: TestServer): Promise<RelyingParty> {
    const g = server.server.gatehouse;
    const clientId = `model-rp-${crypto.randomUUID()}`;
    const { clientSecret } = await new ClientRegistry(g.database.db, g.keys.box, server.dataDir).add(
      { client_id: clientId, redirect_uris: [RP_REDIRECT], token_endpoint_auth_method: 'client_secret_basic' },
      Date.now(),
    );
    return new RelyingParty(clientId, clientSecret!);
  }

  async config(url: string): Promise<oidc.Configuration> {
    let c = this.configs.get(url);
    if (!c) {
      c = await oidc.discovery(new URL(`${url}/oidc`), this.clientId, this.secret, undefined, { execute: [oidc.allowInsecureRequests] });
      this.configs.set(url, c);
    }
    return c;
  }
}

/** What an ID token says of the sign-in (the model's `Obs.oidc`). */
function assuranceOf(tokens: oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers) {
  const claims = tokens.claims();
  return { acr: String(claims?.acr), amr: (claims?.amr as string[] | undefined) ?? [], authTime: Number(claims?.auth_time) };
}

export const PASSWORDS = [PASSWORD, 'amber-lantern-51-meadow', 'quiet-orchard-77-falcon'];
const REMEMBER = 'gatehouse_remember';
const DEVICE = 'gatehouse_device';
const SESSION = 'gatehouse_session';
const LINK = 'gatehouse_upstream_link';

/**
 * A request that died with ECONNRESET on a pooled connection the server had just closed
 * never reached a handler: send it once more.
 */
async function retry<T>(send: () => Promise<T>): Promise<T> {
  try {
    return await send();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ECONNRESET') throw err;
    return send();
  }
}

export class Driver {
  private readonly clients = new Map<number, Client>();
  private readonly devices = new Map<number, string>();
  private readonly authenticators: SoftAuthenticator[] = [];
  private readonly seenMail = new Set<string>();
  /** Recovery-code sets handed out during the current step (checked by a probe). */
  handedOutCodes: { acct: number; codes: string[] }[] = [];
  requests = 0;

  constructor(readonly servers: Servers) {}

  get instances(): number {
    return this.servers.urls.length;
  }

  newAuthenticator(): number {
    this.authenticators.push(new SoftAuthenticator({ origin: this.servers.urls[0]! }));
    return this.authenticators.length - 1;
  }

  private url(instance: number): string {
    return this.servers.urls[instance % this.instances]!;
  }

  /** The remember-me cookie the last `as` left in the browser (undefined: not touched). */
  private lastCookie: string | null | undefined;

  /**
   * Sends as model session `s` to `instance`, keeping its token/cookie up to date;
   * `present` adds the browser's remember-me cookie (logout).
   */
  private async as(
    s: number,
    instance: number,
    send: (c: Client) => Promise<Res>,
    device?: number | null,
    present?: string | null,
  ): Promise<Res> {
    this.lastCookie = undefined;
    const own = this.clients.get(s);
    if (!own) return { status: 401, body: { error: 'unauthenticated' }, text: '', headers: {}, setCookies: [] };
    const c = own.withBase(this.url(instance));
    if (present) c.cookies.set(REMEMBER, present);
    const before = { cookie: c.cookies.get(SESSION), bearer: c.bearer };
    const res = await retry(() => send(c));
    this.requests++;
    if (typeof res.body?.sessionToken === 'string') c.bearer = res.body.sessionToken;
    this.noteReplacement(s, before, { cookie: c.cookies.get(SESSION), bearer: c.bearer });
    this.lastCookie = present !== undefined ? (c.cookies.get(REMEMBER) ?? null) : c.cookies.get(REMEMBER);
    this.keepCredentials(c, device);
    own.cookies = c.cookies;
    own.bearer = c.bearer;
    return res;
  }

  /** Per session, the token it held before its last replacement, and when (server clock). */
  private readonly replaced = new Map<number, { cookie?: string; bearer?: string; at: number; probed: boolean }>();

  private noteReplacement(
    s: number,
    before: { cookie?: string; bearer: string | null },
    after: { cookie?: string; bearer: string | null },
  ): void {
    const at = this.servers.clock.t;
    if (before.bearer && after.bearer && before.bearer !== after.bearer) this.replaced.set(s, { bearer: before.bearer, at, probed: false });
    else if (before.cookie && after.cookie && before.cookie !== after.cookie)
      this.replaced.set(s, { cookie: before.cookie, at, probed: false });
  }

  /** A client presenting only `s`'s replaced token (none: null). */
  private replacedClient(s: number, instance: number): Client | null {
    const old = this.replaced.get(s);
    if (!old) return null;
    const c = new Client(this.url(instance));
    if (old.bearer) c.bearer = old.bearer;
    if (old.cookie) c.cookies.set(SESSION, old.cookie);
    return c;
  }

  /** Refresh tokens of the grants the relying party holds, by model grant id. */
  private readonly grants = new Map<number, { refresh: string }>();
  /** The provider's own cookies in each model session's browser. */
  private readonly providerCookies = new Map<number, Map<string, string>>();

  /**
   * The browser of a session (its session cookie and the provider's cookies, never a
   * remember-me cookie) runs an authorization request to the end: tokens at the relying
   * party, an error sent back to it, or a Gatehouse page asking the user to sign in.
   */
  private async oidcSignIn(a: Extract<Action, { t: 'oidcSignIn' }>, inst: number): Promise<Obs> {
    const url = this.url(inst);
    const browser = new FormBrowser(url);
    for (const [k, v] of this.providerCookies.get(a.s) ?? []) browser.cookies.set(k, v);
    const session = this.clients.get(a.s)?.cookies.get(SESSION);
    if (session) browser.cookies.set(SESSION, session);
    const config = await this.servers.rp.config(url);
    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const nonce = oidc.randomNonce();
    const auth = oidc.buildAuthorizationUrl(config, {
      redirect_uri: RP_REDIRECT,
      scope: 'openid email',
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      nonce,
      ...(a.none ? { prompt: 'none' } : {}),
      ...(a.acr2 ? { acr_values: OIDC_ACR_AAL2 } : {}),
    });
    const done = await follow(browser, auth.href.slice(url.length));
    this.requests += 3;
    browser.cookies.delete(SESSION);
    this.providerCookies.set(a.s, browser.cookies);
    if (!('landed' in done)) return { status: done.page.status, body: null, oidc: { outcome: 'asked', where: done.page.path } };
    const error = done.landed.searchParams.get('error');
    if (error) return { status: 400, body: { error }, oidc: { outcome: 'error', error } };
    try {
      const tokens = await oidc.authorizationCodeGrant(config, done.landed, {
        pkceCodeVerifier: verifier,
        expectedState: state,
        expectedNonce: nonce,
      });
      if (tokens.refresh_token) this.grants.set(a.newGrant, { refresh: tokens.refresh_token });
      return { status: 200, body: null, oidc: { outcome: 'tokens', ...assuranceOf(tokens) } };
    } catch (err) {
      return { status: 599, body: { error: String(err) } };
    }
  }

  /** Pending links' cookies, by model link id; linked identities' server ids, by subject. */
  private readonly linkCookies = new Map<number, string>();
  private readonly linkIds = new Map<string, string>();

  /**
   * A new browser (no cookies) starts an upstream sign-in on an instance, signs in at the
   * upstream as the chosen identity, and comes back to the callback: where it is sent tells
   * the outcome; a full session's account is read from /api/session.
   */
  private async upstreamSignIn(m: ModelState, a: Extract<Action, { t: 'upstreamSignIn' }>): Promise<Obs> {
    const url = this.url(a.instance);
    const browser = new FormBrowser(url);
    const start = await browser.go('GET', `/sign-in/upstream/${UPSTREAM}`);
    this.requests++;
    if (start.status !== 303 || !start.location) return { status: start.status, body: null, upstream: { outcome: 'refused' } };
    // Trusted: the configured amr; untrusted: `mfa`, which nobody configured here.
    const amr = a.mfa === 'trusted' ? ['pwd', UPSTREAM_TRUSTED_AMR] : a.mfa === 'untrusted' ? ['pwd', 'mfa'] : ['pwd'];
    this.servers.upstream.signInAs({ sub: a.sub, email: m.accounts[a.acct]!.email, emailVerified: true, amr });
    const at = await this.servers.upstream.authorize(start.location, []);
    if (!('callback' in at)) return { status: 599, body: { error: `the upstream did not return: ${at.stopped}` } };
    const cb = await browser.go('GET', at.callback.pathname + at.callback.search);
    this.requests++;
    const where = cb.status === 303 ? (cb.location ?? '') : '';
    const outcome = where.startsWith('/sign-in/upstream/link')
      ? 'link'
      : where.startsWith('/sign-in/verify')
        ? 'pending'
        : where.startsWith('/enrol')
          ? 'enrolling'
          : where.startsWith('/settings')
            ? 'full'
            : 'refused';
    if (outcome === 'refused') return { status: cb.status === 303 ? 400 : cb.status, body: { error: where }, upstream: { outcome } };
    if (outcome === 'link') {
      this.linkCookies.set(a.newLink, browser.cookies.get(LINK)!);
      return { status: 200, body: null, upstream: { outcome } };
    }
    const c = new Client(url);
    const session = browser.cookies.get(SESSION);
    if (session) c.cookies.set(SESSION, session);
    this.clients.set(a.newSession, c);
    if (outcome !== 'full') return { status: 200, body: null, upstream: { outcome } };
    const me = await retry(() => c.get('/api/session'));
    this.requests++;
    return { status: 200, body: null, upstream: { outcome, email: me.body?.user?.email } };
  }

  /** The browser of `s`, holding a pending link's cookie, opens the link page and confirms. */
  private async linkConfirm(a: Extract<Action, { t: 'linkConfirm' }>, inst: number): Promise<Obs> {
    const own = this.clients.get(a.s);
    const browser = new FormBrowser(this.url(inst));
    const session = own?.cookies.get(SESSION);
    if (session) browser.cookies.set(SESSION, session);
    browser.cookies.set(LINK, this.linkCookies.get(a.link)!);
    const page = await browser.go('GET', '/sign-in/upstream/link');
    const r = await browser.go('POST', '/sign-in/upstream/link', { _csrf: csrfIn(page.text) });
    this.requests += 2;
    const linked = r.status === 303 && r.location === '/settings';
    if (!linked) return { status: r.status === 303 ? 403 : r.status, body: { error: r.location ?? 'refused' } };
    // The server id of the new link (for an unlink later): the one not known yet.
    const list = await this.as(a.s, inst, (c) => c.get('/api/account/upstreams'));
    const known = new Set(this.linkIds.values());
    const fresh = (list.body?.upstreams as { id: string }[] | undefined)?.find((u) => !known.has(u.id));
    if (fresh) this.linkIds.set(this.linkSubs.get(a.link)!, fresh.id);
    return { status: 200, body: null };
  }

  /** The subject of each pending link (to name the link it becomes). */
  readonly linkSubs = new Map<number, string>();

  /** Moves a fresh remember-me / device cookie out of a session client (into the model / store). */
  private keepCredentials(c: Client, device?: number | null): void {
    c.cookies.delete(REMEMBER);
    const dev = c.cookies.get(DEVICE);
    if (dev !== undefined) {
      c.cookies.delete(DEVICE);
      if (device !== undefined && device !== null) this.devices.set(device, dev);
    }
  }

  private totp(secret: string): { code: string; step: number } {
    const t = this.servers.clock.t;
    return { code: totpCodeAt(secret, t), step: stepOf(t) };
  }

  private async credential(
    m: ModelState,
    s: number,
    cred: Cred,
    instance: number,
    purpose: 'verify' | 'stepUp',
  ): Promise<{ body: Record<string, unknown>; step?: number }> {
    const acct = m.accounts[m.sessions[s]!.account]!;
    if (cred.kind === 'recovery') return { body: { method: 'recovery_code', code: cred.code } };
    const f = acct.factors.find((x) => x.key === cred.factor)!;
    if (cred.kind === 'totp') {
      const { code, step } = this.totp(f.secret!);
      return { body: { method: 'totp', code }, step };
    }
    const optionsPath = purpose === 'verify' ? '/api/auth/webauthn/options' : '/api/auth/step-up/webauthn/options';
    const opts = await this.as(s, instance, (c) => c.post(optionsPath));
    const auth = this.authenticators[f.auth!]!;
    auth.options.origin = this.url(instance);
    const response =
      opts.status === 200
        ? auth.authenticate(opts.body)
        : { id: auth.id, rawId: auth.id, type: 'public-key', response: {}, clientExtensionResults: {} };
    return { body: { method: 'webauthn', response } };
  }

  /**
   * The newest unseen token of a `link` mailed to `to` within 2 s. Each finished message
   * file is read once and removed: a long search would otherwise re-read every message
   * ever sent at every wait (most of its time went there).
   */
  private async mailed(to: string, link: RegExp): Promise<string | null> {
    const deadline = Date.now() + 2_000;
    for (;;) {
      this.collectMail();
      for (const { text } of this.inbox) {
        if (!addressedTo(text, to)) continue;
        const token = link.exec(text)?.[1];
        if (token && !this.seenMail.has(token)) {
          this.seenMail.add(token);
          return token;
        }
      }
      if (Date.now() >= deadline) return null;
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** Messages read so far, newest (by file name) first. */
  private readonly inbox: { name: string; text: string }[] = [];

  private collectMail(): void {
    let added = false;
    for (const dir of this.servers.dataDirs) {
      const folder = path.join(dir, 'mail');
      // Only finished messages: the mail worker writes elsewhere and renames to `.eml`.
      const names = fs.existsSync(folder) ? fs.readdirSync(folder).filter((n) => n.endsWith('.eml')) : [];
      for (const name of names) {
        const file = path.join(folder, name);
        this.inbox.push({ name, text: decodeMail(fs.readFileSync(file, 'utf8')) });
        fs.rmSync(file, { force: true });
        added = true;
      }
    }
    if (added) this.inbox.sort((a, b) => (a.name < b.name ? 1 : a.name > b.name ? -1 : 0));
  }

  /** Performs `action` as resolved against `m` (the first candidate state). */
  async perform(m: ModelState, a: Action, instance?: number): Promise<Obs> {
    const sessionInstance = 's' in a ? (instance ?? m.sessions[a.s]!.instance) : (instance ?? 0);
    const inst = sessionInstance % this.instances;
    const res = (r: Res, extra: Partial<Obs> = {}): Obs => ({ status: r.status, body: r.body, ...extra });
    switch (a.t) {
      case 'advance':
        this.servers.clock.advance(a.ms);
        return { status: 0, body: null };
      case 'adminReset': {
        // A new admin each time: signs up, confirms a TOTP (fresh by that first factor), gets the role.
        const admin = new Client(this.url(a.instance));
        const up = await retry(() => admin.post('/api/auth/signup', { email: uniqueEmail('model-admin'), password: PASSWORD }));
        const setup = await retry(() => admin.post('/api/mfa/totp/setup'));
        await retry(() => admin.post('/api/mfa/totp/confirm', { code: totpCodeAt(String(setup.body?.secret), this.servers.clock.t) }));
        await this.servers.grantAdmin(String(up.body?.user?.id));
        const target = m.accounts[a.acct]!;
        const found = await retry(() => admin.get(`/api/admin/users?email=${encodeURIComponent(target.email)}`));
        const r = await retry(() => admin.post(`/api/admin/users/${encodeURIComponent(String(found.body?.user?.id))}/factors/reset`, {}));
        this.requests += 5;
        const cookie = cookieNamed(r.setCookies, SESSION) ?? null;
        return res(r, {
          cookie,
          mailed: r.status === 200 ? await this.mailed(target.email, /recover\?token=([A-Za-z0-9_-]+)/) : null,
        });
      }
      case 'recover': {
        const acct = m.accounts[a.acct]!;
        const c = new Client(this.url(a.instance));
        const r = await retry(() => c.post('/api/auth/recover', { token: acct.tokens[a.token]!.token, password: acct.password }));
        this.requests++;
        if (r.status === 202) this.clients.set(a.newSession, c);
        return res(r);
      }
      case 'signup': {
        const c = new Client(this.url(a.instance));
        const r = await retry(() =>
          c.post('/api/auth/signup', { email: a.email, password: a.password, ...(a.transport === 'token' ? { transport: 'token' } : {}) }),
        );
        this.requests++;
        if (a.transport === 'token') c.bearer = r.body?.sessionToken ?? null;
        this.clients.set(a.newSession, c);
        return res(r);
      }
      case 'login': {
        const acct = m.accounts[a.acct]!;
        const c = new Client(this.url(a.instance));
        const device = a.device === null ? undefined : this.devices.get(a.device);
        if (device) c.cookies.set(DEVICE, device);
        // From an existing browser: it presents the remember-me cookie it holds.
        const presented = a.from !== undefined && a.from !== null ? m.sessions[a.from]!.cookie : null;
        if (presented) c.cookies.set(REMEMBER, presented);
        const r = await retry(() =>
          c.post('/api/auth/login', { email: acct.email, password: a.password, remember: a.remember, transport: a.transport }),
        );
        this.requests++;
        if (a.transport === 'token') c.bearer = r.body?.sessionToken ?? null;
        c.cookies.delete(DEVICE);
        const cookie = c.cookies.get(REMEMBER) ?? null;
        this.keepCredentials(c);
        this.clients.set(a.newSession, c);
        return res(r, { presented, cookie });
      }
      case 'verify':
      case 'stepUp': {
        const { body, step } = await this.credential(m, a.s, a.cred, inst, a.t);
        const path = a.t === 'verify' ? '/api/auth/mfa/verify' : '/api/auth/step-up';
        const full = a.t === 'verify' && a.trustDevice !== null ? { ...body, trustDevice: true } : body;
        const r = await this.as(a.s, inst, (c) => c.post(path, full), a.t === 'verify' ? a.trustDevice : undefined);
        return res(r, { step, cookie: this.lastCookie });
      }
      case 'reauth':
        return res(await this.as(a.s, inst, (c) => c.post('/api/auth/reauth', { password: a.password })));
      case 'setup': {
        const path = a.kind === 'totp' ? '/api/mfa/totp/setup' : '/api/mfa/webauthn/register/options';
        const r = await this.as(a.s, inst, (c) => c.post(path));
        const material = a.kind === 'totp' ? { secret: r.body?.secret, serverId: r.body?.factorId } : { options: r.body };
        return res(r, { material });
      }
      case 'confirm': {
        const setup = m.sessions[a.owner]!.setups[a.kind];
        if (a.kind === 'totp') {
          const { code, step } = setup?.secret ? this.totp(setup.secret) : { code: '000000', step: undefined };
          const r = await this.as(a.s, inst, (c) => c.post('/api/mfa/totp/confirm', { code }));
          return res(r, { step, cookie: this.lastCookie });
        }
        const auth = this.authenticators[setup?.auth ?? this.newAuthenticator()]!;
        auth.options.origin = this.url(inst);
        const response = setup?.options ? auth.register(setup.options as { challenge: string; rp: { id?: string } }) : {};
        const r = await this.as(a.s, inst, (c) => c.post('/api/mfa/webauthn/register', { response }));
        return res(r, { cookie: this.lastCookie });
      }
      case 'deleteFactor': {
        const f = m.accounts[m.sessions[a.s]!.account]!.factors.find((x) => x.key === a.factor)!;
        const path = f.kind === 'totp' ? `/api/mfa/totp/${f.serverId}` : `/api/mfa/webauthn/${f.serverId}`;
        return res(await this.as(a.s, inst, (c) => c.delete(path)));
      }
      case 'regenCodes':
        return res(await this.as(a.s, inst, (c) => c.post('/api/mfa/recovery-codes')));
      case 'deleteSession': {
        // The target's server id, as the target itself sees it (a dead target: a made-up id).
        const list = await this.as(a.target, inst, (c) => c.get('/api/sessions'));
        const id = (list.body?.sessions as { id: string; current: boolean }[] | undefined)?.find((x) => x.current)?.id ?? 'no-such-session';
        return res(await this.as(a.s, inst, (c) => c.delete(`/api/sessions/${id}`)));
      }
      case 'logout': {
        // The browser presents its remember-me cookie too.
        const presented = m.sessions[a.s]!.cookie;
        const r = await this.as(a.s, inst, (c) => c.post('/api/auth/logout'), undefined, presented ?? null);
        return res(r, { presented, cookie: this.lastCookie });
      }
      case 'oidcSignIn':
        return this.oidcSignIn(a, inst);
      case 'upstreamSignIn': {
        this.linkSubs.set(a.newLink, a.sub);
        return this.upstreamSignIn(m, a);
      }
      case 'linkConfirm':
        return this.linkConfirm(a, inst);
      case 'unlink': {
        const id = this.linkIds.get(a.sub) ?? 'no-such-link';
        return res(await this.as(a.s, inst, (c) => c.delete(`/api/account/upstreams/${id}`)));
      }
      case 'oidcRefresh': {
        const grant = this.grants.get(a.grant);
        if (!grant) return { status: 400, body: { error: 'no refresh token' }, oidc: { outcome: 'error', error: 'none' } };
        const url = this.url(instance ?? a.instance);
        this.requests++;
        try {
          const tokens = await oidc.refreshTokenGrant(await this.servers.rp.config(url), grant.refresh);
          if (tokens.refresh_token) grant.refresh = tokens.refresh_token;
          return { status: 200, body: null, oidc: { outcome: 'tokens', ...assuranceOf(tokens) } };
        } catch (err) {
          const e = err as { status?: number; error?: string };
          if (typeof e.status === 'number' && e.status < 500 && e.error)
            return { status: e.status, body: { error: e.error }, oidc: { outcome: 'error', error: e.error } };
          return { status: 599, body: { error: String(err) } };
        }
      }
      case 'logoutReplaced': {
        const c = this.replacedClient(a.s, inst);
        if (!c) return { status: 0, body: null, replacedAt: null };
        this.requests++;
        return res(await retry(() => c.post('/api/auth/logout')), { replacedAt: this.replaced.get(a.s)!.at });
      }
      case 'changePassword':
        return res(await this.as(a.s, inst, (c) => c.post('/api/account/password', { currentPassword: a.current, newPassword: a.next })));
      case 'forgot': {
        const email = m.accounts[a.acct]!.email;
        const r = await retry(() => new Client(this.url(inst)).post('/api/auth/password/forgot', { email }));
        this.requests++;
        return res(r, { mailed: r.status === 202 ? await this.mailed(email, /reset-password\?token=([A-Za-z0-9_-]+)/) : null });
      }
      case 'reset': {
        const t = m.accounts[a.acct]!.tokens[a.token]!;
        this.requests++;
        return res(await retry(() => new Client(this.url(inst)).post('/api/auth/password/reset', { token: t.token, password: a.next })));
      }
      case 'changeEmail': {
        const r = await this.as(a.s, inst, (c) => c.post('/api/account/email', { email: a.next }));
        return res(r, { mailed: r.status === 202 ? await this.mailed(a.next, /confirm-email\?token=([A-Za-z0-9_-]+)/) : null });
      }
      case 'confirmEmail': {
        const t = m.accounts[a.acct]!.tokens[a.token]!;
        this.requests++;
        return res(await retry(() => new Client(this.url(inst)).post('/api/account/email/confirm', { token: t.token })));
      }
      case 'createToken':
        return res(await this.as(a.s, inst, (c) => c.post('/api/tokens', { name: 'search', scopes: ['account:read'] })));
      case 'useToken': {
        const t = m.accounts[a.acct]!.tokens[a.token]!;
        const c = new Client(this.url(inst));
        c.bearer = t.token;
        const r = await retry(() => c.get('/api/account'));
        const star = await retry(() => c.post('/api/tokens', { name: 'x', scopes: ['account:read'] }));
        this.requests += 2;
        return { status: r.status, body: { ...(typeof r.body === 'object' ? r.body : {}), starStatus: star.status } };
      }
      case 'copyCookie':
        return { status: 0, body: null };
      case 'restore': {
        const o = await this.restoreOnce(a.token, a.instance, a.newSession);
        return { status: o.status, body: o.body, presented: a.token, cookie: o.cookie };
      }
      case 'restoreMany': {
        // n browsers (tabs, or a thief and the owner) present one token at once, alternating instances.
        const many = await Promise.all(a.newSessions.map((id, i) => this.restoreOnce(a.token, a.instance + i, id)));
        return { status: many.some((o) => o.status === 200) ? 200 : many[0]!.status, body: null, presented: a.token, many };
      }
    }
  }

  /** One request with only a remember-me cookie (no session): a restore attempt. */
  private async restoreOnce(
    token: string,
    instance: number,
    newSession: number,
  ): Promise<{ status: number; body: any; cookie: string | null }> {
    const c = new Client(this.url(instance));
    c.cookies.set(REMEMBER, token);
    const r = await retry(() => c.get('/api/session'));
    this.requests++;
    const rotated = c.cookies.get(REMEMBER);
    const cookie = rotated && rotated !== token ? rotated : null;
    c.cookies.delete(REMEMBER);
    this.clients.set(newSession, c);
    return { status: r.status, body: r.body, cookie };
  }

  /** Sessions every instance already answered 401 for (after the model revoked them): not asked again. */
  private readonly dead = new Set<number>();

  /** Observations after a step: every session of `accounts` on every instance. */
  async probeSessions(m: ModelState, accounts: Set<number>): Promise<Probe[]> {
    const out: Probe[] = [];
    for (const s of Object.values(m.sessions)) {
      if (!accounts.has(s.account) || this.dead.has(s.id)) continue;
      const own = this.clients.get(s.id);
      if (!own) continue;
      let gone = 0;
      for (let i = 0; i < this.instances; i++) {
        // Only the session credential: no remember-me cookie may stand in.
        const c = new Client(this.url(i));
        if (own.bearer) c.bearer = own.bearer;
        const cookie = own.cookies.get(SESSION);
        if (cookie) c.cookies.set(SESSION, cookie);
        const r = await retry(() => c.get('/api/session'));
        const p = r.status === 200 && s.state === 'full' ? { status: 200 } : await retry(() => c.get('/api/account'));
        this.requests += 2;
        out.push({ t: 'session', s: s.id, instance: i, status: r.status, mfaAt: r.body?.mfaAt ?? null, protectedStatus: p.status });
        if (r.status === 401 && p.status === 401) gone++;
      }
      // A session the model holds revoked and every instance refuses stays so.
      if (s.state === 'revoked' && gone === this.instances) this.dead.add(s.id);
    }
    // Each token replaced in this step, once: it names no session any more (logout aside).
    for (const [s, old] of this.replaced) {
      if (old.probed || !accounts.has(m.sessions[s]!.account)) continue;
      old.probed = true;
      for (let i = 0; i < this.instances; i++) {
        const r = await retry(() => this.replacedClient(s, i)!.get('/api/account'));
        this.requests++;
        out.push({ t: 'replaced', s, instance: i, status: r.status });
      }
    }
    return out;
  }

  /** Password-only logins on every instance (then signed out), and the factor list. */
  async probeAccount(m: ModelState, acct: number): Promise<Probe[]> {
    const a = m.accounts[acct]!;
    const out: Probe[] = [];
    for (let i = 0; i < this.instances; i++) {
      const c = new Client(this.url(i));
      const r = await retry(() => c.post('/api/auth/login', { email: a.email, password: a.password }));
      await retry(() => c.post('/api/auth/logout'));
      this.requests += 2;
      out.push({ t: 'login', acct, instance: i, status: r.status, body: r.body });
    }
    const viewer = Object.values(m.sessions).find((s) => s.account === acct && s.state === 'full' && this.clients.has(s.id));
    if (viewer) {
      const r = await this.as(viewer.id, viewer.instance, (c) => c.get('/api/mfa'));
      if (r.status === 200) out.push({ t: 'factors', acct, ids: (r.body.factors as { id: string }[]).map((f) => f.id) });
    }
    return out;
  }

  /** Each recovery-code set handed out in this step: does one of its codes work? */
  async probeCodes(m: ModelState): Promise<Probe[]> {
    const out: Probe[] = [];
    for (const { acct, codes } of this.handedOutCodes) {
      const code = codes[codes.length - 1]!;
      const a = m.accounts[acct]!;
      const c = new Client(this.url(0));
      const login = await retry(() => c.post('/api/auth/login', { email: a.email, password: a.password }));
      if (login.status !== 202) continue;
      const r = await retry(() => c.post('/api/auth/mfa/verify', { method: 'recovery_code', code }));
      await retry(() => c.post('/api/auth/logout'));
      this.requests += 3;
      out.push({ t: 'codeWorks', acct, code, status: r.status });
    }
    this.handedOutCodes = [];
    return out;
  }
}
