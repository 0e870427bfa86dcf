/**
 * Trusted devices (GATEHOUSE_TRUSTED_DEVICE_DAYS > 0): after a verified second factor
 * with `trustDevice: true`, the browser gets a random device token (hashed at rest, bound
 * to the account). A later *password* login from that browser may skip the prompt; the
 * state machine marks such a session `trusted_device` and it is never fresh.
 * Removing a factor, changing or resetting the password revokes all of an account's
 * devices.
 */
import type { Transaction } from 'kysely';
import type { Database } from '../store/schema.js';
import type { TrustedDeviceStore } from '../store/credentials.js';
import type { DeviceTrust } from './auth.js';
import type { RequestContext } from './context.js';
import { hashToken, newId, randomToken } from './keys.js';
import type { SecurityLog } from './security-log.js';
import { NotFoundError } from '../core/errors.js';

export interface TrustedDeviceSummary {
  id: string;
  createdAt: string;
  lastUsedAt: string | null;
  userAgent: string;
  ip: string;
  expiresAt: string;
}

export class TrustedDeviceService implements DeviceTrust {
  constructor(
    private readonly store: TrustedDeviceStore,
    private readonly log: SecurityLog,
    private readonly options: { days: number },
  ) {}

  get enabled(): boolean {
    return this.options.days > 0;
  }

  /** Marks this browser as trusted for the account; null when the feature is off. */
  async trust(userId: string, ctx: RequestContext, replacing?: string): Promise<{ token: string; expiresAt: number } | null> {
    if (!this.enabled) return null;
    // One device cookie per browser: the token it replaces stops working.
    if (replacing && replacing.length <= 200) await this.store.deleteByHash(hashToken(replacing));
    const token = randomToken();
    const id = newId();
    const expiresAt = ctx.now + this.options.days * 86_400_000;
    await this.store.insert({
      id,
      user_id: userId,
      token_hash: hashToken(token),
      created_at: ctx.now,
      last_used_at: null,
      expires_at: expiresAt,
      ip: ctx.ip,
      user_agent: ctx.userAgent.slice(0, 512),
    });
    await this.log.record('device.trusted', userId, ctx, { deviceId: id });
    return { token, expiresAt };
  }

  /** AuthService.deviceTrust: a live device of this very account, while the feature is on. */
  async isTrusted(userId: string, deviceToken: string | undefined, now: number): Promise<boolean> {
    if (!this.enabled || !deviceToken || deviceToken.length < 20 || deviceToken.length > 200) return false;
    return this.store.use(userId, hashToken(deviceToken), now);
  }

  async list(userId: string, now: number): Promise<TrustedDeviceSummary[]> {
    const iso = (t: number) => new Date(t).toISOString();
    const rows = await this.store.listForUser(userId, now);
    return rows.map((r) => ({
      id: r.id,
      createdAt: iso(r.created_at),
      lastUsedAt: r.last_used_at === null ? null : iso(r.last_used_at),
      userAgent: r.user_agent,
      ip: r.ip,
      expiresAt: iso(r.expires_at),
    }));
  }

  async revoke(userId: string, id: string, ctx: RequestContext): Promise<void> {
    if (!(await this.store.deleteForUser(userId, id))) throw new NotFoundError('No such device.');
    await this.log.record('device.revoked', userId, ctx, { deviceId: id });
  }

  revokeAll(userId: string, trx?: Transaction<Database>): Promise<void> {
    return this.store.deleteAllForUser(userId, trx);
  }
}
