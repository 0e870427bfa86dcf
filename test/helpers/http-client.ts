/**
 * HTTP clients for the tests, over undici (no automatic Origin / Sec-Fetch-* headers, no
 * redirects followed), sharing one cookie jar rule:
 * - `Client`: the JSON API as a browser (cookie jar) or a native client (Bearer token).
 * - `FormBrowser`: the HTML pages, urlencoded forms with our Origin.
 */
import { request } from 'undici';

type HeaderMap = Record<string, string | string[] | undefined>;

/**
 * Applies Set-Cookie lines to a jar: an empty value, `Max-Age=0` or an `Expires` in the
 * past deletes the cookie, anything else stores it.
 */
export function storeSetCookies(jar: Map<string, string>, setCookie: string | string[] | undefined): string[] {
  const lines = setCookie === undefined ? [] : Array.isArray(setCookie) ? setCookie : [setCookie];
  for (const line of lines) {
    const [pair, ...attrs] = line.split(';');
    const eq = pair!.indexOf('=');
    const name = pair!.slice(0, eq).trim();
    const value = pair!.slice(eq + 1).trim();
    const expired =
      value === '' ||
      attrs.some((a) => /^\s*max-age=0\s*$/i.test(a)) ||
      attrs.some((a) => /^\s*expires=/i.test(a) && Date.parse(a.split('=')[1]!) < Date.now());
    if (expired) jar.delete(name);
    else jar.set(name, value);
  }
  return lines;
}

/** The `Cookie` header for a jar (undefined when empty). */
export function cookieHeader(jar: Map<string, string>): string | undefined {
  return jar.size ? [...jar].map(([k, v]) => `${k}=${v}`).join('; ') : undefined;
}

/** The Set-Cookie line for `name`, if any. */
export function cookieNamed(setCookies: string[], name: string): string | undefined {
  return setCookies.find((c) => c.startsWith(`${name}=`));
}

export interface Res<T = any> {
  status: number;
  /** Parsed JSON; the text when the body is not JSON; null when empty. */
  body: T;
  text: string;
  headers: HeaderMap;
  setCookies: string[];
}

export interface ReqOptions {
  json?: unknown;
  raw?: string | Buffer;
  contentType?: string;
  headers?: Record<string, string>;
  /** Send no cookies and no bearer from this client. */
  bare?: boolean;
}

/** One browser (cookie jar) or native client (bearer token) of the JSON API. */
export class Client {
  cookies = new Map<string, string>();
  bearer: string | null = null;
  constructor(
    readonly base: string,
    /** Headers sent with every request (e.g. X-Forwarded-For). */
    readonly extraHeaders: Record<string, string> = {},
  ) {}

  get sessionCookie(): string | undefined {
    return this.cookies.get('gatehouse_session');
  }

  /** A fresh client holding only the named cookies of this one. */
  only(...names: string[]): Client {
    const c = new Client(this.base, this.extraHeaders);
    for (const n of names) if (this.cookies.has(n)) c.cookies.set(n, this.cookies.get(n)!);
    return c;
  }

  /** The same cookies and bearer, sent to another server. */
  withBase(base: string): Client {
    const c = new Client(base, this.extraHeaders);
    c.cookies = new Map(this.cookies);
    c.bearer = this.bearer;
    return c;
  }

  async req<T = any>(method: string, path: string, options: ReqOptions = {}): Promise<Res<T>> {
    const headers: Record<string, string> = { ...this.extraHeaders, ...(options.headers ?? {}) };
    if (!options.bare) {
      const cookie = cookieHeader(this.cookies);
      if (cookie && !headers.cookie) headers.cookie = cookie;
      if (this.bearer && !headers.authorization) headers.authorization = `Bearer ${this.bearer}`;
    }
    let body: string | Buffer | undefined;
    if (method === 'GET' || method === 'HEAD') body = undefined;
    else if (options.raw !== undefined) {
      body = options.raw;
      headers['content-type'] ??= options.contentType ?? 'application/json';
    } else if (options.json !== undefined) {
      body = JSON.stringify(options.json);
      headers['content-type'] ??= 'application/json';
    }
    const res = await request(this.base + path, { method: method as 'GET', headers, body });
    const text = await res.body.text();
    const setCookies = storeSetCookies(this.cookies, res.headers['set-cookie']);
    let parsed: unknown = text;
    try {
      parsed = text === '' ? null : JSON.parse(text);
    } catch {
      /* not JSON */
    }
    return { status: res.statusCode, body: parsed as T, text, headers: res.headers, setCookies };
  }

  get<T = any>(path: string, options?: ReqOptions) {
    return this.req<T>('GET', path, options);
  }
  post<T = any>(path: string, json?: unknown, options: ReqOptions = {}) {
    return this.req<T>('POST', path, { json, ...options });
  }
  delete<T = any>(path: string, options?: ReqOptions) {
    return this.req<T>('DELETE', path, options);
  }
}

/** The form token in a page. */
export const csrfIn = (html: string) => /name="_csrf" value="([^"]+)"/.exec(html)?.[1] ?? '';

/**
 * A browser on the HTML pages: cookie jar, urlencoded forms with our Origin (a header given
 * as `null`, e.g. `{ origin: null }`, is not sent at all).
 */
export class FormBrowser {
  cookies = new Map<string, string>();
  constructor(readonly base: string) {}

  async go(method: 'GET' | 'POST', path: string, form?: Record<string, string | string[]>, headers: Record<string, string | null> = {}) {
    const h: Record<string, string> = {};
    for (const [k, v] of Object.entries(headers)) if (v !== null) h[k] = v;
    const cookie = cookieHeader(this.cookies);
    if (cookie) h.cookie = cookie;
    let body: string | undefined;
    if (form) {
      const params = new URLSearchParams();
      for (const [k, v] of Object.entries(form)) for (const x of Array.isArray(v) ? v : [v]) params.append(k, x);
      body = params.toString();
      h['content-type'] = 'application/x-www-form-urlencoded';
      if (headers.origin !== null) h.origin ??= this.base;
    }
    const res = await request(this.base + path, { method, headers: h, body });
    storeSetCookies(this.cookies, res.headers['set-cookie']);
    return {
      status: res.statusCode,
      location: res.headers.location as string | undefined,
      text: await res.body.text(),
      headers: res.headers,
    };
  }
}
