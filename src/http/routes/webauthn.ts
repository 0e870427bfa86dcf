/**
 * WebAuthn / passkeys over JSON (extends the contract; see docs/api.md):
 *
 * - `POST /api/mfa/webauthn/register/options` ★ → PublicKeyCredentialCreationOptionsJSON
 * - `POST /api/mfa/webauthn/register {response, label?}` → `{factorId, recoveryCodes?, aal, amr}`
 *   Both also for enrolling sessions (GATEHOUSE_MFA_REQUIRED=all), exactly like TOTP
 *   setup/confirm (the factor lifecycle, core/factor-lifecycle.ts): the options are an
 *   unconfirmed set-up of this session; registering the account's first factor makes the
 *   session full, an additional one is ★ and changes no freshness.
 * - `GET /api/mfa/webauthn` → `{passkeys:[...]}`
 * - `DELETE /api/mfa/webauthn/:factorId` ★ → 204
 * - `POST /api/auth/webauthn/options` (pending session) → request options for mfa/verify
 * - `POST /api/auth/step-up/webauthn/options` (full session) → request options for step-up
 * - `POST /api/auth/mfa/verify` and `POST /api/auth/step-up` accept
 *   `{method:"webauthn", response}` (the assertion as @simplewebauthn/browser returns it).
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { Gatehouse } from '../../gatehouse.js';
import type { CookiePolicy } from '../cookies.js';
import { deliverConfirmedFactor } from '../factor-confirmation.js';
import { addingFactorIsSensitive, requires, sessionOf } from '../gate.js';
import { CredentialResponse } from '../second-factor-body.js';
import { boundedString, parse } from '../validation.js';

export const RegisterBody = z.object({ response: CredentialResponse, label: boundedString(0, 64).optional() }).strict();
const FactorParams = z.object({ factorId: boundedString(1, 64) });

export async function webauthnRoutes(
  app: FastifyInstance,
  { gatehouse, cookies }: { gatehouse: Gatehouse; cookies: CookiePolicy },
): Promise<void> {
  const { webauthn } = gatehouse;

  // Enrolling sessions may register a passkey as their first factor, as they may set up TOTP.
  app.post('/api/mfa/webauthn/register/options', { config: requires({ session: 'enrolling', fresh: true }) }, async (request) =>
    webauthn.registrationOptions(sessionOf(request), request.ctx),
  );

  app.post(
    '/api/mfa/webauthn/register',
    { config: requires({ session: 'enrolling', fresh: addingFactorIsSensitive }) },
    async (request, reply) => {
      const body = parse(RegisterBody, request.body);
      const session = sessionOf(request);
      const result = await webauthn.verifyRegistration(session, body.response, body.label ?? null, request.ctx);
      const token = await deliverConfirmedFactor(request, reply, gatehouse, cookies, session, result);
      return reply.status(201).send({
        factorId: result.factorId,
        ...(result.recoveryCodes ? { recoveryCodes: result.recoveryCodes } : {}),
        aal: result.aal,
        amr: result.session?.facts.amr ?? session.facts.amr,
        ...token,
      });
    },
  );

  app.get('/api/mfa/webauthn', { config: requires({ session: 'full' }) }, async (request) => ({
    passkeys: await webauthn.list(sessionOf(request).userId),
  }));

  app.delete('/api/mfa/webauthn/:factorId', { config: requires({ session: 'full', fresh: true }) }, async (request, reply) => {
    const { factorId } = parse(FactorParams, request.params);
    await webauthn.remove(sessionOf(request), factorId, request.ctx);
    return reply.status(204).send();
  });

  app.post('/api/auth/webauthn/options', { config: requires({ session: 'pending' }) }, async (request) =>
    webauthn.authenticationOptions(sessionOf(request), request.ctx),
  );

  app.post('/api/auth/step-up/webauthn/options', { config: requires({ session: 'full' }) }, async (request) =>
    webauthn.authenticationOptions(sessionOf(request), request.ctx),
  );
}
