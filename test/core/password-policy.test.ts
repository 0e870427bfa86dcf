import { describe, expect, it } from 'vitest';
import { WeakPasswordError } from '../../src/core/errors.js';
import { checkPasswordPolicy, PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH } from '../../src/core/password-policy.js';
import { assertAcceptablePassword, commonPasswordList } from '../../src/services/passwords.js';

const list = new Set(['password1', 'iloveyou123']);

describe('password policy', () => {
  it('length is 8–256', () => {
    expect(PASSWORD_MIN_LENGTH).toBe(8);
    expect(PASSWORD_MAX_LENGTH).toBe(256);
    expect(() => checkPasswordPolicy('x7#kQ2p', list)).toThrow(WeakPasswordError);
    expect(() => checkPasswordPolicy('x7#kQ2pZ', list)).not.toThrow();
    expect(() => checkPasswordPolicy('ab'.repeat(128), new Set())).not.toThrow();
    expect(() => checkPasswordPolicy('ab'.repeat(128) + 'c', new Set())).toThrow(/at most 256/);
    expect(() => checkPasswordPolicy('', list)).toThrow(/at least 8/);
  });

  it('counts characters, not UTF-16 units or bytes', () => {
    // 7 emoji are 14 UTF-16 units but 7 characters: too short.
    expect(() => checkPasswordPolicy('😀'.repeat(7), new Set())).toThrow(WeakPasswordError);
    expect(() => checkPasswordPolicy('😀🙂'.repeat(4), new Set())).not.toThrow();
    // 256 emoji: 512 UTF-16 units, still allowed.
    expect(() => checkPasswordPolicy('😀🙂'.repeat(128), new Set())).not.toThrow();
    expect(() => checkPasswordPolicy('é'.repeat(257), new Set())).toThrow(WeakPasswordError);
  });

  it('refuses listed passwords in any letter case', () => {
    expect(() => checkPasswordPolicy('password1', list)).toThrow(/too common/);
    expect(() => checkPasswordPolicy('PassWord1', list)).toThrow(/too common/);
    expect(() => checkPasswordPolicy('ILOVEYOU123', list)).toThrow(/too common/);
  });

  it('sees through decorations: trailing digits and symbols, one repeated character', () => {
    const words = new Set(['password', 'qwerty']);
    expect(() => checkPasswordPolicy('Password123!', words)).toThrow(/too common/);
    expect(() => checkPasswordPolicy('Qwerty123!', words)).toThrow(/too common/);
    expect(() => checkPasswordPolicy('aaaaaaaa', words)).toThrow(/too common/);
    expect(() => checkPasswordPolicy('password manager 7', words)).not.toThrow();
    expect(() => checkPasswordPolicy('qwerty-and-a-long-tail', words)).not.toThrow();
  });

  it('the error is the contract’s weak_password (400)', () => {
    try {
      checkPasswordPolicy('short', list);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(WeakPasswordError);
      expect((err as WeakPasswordError).toJSON()).toMatchObject({ error: 'weak_password' });
      expect((err as WeakPasswordError).status).toBe(400);
    }
  });

  it('bundles at least 10,000 common passwords, lower-cased', () => {
    const common = commonPasswordList();
    expect(common.size).toBeGreaterThanOrEqual(10_000);
    expect([...common].filter((p) => p !== p.toLowerCase())).toEqual([]);
  });

  it.each(['password', 'Password', '12345678', 'qwertyuiop', 'iloveyou', 'sunshine', 'football', 'baseball'])(
    'refuses the common password %j with the bundled list',
    (password) => {
      expect(() => assertAcceptablePassword(password)).toThrow(WeakPasswordError);
    },
  );

  it('accepts an uncommon password of legal length', () => {
    expect(() => assertAcceptablePassword('vault-otter-47-quince')).not.toThrow();
  });
});
