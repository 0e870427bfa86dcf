/**
 * Helpers of the abuse tests alone (clients, accounts, TOTP codes, PostgreSQL schemas and
 * servers are in test/helpers/).
 */
import type { Res } from '../helpers/http-client.js';

/** Asserts a 429 whose body `retryAfter` equals the Retry-After header; returns it. */
export function expect429(r: Res): number {
  if (r.status !== 429) throw new Error(`expected 429, got ${r.status} ${r.text}`);
  const body = Number(r.body?.retryAfter);
  const header = Number(r.headers['retry-after']);
  if (!(body >= 1) || body !== header) throw new Error(`retryAfter body ${body} header ${header}`);
  return body;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
