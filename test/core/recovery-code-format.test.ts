import crypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  encodeRecoveryCode,
  formatRecoveryCode,
  normaliseRecoveryCode,
  RECOVERY_CODE_COUNT,
  RECOVERY_CODE_LENGTH,
} from '../../src/core/recovery-code-format.js';

const CROCKFORD = /^[0-9ABCDEFGHJKMNPQRSTVWXYZ]{16}$/;

describe('recovery-code format', () => {
  it('issues 10 codes of 16 Crockford characters = 80 bits', () => {
    expect(RECOVERY_CODE_COUNT).toBe(10);
    expect(RECOVERY_CODE_LENGTH).toBe(16);
    expect(RECOVERY_CODE_LENGTH * Math.log2(32)).toBe(80);
    const code = encodeRecoveryCode(crypto.randomBytes(10));
    expect(code).toMatch(CROCKFORD);
  });

  it('encodes bits exactly (big-endian base32 of the 80 bits)', () => {
    expect(encodeRecoveryCode(new Uint8Array(10))).toBe('0000000000000000');
    expect(encodeRecoveryCode(new Uint8Array(10).fill(0xff))).toBe('ZZZZZZZZZZZZZZZZ');
    // 0x00 0x44 0x32 0x14 0xC7 → 00000 00001 00010 00011 00100 00101 00110 00111 → 0123 4567
    expect(encodeRecoveryCode(Uint8Array.from([0x00, 0x44, 0x32, 0x14, 0xc7, 0x42, 0x54, 0xb6, 0x35, 0xcf])).slice(0, 8)).toBe('01234567');
    expect(encodeRecoveryCode(Uint8Array.from([0x00, 0x44, 0x32, 0x14, 0xc7, 0x42, 0x54, 0xb6, 0x35, 0xcf]))).toBe('0123456789ABCDEF');
  });

  it('every one of the 80 bits changes the code (no bit is dropped)', () => {
    const base = new Uint8Array(10);
    const seen = new Set<string>([encodeRecoveryCode(base)]);
    for (let bit = 0; bit < 80; bit++) {
      const b = new Uint8Array(10);
      b[bit >> 3] = 1 << (7 - (bit & 7));
      seen.add(encodeRecoveryCode(b));
    }
    expect(seen.size).toBe(81);
  });

  it('refuses fewer than 80 random bits', () => {
    expect(() => encodeRecoveryCode(new Uint8Array(9))).toThrow(RangeError);
  });

  it('random codes are distinct', () => {
    const codes = new Set(Array.from({ length: 1000 }, () => encodeRecoveryCode(crypto.randomBytes(10))));
    expect(codes.size).toBe(1000);
  });

  it('is shown as four groups of four and read back from that form', () => {
    const code = encodeRecoveryCode(crypto.randomBytes(10));
    const shown = formatRecoveryCode(code);
    expect(shown).toMatch(/^[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}$/);
    expect(normaliseRecoveryCode(shown)).toBe(code);
  });

  it.each([
    ['ABCD-EFGH-JKMN-PQRS', 'ABCDEFGHJKMNPQRS'],
    ['abcd-efgh-jkmn-pqrs', 'ABCDEFGHJKMNPQRS'],
    ['AbCdEfGhJkMnPqRs', 'ABCDEFGHJKMNPQRS'],
    ['abcd efgh jkmn pqrs', 'ABCDEFGHJKMNPQRS'],
    ['  abcd_efgh.jkmn pqrs\n', 'ABCDEFGHJKMNPQRS'],
    ['ab-cd-ef-gh-jk-mn-pq-rs', 'ABCDEFGHJKMNPQRS'],
    // Crockford look-alikes: I and L read as 1, O as 0, in either case.
    ['IlLi-OoOo-0000-1111', '1111000000001111'],
    ['o1l0-i0I0-ZZZZ-zzzz', '01101010ZZZZZZZZ'],
    // Full-width characters are folded by NFKC.
    ['ＡＢＣＤ-ＥＦＧＨ-ＪＫＭＮ-ＰＱＲＳ', 'ABCDEFGHJKMNPQRS'],
  ])('normalises %j', (input, expected) => {
    expect(normaliseRecoveryCode(input)).toBe(expected);
  });

  it.each([
    ['', 'empty'],
    ['ABCD-EFGH-JKMN-PQR', 'too short'],
    ['ABCD-EFGH-JKMN-PQRST', 'too long'],
    ['ABCD-EFGH-JKMN-PQRU', 'U is not in the alphabet'],
    ['ABCD-EFGH-JKMN-PQR!', 'punctuation'],
    ['ABCD/EFGH/JKMN/PQRS', 'unknown separator'],
    ['123456', 'a TOTP code'],
    ["' OR 1=1 --------", 'injection'],
  ])('refuses %j (%s)', (input) => {
    expect(normaliseRecoveryCode(input)).toBeNull();
  });
});
