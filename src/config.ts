/**
 * Gatehouse's settings: one zod schema (`OptionsSchema`) for code and environment. A host
 * app passes partial options to `createGatehouse`; the ready-to-run server reads the
 * contract's GATEHOUSE_* variables with `loadConfig(env)`, which maps them onto the same
 * schema. Every setting has a safe default so `npm start` works on a fresh machine.
 */
import os from 'node:os';
import path from 'node:path';
import { closest, distance } from 'fastest-levenshtein';
import { z } from 'zod';
import { DEFAULT_RISK_SETTINGS } from './core/risk.js';
import { FACTOR_KINDS, ROLE_SHAPE } from './core/role-policy.js';
import { MFA_POLICIES } from './core/session-state.js';
import { CONTRACT_SCOPES, GATEHOUSE_SCOPES, SCOPE_SHAPE } from './core/scopes.js';

export class ConfigError extends Error {}

const seconds = (fallback: number, min = 1) => z.number().int().min(min).default(fallback);

const url = z
  .string()
  .trim()
  .refine((v) => {
    try {
      const u = new URL(v);
      return u.protocol === 'http:' || u.protocol === 'https:';
    } catch {
      return false;
    }
  }, 'must be an http(s) URL')
  .transform((v) => v.replace(/\/+$/, ''));

/** A URL whose scheme is one of `schemes` (e.g. `postgres:`), or, if `sqlite`, `sqlite:PATH`. */
const urlWithScheme = (schemes: string[], what: string) =>
  z
    .string()
    .trim()
    .min(1)
    .refine((v) => {
      const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(v)?.[1]?.toLowerCase();
      if (!scheme || !schemes.includes(`${scheme}:`)) return false;
      if (scheme === 'sqlite') return v.length > 'sqlite:'.length;
      try {
        return Boolean(new URL(v).host);
      } catch {
        return false;
      }
    }, `must be ${what}`);

/**
 * An upstream OpenID Provider users may sign in with (federated login). Its sign-in is a
 * first factor only unless its ID token's acr is one of `trustedAcr` or its amr holds one
 * of `trustedAmr` (then it counts as MFA). Plain http issuers are accepted on loopback only.
 */
export const UpstreamSchema = z
  .object({
    /** In URLs: /sign-in/upstream/NAME (redirect URI /sign-in/upstream/NAME/callback). */
    name: z
      .string()
      .regex(/^[a-z0-9-]{1,32}$/, 'lowercase letters, digits and "-", at most 32')
      .refine((n) => n !== 'link', '"link" is taken by the link page'),
    /** Shown on the sign-in page. */
    label: z.string().trim().min(1).max(64).optional(),
    issuer: z
      .string()
      .trim()
      .refine((v) => {
        try {
          const u = new URL(v);
          return u.protocol === 'https:' || (u.protocol === 'http:' && ['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname));
        } catch {
          return false;
        }
      }, 'must be an https URL (http only on loopback)'),
    clientId: z.string().min(1).max(200),
    /** Null: a public client (PKCE only). */
    clientSecret: z.string().min(1).max(500).nullable().default(null),
    scope: z.string().max(500).default('openid email'),
    trustedAcr: z.array(z.string().min(1).max(200)).max(20).default([]),
    trustedAmr: z.array(z.string().min(1).max(50)).max(20).default([]),
    /**
     * Create an account for an upstream identity whose verified e-mail address no account
     * has (just-in-time). Off by default: otherwise identities are only ever linked.
     */
    createAccounts: z.boolean().default(false),
  })
  .strict();

export type UpstreamOptions = z.output<typeof UpstreamSchema>;

/** One role's policy (docs/policy.md). */
const RolePolicySchema = z
  .object({
    mfa: z.enum(['required', 'optional']),
    factors: z.array(z.enum(FACTOR_KINDS)).min(1).optional(),
    stepUpMaxAgeSeconds: z.number().int().min(1).optional(),
  })
  .strict();

/** Risk signals at sign-in (docs/policy.md). */
const RiskSchema = z
  .object({
    failureThreshold: z
      .number()
      .int()
      .min(1)
      .default(DEFAULT_RISK_SETTINGS.failureThreshold)
      .describe('Risk signal: this many recent failures on the account ask for the second factor even on a trusted device.'),
    failureWindowSeconds: seconds(DEFAULT_RISK_SETTINGS.failureWindowSeconds),
    passwordChangeWindowSeconds: seconds(DEFAULT_RISK_SETTINGS.passwordChangeWindowSeconds, 0),
    riskyStepUpMaxAgeSeconds: seconds(DEFAULT_RISK_SETTINGS.riskyStepUpMaxAgeSeconds).describe(
      'Risk signal: the shorter freshness window (seconds) for ★ actions of a session signed in under a risk signal.',
    ),
    ipv4Prefix: z
      .number()
      .int()
      .min(8)
      .max(32)
      .default(DEFAULT_RISK_SETTINGS.ipv4Prefix)
      .describe('Risk signal "new network": IPv4 prefix length of a network.'),
    ipv6Prefix: z
      .number()
      .int()
      .min(16)
      .max(128)
      .default(DEFAULT_RISK_SETTINGS.ipv6Prefix)
      .describe('Risk signal "new network": IPv6 prefix length of a network.'),
  })
  .strict();

/** The library's options; every field is optional in `createGatehouse`, defaults below. */
export const OptionsSchema = z
  .object({
    productName: z
      .string()
      .trim()
      .min(1)
      .max(64)
      .default('Gatehouse')
      .describe('Shown as the TOTP issuer, the passkey relying party name and the mail sender name.'),
    publicUrl: url
      .nullable()
      .default(null)
      .describe(
        'The origin users browse (mailed links, the passkey relying party, the same-origin check). Unset: development, where http://localhost:PORT and http://127.0.0.1:PORT at the real listening port are both accepted; links use http://HOST:PORT when HOST is 127.0.0.1, else localhost; passkeys always use localhost (browsers refuse an IP address as relying party). Set it in production.',
      ),
    dataDir: z
      .string()
      .trim()
      .min(1)
      .default('./data')
      .describe('Folder for the SQLite file, a generated key and (without SMTP) outgoing mail.'),
    databaseUrl: urlWithScheme(['sqlite:', 'postgres:', 'postgresql:'], 'sqlite:PATH or postgres://…')
      .nullable()
      .default(null)
      .describe('sqlite:PATH or postgres://user@host:port/db. Unset: SQLite in the data dir.'),
    databasePoolMax: z.number().int().min(1).max(1000).default(10).describe('PostgreSQL: most connections per instance.'),
    databaseConnectTimeoutSeconds: seconds(5).describe(
      'PostgreSQL: a connection attempt that takes longer fails (the request answers 503).',
    ),
    databaseStatementTimeoutSeconds: seconds(30, 0).describe('PostgreSQL: statement_timeout of every connection; 0 turns it off.'),
    migrate: z
      .enum(['on', 'off'])
      .default('on')
      .describe(
        'on: an instance applies pending migrations at start. off: run `gatehouse migrate` first; an instance with a schema behind refuses to start.',
      ),
    redisUrl: urlWithScheme(['redis:', 'rediss:'], 'redis://… or rediss://…')
      .nullable()
      .default(null)
      .describe('Redis for per-address rate limits shared by many instances. Unset: in the database.'),
    redisConnectTimeoutSeconds: seconds(5).describe('Redis: a connection attempt that takes longer fails.'),
    secretKey: z
      .string()
      .min(1)
      .nullable()
      .default(null)
      .describe('Key material, at least 256 bits (`gatehouse keygen`). Unset: generated into the data dir, with a warning.'),
    previousSecretKeys: z
      .array(z.string().min(1))
      .default([])
      .describe('Older keys still accepted for decryption (key rotation), comma-separated.'),
    smtpUrl: urlWithScheme(['smtp:', 'smtps:'], 'smtp://host:port or smtps://…')
      .nullable()
      .default(null)
      .describe('Outgoing mail server. Unset: mail is written to the data dir and logged.'),
    mailFrom: z
      .string()
      .trim()
      .min(3)
      .default('gatehouse@localhost')
      .describe('Sender address; without a display name, the product name is used.'),
    stepUpMaxAgeSeconds: seconds(900).describe('Seconds a second-factor check stays fresh for ★ actions.'),
    stepUpPhishingResistant: z
      .boolean()
      .default(false)
      .describe('For accounts with a passkey, only a fresh user-verified passkey check counts for ★ actions.'),
    pendingTtlSeconds: seconds(300).describe('Seconds a password-verified, MFA-pending session lives.'),
    sessionIdleTtlSeconds: seconds(3600).describe('Seconds a session lives without use.'),
    sessionTtlSeconds: seconds(86400).describe('Seconds a session lives at most.'),
    rememberDays: seconds(30).describe('Days a remember-me chain lives.'),
    trustedDeviceDays: seconds(0, 0).describe('Days a device may skip the login-time second factor; 0 turns it off.'),
    mfaRequired: z.enum(MFA_POLICIES).default('off').describe('all: every account must enrol a factor before it gets a full session.'),
    roles: z
      .record(z.string().regex(ROLE_SHAPE, 'role names look like "admin"'), RolePolicySchema)
      .default({})
      .describe(
        'MFA policy per role, JSON, e.g. {"admin":{"mfa":"required","factors":["webauthn"]}}; the strictest of an account\'s roles wins (docs/policy.md).',
      ),
    enrolmentGraceDays: seconds(7, 0).describe(
      'Days an account that a role newly requires to have a second factor may still sign in without one.',
    ),
    risk: RiskSchema.default(RiskSchema.parse({})),
    argon2: z
      .object({
        memoryKiB: z.number().int().min(8).default(19456).describe('Argon2id memory per password hash, KiB.'),
        iterations: z.number().int().min(1).default(2).describe('Argon2id iterations per password hash.'),
        concurrency: z
          .number()
          .int()
          .min(1)
          .max(256)
          .optional()
          .describe('Password hashes run at once by this process, the rest queue; default: one per core.'),
      })
      .strict()
      .default({ memoryKiB: 19456, iterations: 2 }),
    lockoutSeconds: seconds(900).describe('Seconds an account stays locked after too many failures.'),
    scopes: z
      .array(z.string().regex(SCOPE_SHAPE, 'scope names look like "orders:read"'))
      .max(64)
      .default([])
      .describe('Scopes personal API tokens may carry besides account:read, comma-separated.'),
    upstreams: z
      .array(UpstreamSchema)
      .max(20)
      .default([])
      .refine((list) => new Set(list.map((u) => u.name)).size === list.length, 'upstream names must be unique')
      .describe('Upstream OpenID Providers for federated login, a JSON array (docs/oidc.md).'),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info').describe('pino log level.'),
  })
  .strict();

/** The ready-to-run server's own settings (`gatehouse serve`), besides the library's. */
export const ServerOptionsSchema = z
  .object({
    host: z.string().trim().min(1).default('127.0.0.1').describe('Address the server listens on.'),
    port: z.number().int().min(0).max(65535).default(3000).describe('Port the server listens on (0: any free port).'),
    trustProxy: z
      .array(z.string().min(1))
      .default([])
      .describe('Proxy addresses/CIDRs whose X-Forwarded-For is believed, comma-separated.'),
    transferStepUpCents: z.number().int().min(1).default(100000).describe('Demo bank: transfers at or above this need a fresh factor.'),
    workers: z
      .union([z.number().int().min(1).max(256), z.literal('auto')])
      .default(1)
      .transform((n) => (n === 'auto' ? os.availableParallelism() : n))
      .describe(
        'Server processes sharing the port (node:cluster); auto: one per core; each hashes passwords on cores / N. `npm start -- --workers N` overrides it.',
      ),
    shutdownGraceSeconds: seconds(10, 0).describe(
      'On SIGTERM/SIGINT: seconds in-flight requests get to finish before connections are closed.',
    ),
    metrics: z
      .enum(['off', 'on'])
      .default('off')
      .describe('on: Prometheus metrics at /metrics on a separate listener (GATEHOUSE_METRICS_HOST/PORT), never on the public port.'),
    metricsHost: z
      .string()
      .trim()
      .min(1)
      .default('127.0.0.1')
      .describe('Address of the metrics listener; other than loopback requires GATEHOUSE_METRICS_TOKEN.'),
    metricsPort: z.number().int().min(0).max(65535).default(9464).describe('Port of the metrics listener.'),
    metricsToken: z
      .string()
      .min(32)
      .nullable()
      .default(null)
      .describe('Bearer token the metrics listener requires (at least 32 characters); required unless it listens on loopback.'),
  })
  .strict();

export type GatehouseOptionsInput = z.input<typeof OptionsSchema>;

/** Resolved library settings (internal). */
export interface GatehouseConfig extends Omit<z.output<typeof OptionsSchema>, 'databaseUrl' | 'argon2' | 'publicUrl'> {
  databaseUrl: string;
  argon2: { memoryKiB: number; iterations: number; parallelism: number; concurrency?: number };
  /** The configured public URL, or null in development (see `PublicOrigins`). */
  configuredPublicUrl: string | null;
  /**
   * The public URL in effect: the configured one, or in development `http://localhost:PORT`
   * at the real listening port. Derived on every read, never assigned.
   */
  readonly publicUrl: string;
  /**
   * The clock, epoch milliseconds: Date.now. Not an environment setting; in-process test
   * servers inject a movable clock (test/model) to cross the step-up window, the pending
   * TTL and TOTP steps without waiting. Every request reads it once (request.ctx.now).
   */
  now: () => number;
}

/** The ready-to-run server's settings: the library's plus its own (`ServerOptionsSchema`). */
export interface ServerConfig extends GatehouseConfig, z.output<typeof ServerOptionsSchema> {}

function describe(error: z.ZodError, names: Record<string, string> = {}): string {
  return error.issues
    .map((i) => {
      const key = i.path.join('.');
      return `${names[key] ?? key}: ${i.message}`;
    })
    .join('; ');
}

/**
 * Validates partial options and fills in the defaults (throws ConfigError). `publicUrl`
 * here is the configured one (or `http://localhost`); `createGatehouse` replaces it with
 * a getter over the instance's origin tracker.
 */
export function resolveOptions(input: GatehouseOptionsInput & { now?: () => number }, names?: Record<string, string>): GatehouseConfig {
  const { now, ...rest } = input;
  const parsed = OptionsSchema.safeParse(rest);
  if (!parsed.success) throw new ConfigError(describe(parsed.error, names));
  const o = parsed.data;
  const dataDir = path.resolve(o.dataDir);
  const config: Omit<GatehouseConfig, 'publicUrl'> = {
    ...o,
    dataDir,
    databaseUrl: o.databaseUrl ?? `sqlite:${path.join(dataDir, 'gatehouse.sqlite')}`,
    argon2: { ...o.argon2, parallelism: 1 },
    mailFrom: o.mailFrom.includes('<') ? o.mailFrom : `${JSON.stringify(o.productName)} <${o.mailFrom}>`,
    // Gatehouse's own account API can always be read with a token.
    scopes: [...new Set([...GATEHOUSE_SCOPES, ...o.scopes])],
    configuredPublicUrl: o.publicUrl,
    now: now ?? Date.now,
  };
  delete (config as { publicUrl?: unknown }).publicUrl;
  return withPublicUrl(config, () => config.configuredPublicUrl ?? 'http://localhost');
}

/** A copy of `config` whose `publicUrl` is read from `publicUrl()` on every access. */
export function withPublicUrl<T extends Omit<GatehouseConfig, 'publicUrl'>>(
  config: T,
  publicUrl: () => string,
): T & { readonly publicUrl: string } {
  const copy = { ...config } as T & { publicUrl?: string };
  delete copy.publicUrl;
  return Object.defineProperty(copy, 'publicUrl', { get: publicUrl, enumerable: true }) as T & { readonly publicUrl: string };
}

type EnvKind = 'text' | 'lower' | 'list' | 'bool' | 'int' | 'json' | 'count';

/** One environment variable: the option it sets (a path in the library's or the server's schema) and how it is read. */
interface EnvVariable {
  name: string;
  schema: 'library' | 'server';
  path: string[];
  kind: EnvKind;
  /** The default where the server's differs from the library's (the docs show it). */
  serverDefault?: unknown;
}

const v = (name: string, schema: EnvVariable['schema'], path: string, kind: EnvKind, serverDefault?: unknown): EnvVariable => ({
  name,
  schema,
  path: path.split('.'),
  kind,
  ...(serverDefault === undefined ? {} : { serverDefault }),
});

/** Every environment variable Gatehouse reads; anything else named GATEHOUSE_* is refused. */
export const ENV_VARIABLES: readonly EnvVariable[] = [
  v('HOST', 'server', 'host', 'text'),
  v('PORT', 'server', 'port', 'int'),
  v('GATEHOUSE_PUBLIC_URL', 'library', 'publicUrl', 'text'),
  v('GATEHOUSE_DATA_DIR', 'library', 'dataDir', 'text'),
  v('GATEHOUSE_DATABASE_URL', 'library', 'databaseUrl', 'text'),
  v('GATEHOUSE_DATABASE_POOL_MAX', 'library', 'databasePoolMax', 'int'),
  v('GATEHOUSE_DATABASE_CONNECT_TIMEOUT', 'library', 'databaseConnectTimeoutSeconds', 'int'),
  v('GATEHOUSE_DATABASE_STATEMENT_TIMEOUT', 'library', 'databaseStatementTimeoutSeconds', 'int'),
  v('GATEHOUSE_MIGRATE', 'library', 'migrate', 'lower'),
  v('GATEHOUSE_REDIS_URL', 'library', 'redisUrl', 'text'),
  v('GATEHOUSE_REDIS_CONNECT_TIMEOUT', 'library', 'redisConnectTimeoutSeconds', 'int'),
  v('GATEHOUSE_SECRET_KEY', 'library', 'secretKey', 'text'),
  v('GATEHOUSE_PREVIOUS_SECRET_KEYS', 'library', 'previousSecretKeys', 'list'),
  v('GATEHOUSE_SMTP_URL', 'library', 'smtpUrl', 'text'),
  v('GATEHOUSE_MAIL_FROM', 'library', 'mailFrom', 'text'),
  v('GATEHOUSE_PRODUCT_NAME', 'library', 'productName', 'text'),
  v('GATEHOUSE_STEP_UP_MAX_AGE', 'library', 'stepUpMaxAgeSeconds', 'int'),
  v('GATEHOUSE_STEP_UP_PHISHING_RESISTANT', 'library', 'stepUpPhishingResistant', 'bool'),
  v('GATEHOUSE_PENDING_TTL', 'library', 'pendingTtlSeconds', 'int'),
  v('GATEHOUSE_SESSION_IDLE_TTL', 'library', 'sessionIdleTtlSeconds', 'int'),
  v('GATEHOUSE_SESSION_TTL', 'library', 'sessionTtlSeconds', 'int'),
  v('GATEHOUSE_REMEMBER_DAYS', 'library', 'rememberDays', 'int'),
  v('GATEHOUSE_TRUSTED_DEVICE_DAYS', 'library', 'trustedDeviceDays', 'int'),
  v('GATEHOUSE_MFA_REQUIRED', 'library', 'mfaRequired', 'lower'),
  v('GATEHOUSE_ROLES', 'library', 'roles', 'json'),
  v('GATEHOUSE_ENROLMENT_GRACE_DAYS', 'library', 'enrolmentGraceDays', 'int'),
  v('GATEHOUSE_RISK_FAILURES', 'library', 'risk.failureThreshold', 'int'),
  v('GATEHOUSE_RISK_STEP_UP_MAX_AGE', 'library', 'risk.riskyStepUpMaxAgeSeconds', 'int'),
  v('GATEHOUSE_RISK_IPV4_PREFIX', 'library', 'risk.ipv4Prefix', 'int'),
  v('GATEHOUSE_RISK_IPV6_PREFIX', 'library', 'risk.ipv6Prefix', 'int'),
  v('GATEHOUSE_ARGON2_MEMORY_KIB', 'library', 'argon2.memoryKiB', 'int'),
  v('GATEHOUSE_ARGON2_ITERATIONS', 'library', 'argon2.iterations', 'int'),
  v('GATEHOUSE_LOCKOUT_SECONDS', 'library', 'lockoutSeconds', 'int'),
  // The server offers the contract's three scopes (the demo bank's routes use them).
  v('GATEHOUSE_SCOPES', 'library', 'scopes', 'list', [...CONTRACT_SCOPES]),
  v('GATEHOUSE_LOG_LEVEL', 'library', 'logLevel', 'lower'),
  v('GATEHOUSE_OIDC_UPSTREAMS', 'library', 'upstreams', 'json'),
  v('GATEHOUSE_TRUST_PROXY', 'server', 'trustProxy', 'list'),
  v('GATEHOUSE_TRANSFER_STEP_UP_CENTS', 'server', 'transferStepUpCents', 'int'),
  v('GATEHOUSE_WORKERS', 'server', 'workers', 'count'),
  v('GATEHOUSE_SHUTDOWN_GRACE_SECONDS', 'server', 'shutdownGraceSeconds', 'int'),
  v('GATEHOUSE_METRICS', 'server', 'metrics', 'lower'),
  v('GATEHOUSE_METRICS_HOST', 'server', 'metricsHost', 'text'),
  v('GATEHOUSE_METRICS_PORT', 'server', 'metricsPort', 'int'),
  v('GATEHOUSE_METRICS_TOKEN', 'server', 'metricsToken', 'text'),
];

/** Option path → variable name, per schema (error messages name the variable). */
function envNames(schema: EnvVariable['schema']): Record<string, string> {
  return Object.fromEntries(ENV_VARIABLES.filter((e) => e.schema === schema).map((e) => [e.path.join('.'), e.name]));
}

function read(env: NodeJS.ProcessEnv, variable: EnvVariable): unknown {
  const raw = env[variable.name]?.trim();
  if (raw === undefined || raw === '') return undefined;
  switch (variable.kind) {
    case 'text':
      return raw;
    case 'lower':
      return raw.toLowerCase();
    case 'list':
      return raw
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
    case 'bool':
      if (/^(true|1|yes|on)$/i.test(raw)) return true;
      if (/^(false|0|no|off)$/i.test(raw)) return false;
      throw new ConfigError(`${variable.name} must be true or false, got "${raw}"`);
    case 'int': {
      const value = Number(raw);
      if (!/^-?\d+$/.test(raw) || !Number.isSafeInteger(value)) throw new ConfigError(`${variable.name} must be an integer, got "${raw}"`);
      return value;
    }
    case 'count':
      return raw.toLowerCase() === 'auto' ? 'auto' : read(env, { ...variable, kind: 'int' });
    case 'json':
      try {
        return JSON.parse(raw) as unknown;
      } catch {
        throw new ConfigError(`${variable.name} must be JSON`);
      }
  }
}

/** Refuses GATEHOUSE_* variables Gatehouse does not read (a typo would otherwise be silently ignored). */
function assertKnownVariables(env: NodeJS.ProcessEnv): void {
  const known = ENV_VARIABLES.map((e) => e.name).filter((n) => n.startsWith('GATEHOUSE_'));
  for (const name of Object.keys(env).sort()) {
    if (!name.startsWith('GATEHOUSE_') || known.includes(name)) continue;
    // A name cut short or run on (GATEHOUSE_REDIS for GATEHOUSE_REDIS_URL) beats a mere look-alike.
    const extended = known.filter((n) => n.startsWith(name) || name.startsWith(n));
    const guess = closest(name, extended.length > 0 ? extended : known);
    const close = distance(name, guess) <= Math.max(2, Math.floor(guess.length / 4));
    throw new ConfigError(
      `unknown variable ${name}${close ? ` (did you mean ${guess}?)` : ''}; the variables are listed in docs/deploy.md`,
    );
  }
}

function setPath(target: Record<string, unknown>, path: string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) node = (node[key] ??= {}) as Record<string, unknown>;
  node[path.at(-1)!] = value;
}

/**
 * The server's settings from the environment, through the same schemas as
 * `createGatehouse`'s options. Unknown GATEHOUSE_* variables are refused (ConfigError).
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): ServerConfig {
  assertKnownVariables(env);
  const inputs = { library: {} as Record<string, unknown>, server: {} as Record<string, unknown> };
  for (const variable of ENV_VARIABLES) {
    const value = read(env, variable) ?? variable.serverDefault;
    if (value !== undefined) setPath(inputs[variable.schema], variable.path, value);
  }
  const parsed = ServerOptionsSchema.safeParse(inputs.server);
  if (!parsed.success) throw new ConfigError(describe(parsed.error, envNames('server')));
  const server = parsed.data;
  if (server.metrics === 'on' && server.workers > 1) {
    // Each worker would hold its own registry behind one shared port: partial, misleading numbers.
    throw new ConfigError('GATEHOUSE_METRICS=on needs GATEHOUSE_WORKERS=1 (run one worker per instance and scale by instances)');
  }
  if (server.metrics === 'on' && server.metricsToken === null && !isLoopback(server.metricsHost)) {
    throw new ConfigError(
      `GATEHOUSE_METRICS_TOKEN is required when GATEHOUSE_METRICS_HOST (${server.metricsHost}) is not a loopback address`,
    );
  }
  const config = resolveOptions(inputs.library as GatehouseOptionsInput, envNames('library'));
  return Object.assign(config, server) as ServerConfig;
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

/** The schema field at `path` (through defaults, nullables and nested objects). */
function fieldAt(schema: z.ZodType, path: string[]): z.ZodType {
  let node: z.ZodType = schema;
  for (const key of path) {
    while (!(node instanceof z.ZodObject)) node = (node.def as unknown as { innerType: z.ZodType }).innerType;
    node = (node as z.ZodObject).shape[key] as z.ZodType;
  }
  return node;
}

function defaultText(variable: EnvVariable): string {
  const schema = variable.schema === 'library' ? OptionsSchema : ServerOptionsSchema;
  let value: unknown = variable.serverDefault ?? schema.parse({});
  if (variable.serverDefault === undefined) for (const key of variable.path) value = (value as Record<string, unknown>)[key];
  if (value === null) return '(unset)';
  if (Array.isArray(value)) return value.length ? `\`${value.join(',')}\`` : '(empty)';
  if (typeof value === 'object') return `\`${JSON.stringify(value)}\``;
  return `\`${String(value)}\``;
}

/** The environment variables as a Markdown table (docs/deploy.md), from the schemas. */
export function envDocs(): string {
  const rows = ENV_VARIABLES.map((variable) => {
    const schema = variable.schema === 'library' ? OptionsSchema : ServerOptionsSchema;
    const description = (fieldAt(schema, variable.path).description ?? '').replace(/\|/g, '\\|');
    return `| \`${variable.name}\` | ${defaultText(variable)} | ${description} |`;
  });
  return ['| variable | default | meaning |', '|---|---|---|', ...rows].join('\n');
}
