/**
 * A submitted second-factor form (the sign-in challenge or the in-place step-up, which
 * prefixes its fields with `stepup_` so they never clash with the carried form's fields),
 * and the words for a factor that was not accepted.
 */
import type { CodeMethod } from '../services/second-factor.js';
import { json, str, type Form } from './form.js';

export interface FactorInput {
  method: string;
  code: string;
  response: unknown;
  password: string;
}

export function factorInput(form: Form, prefix: '' | 'stepup_'): FactorInput {
  const method = str(form, `${prefix}method`, 32);
  return {
    method,
    code: str(form, `${prefix}code`, 64),
    response: method === 'webauthn' ? json(form, `${prefix}response`) : null,
    password: str(form, `${prefix}password`, 4096),
  };
}

export const isCodeMethod = (m: string): m is CodeMethod => m === 'totp' || m === 'recovery_code' || m === 'webauthn';

export const wrongFactor = (method: string) =>
  method === 'webauthn'
    ? 'The passkey was not accepted. Try again.'
    : method === 'recovery_code'
      ? 'That recovery code is not valid or was already used.'
      : 'That code is not right. Wait for a new code and try again.';
