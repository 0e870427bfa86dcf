import type { FastifyInstance } from 'fastify';
import type { Gatehouse } from '../../gatehouse.js';
import { requires } from '../gate.js';

/** Liveness (`/healthz`: the process answers) and readiness (`/readyz`: it can serve). */
export async function healthRoutes(app: FastifyInstance, { gatehouse }: { gatehouse: Gatehouse }): Promise<void> {
  app.get('/healthz', { config: requires({ session: 'none' }) }, async () => ({ status: 'ok' }));

  // For load balancers: 503 while the database or Redis does not answer, or while closing.
  app.get('/readyz', { config: requires({ session: 'none' }) }, async (_request, reply) => {
    const state = await gatehouse.readiness();
    if (state.ready) return { status: 'ready' };
    reply.header('Retry-After', '5');
    return reply.status(503).send({ status: 'not_ready' });
  });
}
