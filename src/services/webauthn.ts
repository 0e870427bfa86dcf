/**
 * WebAuthn / passkeys as a second factor (@simplewebauthn/server).
 *
 * - Registration is a sensitive action (the routes say so); it creates a `factors` row
 *   of type `webauthn` plus the credential's public data, in one transaction that also
 *   refreshes users.factor_methods.
 * - Every challenge is stored as a SHA-256 hash, bound to one session and one purpose,
 *   expires after CHALLENGE_TTL_SECONDS and is consumed by a conditional update.
 * - Assertions are checked by `check`, which the SecondFactorVerifier calls under the same
 *   per-session and per-account limits as codes.
 * - amr: `swk` for a backed-up / multi-device credential, `hwk` otherwise, plus `user`
 *   when the authenticator verified the user. Only a UV check is phishing-resistant.
 * - A sign counter that does not move forward (for an authenticator that has one) is a
 *   possible clone: the assertion is refused, counted on the credential and evented. Backup
 *   state changes are recorded and evented.
 */
import {
  generateAuthenticationOptions,
  generateRegistrationOptions,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
  type AuthenticationResponseJSON,
  type PublicKeyCredentialCreationOptionsJSON,
  type PublicKeyCredentialRequestOptionsJSON,
  type RegistrationResponseJSON,
} from '@simplewebauthn/server';
import { timingSafeEqual } from 'node:crypto';
import { InvalidRequestError, NoPendingSetupError } from '../core/errors.js';
import { newSetup, SETUP_TTL_SECONDS } from '../core/factor-lifecycle.js';
import type { AuthMethod } from '../core/session-state.js';
import type { UserStore } from '../store/users.js';
import type { WebAuthnStore } from '../store/webauthn.js';
import type { RequestContext } from './context.js';
import { confirmFactor, removeFactor, type ConfirmedFactor, type FactorChangeDeps } from './factor-changes.js';
import { hashToken, newId } from './keys.js';
import { AccountGoneError } from './account-changes.js';
import type { ActiveSession } from './sessions.js';

export const CHALLENGE_TTL_SECONDS = 300;

export type ChallengePurpose = 'register' | 'authenticate';

export interface PasskeySummary {
  id: string;
  label: string | null;
  createdAt: string;
  lastUsedAt: string | null;
  deviceType: string;
  backedUp: boolean;
  userVerified: boolean;
}

export interface WebAuthnOptions {
  /** Read lazily: in development the public URL follows the listening port. */
  publicUrl: () => string;
  /** Origins a response may come from (in development both localhost and 127.0.0.1). */
  acceptedOrigins?: () => string[];
  rpName: string;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function sameHash(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function parseTransports(value: string): string[] {
  try {
    const parsed: unknown = JSON.parse(value);
    return Array.isArray(parsed) ? parsed.filter((t): t is string => typeof t === 'string') : [];
  } catch {
    return [];
  }
}

export function webauthnAmr(info: { backedUp: boolean; deviceType: string; userVerified: boolean }): AuthMethod[] {
  const amr: AuthMethod[] = [info.backedUp || info.deviceType === 'multiDevice' ? 'swk' : 'hwk'];
  if (info.userVerified) amr.push('user');
  return amr;
}

export class WebAuthnService {
  constructor(
    private readonly changes: FactorChangeDeps,
    private readonly users: UserStore,
    private readonly store: WebAuthnStore,
    private readonly options: WebAuthnOptions,
  ) {}

  /** The relying party, derived from the passkey URL (see PublicOrigins.passkeyUrl) on each use; `origins`/`rpIDs` are what verification accepts. */
  relyingParty(): { rpID: string; origin: string; origins: string[]; rpIDs: string[] } {
    const url = new URL(this.options.publicUrl());
    const origins = this.options.acceptedOrigins?.() ?? [url.origin];
    return { rpID: url.hostname, origin: url.origin, origins, rpIDs: [...new Set(origins.map((o) => new URL(o).hostname))] };
  }

  async list(userId: string): Promise<PasskeySummary[]> {
    const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());
    return (await this.store.listForUser(userId)).map((c) => ({
      id: c.factor_id,
      label: c.label,
      createdAt: new Date(c.created_at).toISOString(),
      lastUsedAt: iso(c.last_used_at),
      deviceType: c.device_type,
      backedUp: c.backed_up === 1,
      userVerified: c.user_verified === 1,
    }));
  }

  private async putChallenge(session: ActiveSession, purpose: ChallengePurpose, challenge: string, now: number): Promise<void> {
    const stored = await this.store.putChallenge({
      id: newId(),
      session_id: session.id,
      purpose,
      challenge_hash: hashToken(challenge),
      expires_at: now + CHALLENGE_TTL_SECONDS * 1000,
    });
    // The session ended while the challenge was being made (a concurrent logout).
    if (!stored) throw new AccountGoneError();
  }

  /** A consumer for the library: true once, for the challenge this session was given. */
  private challengeConsumer(sessionId: string, purpose: ChallengePurpose, now: number) {
    return (challenge: string) => this.store.consumeChallenge(sessionId, purpose, hashToken(challenge), now);
  }

  /**
   * Begins a passkey registration in this session: the challenge is an unconfirmed
   * factor set-up (I3), bound to this session and the account's epoch, and expires.
   */
  async registrationOptions(session: ActiveSession, ctx: RequestContext): Promise<PublicKeyCredentialCreationOptionsJSON> {
    const { rpID } = this.relyingParty();
    const existing = await this.store.listForUser(session.userId);
    const epoch = await this.users.epochOf(session.userId);
    if (epoch === undefined) throw new NoPendingSetupError();
    const ttlSeconds = Math.min(CHALLENGE_TTL_SECONDS, SETUP_TTL_SECONDS);
    const options = await generateRegistrationOptions({
      rpName: this.options.rpName,
      rpID,
      userName: session.email,
      userID: new TextEncoder().encode(session.userId),
      attestationType: 'none',
      excludeCredentials: existing.map((c) => ({ id: c.credential_id, transports: parseTransports(c.transports) })),
      authenticatorSelection: { residentKey: 'preferred', userVerification: 'preferred' },
      timeout: ttlSeconds * 1000,
    });
    const setup = newSetup(session.id, epoch, ctx.now);
    const stored = await this.changes.setups.replace({
      id: newId(),
      user_id: session.userId,
      session_id: session.id,
      type: 'webauthn',
      secret_enc: null,
      challenge_hash: hashToken(options.challenge),
      account_epoch: setup.accountEpoch,
      created_at: ctx.now,
      expires_at: Math.min(setup.expiresAt, ctx.now + ttlSeconds * 1000),
    });
    // The session ended while the set-up was being made (a concurrent logout).
    if (!stored) throw new AccountGoneError();
    return options;
  }

  /**
   * Verifies a registration response against this session's set-up and activates the
   * passkey, following the factor lifecycle: the account's first factor makes the session
   * full and fresh and comes with recovery codes; an additional one needs a fresh existing
   * factor and changes no freshness.
   */
  async verifyRegistration(
    session: ActiveSession,
    response: unknown,
    label: string | null,
    ctx: RequestContext,
  ): Promise<ConfirmedFactor & { factorId: string; amr: AuthMethod[] }> {
    const refused = () =>
      new InvalidRequestError('The passkey could not be registered. Try again.', [
        { path: 'response', message: 'not a valid registration' },
      ]);
    const setup = await this.changes.setups.findLive(session.id, 'webauthn', ctx.now);
    if (!setup?.challenge_hash) throw new NoPendingSetupError();
    if (!isObject(response) || typeof response.id !== 'string') throw refused();
    const { rpIDs, origins } = this.relyingParty();
    const expectedHash = setup.challenge_hash;
    let verification;
    try {
      verification = await verifyRegistrationResponse({
        response: response as unknown as RegistrationResponseJSON,
        expectedChallenge: (challenge: string) => sameHash(hashToken(challenge), expectedHash),
        expectedOrigin: origins,
        expectedRPID: rpIDs,
        requireUserVerification: false,
      });
    } catch {
      throw refused();
    }
    if (!verification.verified) throw refused();
    const info = verification.registrationInfo;
    const credentialId = info.credential.id;
    if (await this.store.credentialIdTaken(credentialId)) throw refused();

    const factorId = setup.id;
    const amr = webauthnAmr({ backedUp: info.credentialBackedUp, deviceType: info.credentialDeviceType, userVerified: info.userVerified });
    const details = { deviceType: info.credentialDeviceType, backedUp: info.credentialBackedUp, userVerified: info.userVerified };
    const confirmed = await confirmFactor(this.changes, session, setup, { type: 'webauthn', amr, details }, ctx, async (trx) => {
      await trx
        .insertInto('factors')
        .values({
          id: factorId,
          user_id: session.userId,
          type: 'webauthn',
          secret_enc: null,
          last_used_step: null,
          confirmed_at: ctx.now,
          created_at: ctx.now,
          label: label?.trim().slice(0, 64) || 'Passkey',
        })
        .execute();
      await this.store.insert(trx, {
        factor_id: factorId,
        user_id: session.userId,
        credential_id: credentialId,
        public_key: Buffer.from(info.credential.publicKey).toString('base64url'),
        counter: info.credential.counter,
        transports: JSON.stringify(info.credential.transports ?? []),
        device_type: info.credentialDeviceType,
        backed_up: info.credentialBackedUp ? 1 : 0,
        user_verified: info.userVerified ? 1 : 0,
        aaguid: info.aaguid,
        last_used_at: ctx.now,
      });
    }).catch((error: unknown) => {
      // A parallel registration of the same credential loses on the unique index.
      if (error instanceof Error && /unique|duplicate/i.test(error.message)) throw refused();
      throw error;
    });
    return { ...confirmed, factorId, amr };
  }

  /** Options for an assertion at login (pending session) or step-up (full session). */
  async authenticationOptions(session: ActiveSession, ctx: RequestContext): Promise<PublicKeyCredentialRequestOptionsJSON> {
    const credentials = await this.store.listForUser(session.userId);
    if (credentials.length === 0) {
      throw new InvalidRequestError('This account has no passkey.', [{ path: 'method', message: 'no passkey registered' }]);
    }
    const options = await generateAuthenticationOptions({
      rpID: this.relyingParty().rpID,
      allowCredentials: credentials.map((c) => ({ id: c.credential_id, transports: parseTransports(c.transports) })),
      userVerification: 'preferred',
      timeout: CHALLENGE_TTL_SECONDS * 1000,
    });
    await this.putChallenge(session, 'authenticate', options.challenge, ctx.now);
    return options;
  }

  /**
   * Checks an assertion for this account against the challenge issued to this session.
   * Resolves with the amr values, or null when it is not acceptable. Never throws for bad
   * input: the caller counts the failure under its limits.
   */
  async check(userId: string, sessionId: string, response: unknown, ctx: RequestContext): Promise<AuthMethod[] | null> {
    if (!isObject(response) || typeof response.id !== 'string' || response.id.length > 1024) return null;
    const credential = await this.store.findForUser(userId, response.id);
    if (!credential) return null;
    const { rpIDs, origins } = this.relyingParty();
    let verification;
    try {
      verification = await verifyAuthenticationResponse({
        response: response as unknown as AuthenticationResponseJSON,
        expectedChallenge: this.challengeConsumer(sessionId, 'authenticate', ctx.now),
        expectedOrigin: origins,
        expectedRPID: rpIDs,
        // The library's own counter check throws; we compare below to record and event it.
        credential: { id: credential.credential_id, publicKey: Buffer.from(credential.public_key, 'base64url'), counter: 0 },
        requireUserVerification: false,
      });
    } catch {
      return null;
    }
    if (!verification.verified) return null;
    const info = verification.authenticationInfo;

    const stored = Number(credential.counter);
    if ((stored > 0 || info.newCounter > 0) && info.newCounter <= stored) {
      await this.store.recordRegression(credential.factor_id);
      await this.changes.log.record('mfa.webauthn_sign_count_regression', userId, ctx, {
        factorId: credential.factor_id,
        storedCounter: stored,
        presentedCounter: info.newCounter,
      });
      return null;
    }
    const backedUp = info.credentialBackedUp;
    if (!(await this.store.recordUse(credential.factor_id, stored, { counter: info.newCounter, backedUp, now: ctx.now }))) return null;
    if (backedUp !== (credential.backed_up === 1)) {
      await this.changes.log.record('mfa.webauthn_backup_state_changed', userId, ctx, { factorId: credential.factor_id, backedUp });
    }
    return webauthnAmr({ backedUp, deviceType: info.credentialDeviceType, userVerified: info.userVerified });
  }

  /** Removes a passkey (always a confirmed factor) and its credential. */
  async remove(session: ActiveSession, factorId: string, ctx: RequestContext): Promise<void> {
    await removeFactor(this.changes, session, factorId, 'webauthn', ctx, (trx) =>
      this.store.deleteForFactor(trx, session.userId, factorId),
    );
  }
}
