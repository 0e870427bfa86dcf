import { z } from 'zod';
import { InvalidRequestError } from '../core/errors.js';

/** Parses a body (or params) with a zod schema; every problem becomes `400 invalid_request` with details. */
export function parse<S extends z.ZodType>(schema: S, value: unknown): z.infer<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  throw new InvalidRequestError(
    'The request body is not valid.',
    result.error.issues.map((issue) => ({ path: issue.path.map(String).join('.') || '(body)', message: issue.message })),
  );
}

/** A string with length bounds that rejects NUL bytes (they have no place in any field). */
export const boundedString = (min: number, max: number) =>
  z
    .string()
    .min(min)
    .max(max)
    .refine((s) => !s.includes('\u0000'), 'must not contain NUL bytes');
