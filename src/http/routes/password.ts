/** Password change (★): other sessions, remember-me tokens and trusted devices are revoked. */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { Gatehouse } from '../../gatehouse.js';
import { requires, sessionOf } from '../gate.js';
import { parse } from '../validation.js';

export const PasswordChangeBody = z
  .object({
    currentPassword: z.string().min(1).max(4096),
    newPassword: z.string().min(1).max(4096),
  })
  .strict();

export async function passwordRoutes(app: FastifyInstance, { gatehouse }: { gatehouse: Gatehouse }): Promise<void> {
  app.post('/api/account/password', { config: requires({ session: 'full', fresh: true }) }, async (request) => {
    const body = parse(PasswordChangeBody, request.body);
    await gatehouse.passwordChange.change(sessionOf(request), body.currentPassword, body.newPassword, request.ctx);
    return { status: 'password_changed' };
  });
}
