/** Personal API tokens: create (★), list, delete. Tokens themselves can call none of these. */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { Gatehouse } from '../../gatehouse.js';
import { requires, sessionOf } from '../gate.js';
import { boundedString, parse } from '../validation.js';

export const CreateBody = z
  .object({
    name: boundedString(1, 100),
    // Unknown scopes are refused by the service with `details` naming them.
    scopes: z.array(boundedString(1, 64)).max(16),
  })
  .strict();
const TokenParams = z.object({ id: boundedString(1, 64) });

export async function tokenRoutes(app: FastifyInstance, { gatehouse }: { gatehouse: Gatehouse }): Promise<void> {
  const { apiTokens } = gatehouse;

  app.post('/api/tokens', { config: requires({ session: 'full', fresh: true }) }, async (request, reply) => {
    const body = parse(CreateBody, request.body);
    const created = await apiTokens.create(sessionOf(request), body, request.ctx);
    return reply.status(201).send(created);
  });

  app.get('/api/tokens', { config: requires({ session: 'full' }) }, async (request) => ({
    tokens: await apiTokens.list(sessionOf(request).userId),
  }));

  app.delete('/api/tokens/:id', { config: requires({ session: 'full' }) }, async (request, reply) => {
    const { id } = parse(TokenParams, request.params);
    await apiTokens.revoke(sessionOf(request).userId, id, request.ctx);
    return reply.status(204).send();
  });
}
