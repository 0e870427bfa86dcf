/** Forgotten password: request a link (same answer for every address), then reset. No session either way. */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { Gatehouse } from '../../gatehouse.js';
import { requires } from '../gate.js';
import { boundedString, parse } from '../validation.js';

export const ForgotBody = z.object({ email: boundedString(1, 320) }).strict();
export const ResetBody = z.object({ token: boundedString(1, 200), password: z.string().min(1).max(4096) }).strict();

export async function passwordResetRoutes(app: FastifyInstance, { gatehouse }: { gatehouse: Gatehouse }): Promise<void> {
  const { passwordReset } = gatehouse;

  app.post('/api/auth/password/forgot', { config: requires({ session: 'none' }) }, async (request, reply) => {
    const body = parse(ForgotBody, request.body);
    await passwordReset.forgot(body.email, request.ctx);
    return reply.status(202).send({ status: 'reset_requested' });
  });

  app.post('/api/auth/password/reset', { config: requires({ session: 'none' }) }, async (request) => {
    const body = parse(ResetBody, request.body);
    await passwordReset.reset(body.token, body.password, request.ctx);
    return { status: 'password_changed' };
  });
}
