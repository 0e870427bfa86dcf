/**
 * Gatehouse settings, read from the environment (the contract's GATEHOUSE_* variables).
 * Everything has a safe default so `npm start` works on a fresh machine.
 */
import path from 'node:path';

export interface GatehouseConfig {
  host: string;
  port: number;
  dataDir: string;
  databaseUrl: string;
  redisUrl: string | null;
  /** Raw key material; null means "generate one into the data dir". */
  secretKey: string | null;
  /** Older keys still accepted for decryption (key rotation). */
  previousSecretKeys: string[];
  publicUrl: string;
  /** False when publicUrl was derived from HOST and PORT (then it follows the real port). */
  publicUrlConfigured: boolean;
  smtpUrl: string | null;
  mailFrom: string;
  stepUpMaxAgeSeconds: number;
  /** GATEHOUSE_STEP_UP_PHISHING_RESISTANT: ★ actions need a fresh user-verified WebAuthn check. */
  stepUpPhishingResistant: boolean;
  pendingTtlSeconds: number;
  sessionIdleTtlSeconds: number;
  sessionTtlSeconds: number;
  rememberDays: number;
  trustedDeviceDays: number;
  mfaRequired: 'off' | 'all';
  trustProxy: string[];
  argon2: { memoryKiB: number; iterations: number; parallelism: number };
  lockoutSeconds: number;
  transferStepUpCents: number;
  logLevel: string;
  /**
   * The clock, epoch milliseconds: Date.now. Not read from the environment; in-process test
   * servers inject a movable clock (test/model) to cross the step-up window, the pending
   * TTL and TOTP steps without waiting. Every request reads it once (request.ctx.now).
   */
  now: () => number;
}

export class ConfigError extends Error {}

function int(env: NodeJS.ProcessEnv, name: string, fallback: number, min = 0): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min) {
    throw new ConfigError(`${name} must be an integer >= ${min}, got "${raw}"`);
  }
  return value;
}

function text(env: NodeJS.ProcessEnv, name: string): string | null {
  const raw = env[name];
  return raw === undefined || raw.trim() === '' ? null : raw.trim();
}

function bool(env: NodeJS.ProcessEnv, name: string, fallback: boolean): boolean {
  const raw = text(env, name);
  if (raw === null) return fallback;
  if (/^(true|1|yes|on)$/i.test(raw)) return true;
  if (/^(false|0|no|off)$/i.test(raw)) return false;
  throw new ConfigError(`${name} must be true or false, got "${raw}"`);
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): GatehouseConfig {
  const host = text(env, 'HOST') ?? '127.0.0.1';
  const port = int(env, 'PORT', 3000);
  const dataDir = path.resolve(text(env, 'GATEHOUSE_DATA_DIR') ?? './data');
  const mfaRequired = (text(env, 'GATEHOUSE_MFA_REQUIRED') ?? 'off').toLowerCase();
  if (mfaRequired !== 'off' && mfaRequired !== 'all') {
    throw new ConfigError(`GATEHOUSE_MFA_REQUIRED must be "off" or "all", got "${mfaRequired}"`);
  }
  const publicUrl = text(env, 'GATEHOUSE_PUBLIC_URL') ?? `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  try {
    new URL(publicUrl);
  } catch {
    throw new ConfigError(`GATEHOUSE_PUBLIC_URL is not a URL: "${publicUrl}"`);
  }
  return {
    host,
    port,
    dataDir,
    databaseUrl: text(env, 'GATEHOUSE_DATABASE_URL') ?? `sqlite:${path.join(dataDir, 'gatehouse.sqlite')}`,
    redisUrl: text(env, 'GATEHOUSE_REDIS_URL'),
    secretKey: text(env, 'GATEHOUSE_SECRET_KEY'),
    previousSecretKeys: (text(env, 'GATEHOUSE_PREVIOUS_SECRET_KEYS') ?? '').split(',').map((s) => s.trim()).filter(Boolean),
    publicUrl: publicUrl.replace(/\/+$/, ''),
    publicUrlConfigured: text(env, 'GATEHOUSE_PUBLIC_URL') !== null,
    smtpUrl: text(env, 'GATEHOUSE_SMTP_URL'),
    mailFrom: text(env, 'GATEHOUSE_MAIL_FROM') ?? 'gatehouse@localhost',
    stepUpMaxAgeSeconds: int(env, 'GATEHOUSE_STEP_UP_MAX_AGE', 900, 1),
    stepUpPhishingResistant: bool(env, 'GATEHOUSE_STEP_UP_PHISHING_RESISTANT', false),
    pendingTtlSeconds: int(env, 'GATEHOUSE_PENDING_TTL', 300, 1),
    sessionIdleTtlSeconds: int(env, 'GATEHOUSE_SESSION_IDLE_TTL', 3600, 1),
    sessionTtlSeconds: int(env, 'GATEHOUSE_SESSION_TTL', 86400, 1),
    rememberDays: int(env, 'GATEHOUSE_REMEMBER_DAYS', 30, 1),
    trustedDeviceDays: int(env, 'GATEHOUSE_TRUSTED_DEVICE_DAYS', 0),
    mfaRequired,
    trustProxy: (text(env, 'GATEHOUSE_TRUST_PROXY') ?? '').split(',').map((s) => s.trim()).filter(Boolean),
    argon2: {
      memoryKiB: int(env, 'GATEHOUSE_ARGON2_MEMORY_KIB', 19456, 8),
      iterations: int(env, 'GATEHOUSE_ARGON2_ITERATIONS', 2, 1),
      parallelism: 1,
    },
    lockoutSeconds: int(env, 'GATEHOUSE_LOCKOUT_SECONDS', 900, 1),
    transferStepUpCents: int(env, 'GATEHOUSE_TRANSFER_STEP_UP_CENTS', 100000, 1),
    logLevel: text(env, 'GATEHOUSE_LOG_LEVEL') ?? 'info',
    now: Date.now,
  };
}
