/**
 * The one grammar for e-mail addresses (contract v1.1: bare `local@domain` mailboxes).
 *
 * An address is accepted only if it names exactly one mailbox that every mail library
 * and relay reads the same way, so a security mail can never reach someone else:
 *
 * - input: leading/trailing spaces and tabs are trimmed, then Unicode NFKC (the contract's
 *   matching form); any other space, control, invisible format character (category Cf,
 *   e.g. U+200B, U+FEFF, U+2060), default-ignorable code point, line or paragraph
 *   separator, private-use, surrogate or unassigned code point anywhere is refused, before
 *   and after NFKC (IDNA would silently drop some of them, e.g. U+200B and U+00AD);
 * - local part: an RFC 5321 dot-string of ASCII atext only. No quoted strings, comments,
 *   display names, groups or lists (`<>`, `"`, `()`, `:`, `,`, `;` are not atext). `%` and
 *   `!` are refused too: some relays still treat them as source routes ("percent hack",
 *   bang paths), i.e. as a different mailbox. Non-ASCII local parts are refused: they need
 *   SMTPUTF8, which few servers support, and they are where mixed-script look-alikes hide;
 * - domain: at least two LDH labels in lower-case ASCII after IDNA (internationalised
 *   domains are stored as punycode A-labels, and shown in Unicode). No address literals, no
 *   trailing dot, no all-numeric top-level label, no `ab--` labels other than `xn--`. The
 *   Unicode form of each label must be letters, marks and digits of one script (Latin may
 *   mix with Han/Hiragana/Katakana, Han/Bopomofo or Han/Hangul, as in UTS #39 "highly
 *   restrictive"); a Cyrillic or Greek label made only of letters that look Latin under a
 *   non-matching top-level label (`аррӏе.com`) is refused as a whole-script look-alike;
 * - lengths per RFC 5321 on the stored (ASCII) form: local part ≤ 64, domain ≤ 255,
 *   address ≤ 254 octets.
 *
 * The stored form keeps the local part as typed and the domain in lower-case ASCII; the
 * key for uniqueness and matching lower-cases the local part too. Pure: no I/O.
 */
import { domainToASCII, domainToUnicode } from 'node:url';
import { InvalidRequestError } from './errors.js';

export interface EmailAddress {
  /** The stored form, and the only form mail is sent to: `local@ascii-domain`. */
  address: string;
  local: string;
  /** Lower-case ASCII (A-labels for an internationalised domain). */
  domain: string;
  /** For people: the domain in Unicode. */
  display: string;
  /** The normalised key for uniqueness and matching (lower-cased). */
  key: string;
}

export type EmailProblem =
  | 'empty'
  | 'too_long'
  | 'invisible_or_control'
  | 'display_name'
  | 'list_or_group'
  | 'quoted_or_comment'
  | 'not_one_at'
  | 'non_ascii_local_part'
  | 'local_part'
  | 'routing_character'
  | 'domain'
  | 'mixed_script'
  | 'look_alike';

export type EmailParse = { ok: true; email: EmailAddress } | { ok: false; problem: EmailProblem; message: string };

/** Input longer than this is refused before any normalisation work. */
const MAX_INPUT = 512;
const MAX_LOCAL = 64;
const MAX_DOMAIN = 255;
const MAX_ADDRESS = 254;

/** Other (Cc, Cf, Cn, Co, Cs), separators (Zs, Zl, Zp) and default-ignorables (e.g. U+034F, U+115F, U+3164, variation selectors). */
const FORBIDDEN = /[\p{C}\p{Z}\p{Default_Ignorable_Code_Point}]/u;
const ATEXT = "A-Za-z0-9#$&'*+\\-/=?^_`{|}~";
const DOT_STRING = new RegExp(`^[${ATEXT}]+(?:\\.[${ATEXT}]+)*$`);
const LDH_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** Scripts a domain label may be written in; letters of any other script are refused (fail closed). */
const SCRIPTS = [
  'Latin',
  'Greek',
  'Cyrillic',
  'Armenian',
  'Hebrew',
  'Arabic',
  'Syriac',
  'Thaana',
  'Devanagari',
  'Bengali',
  'Gurmukhi',
  'Gujarati',
  'Oriya',
  'Tamil',
  'Telugu',
  'Kannada',
  'Malayalam',
  'Sinhala',
  'Thai',
  'Lao',
  'Tibetan',
  'Myanmar',
  'Georgian',
  'Hangul',
  'Ethiopic',
  'Khmer',
  'Mongolian',
  'Hiragana',
  'Katakana',
  'Bopomofo',
  'Han',
].map((name) => ({ name, re: new RegExp(`^\\p{Script=${name}}$`, 'u') }));
const NEUTRAL = /^[\p{Script=Common}\p{Script=Inherited}]$/u;
/** Script sets that may share one label (UTS #39 "highly restrictive"). */
const ALLOWED_MIXES = [
  new Set(['Latin', 'Han', 'Hiragana', 'Katakana']),
  new Set(['Latin', 'Han', 'Bopomofo']),
  new Set(['Latin', 'Han', 'Hangul']),
];
/** Lower-case Cyrillic and Greek letters that read as Latin ones in common fonts. */
const LATIN_LOOK_ALIKES: Record<string, RegExp> = {
  Cyrillic: /^[аеорсухіјѕԁһӏԛԝүѵьпгкт]+$/u,
  Greek: /^[αοριυνκτχγε]+$/u,
};

const fail = (problem: EmailProblem, message: string): EmailParse => ({ ok: false, problem, message });

/** The scripts of a Unicode label's letters, or null when it holds something other than letters, marks, digits and hyphens. */
function scriptsOf(label: string): Set<string> | null {
  const found = new Set<string>();
  for (const ch of label) {
    if (ch === '-' || /^[0-9]$/.test(ch)) continue;
    if (!/^[\p{L}\p{M}\p{Nd}]$/u.test(ch)) return null;
    if (NEUTRAL.test(ch)) continue;
    const script = SCRIPTS.find((s) => s.re.test(ch));
    if (!script) return null;
    found.add(script.name);
  }
  return found;
}

function checkDomain(typed: string): { ok: true; ascii: string; unicode: string } | { ok: false; result: EmailParse } {
  const bad = (message: string, problem: EmailProblem = 'domain') => ({ ok: false as const, result: fail(problem, message) });
  if (typed.startsWith('[')) return bad('address literals are not accepted');
  const ascii = domainToASCII(typed);
  if (!ascii) return bad('not a valid domain');
  if (ascii.length > MAX_DOMAIN) return bad('domain is too long', 'too_long');
  const labels = ascii.split('.');
  if (labels.length < 2) return bad('the domain needs a dot (e.g. example.com)');
  for (const label of labels) {
    if (!LDH_LABEL.test(label)) return bad('not a valid domain');
    if (label.slice(2, 4) === '--' && !label.startsWith('xn--')) return bad('not a valid domain');
  }
  if (/^[0-9]+$/.test(labels[labels.length - 1]!)) return bad('not a valid domain');
  const unicode = domainToUnicode(ascii);
  // The A-labels must be the canonical encoding of what they show.
  if (!unicode || domainToASCII(unicode) !== ascii) return bad('not a valid domain');
  const uLabels = unicode.split('.');
  const tldScripts = scriptsOf(uLabels[uLabels.length - 1]!);
  for (const label of uLabels) {
    const scripts = scriptsOf(label);
    if (!scripts) return bad('the domain may hold only letters, digits and hyphens');
    if (scripts.size > 1 && !ALLOWED_MIXES.some((mix) => [...scripts].every((s) => mix.has(s)))) {
      return bad('the domain mixes alphabets (a look-alike of another domain)', 'mixed_script');
    }
    const [only] = [...scripts];
    const lookAlike = only !== undefined && scripts.size === 1 ? LATIN_LOOK_ALIKES[only] : undefined;
    if (lookAlike && !tldScripts?.has(only!) && lookAlike.test(label.replace(/[-0-9]/g, ''))) {
      return bad('the domain is written in letters that look like Latin ones (a look-alike of another domain)', 'look_alike');
    }
  }
  return { ok: true, ascii, unicode };
}

/** Parses an address as typed (API body, form field, library call). */
export function parseEmail(input: string): EmailParse {
  if (typeof input !== 'string') return fail('empty', 'not an email address');
  if (input.length > MAX_INPUT) return fail('too_long', 'the address is too long');
  // Spaces and tabs at the ends are what forms and copy-paste add (the contract trims);
  // every other control or separator is refused wherever it stands.
  const trimmed = input.replace(/^[ \t]+|[ \t]+$/g, '');
  if (trimmed === '') return fail('empty', 'enter an email address');
  if (FORBIDDEN.test(trimmed)) return fail('invisible_or_control', 'the address contains a space, control or invisible character');
  const text = trimmed.normalize('NFKC');
  if (FORBIDDEN.test(text)) return fail('invisible_or_control', 'the address contains a space, control or invisible character');
  if (/[<>]/.test(text)) return fail('display_name', 'enter the bare address, without a name or angle brackets');
  if (/[,;:]/.test(text)) return fail('list_or_group', 'enter exactly one address');
  if (/["()\\]/.test(text)) return fail('quoted_or_comment', 'quoted parts and comments are not accepted');
  const at = text.indexOf('@');
  if (at < 0 || at !== text.lastIndexOf('@')) return fail('not_one_at', 'an address has exactly one @');
  const local = text.slice(0, at);
  const typedDomain = text.slice(at + 1);
  if (local === '' || typedDomain === '') return fail('not_one_at', 'an address has a part before and after the @');
  if (/[^\x21-\x7e]/.test(local))
    return fail('non_ascii_local_part', 'the part before the @ must be plain ASCII (letters, digits and . _ + -)');
  if (/[%!]/.test(local)) return fail('routing_character', 'the part before the @ may not contain % or !');
  if (!DOT_STRING.test(local)) return fail('local_part', 'the part before the @ is not valid');
  if (local.length > MAX_LOCAL) return fail('too_long', 'the part before the @ is longer than 64 characters');
  const domain = checkDomain(typedDomain);
  if (!domain.ok) return domain.result;
  const address = `${local}@${domain.ascii}`;
  if (address.length > MAX_ADDRESS) return fail('too_long', 'the address is longer than 254 characters');
  return {
    ok: true,
    email: { address, local, domain: domain.ascii, display: `${local}@${domain.unicode}`, key: `${local.toLowerCase()}@${domain.ascii}` },
  };
}

/** `parseEmail`, or `400 invalid_request` naming `field`. */
export function requireEmail(input: string, field = 'email'): EmailAddress {
  const parsed = parseEmail(input);
  if (!parsed.ok) throw new InvalidRequestError('Enter a valid email address.', [{ path: field, message: parsed.message }]);
  return parsed.email;
}

/**
 * The matching key of an address, for limiter keys and lookups: the grammar's key when it
 * parses, else the contract's plain normalisation (NFKC, trimmed, lower-cased) so stored
 * addresses from before the grammar still have a stable key.
 */
export function normaliseEmail(email: string): string {
  const parsed = parseEmail(email);
  return parsed.ok ? parsed.email.key : email.normalize('NFKC').trim().toLowerCase();
}

/** The address for people to read (Unicode domain); the stored form itself when it does not parse. */
export function displayEmail(stored: string): string {
  const parsed = parseEmail(stored);
  return parsed.ok ? parsed.email.display : stored;
}
