/**
 * Expired-row cleanup on real SQLite: `purgeExpired(now)` deletes what expired at or before
 * `now` in every table it looks after, and keeps what is still live.
 */
import crypto from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withOidcTables } from '../../src/oidc/schema.js';
import type { Database } from '../../src/store/schema.js';
import { startFastServer, type TestServer } from '../helpers/server.js';

const HOUR = 60 * 60_000;
const DAY = 24 * HOUR;
const id = () => crypto.randomUUID();

let server: TestServer;
let db: Kysely<Database>;
beforeAll(async () => {
  server = await startFastServer();
  db = server.server.gatehouse.database.db;
});
afterAll(() => server?.close());

/** One account with, in every table, a row expiring at `soon` (tagged 'old') and one at `later` (tagged 'live'). */
async function seed(t0: number, soon: number, later: number) {
  const userId = id();
  await db
    .insertInto('users')
    .values({
      id: userId,
      email: `${userId}@example.test`,
      email_normalized: `${userId}@example.test`,
      password_hash: 'x',
      factor_methods: '[]',
      created_at: t0,
      updated_at: t0,
    })
    .execute();
  const ids: Record<'old' | 'live', Record<string, string>> = { old: {}, live: {} };
  for (const [tag, expiresAt] of [
    ['old', soon],
    ['live', later],
  ] as const) {
    const sessionId = id();
    ids[tag].session = sessionId;
    await db
      .insertInto('sessions')
      .values({
        id: sessionId,
        user_id: userId,
        token_hash: id(),
        state: 'full',
        amr: '["pwd"]',
        transport: 'cookie',
        auth_time: t0,
        password_at: t0,
        mfa_at: null,
        created_at: t0,
        last_seen_at: t0,
        expires_at: expiresAt,
        ip: '127.0.0.1',
        user_agent: 'test',
      })
      .execute();
    ids[tag].remember = id();
    await db
      .insertInto('remember_tokens')
      .values({
        id: ids[tag].remember,
        user_id: userId,
        family_id: id(),
        token_hash: id(),
        session_id: null,
        created_at: t0,
        expires_at: expiresAt,
        used_at: null,
        revoked_at: null,
        ip: '127.0.0.1',
        user_agent: 'test',
      })
      .execute();
    ids[tag].device = id();
    await db
      .insertInto('trusted_devices')
      .values({
        id: ids[tag].device,
        user_id: userId,
        token_hash: id(),
        created_at: t0,
        last_used_at: null,
        expires_at: expiresAt,
        ip: '127.0.0.1',
        user_agent: 'test',
      })
      .execute();
    ids[tag].emailChange = id();
    await db
      .insertInto('email_changes')
      .values({
        id: ids[tag].emailChange,
        user_id: userId,
        new_email: `new-${userId}@example.test`,
        token_hash: id(),
        created_at: t0,
        expires_at: expiresAt,
        used_at: null,
      })
      .execute();
    ids[tag].reset = id();
    await db
      .insertInto('password_resets')
      .values({ id: ids[tag].reset, user_id: userId, token_hash: id(), created_at: t0, expires_at: expiresAt, used_at: null })
      .execute();
    ids[tag].oidcPayload = id();
    await withOidcTables(db)
      .insertInto('oidc_payloads')
      .values({
        model: 'AuthorizationCode',
        id: ids[tag].oidcPayload,
        payload: '{}',
        grant_id: null,
        uid: null,
        user_code: null,
        account_id: userId,
        expires_at: expiresAt,
        consumed_at: null,
      })
      .execute();
    ids[tag].federationFlow = id();
    await db
      .insertInto('federation_flows')
      .values({
        handle_hash: ids[tag].federationFlow,
        kind: 'authorizing',
        upstream: 'corp',
        checks_enc: 'x',
        issuer: null,
        subject: null,
        email: null,
        target_user_id: null,
        created_at: t0,
        expires_at: expiresAt,
        used_at: null,
      })
      .execute();
  }
  // Challenges and factor set-ups hang on the live session (so that only their own expiry decides).
  for (const [tag, expiresAt] of [
    ['old', soon],
    ['live', later],
  ] as const) {
    ids[tag].challenge = id();
    await db
      .insertInto('webauthn_challenges')
      .values({
        id: ids[tag].challenge,
        session_id: ids.live.session!,
        purpose: `test-${tag}`,
        challenge_hash: id(),
        expires_at: expiresAt,
        used_at: null,
      })
      .execute();
    ids[tag].setup = id();
    await db
      .insertInto('factor_setups')
      .values({
        id: ids[tag].setup,
        user_id: userId,
        session_id: ids.live.session!,
        type: 'totp',
        secret_enc: 'x',
        challenge_hash: null,
        account_epoch: 0,
        created_at: t0,
        expires_at: expiresAt,
      })
      .execute();
  }
  // Mail: sent two days before t0 (gone), sent at t0 (kept: recent), failed long ago (kept: not sent).
  const mail = (status: string, sentAt: number | null) => ({
    id: id(),
    user_id: userId,
    event_type: 'test',
    to_address: `${userId}@example.test`,
    subject: 's',
    body_enc: '',
    status,
    next_attempt_at: t0 - 3 * DAY,
    last_error: null,
    created_at: t0 - 3 * DAY,
    sent_at: sentAt,
  });
  const sentOld = mail('sent', t0 - 2 * DAY);
  const sentRecent = mail('sent', t0);
  const failed = mail('failed', null);
  await db.insertInto('mail_outbox').values([sentOld, sentRecent, failed]).execute();
  ids.old.mail = sentOld.id;
  ids.live.mail = sentRecent.id;
  ids.live.failedMail = failed.id;
  // Limiter rows: untouched for over a day and a lockout, or a per-address window that ended
  // at `soon` (gone); touched at `later` (kept).
  for (const [tag, at] of [
    ['old', soon],
    ['live', later],
  ] as const) {
    const touched = tag === 'old' ? t0 - 3 * DAY : at;
    ids[tag].counter = `password_account:${id()}`;
    await sql`INSERT INTO attempt_counters (id, failures, inflight, generation, inflight_expires_at, last_failure_at)
      VALUES (${ids[tag].counter}, 3, 0, 1, ${touched}, ${touched})`.execute(db);
    ids[tag].window = `password_address:${id()}`;
    await sql`INSERT INTO rate_limits_password_address (key, points, expire) VALUES (${ids[tag].window}, 5, ${at})`.execute(db);
  }
  return ids;
}

async function exists(
  table: keyof Database | 'oidc_payloads' | 'attempt_counters' | 'rate_limits_password_address',
  rowId: string,
): Promise<boolean> {
  if (table === 'attempt_counters' || table === 'rate_limits_password_address') {
    const column = table === 'attempt_counters' ? 'id' : 'key';
    const { rows } = await sql`SELECT 1 FROM ${sql.table(table)} WHERE ${sql.ref(column)} = ${rowId}`.execute(db);
    return rows.length > 0;
  }
  if (table === 'oidc_payloads')
    return (await withOidcTables(db).selectFrom('oidc_payloads').select('id').where('id', '=', rowId).executeTakeFirst()) !== undefined;
  if (table === 'federation_flows')
    return (
      (await db.selectFrom('federation_flows').select('handle_hash').where('handle_hash', '=', rowId).executeTakeFirst()) !== undefined
    );
  const row = await db
    .selectFrom(table)
    .select('id' as never)
    .where('id' as never, '=', rowId as never)
    .executeTakeFirst();
  return row !== undefined;
}

const TABLES: Record<string, Parameters<typeof exists>[0]> = {
  counter: 'attempt_counters',
  window: 'rate_limits_password_address',
  oidcPayload: 'oidc_payloads',
  federationFlow: 'federation_flows',
  session: 'sessions',
  remember: 'remember_tokens',
  device: 'trusted_devices',
  emailChange: 'email_changes',
  reset: 'password_resets',
  challenge: 'webauthn_challenges',
  setup: 'factor_setups',
  mail: 'mail_outbox',
  failedMail: 'mail_outbox',
};

/** How long remember-me rows outlive their chain: the server's session lifetime. */
const tombstoneMs = () => server.server.gatehouse.config.sessionTtlSeconds * 1000;

describe('maintenance: purgeExpired', () => {
  it('keeps an attempt counter that is locked, recently failed or has a reservation in flight; deletes it once idle', async () => {
    const t0 = Date.now();
    const key = () => `password_account:${id()}`;
    const [locked, failed, inflight] = [key(), key(), key()];
    const old = t0 - 3 * DAY;
    await sql`INSERT INTO attempt_counters (id, failures, inflight, generation, inflight_expires_at, last_failure_at, locked_until)
      VALUES (${locked}, 10, 0, 1, ${old}, ${old}, ${t0 + HOUR}),
             (${failed}, 9, 0, 1, ${old}, ${t0 - HOUR}, NULL),
             (${inflight}, 0, 1, 1, ${t0 + 60_000}, NULL, NULL)`.execute(db);
    await server.server.gatehouse.maintenance.purgeExpired(t0);
    for (const k of [locked, failed, inflight]) expect(await exists('attempt_counters', k), k).toBe(true);
    // Two days on, none of them decides anything: a fresh row would read the same.
    await server.server.gatehouse.maintenance.purgeExpired(t0 + 2 * DAY);
    for (const k of [locked, failed, inflight]) expect(await exists('attempt_counters', k), k).toBe(false);
  });

  it('deletes expired sessions, devices, challenges, mailed tokens and old sent mail; keeps live rows', async () => {
    const t0 = Date.now();
    const ids = await seed(t0, t0 + HOUR, t0 + 30 * DAY);
    for (const tag of ['old', 'live'] as const)
      for (const [kind, rowId] of Object.entries(ids[tag])) expect(await exists(TABLES[kind]!, rowId), `${tag} ${kind} seeded`).toBe(true);

    const purgeAt = t0 + 2 * HOUR;
    const counts = await server.server.gatehouse.maintenance.purgeExpired(purgeAt);

    // Remember-me rows stay a session lifetime past their expiry (tombstones; next test).
    const { remember: tombstone, ...old } = ids.old;
    expect(await exists('remember_tokens', tombstone!)).toBe(true);
    expect(counts.rememberTokens).toBe(0);
    delete (counts as Partial<typeof counts>).rememberTokens;
    for (const [kind, rowId] of Object.entries(old)) expect(await exists(TABLES[kind]!, rowId), `expired ${kind}`).toBe(false);
    for (const [kind, rowId] of Object.entries(ids.live)) expect(await exists(TABLES[kind]!, rowId), `live ${kind}`).toBe(true);
    for (const n of Object.values(counts)) expect(n).toBeGreaterThanOrEqual(1);

    // Nothing left to do at the same instant.
    const again = await server.server.gatehouse.maintenance.purgeExpired(purgeAt);
    expect(Object.values(again).every((n) => n === 0)).toBe(true);
  });

  it('a row that expires exactly at `now` is gone; one a millisecond later stays', async () => {
    const t0 = Date.now();
    const ids = await seed(t0, t0 + HOUR, t0 + HOUR + 1);
    await server.server.gatehouse.maintenance.purgeExpired(t0 + HOUR);
    expect(await exists('sessions', ids.old.session!)).toBe(false);
    expect(await exists('sessions', ids.live.session!)).toBe(true);
  });

  it('keeps a remember-me row (the tombstone that recognises a late replay) until a session lifetime after its chain expired', async () => {
    const t0 = Date.now();
    const ids = await seed(t0, t0 + HOUR, t0 + 30 * DAY);
    // Expired, not yet past the tombstone time: kept, though the expired session goes.
    await server.server.gatehouse.maintenance.purgeExpired(t0 + HOUR + tombstoneMs() - 1);
    expect(await exists('sessions', ids.old.session!)).toBe(false);
    expect(await exists('remember_tokens', ids.old.remember!)).toBe(true);
    await server.server.gatehouse.maintenance.purgeExpired(t0 + HOUR + tombstoneMs());
    expect(await exists('remember_tokens', ids.old.remember!)).toBe(false);
    expect(await exists('remember_tokens', ids.live.remember!)).toBe(true);
  });
});
