/**
 * Reading urlencoded form bodies. A field may arrive repeated, missing or oversized (the
 * parser keeps whatever the client sent), so every read is bounded and typed here.
 */
import type { FastifyRequest } from 'fastify';
import { jsonNestingExceeds, MAX_JSON_DEPTH } from '../core/json-limits.js';

export type Form = Record<string, unknown>;

export const formOf = (request: FastifyRequest): Form => (request.body && typeof request.body === 'object' ? (request.body as Form) : {});

/** First value of a form field, bounded; '' when absent. */
export function str(form: Form, name: string, max = 1024): string {
  const value = form[name];
  const first = Array.isArray(value) ? value[0] : value;
  return typeof first === 'string' ? first.slice(0, max) : '';
}

/** Every string value of a repeated field (checkboxes), at most 16. */
export function list(form: Form, name: string): string[] {
  const value = form[name];
  return (Array.isArray(value) ? value : [value]).filter((v): v is string => typeof v === 'string').slice(0, 16);
}

/** A JSON field (a WebAuthn response the script filled in); null when absent or malformed, for the service to refuse. */
export function json(form: Form, name: string): unknown {
  const text = str(form, name, 32 * 1024);
  // Depth first: nothing recursive may ever see a body nested thousands of levels deep.
  if (jsonNestingExceeds(text, MAX_JSON_DEPTH)) return null;
  try {
    return JSON.parse(text || 'null');
  } catch {
    return null;
  }
}

/** A query parameter as a bounded string; '' when absent. */
export const queryParam = (request: FastifyRequest, name: string, max = 200): string =>
  String((request.query as Record<string, unknown>)[name] ?? '').slice(0, max);
