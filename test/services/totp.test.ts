/**
 * TOTP/HOTP against the RFCs' published vectors, computed through otpauth the way
 * src/services/totp.ts uses it (OTPAuth.Secret + TOTP/HOTP.generate), plus Gatehouse's
 * own matching window (±1 step, never ±2).
 */
import * as OTPAuth from 'otpauth';
import { describe, expect, it } from 'vitest';
import {
  currentStep,
  matchTotpStep,
  newTotpSecret,
  TOTP_DIGITS,
  TOTP_PERIOD_SECONDS,
  totpCodeAt,
  totpUri,
} from '../../src/services/totp.js';

// RFC 6238 Appendix A: the reference code's seeds (20, 32 and 64 bytes of ASCII digits).
const SEED_SHA1 = '12345678901234567890';
const SEED_SHA256 = '12345678901234567890123456789012';
const SEED_SHA512 = '1234567890123456789012345678901234567890123456789012345678901234';

// RFC 6238 Appendix B.
const RFC6238: Array<[time: number, sha1: string, sha256: string, sha512: string]> = [
  [59, '94287082', '46119246', '90693936'],
  [1111111109, '07081804', '68084774', '25091201'],
  [1111111111, '14050471', '67062674', '99943326'],
  [1234567890, '89005924', '91819424', '93441116'],
  [2000000000, '69279037', '90698825', '38618901'],
  [20000000000, '65353130', '77737706', '47863826'],
];

// RFC 4226 Appendix D: HOTP-SHA1, 6 digits, secret "12345678901234567890".
const RFC4226 = ['755224', '287082', '359152', '969429', '338314', '254676', '287922', '162583', '399871', '520489'];

const secretOf = (ascii: string) => OTPAuth.Secret.fromUTF8(ascii);

describe('RFC 6238 Appendix B (8 digits, 30 s steps)', () => {
  it('the seeds have the RFC’s lengths', () => {
    expect(secretOf(SEED_SHA1).bytes.length).toBe(20);
    expect(secretOf(SEED_SHA256).bytes.length).toBe(32);
    expect(secretOf(SEED_SHA512).bytes.length).toBe(64);
  });

  const rows = RFC6238.flatMap(
    ([t, sha1, sha256, sha512]) =>
      [
        [t, 'SHA1', SEED_SHA1, sha1],
        [t, 'SHA256', SEED_SHA256, sha256],
        [t, 'SHA512', SEED_SHA512, sha512],
      ] as const,
  );

  it.each(rows)('T=%i %s', (time, algorithm, seed, expected) => {
    const options = { secret: secretOf(seed), algorithm, digits: 8, period: 30 };
    expect(OTPAuth.TOTP.generate({ ...options, timestamp: time * 1000 })).toBe(expected);
    // And the same code validates at that time with no drift.
    expect(OTPAuth.TOTP.validate({ ...options, token: expected, timestamp: time * 1000, window: 0 })).toBe(0);
  });

  it('the SHA-1 rows hold through Gatehouse’s base32 path too', () => {
    const base32 = secretOf(SEED_SHA1).base32;
    for (const [t, sha1] of RFC6238) {
      const code = OTPAuth.TOTP.generate({
        secret: OTPAuth.Secret.fromBase32(base32),
        algorithm: 'SHA1',
        digits: 8,
        period: 30,
        timestamp: t * 1000,
      });
      expect(code).toBe(sha1);
      // Gatehouse uses 6 digits: the last six of the 8-digit value (same truncation, mod 10^6).
      expect(totpCodeAt(base32, t * 1000)).toBe(sha1.slice(-6));
    }
  });
});

describe('RFC 4226 Appendix D (HOTP)', () => {
  it.each(RFC4226.map((code, counter) => [counter, code] as const))('counter %i → %s', (counter, expected) => {
    const options = { secret: secretOf(SEED_SHA1), algorithm: 'SHA1', digits: 6 };
    expect(OTPAuth.HOTP.generate({ ...options, counter })).toBe(expected);
    expect(OTPAuth.HOTP.validate({ ...options, token: expected, counter, window: 0 })).toBe(0);
  });

  it('TOTP is HOTP of the time step', () => {
    const base32 = secretOf(SEED_SHA1).base32;
    // T = 59 s is step 1: RFC 4226's counter-1 value.
    expect(totpCodeAt(base32, 59_000)).toBe(RFC4226[1]);
  });
});

describe('Gatehouse TOTP parameters', () => {
  it('RFC 6238 defaults: SHA-1, 6 digits, 30 s', () => {
    expect(TOTP_DIGITS).toBe(6);
    expect(TOTP_PERIOD_SECONDS).toBe(30);
    const uri = new URL(totpUri(newTotpSecret(), 'Gatehouse', 'a@example.com'));
    expect(uri.protocol).toBe('otpauth:');
    expect(uri.searchParams.get('algorithm')).toBe('SHA1');
    expect(uri.searchParams.get('digits')).toBe('6');
    expect(uri.searchParams.get('period')).toBe('30');
    expect(uri.searchParams.get('issuer')).toBe('Gatehouse');
  });

  it('secrets are 160 random bits', () => {
    const a = newTotpSecret();
    expect(OTPAuth.Secret.fromBase32(a).bytes.length).toBe(20);
    expect(a).toMatch(/^[A-Z2-7]{32}$/);
    expect(newTotpSecret()).not.toBe(a);
  });
});

describe('matchTotpStep', () => {
  const secret = secretOf(SEED_SHA1).base32;
  const now = 1_700_000_015_000; // mid-step
  const step = currentStep(now);
  const at = (delta: number) => now + delta * TOTP_PERIOD_SECONDS * 1000;

  it('accepts the current step and reports it', () => {
    expect(matchTotpStep(secret, totpCodeAt(secret, now), now)).toBe(step);
  });

  it('accepts one step of drift each way, reporting the code’s own step', () => {
    expect(matchTotpStep(secret, totpCodeAt(secret, at(-1)), now)).toBe(step - 1);
    expect(matchTotpStep(secret, totpCodeAt(secret, at(+1)), now)).toBe(step + 1);
  });

  it('refuses two steps of drift either way', () => {
    expect(matchTotpStep(secret, totpCodeAt(secret, at(-2)), now)).toBeNull();
    expect(matchTotpStep(secret, totpCodeAt(secret, at(+2)), now)).toBeNull();
  });

  it('refuses another secret’s code', () => {
    const other = newTotpSecret();
    const code = totpCodeAt(other, now);
    // (1 in a million it collides; then the codes differ for the neighbouring step.)
    if (code !== totpCodeAt(secret, now)) expect(matchTotpStep(secret, code, now)).toBeNull();
  });

  it.each(['', '12345', '1234567', '12345a', ' 123456', '１２３４５６', '123 456', '-12345', '99999999'])(
    'refuses malformed %j',
    (code) => {
      expect(matchTotpStep(secret, code, now)).toBeNull();
    },
  );

  it('uses the step boundaries exactly', () => {
    const start = step * 30_000;
    expect(currentStep(start)).toBe(step);
    expect(currentStep(start - 1)).toBe(step - 1);
    // At the first millisecond of a step, the previous step is in the window, the one before not.
    expect(matchTotpStep(secret, totpCodeAt(secret, start - 30_000), start)).toBe(step - 1);
    expect(matchTotpStep(secret, totpCodeAt(secret, start - 30_001), start)).toBeNull();
  });
});
