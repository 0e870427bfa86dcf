/**
 * The admin API (docs/policy.md): sessions of accounts with the `admin` role only, never
 * API tokens. Every change needs the admin's own fresh second factor (★); a factor reset
 * answers nothing anyone could sign in with. And the owner's recovery link (public).
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { Gatehouse } from '../../gatehouse.js';
import { ADMIN_ROLE } from '../../services/admin.js';
import type { CookiePolicy } from '../cookies.js';
import { requires, sessionOf } from '../gate.js';
import { deliverSession } from '../session-delivery.js';
import { boundedString, parse } from '../validation.js';

const UserParams = z.object({ id: boundedString(1, 320) }).strict();
const FindQuery = z.object({ email: boundedString(3, 320) }).strict();
const RolesBody = z.object({ roles: z.array(boundedString(1, 32)).max(16) }).strict();
const RecoverBody = z
  .object({ token: boundedString(1, 200), password: z.string().min(1).max(4096), transport: z.enum(['cookie', 'token']).optional() })
  .strict();

const admin = (fresh: boolean) => requires({ session: 'full', role: ADMIN_ROLE, fresh });

export async function adminRoutes(
  app: FastifyInstance,
  { gatehouse, cookies }: { gatehouse: Gatehouse; cookies: CookiePolicy },
): Promise<void> {
  const { admin: service } = gatehouse;
  const target = async (params: unknown) => (await service.findUser(parse(UserParams, params).id)).id;
  const actor = (request: Parameters<typeof sessionOf>[0]) => ({ kind: 'admin' as const, session: sessionOf(request) });

  app.get('/api/admin/users', { config: admin(false) }, async (request) => {
    const user = await service.findUser(parse(FindQuery, request.query).email);
    return {
      user: {
        id: user.id,
        email: user.email,
        roles: JSON.parse(user.roles) as string[],
        factors: JSON.parse(user.factor_methods) as string[],
      },
    };
  });

  app.get('/api/admin/users/:id/sessions', { config: admin(false) }, async (request) => ({
    sessions: await service.listSessions(await target(request.params), request.ctx.now),
  }));

  app.delete('/api/admin/users/:id/sessions', { config: admin(true) }, async (request, reply) => {
    await service.revokeSessions(await target(request.params), actor(request), request.ctx);
    return reply.status(204).send();
  });

  app.post('/api/admin/users/:id/unlock', { config: admin(true) }, async (request, reply) => {
    await service.unlock(await target(request.params), actor(request), request.ctx);
    return reply.status(204).send();
  });

  app.put('/api/admin/users/:id/roles', { config: admin(true) }, async (request) => {
    const result = await service.setRoles(await target(request.params), parse(RolesBody, request.body).roles, actor(request), request.ctx);
    return { roles: result.roles, enrolmentDueAt: result.dueAt === null ? null : new Date(result.dueAt).toISOString() };
  });

  app.post('/api/admin/users/:id/factors/reset', { config: admin(true) }, async (request) => {
    await service.resetFactors(sessionOf(request), await target(request.params), request.ctx);
    return { status: 'factors_reset', recovery: 'mailed' };
  });

  // The owner's side: the mailed link's token plus the password → an enrolling session.
  app.post('/api/auth/recover', { config: requires({ session: 'none' }) }, async (request, reply) => {
    const body = parse(RecoverBody, request.body);
    const transport = body.transport ?? 'cookie';
    const result = await service.recover(body.token, body.password, transport, request.ctx);
    const token = deliverSession(reply, cookies, result.session, transport);
    return reply
      .status(202)
      .send({ status: 'enrollment_required', expiresIn: gatehouse.config.pendingTtlSeconds, user: result.user, ...token });
  });
}
