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
