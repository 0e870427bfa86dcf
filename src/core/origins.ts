/**
 * The public origin: where users browse Gatehouse (mailed links, the passkey relying party,
 * the same-origin check). Configured, it is exactly that origin. Unconfigured (development),
 * it follows the real listening port and both `localhost` and `127.0.0.1` are accepted.
 * Links use `localhost`, except when the server listens on 127.0.0.1 alone: then, as the
 * contract's default `http://HOST:PORT` says, `127.0.0.1`. The passkey relying party is
 * always `localhost` in development: browsers refuse an IP address as a relying party ID,
 * so passkeys work when the pages are browsed at `http://localhost:PORT`.
 */
export class PublicOrigins {
  private port: number | null = null;
  private host = 'localhost';
  private readonly configured: string | null;
  private pagesBase = '';
  private pagesMounted = false;

  constructor(configuredUrl: string | null) {
    this.configured = configuredUrl === null ? null : new URL(configuredUrl).origin;
  }

  get development(): boolean {
    return this.configured === null;
  }

  /**
   * The listening port (and, when known, every bound address) became known; the first
   * call wins. Only 127.0.0.1 alone makes the links use that address.
   */
  listening(port: number, addresses: readonly string[] = []): void {
    if (this.port !== null || !Number.isInteger(port) || port <= 0) return;
    this.port = port;
    if (addresses.length > 0 && addresses.every((a) => a === '127.0.0.1')) this.host = '127.0.0.1';
  }

  get knowsPort(): boolean {
    return this.configured !== null || this.port !== null;
  }

  /** The URL for links and the passkey relying party. */
  url(): string {
    if (this.configured !== null) return this.configured;
    return this.port === null ? `http://${this.host}` : `http://${this.host}:${this.port}`;
  }

  /**
   * The pages were mounted under `base` (e.g. `/auth`, '' at the root): mailed links and
   * redirects to a page use it. One base per instance: a second, different one is refused.
   */
  mountPages(base: string): void {
    if (this.pagesMounted && base !== this.pagesBase)
      throw new Error(`the pages of this Gatehouse are already mounted at "${this.pagesBase || '/'}"`);
    this.pagesBase = base;
    this.pagesMounted = true;
  }

  /** The pages' base path: '' (the root) unless mounted under a prefix. */
  get pagesPath(): string {
    return this.pagesBase;
  }

  /** The public URL of the pages: `url()` and the base path, for mailed links (`${pagesUrl()}/reset-password?…`). */
  pagesUrl(): string {
    return this.url() + this.pagesBase;
  }

  /** The passkey relying party's URL: the public URL, or in development `localhost` at the port. */
  passkeyUrl(): string {
    if (this.configured !== null) return this.configured;
    return this.port === null ? 'http://localhost' : `http://localhost:${this.port}`;
  }

  /** Origins the same-origin check and passkey verification accept. */
  accepted(): string[] {
    if (this.configured !== null) return [this.configured];
    const port = this.port === null ? '' : `:${this.port}`;
    return [`http://localhost${port}`, `http://127.0.0.1${port}`];
  }

  accepts(origin: string): boolean {
    return this.accepted().includes(origin);
  }
}
