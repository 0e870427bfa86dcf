// A client-side session: the cookies a target set and/or a bearer token it handed out.
// Kept deliberately dumb (no domain/path rules) because the auditor only ever talks to
// one origin, and it must be cloneable so checks can replay an old token after a new one
// was issued (fixation, remember-me).

export interface BearerConfig {
  header: string;
  scheme: string;
}

export class Session {
  readonly cookies = new Map<string, string>();
  bearer: string | undefined;
  /** Values a flow step captured from a reply (a pending token, a remember-me token), for `{name}` later. */
  readonly vars = new Map<string, string>();

  constructor(readonly bearerConfig: BearerConfig = { header: 'Authorization', scheme: 'Bearer' }) {}

  /** Headers that present this session to the target. */
  headers(): Record<string, string> {
    const headers: Record<string, string> = {};
    if (this.cookies.size > 0) {
      headers['cookie'] = [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    }
    if (this.bearer !== undefined) {
      const { header, scheme } = this.bearerConfig;
      headers[header.toLowerCase()] = scheme ? `${scheme} ${this.bearer}` : this.bearer;
    }
    return headers;
  }

  /** Applies Set-Cookie headers; an expired or emptied cookie is removed. */
  absorbSetCookies(setCookies: readonly string[]): void {
    for (const line of setCookies) {
      const [pair = '', ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      if (eq <= 0) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      if (value === '' || attrs.some((a) => isExpiry(a))) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }

  setCookie(name: string, value: string): void {
    this.cookies.set(name, value);
  }

  clone(): Session {
    const copy = new Session(this.bearerConfig);
    for (const [k, v] of this.cookies) copy.cookies.set(k, v);
    copy.bearer = this.bearer;
    for (const [k, v] of this.vars) copy.vars.set(k, v);
    return copy;
  }

  isEmpty(): boolean {
    return this.cookies.size === 0 && this.bearer === undefined;
  }

  /** Every secret value this session carries, so reports can mask them. */
  secrets(): string[] {
    return [...this.cookies.values(), ...(this.bearer ? [this.bearer] : []), ...this.vars.values()];
  }
}

function isExpiry(attr: string): boolean {
  const [key = '', value = ''] = attr.split('=').map((s) => s.trim());
  if (key.toLowerCase() === 'max-age') return Number(value) <= 0;
  if (key.toLowerCase() === 'expires') {
    const at = Date.parse(value);
    return !Number.isNaN(at) && at <= Date.now();
  }
  return false;
}
