/**
 * Assembles Gatehouse from its parts: database, keys, stores and use cases, all wired
 * through their constructors. The object this returns is internal (the HTTP layer, the
 * pages, the server and the CLI use it); host applications get the facade in facade.ts.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Redis } from 'ioredis';
import type { Transaction } from 'kysely';
import pino, { type Logger } from 'pino';
import { withPublicUrl, type GatehouseConfig } from './config.js';
import { PublicOrigins } from './core/origins.js';
import { createMail, type Mail } from './mail/index.js';
import { ApiTokenService } from './services/api-tokens.js';
import { AuthService } from './services/auth.js';
import { EmailChangeService } from './services/email-change.js';
import { FactorService } from './services/factors.js';
import { AccountChanges } from './services/account-changes.js';
import type { FactorChangeDeps } from './services/factor-changes.js';
import { assertKeyMatchesData, KeyedHasher, resolveSecretKey, SecretBox } from './services/keys.js';
import { KeyFingerprintStore } from './store/key-fingerprints.js';
import { createLimits, purgeIdleLimits, type Limits } from './services/limits.js';
import { LinkMailChannel } from './services/link-mail.js';
import { PasswordChangeService } from './services/password-change.js';
import { createPasswordResetLimits, PasswordResetService } from './services/password-reset.js';
import { PasswordHasher } from './services/passwords.js';
import { PolicyService } from './services/policy.js';
import { AdminService } from './services/admin.js';
import { AccountRecoveryStore } from './store/account-recoveries.js';
import { RememberMeService } from './services/remember-me.js';
import { SecondFactorVerifier } from './services/second-factor.js';
import { SecurityLog } from './services/security-log.js';
import { SessionService } from './services/sessions.js';
import { TrustedDeviceService } from './services/trusted-devices.js';
import { WebAuthnService } from './services/webauthn.js';
import { MaintenanceService } from './services/maintenance.js';
import { RememberTokenStore, TrustedDeviceStore } from './store/credentials.js';
import { EmailChangeCancelStore, EmailChangeStore, PasswordResetStore } from './store/account-tokens.js';
import { ApiTokenStore } from './store/api-tokens.js';
import { databaseAnswers, openDatabase, type DatabaseHandle } from './store/database.js';
import type { Database } from './store/schema.js';
import { EventStore } from './store/events.js';
import { FactorSetupStore, FactorStore, RecoveryCodeStore } from './store/factors.js';
import { SessionStore } from './store/sessions.js';
import { UserStore } from './store/users.js';
import { WebAuthnStore } from './store/webauthn.js';
// OIDC provider (issue 14)
import { purgeExpired as purgeExpiredOidcPayloads, revokeAccountGrants } from './oidc/adapter.js';
import { FederationService } from './services/federation.js';
import { FederationStore } from './store/federation.js';

export interface Gatehouse {
  config: GatehouseConfig;
  /** The public origin: configured, or in development localhost/127.0.0.1 at the listening port. */
  origins: PublicOrigins;
  logger: Logger;
  database: DatabaseHandle;
  stores: {
    users: UserStore;
    sessions: SessionStore;
    factors: FactorStore;
    factorSetups: FactorSetupStore;
    recoveryCodes: RecoveryCodeStore;
    events: EventStore;
  };
  keys: { box: SecretBox; hasher: KeyedHasher };
  limits: Limits;
  passwords: PasswordHasher;
  sessions: SessionService;
  log: SecurityLog;
  verifier: SecondFactorVerifier;
  auth: AuthService;
  /** Risk signals and MFA by role (docs/policy.md). */
  policy: PolicyService;
  /** Operator actions: roles, sessions, unlock, factor reset (docs/policy.md). */
  admin: AdminService;
  factors: FactorService;
  /** Serialised security changes of one account (the account lock). */
  accountChanges: AccountChanges;
  /** Passkeys. */
  webauthn: WebAuthnService;
  rememberMe: RememberMeService;
  trustedDevices: TrustedDeviceService;
  passwordChange: PasswordChangeService;
  /** Personal API tokens, e-mail change, password reset, mail outbox and notifications. */
  apiTokens: ApiTokenService;
  emailChange: EmailChangeService;
  passwordReset: PasswordResetService;
  mail: Mail;
  /** Federated login: upstream OpenID Providers as first factor (docs/oidc.md). */
  federation: FederationService;
  /** Deletes expired rows; `startServer` starts its timer, `close()` stops it. */
  maintenance: MaintenanceService;
  /**
   * Run when a browser signs out of Gatehouse (logout, the sign-out page, revoking the
   * current session), after its session ended: features that signed the same browser in
   * elsewhere end that too (the OpenID Provider's session and its relying parties).
   */
  signOutHooks: Array<(req: IncomingMessage, res: ServerResponse) => Promise<void>>;
  /**
   * Revokes every way into the account (sessions, and whatever features register here:
   * remember-me tokens, trusted devices), except the session `keepSessionId` if given.
   * Password change and reset call this.
   */
  revokeAccountAccess(userId: string, keepSessionId: string | undefined, trx: Transaction<Database>): Promise<void>;
  /** Whether requests can be served: the database and Redis (if configured) answer, not shutting down. */
  readiness(): Promise<{ ready: boolean; database: boolean; redis: boolean | null; closing: boolean }>;
  /** Shutting down: readiness answers not ready from now on (in-flight requests still finish). */
  beginDrain(): void;
  /** Releases the database and Redis connections. */
  close(): Promise<void>;
}

export interface AssemblyOptions {
  logger?: Logger;
}

/** A revocation of one kind of credential, run inside the account-locked transaction of the change. */
type AccessRevoker = (userId: string, keepSessionId: string | undefined, trx: Transaction<Database>) => Promise<void>;

/** Paths in log objects that must never be written out. */
export const REDACTED_LOG_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
  '*.password',
  '*.currentPassword',
  '*.newPassword',
  '*.code',
  '*.token',
  '*.secret',
  '*.sessionToken',
];

/**
 * A request URL as logged: query values (and bare query words) are redacted, because
 * mailed links carry their single-use token there (`/reset-password?token=…`).
 */
export function redactUrlQuery(url: string): string {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const parts = url
    .slice(q + 1)
    .split('&')
    .map((part) => {
      const eq = part.indexOf('=');
      const name = eq < 0 ? '' : part.slice(0, eq);
      return /^[A-Za-z0-9_.-]{1,32}$/.test(name) ? `${name}=[redacted]` : '[redacted]';
    });
  return `${url.slice(0, q + 1)}${parts.join('&')}`;
}

/** Fastify's request serializer, with the URL's query redacted. */
const requestSerializer = (req: { method?: string; url?: string; host?: string; ip?: string; socket?: { remotePort?: number } }) => ({
  method: req.method,
  url: redactUrlQuery(String(req.url ?? '')),
  host: req.host,
  remoteAddress: req.ip,
  remotePort: req.socket?.remotePort,
});

export async function assembleGatehouse(settings: Omit<GatehouseConfig, 'publicUrl'>, options: AssemblyOptions = {}): Promise<Gatehouse> {
  const origins = new PublicOrigins(settings.configuredPublicUrl);
  // The public URL is read from the origins on every access, never assigned.
  const config: GatehouseConfig = withPublicUrl(settings, () => origins.url());
  const logger =
    options.logger ??
    pino({ level: config.logLevel, redact: { paths: REDACTED_LOG_PATHS, censor: '[redacted]' }, serializers: { req: requestSerializer } });
  const secret = resolveSecretKey(config.secretKey, config.dataDir);
  if (secret.generated) {
    logger.warn(
      { file: `${config.dataDir}/secret.key` },
      'GATEHOUSE_SECRET_KEY is not set: generated a key into the data dir. Back it up; without it, TOTP secrets cannot be decrypted.',
    );
  }

  const database = await openDatabase(config.databaseUrl, {
    pool: {
      max: config.databasePoolMax,
      connectTimeoutMs: config.databaseConnectTimeoutSeconds * 1000,
      statementTimeoutMs: config.databaseStatementTimeoutSeconds * 1000,
    },
    migrate: config.migrate,
    onConnectionError: (err) => logger.warn({ err }, 'database connection lost; the pool reconnects by itself'),
  });
  const { db } = database;
  const redis = config.redisUrl
    ? new Redis(config.redisUrl, {
        lazyConnect: false,
        maxRetriesPerRequest: 2,
        enableOfflineQueue: true,
        connectTimeout: config.redisConnectTimeoutSeconds * 1000,
      })
    : null;
  // ioredis reconnects by itself; without a listener its errors would crash the process.
  // Logged once per outage, not per retry.
  let redisDown = false;
  redis?.on('error', (err) => {
    if (!redisDown) logger.warn({ err }, 'redis unreachable; reconnecting (requests that need it answer 503)');
    redisDown = true;
  });
  redis?.on('ready', () => {
    if (redisDown) logger.info('redis reachable again');
    redisDown = false;
  });
  let closing = false;

  const stores = {
    users: new UserStore(db, database),
    sessions: new SessionStore(db, database),
    factors: new FactorStore(db),
    factorSetups: new FactorSetupStore(db),
    recoveryCodes: new RecoveryCodeStore(db),
    events: new EventStore(db),
  };
  const keys = {
    box: new SecretBox(secret.key, config.previousSecretKeys),
    hasher: new KeyedHasher(secret.key, config.previousSecretKeys),
  };
  try {
    await assertKeyMatchesData(new KeyFingerprintStore(db), keys.box, secret.key, config.previousSecretKeys, config.now());
  } catch (err) {
    await database.close();
    throw err;
  }
  const limits = await createLimits(
    {
      addresses: redis ? { kind: 'redis', client: redis } : { kind: 'database', handle: database },
      // Lockouts and failure counts: the database is their source of truth (see createLimits).
      accounts: { kind: 'database', handle: database },
    },
    config.lockoutSeconds,
  );
  const passwords = new PasswordHasher(config.argon2, config.argon2.concurrency);
  const policy = new PolicyService(db, {
    deployment: {
      mfaRequired: config.mfaRequired,
      stepUpMaxAgeSeconds: config.stepUpMaxAgeSeconds,
      enrolmentGraceSeconds: config.enrolmentGraceDays * 86_400,
    },
    roles: config.roles,
    risk: config.risk,
    phishingResistantOnly: config.stepUpPhishingResistant,
  });
  // Freshness judged again under the account lock uses the gate's window (roles, risk).
  const accountChanges = new AccountChanges(db, stores.users, stores.sessions, stores.factors, stores.factorSetups, (roles, risk) =>
    policy.freshnessFor(roles, risk),
  );
  const sessions = new SessionService(stores.sessions, accountChanges, {
    pendingTtlSeconds: config.pendingTtlSeconds,
    sessionTtlSeconds: config.sessionTtlSeconds,
    sessionIdleTtlSeconds: config.sessionIdleTtlSeconds,
  });
  const log = new SecurityLog(db, stores.events);
  // The factor lifecycle: every change to an account's factors runs under its lock.
  const factorRemovedHooks: Array<(userId: string) => Promise<void>> = [];
  const factorChanges: FactorChangeDeps = {
    accounts: accountChanges,
    factors: stores.factors,
    setups: stores.factorSetups,
    recoveryCodes: stores.recoveryCodes,
    sessions,
    log,
    hasher: keys.hasher,
    mfaRequired: config.mfaRequired,
    removedHooks: factorRemovedHooks,
  };
  const factors = new FactorService(factorChanges, stores.users, keys.box, { issuer: config.productName, codeLimit: limits.mfaPerAccount });

  // Passkeys: assertions are checked inside the verifier's limits.
  const webauthnStore = new WebAuthnStore(db);
  const webauthn = new WebAuthnService(factorChanges, stores.users, webauthnStore, {
    publicUrl: () => origins.passkeyUrl(),
    acceptedOrigins: () => origins.accepted(),
    rpName: config.productName,
  });
  const verifier = new SecondFactorVerifier(stores.factors, stores.recoveryCodes, keys.box, keys.hasher, limits, sessions, log, webauthn);

  const accessRevokers: AccessRevoker[] = [(userId, keep, trx) => sessions.revokeAll(userId, keep, trx)];

  // Remember-me and trusted devices: every chain and every device goes on password change
  // and reset; devices also go when a factor is removed.
  const rememberTokens = new RememberTokenStore(db);
  const trustedDeviceStore = new TrustedDeviceStore(db);
  const trustedDevices = new TrustedDeviceService(trustedDeviceStore, log, { days: config.trustedDeviceDays });
  const auth = new AuthService(
    stores.users,
    sessions,
    passwords,
    verifier,
    limits,
    log,
    { mfaRequired: config.mfaRequired, pendingTtlSeconds: config.pendingTtlSeconds },
    trustedDevices,
    policy,
  );
  const rememberMe = new RememberMeService(rememberTokens, stores.users, sessions, auth, log, { rememberDays: config.rememberDays });
  // A session signed out from the sessions list (API or page) takes its remember-me chain along.
  sessions.revokedHooks.push((sessionId) => rememberMe.endForRevokedSession(sessionId, config.now()));
  factorRemovedHooks.push((userId) => trustedDevices.revokeAll(userId));
  accessRevokers.push(
    (userId, _keep, trx) => rememberMe.revokeAll(userId, config.now(), trx),
    (userId, _keep, trx) => trustedDevices.revokeAll(userId, trx),
  );
  const revokeAccountAccess: Gatehouse['revokeAccountAccess'] = async (userId, keepSessionId, trx) => {
    for (const revoke of accessRevokers) await revoke(userId, keepSessionId, trx);
  };
  const passwordChange = new PasswordChangeService(accountChanges, stores.users, passwords, limits, log, revokeAccountAccess);

  // Mail (outbox + worker + notification listener), API tokens, e-mail change, password reset.
  // Links (reset, e-mail change) reach mail through typed events, never through services.
  const linkMail = new LinkMailChannel();
  // Mailed links and the upstream callback point at pages: under their base path, if any.
  const pagesUrl = () => origins.pagesUrl();
  const mail = createMail({ config, db, box: keys.box, logger, log, linkMail, pagesUrl });
  const apiTokens = new ApiTokenService(db, accountChanges, new ApiTokenStore(db), log, config.scopes);
  const emailChanges = new EmailChangeStore(db);
  const passwordResets = new PasswordResetStore(db);
  const emailChange = new EmailChangeService(
    db,
    accountChanges,
    stores.users,
    emailChanges,
    passwordResets,
    new EmailChangeCancelStore(db),
    linkMail,
    log,
    pagesUrl,
    async (sessionId) => {
      for (const hook of sessions.revokedHooks) await hook(sessionId);
    },
  );
  const passwordReset = new PasswordResetService(
    db,
    accountChanges,
    stores.users,
    passwordResets,
    emailChanges,
    passwords,
    limits,
    await createPasswordResetLimits(redis ? { kind: 'redis', client: redis } : { kind: 'database', handle: database }),
    log,
    revokeAccountAccess,
    (userId, ctx, trx) => apiTokens.revokeAll(userId, ctx, trx),
    pagesUrl,
    linkMail,
  );
  passwordReset.onError = (err) => logger.error({ err }, 'password reset request failed');
  // Mailed links (pending e-mail changes, reset links) die with every other way in.
  accessRevokers.push(async (userId, _keep, trx) => {
    await emailChanges.voidOpen(trx, userId, config.now());
    await passwordResets.voidOpen(trx, userId, config.now());
  });
  const admin = new AdminService({
    db,
    accounts: accountChanges,
    users: stores.users,
    sessions,
    recoveries: new AccountRecoveryStore(db),
    passwords,
    limits,
    log,
    policy,
    auth,
    revokeAccountAccess,
    revokeSignIns: async (userId, trx) => {
      await sessions.revokeAll(userId, undefined, trx);
      await rememberMe.revokeAll(userId, config.now(), trx);
    },
    revokeApiTokens: (userId, ctx, trx) => apiTokens.revokeAll(userId, ctx, trx),
    linkMail,
    pagesUrl,
  });
  mail.start();
  // OIDC provider (issue 14): its grants and tokens die with every other way in, and with a removed factor.
  accessRevokers.push((userId, _keep, trx) => revokeAccountGrants(trx, userId));
  factorRemovedHooks.push((userId) => revokeAccountGrants(db, userId));
  const federationStore = new FederationStore(db);
  const federation = new FederationService(
    federationStore,
    stores.users,
    auth,
    accountChanges,
    log,
    keys.box,
    passwords,
    config.upstreams,
    pagesUrl,
  );

  const maintenance = new MaintenanceService(
    {
      sessions: stores.sessions,
      rememberTokens,
      trustedDevices: trustedDeviceStore,
      webauthn: webauthnStore,
      factorSetups: stores.factorSetups,
      emailChanges,
      passwordResets,
      outbox: mail.store,
      oidcPayloads: { deleteExpired: (now) => purgeExpiredOidcPayloads(db, now) },
      federationFlows: federationStore,
      limits: { deleteIdle: (now) => purgeIdleLimits(db, now, config.lockoutSeconds) },
    },
    logger,
    // Remember-me tombstones outlive their chain by a session lifetime (see the option).
    { rememberTombstoneMs: config.sessionTtlSeconds * 1000 },
  );

  return {
    config,
    origins,
    logger,
    database,
    stores,
    keys,
    limits,
    passwords,
    sessions,
    log,
    verifier,
    auth,
    policy,
    admin,
    factors,
    accountChanges,
    webauthn,
    rememberMe,
    trustedDevices,
    passwordChange,
    apiTokens,
    emailChange,
    passwordReset,
    mail,
    maintenance,
    federation,
    signOutHooks: [],
    revokeAccountAccess,
    async readiness() {
      const databaseUp = await databaseAnswers(database);
      const redisUp = redis
        ? await redis.ping().then(
            () => true,
            () => false,
          )
        : null;
      return { ready: !closing && databaseUp && redisUp !== false, database: databaseUp, redis: redisUp, closing };
    },
    beginDrain() {
      closing = true;
    },
    async close() {
      closing = true;
      await maintenance.stop();
      await passwordReset.settle();
      await mail.stop();
      await database.close();
      if (redis) redis.disconnect();
    },
  };
}
