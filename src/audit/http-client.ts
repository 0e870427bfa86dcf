// The only way the auditor talks to a target. It enforces the safety rules in one place:
// one origin, a request budget, a global request rate, and a timeout. It never follows
// redirects, so a target cannot bounce the auditor to another host.
import { request, type Dispatcher } from 'undici';
import type { Session } from './session.js';

export type BodyEncoding = 'json' | 'form';

export interface OutgoingRequest {
  method: string;
  path: string;
  encoding?: BodyEncoding;
  body?: Record<string, unknown>;
  headers?: Record<string, string>;
  /** A few words for the evidence log: what this request was for. */
  note: string;
}

export interface RecordedRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  body?: string;
}

export interface RecordedResponse {
  status: number;
  headers: Record<string, string | string[]>;
  body: string;
}

/** One request and its response, as evidence. */
export interface Exchange {
  note: string;
  at: string;
  durationMs: number;
  request: RecordedRequest;
  response?: RecordedResponse;
  error?: string;
}

export interface HttpResult {
  status: number;
  headers: Record<string, string | string[]>;
  setCookies: string[];
  location: string | undefined;
  text: string;
  /** Parsed JSON body, or undefined when the body is not JSON. */
  json: unknown;
  exchange: Exchange;
}

export class AuditAbort extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AuditAbort';
  }
}

/** One request failed at the network level (the check that sent it cannot conclude). */
export class RequestFailed extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RequestFailed';
  }
}

export interface HttpClientOptions {
  target: string;
  maxRequests: number;
  requestsPerSecond: number;
  /** How many requests may go out at once, so a race check can really race. */
  burst: number;
  timeoutMs: number;
}

const MAX_RECORDED_BODY = 4096;

export class HttpClient {
  readonly origin: string;
  private sent = 0;
  private readonly limiter: TokenBucket;
  /** Where each exchange is recorded; the runner points it at the current check's evidence. */
  sink: Exchange[] = [];

  constructor(private readonly options: HttpClientOptions) {
    this.origin = new URL(options.target).origin;
    this.limiter = new TokenBucket(options.requestsPerSecond, options.burst);
  }

  get requestCount(): number {
    return this.sent;
  }

  urlFor(path: string): URL {
    const url = new URL(path, this.origin);
    if (url.origin !== this.origin) {
      throw new AuditAbort(`refusing to send a request outside the target origin: ${url.href}`);
    }
    return url;
  }

  async send(req: OutgoingRequest, session?: Session): Promise<HttpResult> {
    const url = this.urlFor(req.path);
    if (this.sent >= this.options.maxRequests) {
      throw new AuditAbort(`request budget exhausted (safety.maxRequests = ${this.options.maxRequests})`);
    }
    this.sent++;
    await this.limiter.take();

    const headers: Record<string, string> = { accept: 'application/json, text/html;q=0.9, */*;q=0.5' };
    Object.assign(headers, session?.headers(url.pathname) ?? {});
    for (const [k, v] of Object.entries(req.headers ?? {})) headers[k.toLowerCase()] = v;
    let body: string | undefined;
    if (req.body !== undefined && req.method !== 'GET') {
      if ((req.encoding ?? 'json') === 'form') {
        body = encodeForm(req.body);
        headers['content-type'] = 'application/x-www-form-urlencoded';
      } else {
        body = JSON.stringify(req.body);
        headers['content-type'] = 'application/json';
      }
    }

    const started = Date.now();
    const exchange: Exchange = {
      note: req.note,
      at: new Date(started).toISOString(),
      durationMs: 0,
      request: { method: req.method, url: url.href, headers: { ...headers }, ...(body !== undefined ? { body } : {}) },
    };
    this.sink.push(exchange);
    try {
      const res = await request(url, {
        method: req.method as Dispatcher.HttpMethod,
        headers,
        body,
        headersTimeout: this.options.timeoutMs,
        bodyTimeout: this.options.timeoutMs,
      });
      const text = await res.body.text();
      exchange.durationMs = Date.now() - started;
      const resHeaders = normaliseHeaders(res.headers);
      exchange.response = {
        status: res.statusCode,
        headers: resHeaders,
        body: text.length > MAX_RECORDED_BODY ? `${text.slice(0, MAX_RECORDED_BODY)}… (${text.length} bytes)` : text,
      };
      const setCookie = resHeaders['set-cookie'];
      const location = resHeaders['location'];
      return {
        status: res.statusCode,
        headers: resHeaders,
        setCookies: setCookie === undefined ? [] : Array.isArray(setCookie) ? setCookie : [setCookie],
        location: Array.isArray(location) ? location[0] : location,
        text,
        json: tryJson(text),
        exchange,
      };
    } catch (err) {
      exchange.durationMs = Date.now() - started;
      exchange.error = (err as Error).message;
      throw new RequestFailed(`${req.method} ${url.href} failed: ${(err as Error).message}`);
    }
  }
}

function encodeForm(body: Record<string, unknown>): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(body)) {
    if (Array.isArray(v)) for (const item of v) params.append(k, String(item));
    else if (v !== undefined && v !== null) params.append(k, typeof v === 'object' ? JSON.stringify(v) : String(v));
  }
  return params.toString();
}

function normaliseHeaders(raw: Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(raw)) if (v !== undefined) out[k.toLowerCase()] = v;
  return out;
}

function tryJson(text: string): unknown {
  if (!text) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** Global request rate: `rate` per second on average, up to `burst` at once. */
class TokenBucket {
  private tokens: number;
  private last = Date.now();
  private queue: Promise<void> = Promise.resolve();

  constructor(
    private readonly rate: number,
    private readonly burst: number,
  ) {
    this.tokens = burst;
  }

  take(): Promise<void> {
    // Chained so that concurrent callers are served one after another, in order.
    const next = this.queue.then(async () => {
      this.refill();
      if (this.tokens < 1) {
        await sleep(((1 - this.tokens) / this.rate) * 1000);
        this.refill();
      }
      this.tokens -= 1;
    });
    this.queue = next;
    return next;
  }

  private refill(): void {
    const now = Date.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.rate);
    this.last = now;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
