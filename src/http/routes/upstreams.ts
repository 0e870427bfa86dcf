/** Linked upstream sign-ins (federated login): list, and unlink (★). */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { Gatehouse } from '../../gatehouse.js';
import { requires, sessionOf } from '../gate.js';
import { boundedString, parse } from '../validation.js';

const LinkParams = z.object({ id: boundedString(1, 64) }).strict();

export async function upstreamRoutes(app: FastifyInstance, { gatehouse }: { gatehouse: Gatehouse }): Promise<void> {
  const { federation } = gatehouse;

  app.get('/api/account/upstreams', { config: requires({ session: 'full' }) }, async (request) => ({
    upstreams: await federation.linkedTo(sessionOf(request).userId),
  }));

  app.delete('/api/account/upstreams/:id', { config: requires({ session: 'full', fresh: true }) }, async (request, reply) => {
    const { id } = parse(LinkParams, request.params);
    await federation.unlink(sessionOf(request), id, request.ctx);
    return reply.status(204).send();
  });
}
