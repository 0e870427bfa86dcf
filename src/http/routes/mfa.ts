/** Second factors: list, TOTP enrolment and removal, recovery codes. */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { Gatehouse } from '../../gatehouse.js';
import type { CookiePolicy } from '../cookies.js';
import { deliverConfirmedFactor } from '../factor-confirmation.js';
import { addingFactorIsSensitive, requires, sessionOf } from '../gate.js';
import { boundedString, parse } from '../validation.js';

export const ConfirmBody = z.object({ code: boundedString(1, 64) }).strict();
const FactorParams = z.object({ factorId: boundedString(1, 64) });

export async function mfaRoutes(
  app: FastifyInstance,
  { gatehouse, cookies }: { gatehouse: Gatehouse; cookies: CookiePolicy },
): Promise<void> {
  const { factors } = gatehouse;

  app.get('/api/mfa', { config: requires({ session: 'full' }) }, async (request) => factors.list(sessionOf(request), request.ctx.now));

  // Enrolling sessions may set up TOTP; the check of freshness makes a stolen, idle
  // session unable to add an attacker's authenticator.
  app.post('/api/mfa/totp/setup', { config: requires({ session: 'enrolling', fresh: true }) }, async (request) =>
    factors.setupTotp(sessionOf(request), request.ctx),
  );

  app.post(
    '/api/mfa/totp/confirm',
    { config: requires({ session: 'enrolling', fresh: addingFactorIsSensitive }) },
    async (request, reply) => {
      const body = parse(ConfirmBody, request.body);
      const session = sessionOf(request);
      const result = await factors.confirmTotp(session, body.code, request.ctx);
      const token = await deliverConfirmedFactor(request, reply, gatehouse, cookies, session, result);
      return reply.send({ ...(result.recoveryCodes ? { recoveryCodes: result.recoveryCodes } : {}), aal: result.aal, ...token });
    },
  );

  app.delete('/api/mfa/totp/:factorId', { config: requires({ session: 'full', fresh: true }) }, async (request, reply) => {
    const { factorId } = parse(FactorParams, request.params);
    await factors.deleteTotp(sessionOf(request), factorId, request.ctx);
    return reply.status(204).send();
  });

  app.post('/api/mfa/recovery-codes', { config: requires({ session: 'full', fresh: true }) }, async (request) => ({
    recoveryCodes: await factors.regenerateRecoveryCodes(sessionOf(request), request.ctx),
  }));
}
