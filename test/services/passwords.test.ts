import { describe, expect, it } from 'vitest';
import { PasswordHasher, Semaphore } from '../../src/services/passwords.js';

const cheap = { memoryKiB: 1024, iterations: 1, parallelism: 1 };

describe('PasswordHasher', () => {
  it('argon2id with the configured cost; verify accepts only the password', async () => {
    const hasher = new PasswordHasher(cheap);
    const hash = await hasher.hash('lantern-pebble-88');
    expect(hash).toMatch(/^\$argon2id\$v=19\$m=1024,t=1,p=1\$/);
    expect(await hasher.verify(hash, 'lantern-pebble-88')).toBe(true);
    expect(await hasher.verify(hash, 'lantern-pebble-89')).toBe(false);
    expect(await hasher.verify('not a hash', 'x')).toBe(false);
    expect(await hasher.hash('lantern-pebble-88')).not.toBe(hash); // salted
  });

  it('the default cost is m=19456 KiB, t=2, p=1', async () => {
    const { loadConfig } = await import('../../src/config.js');
    expect(loadConfig({}).argon2).toEqual({ memoryKiB: 19456, iterations: 2, parallelism: 1 });
  });

  it('needsRehash when the stored parameters differ from the configured ones', async () => {
    const old = await new PasswordHasher(cheap).hash('lantern-pebble-88');
    expect(new PasswordHasher(cheap).needsRehash(old)).toBe(false);
    expect(new PasswordHasher({ ...cheap, iterations: 2 }).needsRehash(old)).toBe(true);
    expect(new PasswordHasher({ ...cheap, memoryKiB: 2048 }).needsRehash(old)).toBe(true);
    expect(new PasswordHasher(cheap).needsRehash('$2b$10$bcrypt-hash')).toBe(true);
  });

  it('runs as many hashes at once as configured and queues the rest (default: one per core)', async () => {
    const { availableParallelism } = await import('node:os');
    expect(new PasswordHasher(cheap).concurrency).toBe(Math.max(1, availableParallelism()));
    const hasher = new PasswordHasher(cheap, 3);
    expect(hasher.concurrency).toBe(3);
    // Started together: three take a slot at once, the other four wait in the queue.
    const hashes = Array.from({ length: 7 }, (_, i) => hasher.hash(`lantern-pebble-${i}`));
    expect(hasher.queueDepth).toBe(4);
    expect(await Promise.all(hashes)).toHaveLength(7);
    expect(hasher.queueDepth).toBe(0);
  });

  it('the library passes argon2.concurrency to its hasher; workers share the cores', async () => {
    const { assembleGatehouse } = await import('../../src/gatehouse.js');
    const { hashSlotsPerWorker, withHashShare } = await import('../../src/server/cluster.js');
    const { loadConfig, resolveOptions } = await import('../../src/config.js');
    const fs = await import('node:fs');
    const os = await import('node:os');
    const path = await import('node:path');
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatehouse-hash-slots-'));
    const gatehouse = await assembleGatehouse(
      resolveOptions({
        dataDir,
        argon2: { memoryKiB: 1024, iterations: 1, concurrency: 1 },
      }),
    );
    try {
      expect(gatehouse.passwords.concurrency).toBe(1);
      const hashes = [gatehouse.passwords.hash('lantern-pebble-1'), gatehouse.passwords.hash('lantern-pebble-2')];
      expect(gatehouse.passwords.queueDepth).toBe(1);
      await Promise.all(hashes);
    } finally {
      await gatehouse.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }

    expect([1, 2, 3, 4, 8].map((workers) => hashSlotsPerWorker(workers, 4))).toEqual([4, 2, 1, 1, 1]);
    expect(hashSlotsPerWorker(2, 2)).toBe(1);
    const config = loadConfig({});
    expect(config.argon2.concurrency).toBeUndefined();
    const shared = withHashShare(config, 2);
    expect(shared.argon2.concurrency).toBe(hashSlotsPerWorker(2));
    expect(shared.publicUrl).toBe(config.publicUrl);
    const explicit = loadConfig({});
    explicit.argon2.concurrency = 5;
    expect(withHashShare(explicit, 2).argon2.concurrency).toBe(5);
  });

  it('verifyDummy does the work and always says no', async () => {
    const hasher = new PasswordHasher(cheap);
    expect(await hasher.verifyDummy('gatehouse-dummy-password')).toBe(false);
    expect(await hasher.verifyDummy('anything')).toBe(false);
  });
});

describe('Semaphore (hashes in flight are bounded)', () => {
  it('never runs more than its limit at once, and runs waiting work in FIFO order', async () => {
    const gate = new Semaphore(2);
    let active = 0;
    let peak = 0;
    const order: number[] = [];
    const jobs = Array.from({ length: 8 }, (_, i) =>
      gate.run(async () => {
        active++;
        peak = Math.max(peak, active);
        order.push(i);
        await new Promise((r) => setTimeout(r, 5));
        active--;
        return i;
      }),
    );
    expect(gate.queued).toBe(6);
    expect(await Promise.all(jobs)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(peak).toBe(2);
    expect(order).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(gate.queued).toBe(0);
  });

  it('a failing job releases its slot', async () => {
    const gate = new Semaphore(1);
    await expect(gate.run(async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(await gate.run(async () => 'next')).toBe('next');
  });
});
