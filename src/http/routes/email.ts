/**
 * E-mail change: request (★, link to the new address, cancel link to the old one),
 * confirmation and cancel (each by its mailed token alone).
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { Gatehouse } from '../../gatehouse.js';
import { requires, sessionOf } from '../gate.js';
import { boundedString, parse } from '../validation.js';

export const RequestBody = z.object({ email: boundedString(1, 320) }).strict();
export const ConfirmBody = z.object({ token: boundedString(1, 200) }).strict();

export async function emailRoutes(app: FastifyInstance, { gatehouse }: { gatehouse: Gatehouse }): Promise<void> {
  const { emailChange } = gatehouse;

  app.post('/api/account/email', { config: requires({ session: 'full', fresh: true }) }, async (request, reply) => {
    const body = parse(RequestBody, request.body);
    await emailChange.request(sessionOf(request), body.email, request.ctx);
    return reply.status(202).send({ status: 'confirmation_sent' });
  });

  app.post('/api/account/email/confirm', { config: requires({ session: 'none' }) }, async (request) => {
    const body = parse(ConfirmBody, request.body);
    const { email } = await emailChange.confirm(body.token, request.ctx);
    return { status: 'email_changed', email };
  });

  // The token alone is the credential (mailed to the old address); whatever session comes
  // along is ignored, and none is issued.
  app.post('/api/account/email/cancel', { config: requires({ session: 'none' }) }, async (request) => {
    const body = parse(ConfirmBody, request.body);
    return emailChange.cancel(body.token, request.ctx);
  });
}
