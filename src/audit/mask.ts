// Evidence must show exactly what was sent and received, but a report is something people
// forward: passwords, codes, session cookies and tokens are replaced before it is written.
// Two layers: every secret value the auditor knows of is replaced wherever it appears,
// and fields whose names look secret are masked even when their value was never seen.
import type { Exchange } from './http-client.js';

const SECRET_KEY = /pass(word)?|secret|token|code|otp|cookie|session|authorization|remember/i;
const MASK = '«masked»';

export class SecretRegistry {
  private readonly values = new Set<string>();

  add(...values: (string | undefined)[]): void {
    // Very short values (e.g. "1") would mask unrelated text and protect nothing.
    for (const v of values) if (v && v.length >= 4) this.values.add(v);
  }

  maskText(text: string): string {
    let out = text;
    // Longest first, so a secret containing another is masked whole.
    for (const v of [...this.values].sort((a, b) => b.length - a.length)) out = out.split(v).join(MASK);
    return out;
  }
}

export function maskExchange(ex: Exchange, secrets: SecretRegistry): Exchange {
  return {
    ...ex,
    request: {
      ...ex.request,
      url: secrets.maskText(ex.request.url),
      headers: maskHeaders(ex.request.headers, secrets) as Record<string, string>,
      ...(ex.request.body !== undefined ? { body: maskBody(ex.request.body, secrets) } : {}),
    },
    ...(ex.response
      ? {
          response: {
            ...ex.response,
            headers: maskHeaders(ex.response.headers, secrets),
            body: maskBody(ex.response.body, secrets),
          },
        }
      : {}),
    ...(ex.error !== undefined ? { error: secrets.maskText(ex.error) } : {}),
  };
}

function maskHeaders(headers: Record<string, string | string[]>, secrets: SecretRegistry): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    const mask = (v: string): string => {
      if (name === 'cookie')
        return v
          .split(';')
          .map((p) => maskPair(p.trim()))
          .join('; ');
      if (name === 'set-cookie') {
        const [pair = '', ...attrs] = v.split(';');
        return [maskPair(pair.trim()), ...attrs.map((a) => a.trim())].join('; ');
      }
      if (name === 'authorization') return v.replace(/^(\S+\s+)?.*$/, (_m, scheme: string | undefined) => `${scheme ?? ''}${MASK}`);
      return secrets.maskText(v);
    };
    out[name] = Array.isArray(value) ? value.map(mask) : mask(value);
  }
  return out;
}

/** Cookie names stay visible (they are useful evidence); values never do. */
function maskPair(pair: string): string {
  const eq = pair.indexOf('=');
  if (eq < 0) return pair;
  const value = pair.slice(eq + 1);
  return value === '' ? pair : `${pair.slice(0, eq)}=${MASK}`;
}

function maskBody(body: string, secrets: SecretRegistry): string {
  try {
    return JSON.stringify(maskJson(JSON.parse(secrets.maskText(body))));
  } catch {
    // Form bodies: mask pair by pair, keeping the rest byte for byte.
    if (/^[^=&\s]+=[^&\s]*(&[^=&\s]+=[^&\s]*)*$/.test(body)) {
      return body
        .split('&')
        .map((pair) => {
          const [key = '', value = ''] = pair.split('=');
          const plain = safeDecode(value.replace(/\+/g, ' '));
          return SECRET_KEY.test(safeDecode(key)) || secrets.maskText(plain) !== plain ? `${key}=${MASK}` : pair;
        })
        .join('&');
    }
    return secrets.maskText(body);
  }
}

function maskJson(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(maskJson);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, SECRET_KEY.test(k) && isSecretShaped(v) ? MASK : maskJson(v)]));
}

/** Strings (and lists of strings, e.g. recovery codes) under a secret-looking key. */
function isSecretShaped(v: unknown): boolean {
  return typeof v === 'string' || (Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'string'));
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
