/**
 * Federated login: Gatehouse as relying party (openid-client) of configured upstream
 * OpenID Providers. The decisions are core/federation.ts and the session state machine:
 *
 * - start: a flow (state, nonce, PKCE verifier sealed; handle only as hash) and the
 *   upstream's authorization URL;
 * - callback: the flow is taken once, openid-client checks state, issuer, PKCE (at the
 *   upstream's token endpoint), the ID token's signature, audience and nonce. A linked
 *   identity opens a session through `AuthService.establish` with the upstream as first
 *   factor (pending when the account has a second factor, unless trusted upstream MFA);
 *   an unlinked one becomes a pending link, never a session;
 * - confirmLink / unlink: ★ account changes under the account lock.
 */
import * as oidc from 'openid-client';
import type { UpstreamOptions } from '../config.js';
import { InvalidRequestError, NotFoundError, ServiceUnavailableError, UnauthenticatedError } from '../core/errors.js';
import { normaliseEmail, parseEmail, type EmailAddress } from '../core/email.js';
import { decideUpstreamLogin, mayConfirmLink, upstreamMfaTrusted } from '../core/federation.js';
import type { FederationStore } from '../store/federation.js';
import type { UserStore } from '../store/users.js';
import type { AccountChanges } from './account-changes.js';
import type { AuthService, LoginResult } from './auth.js';
import type { RequestContext } from './context.js';
import { hashToken, newId, randomToken, type SecretBox } from './keys.js';
import type { SecurityLog } from './security-log.js';
import type { PasswordHasher } from './passwords.js';
import type { ActiveSession } from './sessions.js';

/** The address in Gatehouse's one grammar (core/email.ts), or null when it does not pass. */
function wellFormed(email: string): EmailAddress | null {
  const parsed = parseEmail(email);
  return parsed.ok ? parsed.email : null;
}

/** Seconds a flow (at the upstream, or a link waiting for the account's factors) lives. */
export const FEDERATION_FLOW_TTL = 600;

/** The upstream sign-in failed its checks (state, PKCE, nonce, signature, issuer) or was refused upstream. */
export class UpstreamLoginError extends InvalidRequestError {
  constructor(message = 'The sign-in with the other provider could not be completed. Start again.') {
    super(message);
  }
}

export type UpstreamCallbackResult =
  | { kind: 'signed_in'; login: LoginResult; upstream: string; created: boolean }
  | { kind: 'link_pending'; handle: string; email: string | null; upstream: string };

interface FlowChecks {
  state: string;
  nonce: string;
  verifier: string;
}

const checksContext = (handleHash: string) => `federation-flow/${handleHash}`;

export class FederationService {
  private readonly discovered = new Map<string, Promise<oidc.Configuration>>();

  constructor(
    private readonly store: FederationStore,
    private readonly users: UserStore,
    private readonly auth: AuthService,
    private readonly accounts: AccountChanges,
    private readonly log: SecurityLog,
    private readonly box: SecretBox,
    private readonly passwords: PasswordHasher,
    private readonly upstreams: readonly UpstreamOptions[],
    private readonly pagesUrl: () => string,
  ) {}

  list(): readonly UpstreamOptions[] {
    return this.upstreams;
  }

  private upstream(name: string): UpstreamOptions {
    const u = this.upstreams.find((x) => x.name === name);
    if (!u) throw new NotFoundError('No such sign-in provider.');
    return u;
  }

  callbackUrl(name: string): string {
    return `${this.pagesUrl()}/sign-in/upstream/${name}/callback`;
  }

  /** The upstream's metadata (discovery once; a failed discovery is retried next time). */
  private configOf(u: UpstreamOptions): Promise<oidc.Configuration> {
    let found = this.discovered.get(u.name);
    if (!found) {
      const insecure = new URL(u.issuer).protocol === 'http:';
      found = oidc
        .discovery(
          new URL(u.issuer),
          u.clientId,
          u.clientSecret ?? undefined,
          u.clientSecret ? oidc.ClientSecretBasic(u.clientSecret) : oidc.None(),
          insecure ? { execute: [oidc.allowInsecureRequests], timeout: 10 } : { timeout: 10 },
        )
        .catch((err: unknown) => {
          this.discovered.delete(u.name);
          throw new ServiceUnavailableError(30, `The sign-in provider "${u.name}" cannot be reached: ${(err as Error).message}`);
        });
      this.discovered.set(u.name, found);
    }
    return found;
  }

  /** Begins an upstream sign-in: the browser keeps `handle` (cookie) and goes to `url`. */
  async start(name: string, now: number): Promise<{ handle: string; url: string }> {
    const u = this.upstream(name);
    const config = await this.configOf(u);
    const checks: FlowChecks = { state: oidc.randomState(), nonce: oidc.randomNonce(), verifier: oidc.randomPKCECodeVerifier() };
    const handle = randomToken();
    const handleHash = hashToken(handle);
    await this.store.insertFlow({
      handle_hash: handleHash,
      kind: 'authorizing',
      upstream: u.name,
      checks_enc: this.box.encrypt(JSON.stringify(checks), checksContext(handleHash)),
      issuer: null,
      subject: null,
      email: null,
      target_user_id: null,
      created_at: now,
      expires_at: now + FEDERATION_FLOW_TTL * 1000,
      used_at: null,
    });
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: this.callbackUrl(u.name),
      scope: u.scope,
      state: checks.state,
      nonce: checks.nonce,
      code_challenge: await oidc.calculatePKCECodeChallenge(checks.verifier),
      code_challenge_method: 'S256',
    });
    return { handle, url: url.href };
  }

  /**
   * The upstream sent the browser back. `query` is the callback's query string; `handle`
   * the flow cookie. `signedIn` is the browser's full Gatehouse session, if any.
   */
  async callback(
    name: string,
    handle: string | undefined,
    query: string,
    signedIn: ActiveSession | null,
    ctx: RequestContext,
  ): Promise<UpstreamCallbackResult> {
    const u = this.upstream(name);
    if (!handle) throw new UpstreamLoginError('This sign-in was not started in this browser (or it expired). Start again.');
    const handleHash = hashToken(handle);
    const flow = await this.store.takeFlow(handleHash, 'authorizing', ctx.now);
    if (!flow || flow.upstream !== u.name || !flow.checks_enc)
      throw new UpstreamLoginError('This sign-in expired or was already used. Start again.');
    const checks = JSON.parse(this.box.decrypt(flow.checks_enc, checksContext(handleHash))) as FlowChecks;
    const config = await this.configOf(u);
    const current = new URL(`${this.callbackUrl(u.name)}${query}`);
    let claims: oidc.IDToken;
    try {
      const tokens = await oidc.authorizationCodeGrant(config, current, {
        pkceCodeVerifier: checks.verifier,
        expectedState: checks.state,
        expectedNonce: checks.nonce,
        idTokenExpected: true,
      });
      claims = tokens.claims()!;
    } catch (err) {
      if (err instanceof TypeError && !(err instanceof oidc.ClientError)) throw new ServiceUnavailableError(30);
      // Which check failed, never what was sent (no codes or tokens in it).
      const reason =
        err instanceof oidc.ResponseBodyError || err instanceof oidc.AuthorizationResponseError
          ? err.error
          : String((err as Error & { cause?: Error }).cause?.message ?? (err as Error).message).slice(0, 120);
      throw new UpstreamLoginError(`The sign-in with the other provider could not be completed (${reason}). Start again.`);
    }
    const issuer = config.serverMetadata().issuer;
    const email = typeof claims.email === 'string' ? claims.email : null;
    const linked = await this.store.findIdentity(issuer, claims.sub);
    let emailMatch: string | null = null;
    if (email && !linked) {
      try {
        emailMatch = (await this.users.findByNormalizedEmail(normaliseEmail(email)))?.id ?? null;
      } catch {
        emailMatch = null;
      }
    }
    const address = email === null ? null : wellFormed(email);
    let step = decideUpstreamLogin({
      linkedUserId: linked?.user_id ?? null,
      emailMatchUserId: emailMatch,
      emailVerified: claims.email_verified === true,
      signedInUserId: signedIn && signedIn.facts.state === 'full' ? signedIn.userId : null,
      mayCreateAccount: u.createAccounts && address !== null,
    });
    if (step.kind === 'create_account') {
      const created = await this.createAccount(u, issuer, claims.sub, address!, ctx);
      if (created) return { kind: 'signed_in', login: created, upstream: u.name, created: true };
      // The address was taken meanwhile (a sign-up, a parallel sign-in): never that account's, only a pending link to it.
      step = { kind: 'link_pending', targetUserId: (await this.users.findByNormalizedEmail(address!.key))?.id ?? null };
    }
    if (step.kind === 'sign_in') {
      const user = await this.users.findById(step.userId);
      if (!user) throw new UpstreamLoginError();
      const trustedMfa = upstreamMfaTrusted({ acr: claims.acr, amr: claims.amr }, u);
      const login = await this.auth.establish(
        { id: user.id, email: user.email },
        JSON.parse(user.factor_methods) as string[],
        { kind: 'upstream', trustedMfa },
        ctx,
        'cookie',
        false,
      );
      return { kind: 'signed_in', login, upstream: u.name, created: false };
    }
    const linkHandle = randomToken();
    await this.store.insertFlow({
      handle_hash: hashToken(linkHandle),
      kind: 'link_pending',
      upstream: u.name,
      checks_enc: null,
      issuer,
      subject: claims.sub,
      email,
      target_user_id: step.targetUserId,
      created_at: ctx.now,
      expires_at: ctx.now + FEDERATION_FLOW_TTL * 1000,
      used_at: null,
    });
    return { kind: 'link_pending', handle: linkHandle, email, upstream: u.name };
  }

  /**
   * Just-in-time account for an upstream identity (`createAccounts`): the account, with a
   * random password nobody knows (a password can be set through a password reset to the
   * verified address), and its link to the identity, in one transaction. Null when the
   * address is taken (unique index) by then. The session has the upstream as first factor
   * only, also when the upstream's MFA is trusted: the account has no factor of its own yet,
   * and the state machine sends it to enrolment when the policy requires one.
   */
  private async createAccount(
    u: UpstreamOptions,
    issuer: string,
    subject: string,
    address: EmailAddress,
    ctx: RequestContext,
  ): Promise<LoginResult | null> {
    const user = { id: newId(), email: address.address, email_normalized: address.key, created_at: ctx.now, updated_at: ctx.now };
    const passwordHash = await this.passwords.hash(randomToken());
    const created = await this.store.transaction(async (trx) => {
      if (!(await this.users.insert({ ...user, password_hash: passwordHash }, trx))) return false;
      const linked = await this.store.link(trx, {
        id: newId(),
        user_id: user.id,
        upstream: u.name,
        issuer,
        subject,
        email: address.address,
        created_at: ctx.now,
      });
      // Linked by a parallel sign-in of the same identity a moment ago: this one gives way.
      if (!linked) throw new UpstreamLoginError('This sign-in was just linked to an account. Sign in again.');
      await this.log.record('account.created', user.id, ctx, { upstream: u.name }, trx);
      await this.log.record('upstream.linked', user.id, ctx, { upstream: u.name }, trx);
      return true;
    });
    if (!created) return null;
    return this.auth.establish({ id: user.id, email: user.email }, [], { kind: 'upstream', trustedMfa: false }, ctx, 'cookie', false);
  }

  /** The pending link a handle names (not used up), for the confirmation page. */
  async pendingLink(handle: string | undefined, now: number) {
    return handle ? this.store.peekFlow(hashToken(handle), 'link_pending', now) : null;
  }

  /**
   * Links the pending upstream identity to the acting session's account: a ★ change under
   * the account lock (freshness judged again there), by a full session of the account the
   * link names.
   */
  async confirmLink(handle: string | undefined, session: ActiveSession, ctx: RequestContext): Promise<void> {
    const pending = await this.pendingLink(handle, ctx.now);
    if (!pending) throw new UpstreamLoginError('This link request expired or was already used. Sign in with the other provider again.');
    const refusal = mayConfirmLink({
      sessionState: session.facts.state,
      sessionUserId: session.userId,
      targetUserId: pending.target_user_id,
      expiresAt: pending.expires_at,
      now: ctx.now,
    });
    if (refusal === 'not_full') throw new UnauthenticatedError();
    if (refusal === 'other_account')
      throw new UpstreamLoginError('This sign-in belongs to another account: sign in to that account to link it.');
    if (refusal === 'expired') throw new UpstreamLoginError('This link request expired. Sign in with the other provider again.');
    await this.accounts.apply(session.userId, ctx.now, {
      actingSession: { id: session.id, tokenHash: session.tokenHash },
      voidsSetups: false,
      fresh: { session: session.facts, risk: session.risk },
      run: async (trx) => {
        const taken = await this.store.takeFlow(pending.handle_hash, 'link_pending', ctx.now, trx);
        if (!taken) throw new UpstreamLoginError('This link request was already used.');
        const linked = await this.store.link(trx, {
          id: newId(),
          user_id: session.userId,
          upstream: taken.upstream,
          issuer: taken.issuer!,
          subject: taken.subject!,
          email: taken.email,
          created_at: ctx.now,
        });
        if (!linked) throw new UpstreamLoginError('This sign-in is already linked to an account.');
        await this.log.record('upstream.linked', session.userId, ctx, { upstream: taken.upstream }, trx);
      },
    });
  }

  /** ★: removes a linked upstream identity of the acting session's account. */
  async unlink(session: ActiveSession, id: string, ctx: RequestContext): Promise<void> {
    await this.accounts.apply(session.userId, ctx.now, {
      actingSession: { id: session.id, tokenHash: session.tokenHash },
      voidsSetups: false,
      fresh: { session: session.facts, risk: session.risk },
      run: async (trx) => {
        if (!(await this.store.unlink(trx, session.userId, id))) throw new NotFoundError('No such linked sign-in.');
        await this.log.record('upstream.unlinked', session.userId, ctx, {}, trx);
      },
    });
  }

  async linkedTo(userId: string) {
    return (await this.store.listFor(userId)).map((r) => ({
      id: r.id,
      upstream: r.upstream,
      email: r.email,
      createdAt: new Date(r.created_at).toISOString(),
    }));
  }
}
