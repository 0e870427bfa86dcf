/**
 * The public origin: where users browse Gatehouse (mailed links, the passkey relying party,
 * the same-origin check). Configured, it is exactly that origin. Unconfigured (development),
 * it follows the real listening port: links and the passkey relying party use
 * `http://localhost:PORT` (browsers refuse an IP address as a relying party ID), and both
 * `localhost` and `127.0.0.1` at that port pass the same-origin check. (The contract's
 * default, `http://HOST:PORT`, is `http://127.0.0.1:3000` for `npm start`: it is accepted,
 * and names the same loopback server as the links.)
 */
export class PublicOrigins {
  private port: number | null = null;
  private readonly configured: string | null;

  constructor(configuredUrl: string | null) {
    this.configured = configuredUrl === null ? null : new URL(configuredUrl).origin;
  }

  get development(): boolean {
    return this.configured === null;
  }

  /** The listening port became known; the first call wins. */
  listening(port: number): void {
    if (this.port !== null || !Number.isInteger(port) || port <= 0) return;
    this.port = port;
  }

  get knowsPort(): boolean {
    return this.configured !== null || this.port !== null;
  }

  /** The URL for links and the passkey relying party. */
  url(): string {
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
