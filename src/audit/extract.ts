// Reading one value out of a response, for apps that put what the next request needs in
// HTML rather than JSON: a CSRF token in a hidden input or a meta tag, a token in a
// cookie that must be echoed in a header, an API key printed once on a page.
import type { HttpResult } from './http-client.js';
import { getPath } from './matchers.js';
import { EXTRACTOR_KEYS, type Extractor } from './profile.js';
import type { Session } from './session.js';

type Source = Pick<HttpResult, 'text' | 'json'> & { setCookies?: readonly string[]; headers?: HttpResult['headers'] };

/**
 * The one extractor inside a spec that may carry other keys too; `jsonField` is the older
 * spelling of `json` (`params.*.field`, `passwordReset.token.field`).
 */
export function extractorOf(spec: Extractor, jsonField?: string): Extractor {
  if (jsonField !== undefined) return { json: jsonField };
  for (const key of EXTRACTOR_KEYS) if (spec[key] !== undefined) return { [key]: spec[key] };
  throw new Error('no extractor given');
}

/** For messages and the plan: `input csrf`, `cookie XSRF-TOKEN`, `JSON field key.secret`. */
export function describeExtractor(ex: Extractor): string {
  if (ex.json !== undefined) return `JSON field ${ex.json}`;
  if (ex.input !== undefined) return `<input name="${ex.input}">`;
  if (ex.meta !== undefined) return `<meta name="${ex.meta}">`;
  if (ex.cookie !== undefined) return `cookie ${ex.cookie}`;
  if (ex.replyHeader !== undefined) return `reply header ${ex.replyHeader}`;
  return `regex /${ex.regex ?? ''}/`;
}

/**
 * The value, or undefined when the response does not have it. A cookie is looked for in
 * the response's Set-Cookie first, then in the session's jar (URL-decoded, as a page's
 * script would read it before echoing it in a header).
 */
export function extractValue(ex: Extractor, res: Source, session?: Session): string | undefined {
  if (ex.json !== undefined) {
    const v = getPath(res.json, ex.json);
    return typeof v === 'string' || typeof v === 'number' ? nonEmpty(String(v)) : undefined;
  }
  if (ex.input !== undefined) return attrOfTag(res.text, 'input', 'name', ex.input, 'value');
  if (ex.meta !== undefined) return attrOfTag(res.text, 'meta', 'name', ex.meta, 'content');
  if (ex.cookie !== undefined) {
    const raw = cookieFrom(res.setCookies ?? [], ex.cookie) ?? session?.cookies.get(ex.cookie);
    return raw === undefined ? undefined : nonEmpty(safeDecode(raw));
  }
  if (ex.replyHeader !== undefined) {
    const v = res.headers?.[ex.replyHeader.toLowerCase()];
    return nonEmpty(Array.isArray(v) ? v[0] : v);
  }
  if (ex.regex !== undefined) return nonEmpty(new RegExp(ex.regex).exec(res.text)?.[1]);
  return undefined;
}

const nonEmpty = (v: string | undefined): string | undefined => (v ? v : undefined);

function safeDecode(v: string): string {
  try {
    return decodeURIComponent(v);
  } catch {
    return v;
  }
}

function cookieFrom(setCookies: readonly string[], name: string): string | undefined {
  let found: string | undefined;
  for (const line of setCookies) {
    const pair = line.split(';')[0] ?? '';
    const eq = pair.indexOf('=');
    if (eq > 0 && pair.slice(0, eq).trim() === name) found = pair.slice(eq + 1).trim();
  }
  return found;
}

/** The `want` attribute of the first `<tag>` whose `key` attribute equals `value`. */
function attrOfTag(html: string, tag: string, key: string, value: string, want: string): string | undefined {
  for (const [element] of html.matchAll(new RegExp(`<${tag}\\b[^>]*>`, 'gi'))) {
    const attrs = parseAttributes(element.slice(tag.length + 1));
    if (attrs.get(key) === value) {
      const v = attrs.get(want);
      return v === undefined ? undefined : nonEmpty(decodeEntities(v));
    }
  }
  return undefined;
}

function parseAttributes(text: string): Map<string, string> {
  const attrs = new Map<string, string>();
  for (const m of text.matchAll(/([^\s"'=<>/]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?/g)) {
    const name = (m[1] ?? '').toLowerCase();
    if (!attrs.has(name)) attrs.set(name, m[2] ?? m[3] ?? m[4] ?? '');
  }
  return attrs;
}

const NAMED: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", '#39': "'" };

function decodeEntities(v: string): string {
  return v.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (whole, ent: string) => {
    if (ent[0] === '#') {
      const code = ent[1] === 'x' || ent[1] === 'X' ? parseInt(ent.slice(2), 16) : parseInt(ent.slice(1), 10);
      return Number.isFinite(code) && code <= 0x10ffff ? String.fromCodePoint(code) : whole;
    }
    return NAMED[ent.toLowerCase()] ?? whole;
  });
}
