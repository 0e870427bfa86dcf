// Turning a profile's description of a response ("status 202 and body.status is
// mfa_required") into a yes/no, so checks never hard-code one app's conventions.
import type { HttpResult } from './http-client.js';
import type { Matcher } from './profile.js';

/** Reads `a.b.0.c` from parsed JSON. */
export function getPath(value: unknown, path: string): unknown {
  let current = value;
  for (const key of path.split('.')) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<string, unknown>)[key];
  }
  return current;
}

/** Sets `a.b` in a JSON body, creating objects on the way. */
export function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split('.');
  let current = target;
  for (const key of keys.slice(0, -1)) {
    const next = current[key];
    if (next === null || typeof next !== 'object') current[key] = {};
    current = current[key] as Record<string, unknown>;
  }
  current[keys[keys.length - 1] as string] = value;
}

/** Every condition given holds, and no matcher under `not` does. */
export function matches(res: Pick<HttpResult, 'status' | 'json' | 'text' | 'location'>, m: Matcher): boolean {
  if (!conditionsHold(res, m)) return false;
  if (m.not !== undefined) {
    const excluded = Array.isArray(m.not) ? m.not : [m.not];
    if (excluded.some((n) => conditionsHold(res, n))) return false;
  }
  return true;
}

function conditionsHold(res: Pick<HttpResult, 'status' | 'json' | 'text' | 'location'>, m: Omit<Matcher, 'not'>): boolean {
  if (m.status !== undefined) {
    const wanted = Array.isArray(m.status) ? m.status : [m.status];
    if (!wanted.includes(res.status)) return false;
  }
  if (m.body !== undefined) {
    const actual = getPath(res.json, m.body.path);
    if (m.body.equals === undefined ? actual === undefined : actual !== m.body.equals) return false;
  }
  if (m.bodyContains !== undefined && !res.text.includes(m.bodyContains)) return false;
  if (m.redirect !== undefined && !(res.location ?? '').includes(m.redirect)) return false;
  return true;
}

/** A profile matcher if given, else "any 2xx". */
export function succeeded(res: Pick<HttpResult, 'status' | 'json' | 'text' | 'location'>, m: Matcher | undefined): boolean {
  return m ? matches(res, m) : res.status >= 200 && res.status < 300;
}

export function describeMatcher(m: Matcher | undefined): string {
  if (!m) return 'a 2xx status';
  const parts = describeConditions(m);
  const excluded = m.not === undefined ? [] : Array.isArray(m.not) ? m.not : [m.not];
  for (const n of excluded) parts.push(`not (${describeConditions(n).join(' and ')})`);
  return parts.join(' and ');
}

function describeConditions(m: Omit<Matcher, 'not'>): string[] {
  const parts: string[] = [];
  if (m.status !== undefined) parts.push(`status ${Array.isArray(m.status) ? m.status.join('/') : m.status}`);
  if (m.body)
    parts.push(m.body.equals === undefined ? `body has ${m.body.path}` : `body ${m.body.path} = ${JSON.stringify(m.body.equals)}`);
  if (m.bodyContains) parts.push(`body contains ${JSON.stringify(m.bodyContains)}`);
  if (m.redirect) parts.push(`redirect to …${m.redirect}…`);
  return parts;
}

/** Replaces `{name}` in strings (deeply), leaving unknown placeholders alone. */
export function fillTemplate<T>(value: T, vars: Record<string, string>): T {
  if (typeof value === 'string') {
    return value.replace(/\{(\w+)\}/g, (whole, name: string) => vars[name] ?? whole) as T;
  }
  if (Array.isArray(value)) return value.map((v) => fillTemplate(v, vars)) as T;
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, fillTemplate(v, vars)])) as T;
  }
  return value;
}
