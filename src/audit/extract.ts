// Reading one value out of a response, for apps that put what the next request needs in
// HTML rather than JSON: a CSRF token in a hidden input or a meta tag, a token in a
// cookie that must be echoed in a header, an API key printed once on a page.
import { parse, type DefaultTreeAdapterMap } from 'parse5';
import { Cookie } from 'tough-cookie';
import type { HttpResult } from './http-client.js';
import { getPath } from './matchers.js';
import { EXTRACTOR_KEYS, type Extractor } from './profile.js';
import type { Session } from './session.js';

type ParentNode = DefaultTreeAdapterMap['parentNode'];
type Element = DefaultTreeAdapterMap['element'];

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
    const raw = cookieFrom(res.setCookies ?? [], ex.cookie) ?? session?.cookie(ex.cookie);
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
    const c = Cookie.parse(line, { loose: true });
    if (c?.key === name) found = c.value;
  }
  return found;
}

/**
 * The `want` attribute of the first `<tag>` (in document order) whose `key` attribute
 * equals `value`, from the document as a browser would parse it (parse5: any attribute
 * syntax, every named and numeric entity).
 */
function attrOfTag(html: string, tag: string, key: string, value: string, want: string): string | undefined {
  const found = findElement(parse(html), (el) => el.tagName === tag && el.attrs.some((a) => a.name === key && a.value === value));
  return found ? nonEmpty(found.attrs.find((a) => a.name === want)?.value) : undefined;
}

function findElement(node: ParentNode, test: (el: Element) => boolean): Element | undefined {
  // <template> contents are a separate fragment in parse5.
  const children = [...('content' in node && node.content ? node.content.childNodes : []), ...node.childNodes];
  for (const child of children) {
    if (!('tagName' in child)) continue;
    if (test(child)) return child;
    const inner = findElement(child, test);
    if (inner) return inner;
  }
  return undefined;
}
