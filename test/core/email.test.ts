import { describe, expect, it } from 'vitest';
import { normaliseEmail, parseEmail, requireEmail } from '../../src/core/email.js';
import { ACCEPTED, HOSTILE, withTag } from '../fixtures/email-addresses.js';

describe('the address grammar', () => {
  it('has a table of at least 40 hostile addresses, and refuses each', () => {
    expect(HOSTILE.length).toBeGreaterThanOrEqual(40);
    for (const [name, address] of HOSTILE) {
      const parsed = parseEmail(address);
      expect(parsed.ok, `${name}: ${JSON.stringify(address)}`).toBe(false);
    }
  });

  it('refuses every control, format, separator and default-ignorable code point, anywhere', () => {
    let tried = 0;
    for (let cp = 0; cp <= 0x10ffff; cp++) {
      if (cp >= 0xd800 && cp <= 0xdfff) continue;
      const ch = String.fromCodePoint(cp);
      if (!/[\p{Cc}\p{Cf}\p{Zs}\p{Zl}\p{Zp}\p{Default_Ignorable_Code_Point}]/u.test(ch) || ch === ' ') continue;
      tried++;
      // A tab at the ends is trimmed (the contract's "trimmed"), like a space.
      const ends = ch === '\t' ? [] : [`ab@example.test${ch}`, `${ch}ab@example.test`];
      for (const address of [`a${ch}b@example.test`, `ab@exa${ch}mple.test`, ...ends]) {
        expect(parseEmail(address).ok, `U+${cp.toString(16)} in ${JSON.stringify(address)}`).toBe(false);
      }
    }
    expect(tried).toBeGreaterThan(300);
  });

  it('stores the local part as typed and the domain as lower-case ASCII; one key per mailbox', () => {
    for (const a of ACCEPTED.map((x) => withTag(x, '7'))) {
      const parsed = parseEmail(a.typed);
      expect(parsed.ok, a.typed).toBe(true);
      if (!parsed.ok) continue;
      expect(parsed.email.address).toBe(a.stored);
      expect(parsed.email.display).toBe(a.display);
      expect(parsed.email.key).toBe(a.stored.toLowerCase());
      // The stored form parses to itself, and the display form to the same mailbox.
      expect(parseEmail(a.stored)).toEqual(parsed);
      expect(parseEmail(a.display).ok && parseEmail(a.display)).toEqual(parsed);
    }
    expect(normaliseEmail('ADA@Example.test')).toBe(normaliseEmail('ada@EXAMPLE.TEST'));
    expect(normaliseEmail('user@B\u00DCCHER.example')).toBe('user@xn--bcher-kva.example');
  });

  it('keeps the RFC 5321 lengths: 64 for the local part, 254 for the address', () => {
    expect(parseEmail(`${'a'.repeat(64)}@example.test`).ok).toBe(true);
    expect(parseEmail(`${'a'.repeat(65)}@example.test`).ok).toBe(false);
    const domain = `${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(59)}.test`; // 192
    expect(parseEmail(`${'a'.repeat(64)}@${domain}`).ok).toBe(false); // 257
    expect(parseEmail(`${'a'.repeat(61)}@${domain}`).ok).toBe(true); // 254
    expect(parseEmail(`${'a'.repeat(62)}@${domain}`).ok).toBe(false); // 255
  });

  it('allows one script per domain label (Latin with CJK as UTS #39 does); refuses Latin look-alikes under a Latin TLD only', () => {
    expect(parseEmail('a@\u6771\u4EACabc.example').ok).toBe(true); // Han + Latin
    expect(parseEmail('a@\u0430\u0440\u0440\u04CF\u0435.\u0440\u0444').ok).toBe(true); // Cyrillic under a Cyrillic TLD
    expect(parseEmail('a@\u0430\u0440\u0440\u04CF\u0435.test').ok).toBe(false);
    expect(parseEmail('a@\u043F\u0440\u0438\u043C\u0435\u0440.test').ok).toBe(true); // Cyrillic with letters that do not read as Latin
  });

  it('names the field in a 400 invalid_request', () => {
    try {
      requireEmail('x<other@evil.test>', 'newEmail');
      expect.unreachable();
    } catch (e) {
      expect(e).toMatchObject({ code: 'invalid_request', status: 400, details: [{ path: 'newEmail' }] });
    }
  });
});
