/** The account itself, its security log and its sessions. */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { NotFoundError } from '../../core/errors.js';
import { assuranceLevel, type SessionState } from '../../core/session-state.js';
import type { Gatehouse } from '../../gatehouse.js';
import { factorMethodsOf } from '../../store/json-columns.js';
import { requires, sessionOf, userIdOf } from '../gate.js';
import { boundedString, parse } from '../validation.js';

const SessionParams = z.object({ id: boundedString(1, 64) });
const iso = (t: number) => new Date(t).toISOString();

export async function accountRoutes(app: FastifyInstance, { gatehouse }: { gatehouse: Gatehouse }): Promise<void> {
  const { stores, log, sessions } = gatehouse;

  app.get('/api/account', { config: requires({ session: 'full', scope: 'account:read' }) }, async (request) => {
    const { principal } = request;
    // A session: the gate read the account with it, in this request; no second read.
    if (principal.kind === 'session') {
      const { session } = principal;
      return {
        id: session.userId,
        email: session.email,
        mfaEnabled: session.factorMethods.length > 0,
        createdAt: iso(session.accountCreatedAt),
      };
    }
    const user = await stores.users.findById(userIdOf(request));
    if (!user) throw new NotFoundError();
    return { id: user.id, email: user.email, mfaEnabled: factorMethodsOf(user).length > 0, createdAt: iso(user.created_at) };
  });

  app.get('/api/account/events', { config: requires({ session: 'full', scope: 'account:read' }) }, async (request) => {
    const events = await log.list(userIdOf(request));
    return { events: events.map((e) => ({ type: e.type, at: iso(e.at), ip: e.ip, userAgent: e.user_agent, ...riskOf(e.details) })) };
  });

  app.get('/api/sessions', { config: requires({ session: 'full' }) }, async (request) => {
    const current = sessionOf(request);
    const rows = await sessions.list(current.userId, request.ctx.now);
    return {
      sessions: rows.map((row) => ({
        id: row.id,
        current: row.id === current.id,
        state: row.state,
        createdAt: iso(row.created_at),
        lastSeenAt: iso(row.last_seen_at),
        ip: row.ip,
        userAgent: row.user_agent,
        aal: assuranceLevel({
          state: row.state as SessionState,
          amr: JSON.parse(row.amr),
          mfaAt: row.mfa_at,
          authTime: row.auth_time,
          passwordAt: row.password_at,
          createdAt: row.created_at,
          lastSeenAt: row.last_seen_at,
          expiresAt: row.expires_at,
        }),
      })),
    };
  });

  app.delete('/api/sessions/:id', { config: requires({ session: 'full' }) }, async (request, reply) => {
    const { id } = parse(SessionParams, request.params);
    const session = sessionOf(request);
    if (!(await sessions.revokeForUser(session, id, request.ctx.now))) throw new NotFoundError('No such session.');
    // The remember-me chain that session came from (or was issued to) ended with it
    // (SessionService.revokedHooks).
    await log.record('session.revoked', session.userId, request.ctx, { sessionId: id });
    // Its own session: this browser signed out, so what else signed it in ends too.
    if (id === session.id) for (const hook of gatehouse.signOutHooks) await hook(request.raw, reply.raw);
    return reply.status(204).send();
  });
}

/** The risk signals a sign-in event carries (docs/policy.md), as `{ risk: [...] }`, or nothing. */
function riskOf(details: string): { risk?: string[] } {
  try {
    const risk = (JSON.parse(details) as { risk?: unknown }).risk;
    return Array.isArray(risk) && risk.length > 0 ? { risk: risk.filter((r): r is string => typeof r === 'string') } : {};
  } catch {
    return {};
  }
}
