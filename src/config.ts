/**
 * Gatehouse's settings: one zod schema (`OptionsSchema`) for code and environment. A host
 * app passes partial options to `createGatehouse`; the ready-to-run server reads the
 * contract's GATEHOUSE_* variables with `loadConfig(env)`, which maps them onto the same
 * schema. Every setting has a safe default so `npm start` works on a fresh machine.
 */
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
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

/** The library's options; every field is optional in `createGatehouse`, defaults below. */
export const OptionsSchema = z
  .object({
    /** Shown as the TOTP issuer, the passkey relying party name and the mail sender name. */
    productName: z.string().trim().min(1).max(64).default('Gatehouse'),
    /**
     * The origin users browse (mailed links, the passkey relying party, the same-origin
     * check). Unset: development, where `http://localhost:PORT` and `http://127.0.0.1:PORT`
     * at the real listening port are both accepted, and links use `localhost`.
     */
    publicUrl: url.nullable().default(null),
    /** Folder for the SQLite file, a generated key and (without SMTP) outgoing mail. */
    dataDir: z.string().trim().min(1).default('./data'),
    /** `sqlite:PATH` or `postgres://…`; default: SQLite in the data dir. */
    databaseUrl: z.string().trim().min(1).nullable().default(null),
    /** Redis for attempt counters shared by many instances; null: in the database. */
    redisUrl: z.string().trim().min(1).nullable().default(null),
    /** Key material; null: generated into the data dir, with a warning. */
    secretKey: z.string().min(1).nullable().default(null),
    /** Older keys still accepted for decryption (key rotation). */
    previousSecretKeys: z.array(z.string().min(1)).default([]),
    /** `smtp://host:port`; null: mail is written to the data dir and logged. */
    smtpUrl: z.string().trim().min(1).nullable().default(null),
    /** Sender address; without a display name, the product name is used as one. */
    mailFrom: z.string().trim().min(3).default('gatehouse@localhost'),
    /** Seconds a second-factor check stays fresh for ★ actions. */
    stepUpMaxAgeSeconds: seconds(900),
    /** For accounts with a passkey, only a fresh user-verified passkey check counts for ★ actions. */
    stepUpPhishingResistant: z.boolean().default(false),
    /** Seconds a password-verified, MFA-pending session lives. */
    pendingTtlSeconds: seconds(300),
    sessionIdleTtlSeconds: seconds(3600),
    sessionTtlSeconds: seconds(86400),
    rememberDays: seconds(30),
    /** Days a device may skip the login-time second factor; 0 turns it off. */
    trustedDeviceDays: seconds(0, 0),
    /** `all`: every account must enrol a factor before it gets a full session. */
    mfaRequired: z.enum(['off', 'all']).default('off'),
    argon2: z
      .object({ memoryKiB: z.number().int().min(8).default(19456), iterations: z.number().int().min(1).default(2) })
      .strict()
      .default({ memoryKiB: 19456, iterations: 2 }),
    /** Seconds an account stays locked after too many failures. */
    lockoutSeconds: seconds(900),
    /** Scopes personal API tokens may carry, besides Gatehouse's own `account:read`; routes name one in `requires({ scope })`. */
    scopes: z.array(z.string().regex(SCOPE_SHAPE, 'scope names look like "orders:read"')).max(64).default([]),
    /** pino level of the logger Gatehouse creates (ignored when a logger is passed). */
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  })
  .strict();

export type GatehouseOptionsInput = z.input<typeof OptionsSchema>;

/** Resolved library settings (internal). */
export interface GatehouseConfig extends Omit<z.output<typeof OptionsSchema>, 'databaseUrl' | 'argon2' | 'publicUrl'> {
  databaseUrl: string;
  argon2: { memoryKiB: number; iterations: number; parallelism: number };
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

/** The ready-to-run server's settings: the library's plus where it listens and the demo bank's. */
export interface ServerConfig extends GatehouseConfig {
  host: string;
  port: number;
  /** Proxy addresses/CIDRs whose X-Forwarded-For is believed. */
  trustProxy: string[];
  /** Demo-bank transfers at or above this need a fresh factor. */
  transferStepUpCents: number;
  /** Server processes sharing the port (GATEHOUSE_WORKERS, `--workers`; `auto`: one per core). */
  workers: number;
}

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

/** The environment variable behind each option (for error messages and docs). */
const ENV_NAMES: Record<string, string> = {
  productName: 'GATEHOUSE_PRODUCT_NAME',
  publicUrl: 'GATEHOUSE_PUBLIC_URL',
  dataDir: 'GATEHOUSE_DATA_DIR',
  databaseUrl: 'GATEHOUSE_DATABASE_URL',
  redisUrl: 'GATEHOUSE_REDIS_URL',
  secretKey: 'GATEHOUSE_SECRET_KEY',
  previousSecretKeys: 'GATEHOUSE_PREVIOUS_SECRET_KEYS',
  smtpUrl: 'GATEHOUSE_SMTP_URL',
  mailFrom: 'GATEHOUSE_MAIL_FROM',
  stepUpMaxAgeSeconds: 'GATEHOUSE_STEP_UP_MAX_AGE',
  stepUpPhishingResistant: 'GATEHOUSE_STEP_UP_PHISHING_RESISTANT',
  pendingTtlSeconds: 'GATEHOUSE_PENDING_TTL',
  sessionIdleTtlSeconds: 'GATEHOUSE_SESSION_IDLE_TTL',
  sessionTtlSeconds: 'GATEHOUSE_SESSION_TTL',
  rememberDays: 'GATEHOUSE_REMEMBER_DAYS',
  trustedDeviceDays: 'GATEHOUSE_TRUSTED_DEVICE_DAYS',
  mfaRequired: 'GATEHOUSE_MFA_REQUIRED',
  'argon2.memoryKiB': 'GATEHOUSE_ARGON2_MEMORY_KIB',
  'argon2.iterations': 'GATEHOUSE_ARGON2_ITERATIONS',
  lockoutSeconds: 'GATEHOUSE_LOCKOUT_SECONDS',
  scopes: 'GATEHOUSE_SCOPES',
  logLevel: 'GATEHOUSE_LOG_LEVEL',
};

function text(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const raw = env[name];
  return raw === undefined || raw.trim() === '' ? undefined : raw.trim();
}

function list(env: NodeJS.ProcessEnv, name: string): string[] | undefined {
  const raw = text(env, name);
  return raw === undefined
    ? undefined
    : raw
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
}

function bool(env: NodeJS.ProcessEnv, name: string): boolean | undefined {
  const raw = text(env, name);
  if (raw === undefined) return undefined;
  if (/^(true|1|yes|on)$/i.test(raw)) return true;
  if (/^(false|0|no|off)$/i.test(raw)) return false;
  throw new ConfigError(`${name} must be true or false, got "${raw}"`);
}

function int(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number): number {
  const raw = text(env, name);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min) throw new ConfigError(`${name} must be an integer >= ${min}, got "${raw}"`);
  return value;
}

/**
 * The server's settings from the contract's environment variables, through the same
 * schema as `createGatehouse`'s options. Its scopes default to the contract's three.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): ServerConfig {
  const num = (name: string) => {
    const raw = text(env, name);
    if (raw === undefined) return undefined;
    const value = Number(raw);
    if (!Number.isInteger(value)) throw new ConfigError(`${name} must be an integer, got "${raw}"`);
    return value;
  };
  const argon2 = { memoryKiB: num('GATEHOUSE_ARGON2_MEMORY_KIB'), iterations: num('GATEHOUSE_ARGON2_ITERATIONS') };
  const input: Record<string, unknown> = {
    productName: text(env, 'GATEHOUSE_PRODUCT_NAME'),
    publicUrl: text(env, 'GATEHOUSE_PUBLIC_URL'),
    dataDir: text(env, 'GATEHOUSE_DATA_DIR'),
    databaseUrl: text(env, 'GATEHOUSE_DATABASE_URL'),
    redisUrl: text(env, 'GATEHOUSE_REDIS_URL'),
    secretKey: text(env, 'GATEHOUSE_SECRET_KEY'),
    previousSecretKeys: list(env, 'GATEHOUSE_PREVIOUS_SECRET_KEYS'),
    smtpUrl: text(env, 'GATEHOUSE_SMTP_URL'),
    mailFrom: text(env, 'GATEHOUSE_MAIL_FROM'),
    stepUpMaxAgeSeconds: num('GATEHOUSE_STEP_UP_MAX_AGE'),
    stepUpPhishingResistant: bool(env, 'GATEHOUSE_STEP_UP_PHISHING_RESISTANT'),
    pendingTtlSeconds: num('GATEHOUSE_PENDING_TTL'),
    sessionIdleTtlSeconds: num('GATEHOUSE_SESSION_IDLE_TTL'),
    sessionTtlSeconds: num('GATEHOUSE_SESSION_TTL'),
    rememberDays: num('GATEHOUSE_REMEMBER_DAYS'),
    trustedDeviceDays: num('GATEHOUSE_TRUSTED_DEVICE_DAYS'),
    mfaRequired: text(env, 'GATEHOUSE_MFA_REQUIRED')?.toLowerCase(),
    argon2: argon2.memoryKiB === undefined && argon2.iterations === undefined ? undefined : argon2,
    lockoutSeconds: num('GATEHOUSE_LOCKOUT_SECONDS'),
    scopes: list(env, 'GATEHOUSE_SCOPES') ?? [...CONTRACT_SCOPES],
    logLevel: text(env, 'GATEHOUSE_LOG_LEVEL')?.toLowerCase(),
  };
  for (const key of Object.keys(input)) if (input[key] === undefined) delete input[key];
  if (input.argon2)
    for (const k of ['memoryKiB', 'iterations'] as const)
      if ((input.argon2 as Record<string, unknown>)[k] === undefined) delete (input.argon2 as Record<string, unknown>)[k];
  const config = resolveOptions(input as GatehouseOptionsInput, ENV_NAMES);
  const server = config as ServerConfig;
  server.host = text(env, 'HOST') ?? '127.0.0.1';
  server.port = int(env, 'PORT', 3000, 0);
  server.trustProxy = list(env, 'GATEHOUSE_TRUST_PROXY') ?? [];
  server.transferStepUpCents = int(env, 'GATEHOUSE_TRANSFER_STEP_UP_CENTS', 100000, 1);
  const workers = text(env, 'GATEHOUSE_WORKERS');
  server.workers =
    workers === undefined ? 1 : workers.toLowerCase() === 'auto' ? os.availableParallelism() : int(env, 'GATEHOUSE_WORKERS', 1, 1);
  return server;
}
