// A client-side session: the cookies a target set and/or a bearer token it handed out,
// plus the values flow steps captured from replies. Cookies live in one tough-cookie jar
// (the only cookie parser in the auditor: expiry, Max-Age, paths and prefixes as a browser
// would), and the session is cloneable so checks can replay an old token after a new one
// was issued (fixation, remember-me).
import { Cookie, CookieJar } from 'tough-cookie';

export interface BearerConfig {
  header: string;
  scheme: string;
}

/** Where cookies are kept: the target's host, as https so Secure cookies of an http test target are kept too. */
const DEFAULT_ORIGIN = 'http://127.0.0.1';

export class Session {
  private jar = newJar();
  private readonly base: string;
  bearer: string | undefined;
  /** Values a flow step captured from a reply (a pending token, a remember-me token), for `{name}` later. */
  readonly vars = new Map<string, string>();

  constructor(
    readonly bearerConfig: BearerConfig = { header: 'Authorization', scheme: 'Bearer' },
    origin: string = DEFAULT_ORIGIN,
  ) {
    this.base = `https://${new URL(origin).host}`;
  }

  private url(path = '/'): string {
    return new URL(path, this.base).href;
  }

  /** Headers that present this session to the target, for a request to `path`. */
  headers(path = '/'): Record<string, string> {
    const headers: Record<string, string> = {};
    const cookie = this.jar.getCookieStringSync(this.url(path));
    if (cookie) headers['cookie'] = cookie;
    if (this.bearer !== undefined) {
      const { header, scheme } = this.bearerConfig;
      headers[header.toLowerCase()] = scheme ? `${scheme} ${this.bearer}` : this.bearer;
    }
    return headers;
  }

  /** Applies Set-Cookie headers of a reply to `path`; expired or emptied cookies go away. */
  absorbSetCookies(setCookies: readonly string[], path = '/'): void {
    for (const line of setCookies) {
      const parsed = Cookie.parse(line, { loose: true });
      if (!parsed) continue;
      // An emptied cookie is how many apps "delete" one without an expiry.
      if (parsed.value === '') parsed.setExpires(new Date(0));
      this.jar.setCookieSync(parsed, this.url(path), { ignoreError: true });
    }
  }

  /** The value of a cookie by name (any path), or undefined. */
  cookie(name: string): string | undefined {
    return this.all().find((c) => c.key === name)?.value;
  }

  cookieNames(): string[] {
    return [...new Set(this.all().map((c) => c.key))];
  }

  /** Sets a cookie for the whole site (a value a profile step places, or one copied from another session). */
  setCookie(name: string, value: string): void {
    this.jar.setCookieSync(new Cookie({ key: name, value, path: '/' }), this.url('/'), { ignoreError: true });
  }

  clone(): Session {
    const copy = new Session(this.bearerConfig, this.base);
    copy.jar = this.jar.cloneSync() ?? newJar();
    copy.bearer = this.bearer;
    for (const [k, v] of this.vars) copy.vars.set(k, v);
    return copy;
  }

  isEmpty(): boolean {
    return this.all().length === 0 && this.bearer === undefined;
  }

  /** Every secret value this session carries, so reports can mask them. */
  secrets(): string[] {
    return [...this.all().map((c) => c.value), ...(this.bearer ? [this.bearer] : []), ...this.vars.values()];
  }

  private all(): Cookie[] {
    return this.jar.getCookiesSync(this.url('/'), { allPaths: true });
  }
}

function newJar(): CookieJar {
  // Lenient like a tester's browser, not a strict one: a black-box auditor keeps what it is given.
  return new CookieJar(undefined, {
    looseMode: true,
    rejectPublicSuffixes: false,
    allowSpecialUseDomain: true,
    prefixSecurity: 'unsafe-disabled',
  });
}
