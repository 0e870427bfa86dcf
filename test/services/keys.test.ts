import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { constantTimeEqual, hashToken, KeyedHasher, newId, randomToken, resolveSecretKey, SecretBox } from '../../src/services/keys.js';

describe('SecretBox (AES-256-GCM for factor secrets)', () => {
  const box = new SecretBox('master-key-one');

  it('round-trips, with a fresh IV each time, and never contains the plaintext', () => {
    const a = box.encrypt('JBSWY3DPEHPK3PXP', 'factor:1');
    const b = box.encrypt('JBSWY3DPEHPK3PXP', 'factor:1');
    expect(a).not.toBe(b);
    expect(a).not.toContain('JBSWY3DPEHPK3PXP');
    expect(a.startsWith('v1.')).toBe(true);
    expect(box.decrypt(a, 'factor:1')).toBe('JBSWY3DPEHPK3PXP');
  });

  it('is bound to its row: another context does not decrypt', () => {
    const sealed = box.encrypt('secret', 'factor:1');
    expect(() => box.decrypt(sealed, 'factor:2')).toThrow();
  });

  it('detects tampering', () => {
    const sealed = box.encrypt('secret', 'factor:1');
    const parts = sealed.split('.');
    const ct = Buffer.from(parts[3]!, 'base64url');
    ct[0]! ^= 1;
    parts[3] = ct.toString('base64url');
    expect(() => box.decrypt(parts.join('.'), 'factor:1')).toThrow();
    expect(() => box.decrypt('garbage', 'factor:1')).toThrow();
  });

  it('another key cannot decrypt; after rotation the old key still can, and the value is stale', () => {
    const sealed = box.encrypt('secret', 'factor:1');
    expect(() => new SecretBox('master-key-two').decrypt(sealed, 'factor:1')).toThrow();
    const rotated = new SecretBox('master-key-two', ['master-key-one']);
    expect(rotated.decrypt(sealed, 'factor:1')).toBe('secret');
    expect(rotated.isStale(sealed)).toBe(true);
    expect(rotated.isStale(rotated.encrypt('secret', 'factor:1'))).toBe(false);
  });
});

describe('KeyedHasher (recovery codes)', () => {
  it('is deterministic per key and differs between keys', () => {
    const a = new KeyedHasher('k1');
    expect(a.hash('ABCDEFGHJKMNPQRS')).toBe(a.hash('ABCDEFGHJKMNPQRS'));
    expect(a.hash('ABCDEFGHJKMNPQRS')).not.toBe(new KeyedHasher('k2').hash('ABCDEFGHJKMNPQRS'));
    expect(a.hash('ABCDEFGHJKMNPQRS')).not.toBe(a.hash('ABCDEFGHJKMNPQRT'));
    // Not a plain (unkeyed) SHA-256.
    expect(a.hash('X')).not.toBe(crypto.createHash('sha256').update('X').digest('base64url'));
  });
});

describe('tokens', () => {
  it('are 256 random bits, base64url, and stored as SHA-256', () => {
    const t = randomToken();
    expect(t).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(t, 'base64url')).toHaveLength(32);
    expect(randomToken()).not.toBe(t);
    expect(hashToken(t)).toBe(crypto.createHash('sha256').update(t).digest('base64url'));
    expect(newId()).toMatch(/^[A-Za-z0-9_-]{22}$/);
  });

  it('constantTimeEqual compares', () => {
    expect(constantTimeEqual('abc', 'abc')).toBe(true);
    expect(constantTimeEqual('abc', 'abd')).toBe(false);
    expect(constantTimeEqual('abc', 'abcd')).toBe(false);
  });
});

describe('resolveSecretKey', () => {
  it('generates a key once into the data dir (0600) and reuses it; a configured key wins', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatehouse-keys-'));
    try {
      const first = resolveSecretKey(null, dir);
      expect(first.generated).toBe(true);
      expect(Buffer.from(first.key, 'base64url').length).toBe(32);
      expect(fs.statSync(path.join(dir, 'secret.key')).mode & 0o777).toBe(0o600);
      const second = resolveSecretKey(null, dir);
      expect(second).toEqual({ key: first.key, generated: false });
      const configured = 'configured-key-material-0123456789abcdefghij';
      expect(resolveSecretKey(configured, dir)).toEqual({ key: configured, generated: false });
      expect(() => resolveSecretKey('configured', dir)).toThrow(/at least 256 bits/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
