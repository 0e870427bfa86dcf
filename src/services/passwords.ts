/**
 * Password hashing with argon2id. Hashing is memory-hard on purpose, so a login flood
 * must not run unbounded hashes at once: at most `concurrency` (default one per core) are
 * in flight, the rest wait in a queue. With several worker processes on one machine each
 * gets its share of the cores (server/cluster.ts), or the workers together would run more
 * hashes than there are cores and every login would wait on the others.
 */
import os from 'node:os';
import { Algorithm, hash, verify } from '@node-rs/argon2';
import { dictionary } from '@zxcvbn-ts/language-common';
import { checkPasswordPolicy } from '../core/password-policy.js';

export interface Argon2Cost {
  memoryKiB: number;
  iterations: number;
  parallelism: number;
}

/** A FIFO limit on concurrent async work. */
export class Semaphore {
  private active = 0;
  private readonly waiting: Array<() => void> = [];
  constructor(private readonly limit: number) {}

  async run<T>(work: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.active++;
    try {
      return await work();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    }
  }

  get queued(): number {
    return this.waiting.length;
  }
}

let commonPasswords: ReadonlySet<string> | undefined;

/** The bundled list of commonly used passwords (about 49,000 entries), lower-cased. */
export function commonPasswordList(): ReadonlySet<string> {
  commonPasswords ??= new Set(dictionary['passwords-common'].map((p: string) => p.toLowerCase()));
  return commonPasswords;
}

export function assertAcceptablePassword(password: string): void {
  checkPasswordPolicy(password, commonPasswordList());
}

export class PasswordHasher {
  private readonly gate: Semaphore;
  private dummyHash: Promise<string> | undefined;

  constructor(
    private readonly cost: Argon2Cost,
    /** Hashes in flight at once. */
    readonly concurrency = Math.max(1, os.availableParallelism()),
  ) {
    this.gate = new Semaphore(concurrency);
  }

  private options() {
    return {
      algorithm: Algorithm.Argon2id,
      memoryCost: this.cost.memoryKiB,
      timeCost: this.cost.iterations,
      parallelism: this.cost.parallelism,
    };
  }

  /** Hashes and verifications waiting for a free core (the metrics' password-hash queue). */
  get queueDepth(): number {
    return this.gate.queued;
  }

  hash(password: string): Promise<string> {
    return this.gate.run(() => hash(password, this.options()));
  }

  async verify(passwordHash: string, password: string): Promise<boolean> {
    return this.gate.run(async () => {
      try {
        return await verify(passwordHash, password);
      } catch {
        return false;
      }
    });
  }

  /**
   * Spends the same work as a real verification, for unknown accounts, so response time
   * does not reveal whether an email is registered.
   */
  async verifyDummy(password: string): Promise<false> {
    this.dummyHash ??= hash('gatehouse-dummy-password', this.options());
    await this.verify(await this.dummyHash, password);
    return false;
  }

  /** True when the stored hash was made with other parameters and should be redone. */
  needsRehash(passwordHash: string): boolean {
    const match = /^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$/.exec(passwordHash);
    if (!match) return true;
    return (
      Number(match[1]) !== this.cost.memoryKiB || Number(match[2]) !== this.cost.iterations || Number(match[3]) !== this.cost.parallelism
    );
  }
}
