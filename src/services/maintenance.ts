/**
 * Deletes rows that can no longer be used: expired sessions, remember-me tokens, trusted
 * devices, WebAuthn challenges, e-mail change and password reset tokens, sent mail, the
 * OpenID Provider's expired payloads and federated-login flows, idle limiter rows.
 * Every check of those rows already refuses an expired one; this only keeps the tables
 * (and what a stolen database file holds) small. Runs on an unref'd timer.
 */
import type { EmailChangeStore, PasswordResetStore } from '../store/account-tokens.js';
import type { RememberTokenStore, TrustedDeviceStore } from '../store/credentials.js';
import type { MailOutboxStore } from '../store/mail-outbox.js';
import type { SessionStore } from '../store/sessions.js';
import type { WebAuthnStore } from '../store/webauthn.js';
import type { FactorSetupStore } from '../store/factors.js';

export interface ExpiringStores {
  sessions: Pick<SessionStore, 'deleteExpired'>;
  rememberTokens: Pick<RememberTokenStore, 'deleteExpired'>;
  trustedDevices: Pick<TrustedDeviceStore, 'deleteExpired'>;
  webauthn: Pick<WebAuthnStore, 'deleteExpiredChallenges'>;
  factorSetups: Pick<FactorSetupStore, 'deleteExpired'>;
  emailChanges: Pick<EmailChangeStore, 'deleteExpired'>;
  passwordResets: Pick<PasswordResetStore, 'deleteExpired'>;
  outbox: Pick<MailOutboxStore, 'deleteSent'>;
  /** The OpenID Provider's codes, tokens, grants, sessions and interactions. */
  oidcPayloads: { deleteExpired(now: number): Promise<number> };
  /** Upstream sign-ins in progress and pending links (federated login). */
  federationFlows: { deleteExpired(now: number): Promise<number> };
  /** Attempt counters and per-address windows that decide nothing any more. */
  limits: { deleteIdle(now: number): Promise<number> };
}

export type PurgeCounts = Record<keyof ExpiringStores, number>;

export interface MaintenanceOptions {
  /** Between two runs. */
  intervalMs?: number;
  /** From `start()` to the first run. */
  firstRunMs?: number;
  /**
   * How long a sent message's row is kept. The notification throttle looks back at recent
   * messages (five minutes for failed second-factor mails), so this must stay well above.
   */
  sentMailRetentionMs?: number;
  /**
   * How long remember-me rows outlive their chain's expiry. A revoked or rotated token is
   * the tombstone that recognises a late replay (issue 18); a session restored just before
   * the chain expired lives up to a session lifetime more, so keep at least that.
   */
  rememberTombstoneMs?: number;
}

interface Logger {
  info(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export class MaintenanceService {
  private readonly intervalMs: number;
  private readonly firstRunMs: number;
  private readonly sentMailRetentionMs: number;
  private readonly rememberTombstoneMs: number;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<unknown> | null = null;

  constructor(
    private readonly stores: ExpiringStores,
    private readonly logger: Logger,
    options: MaintenanceOptions = {},
  ) {
    this.intervalMs = options.intervalMs ?? 10 * 60_000;
    this.firstRunMs = options.firstRunMs ?? 30_000;
    this.sentMailRetentionMs = options.sentMailRetentionMs ?? 24 * 60 * 60_000;
    this.rememberTombstoneMs = options.rememberTombstoneMs ?? 0;
  }

  /**
   * Deletes every row that expired at or before `now` (remember-me rows only once their
   * tombstone time has passed too); the number deleted per table.
   */
  async purgeExpired(now: number = Date.now()): Promise<PurgeCounts> {
    const s = this.stores;
    return {
      sessions: await s.sessions.deleteExpired(now),
      rememberTokens: await s.rememberTokens.deleteExpired(now - this.rememberTombstoneMs),
      trustedDevices: await s.trustedDevices.deleteExpired(now),
      webauthn: await s.webauthn.deleteExpiredChallenges(now),
      factorSetups: await s.factorSetups.deleteExpired(now),
      emailChanges: await s.emailChanges.deleteExpired(now),
      passwordResets: await s.passwordResets.deleteExpired(now),
      outbox: await s.outbox.deleteSent(now - this.sentMailRetentionMs),
      oidcPayloads: await s.oidcPayloads.deleteExpired(now),
      federationFlows: await s.federationFlows.deleteExpired(now),
      limits: await s.limits.deleteIdle(now),
    };
  }

  /** Runs `purgeExpired` shortly after, then every interval; the timer never keeps the process alive. */
  start(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => this.tick(), this.firstRunMs).unref();
  }

  /** Stops the timer and waits for a run in flight. */
  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running;
  }

  private tick(): void {
    const run = this.purgeExpired()
      .then((counts) => {
        if (Object.values(counts).some((n) => n > 0)) this.logger.info({ purged: counts }, 'expired rows purged');
      })
      .catch((err: unknown) => this.logger.error({ err }, 'purging expired rows failed'));
    this.running = run;
    void run.finally(() => {
      if (this.running === run) this.running = null;
      if (this.timer) this.timer = setTimeout(() => this.tick(), this.intervalMs).unref();
    });
  }
}
