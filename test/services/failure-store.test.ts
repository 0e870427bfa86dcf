/**
 * The database backend of the consecutive-failure limits (`SqlFailureStore`) on real SQLite
 * and PostgreSQL, with the clock given: a reservation is one upsert, so a key's first
 * reservation and every later one must leave the rows the invariant in limits.ts needs
 * (failures + in flight ≤ cap, locks, windows, abandoned reservations).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RESERVATION_TTL_MS, SqlFailureStore, type LimitSpec } from '../../src/services/limits.js';
import { openDatabase, type DatabaseHandle } from '../../src/store/database.js';
import { pgSchema } from '../helpers/postgres.js';

const SPEC: LimitSpec = { points: 3, windowSeconds: 60, blockSeconds: 30 };
const T0 = 1_800_000_000_000;

interface Backend {
  name: string;
  open(): Promise<{ handle: DatabaseHandle; close(): Promise<void> }>;
}

const backends: Backend[] = [
  {
    name: 'SQLite',
    async open() {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gh-failure-store-'));
      const handle = await openDatabase(`sqlite:${path.join(dir, 'db.sqlite')}`);
      return {
        handle,
        close: async () => {
          await handle.close();
          fs.rmSync(dir, { recursive: true, force: true });
        },
      };
    },
  },
  {
    name: 'PostgreSQL',
    async open() {
      const schema = await pgSchema('failure_store');
      const handle = await openDatabase(schema.url);
      return {
        handle,
        close: async () => {
          await handle.close();
          await schema.drop();
        },
      };
    },
  },
];

describe.each(backends)('failure limit store: $name', (backend) => {
  let opened: Awaited<ReturnType<Backend['open']>>;
  let store: SqlFailureStore;
  let n = 0;
  const freshKey = () => `key-${n++}`;
  const row = async (key: string) =>
    (
      await sql<{
        failures: number;
        inflight: number;
        generation: number;
        locked_until: number | null;
        inflight_expires_at: number;
      }>`SELECT failures, inflight, generation, locked_until, inflight_expires_at FROM attempt_counters WHERE id = ${`test:${key}`}`.execute(
        opened.handle.db,
      )
    ).rows.map((r) => ({
      failures: Number(r.failures),
      inflight: Number(r.inflight),
      generation: Number(r.generation),
      lockedUntil: r.locked_until === null ? null : Number(r.locked_until),
      inflightExpiresAt: Number(r.inflight_expires_at),
    }))[0];

  beforeAll(async () => {
    opened = await backend.open();
    store = new SqlFailureStore(opened.handle.db, 'test');
  });
  afterAll(() => opened?.close());

  it("a key's first reservation creates its row: one attempt in flight, generation 1, no failures", async () => {
    const key = freshKey();
    expect(await row(key)).toBeUndefined();
    expect(await store.tryReserve(key, T0, SPEC)).toEqual({ kind: 'reserved', generation: 1 });
    expect(await row(key)).toEqual({
      failures: 0,
      inflight: 1,
      generation: 1,
      lockedUntil: null,
      inflightExpiresAt: T0 + RESERVATION_TTL_MS,
    });
  });

  it('attempts in flight fill the cap (then "full", nothing written); a success frees its place and forgives failures', async () => {
    const key = freshKey();
    for (let i = 0; i < SPEC.points; i++) expect(await store.tryReserve(key, T0 + i, SPEC)).toEqual({ kind: 'reserved', generation: 1 });
    const before = await row(key);
    expect(await store.tryReserve(key, T0 + 10, SPEC)).toEqual({ kind: 'full' });
    expect(await row(key)).toEqual(before);
    expect(await store.settle(key, 1, 'failure', T0 + 11, SPEC)).toBe(1);
    await store.settle(key, 1, 'success', T0 + 12, SPEC);
    expect(await row(key)).toMatchObject({ failures: 0, inflight: 1 });
    expect(await store.tryReserve(key, T0 + 13, SPEC)).toEqual({ kind: 'reserved', generation: 1 });
    expect(await row(key)).toMatchObject({ failures: 0, inflight: 2 });
  });

  it('the cap-th failure locks for blockSeconds; nothing is reserved until the lock ends, then the count starts afresh', async () => {
    const key = freshKey();
    for (let i = 0; i < SPEC.points; i++) await store.tryReserve(key, T0, SPEC);
    const settledAt = T0 + 100;
    const counts = [];
    for (let i = 0; i < SPEC.points; i++) counts.push(await store.settle(key, 1, 'failure', settledAt, SPEC));
    expect(counts).toEqual([1, 2, 3]);
    const until = settledAt + SPEC.blockSeconds * 1000;
    expect(await store.tryReserve(key, settledAt + 1, SPEC)).toEqual({ kind: 'locked', until });
    expect(await store.tryReserve(key, until - 1, SPEC)).toEqual({ kind: 'locked', until });
    expect(await store.tryReserve(key, until, SPEC)).toEqual({ kind: 'reserved', generation: 1 });
    expect(await row(key)).toMatchObject({ failures: 0, inflight: 1, lockedUntil: null });
  });

  it('failures older than the window no longer count', async () => {
    const key = freshKey();
    await store.tryReserve(key, T0, SPEC);
    await store.tryReserve(key, T0, SPEC);
    await store.settle(key, 1, 'failure', T0, SPEC);
    await store.settle(key, 1, 'failure', T0, SPEC);
    // Two failures settled: one more attempt fits, a second does not (it waits: "full").
    expect(await store.tryReserve(key, T0 + 1, SPEC)).toEqual({ kind: 'reserved', generation: 1 });
    expect(await store.tryReserve(key, T0 + 2, SPEC)).toEqual({ kind: 'full' });
    await store.settle(key, 1, 'release', T0 + 3, SPEC);
    // The window has passed since the last failure: they count as none.
    expect(await store.tryReserve(key, T0 + SPEC.windowSeconds * 1000, SPEC)).toEqual({ kind: 'reserved', generation: 1 });
    expect(await row(key)).toMatchObject({ failures: 0, inflight: 1 });
  });

  it('reservations never settled are abandoned after RESERVATION_TTL_MS: a new generation, and the old one settles nothing', async () => {
    const key = freshKey();
    for (let i = 0; i < SPEC.points; i++) await store.tryReserve(key, T0, SPEC);
    expect(await store.tryReserve(key, T0 + RESERVATION_TTL_MS - 1, SPEC)).toEqual({ kind: 'full' });
    expect(await store.tryReserve(key, T0 + RESERVATION_TTL_MS, SPEC)).toEqual({ kind: 'reserved', generation: 2 });
    expect(await row(key)).toMatchObject({ inflight: 1, generation: 2 });
    await store.settle(key, 1, 'release', T0 + RESERVATION_TTL_MS + 1, SPEC);
    expect(await row(key)).toMatchObject({ inflight: 1, generation: 2 });
    await store.settle(key, 2, 'release', T0 + RESERVATION_TTL_MS + 2, SPEC);
    expect(await row(key)).toMatchObject({ inflight: 0, generation: 2 });
  });

  it('parallel first reservations of one key: exactly the cap is reserved, the rest are full', async () => {
    const key = freshKey();
    const results = await Promise.all(Array.from({ length: 8 }, () => store.tryReserve(key, T0, SPEC)));
    expect(results.filter((r) => r.kind === 'reserved')).toHaveLength(SPEC.points);
    expect(results.filter((r) => r.kind === 'full')).toHaveLength(8 - SPEC.points);
    expect(await row(key)).toMatchObject({ inflight: SPEC.points, generation: 1 });
  });
});
