/** The body of mfa/verify and step-up: a TOTP or recovery code, or a passkey assertion. */
import { z } from 'zod';
import { parse } from './validation.js';

/** A WebAuthn response object as the browser library produces it; checked by the service. */
export const CredentialResponse = z.record(z.string(), z.unknown()).refine((r) => JSON.stringify(r).length <= 32 * 1024, 'too large');

const AssertionBody = z
  .object({ method: z.literal('webauthn'), response: CredentialResponse, trustDevice: z.boolean().optional() })
  .strict();
const StepUpAssertionBody = AssertionBody.omit({ trustDevice: true });

export interface SecondFactorInput {
  method: 'totp' | 'recovery_code' | 'webauthn';
  code: string;
  response?: unknown;
  trustDevice?: boolean;
}

/**
 * Parses an mfa/verify or step-up body: `{method:"webauthn", response}` or the contract's
 * code body (validated by `codeSchema`).
 */
export function parseSecondFactor(
  codeSchema: z.ZodType<{ method: 'totp' | 'recovery_code'; code: string; trustDevice?: boolean }>,
  body: unknown,
  options: { trustDevice: boolean },
): SecondFactorInput {
  const isWebAuthn = typeof body === 'object' && body !== null && (body as { method?: unknown }).method === 'webauthn';
  if (!isWebAuthn) return parse(codeSchema, body);
  if (!options.trustDevice) return { method: 'webauthn', code: '', response: parse(StepUpAssertionBody, body).response };
  const parsed = parse(AssertionBody, body);
  return { method: 'webauthn', code: '', response: parsed.response, trustDevice: parsed.trustDevice };
}
