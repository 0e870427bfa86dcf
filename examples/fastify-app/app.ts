/**
 * A Fastify app protected by Gatehouse: sign-in pages and API from Gatehouse, a notes
 * API that needs a full session (or a `notes:read` token), and a ★ action (publishing)
 * that needs a fresh second factor. Only the public package API is used.
 */
import Fastify from 'fastify';
import { createGatehouse, gatehouseFastify, requires, sessionOf, type GatehouseOptions } from 'gatehouse';

export async function createApp(options: GatehouseOptions = {}) {
  const gatehouse = await createGatehouse({ productName: 'Notes (Fastify)', scopes: ['notes:read'], ...options });
  const notes = new Map<string, string[]>();

  const app = Fastify();
  await app.register(gatehouseFastify, { gatehouse });

  // Every route registered after the plugin must declare requires(...): a route without
  // one stops start-up.
  app.get('/api/status', { config: requires({ session: 'none' }) }, async () => ({
    app: 'notes',
    pages: ['/sign-up', '/sign-in', '/settings'],
  }));
  app.get('/api/notes', { config: requires({ session: 'full', scope: 'notes:read' }) }, async (request) => ({
    notes: notes.get(gatehouse.userIdOf(request)) ?? [],
  }));
  app.post('/api/notes', { config: requires({ session: 'full' }) }, async (request, reply) => {
    const body = request.body as { text?: unknown } | undefined;
    const text = typeof body?.text === 'string' ? body.text.slice(0, 500) : '';
    if (!text) return reply.status(400).send({ error: 'invalid_request', message: 'Send {"text": "..."}.' });
    const mine = notes.get(gatehouse.userIdOf(request)) ?? [];
    notes.set(gatehouse.userIdOf(request), [...mine, text]);
    return reply.status(201).send({ notes: notes.get(gatehouse.userIdOf(request)) });
  });
  // ★ Publishing all notes: a fresh second-factor check (403 step_up_required otherwise).
  app.post('/api/notes/publish', { config: requires({ session: 'full', fresh: true }) }, async (request) => ({
    published: (notes.get(gatehouse.userIdOf(request)) ?? []).length,
    by: sessionOf(request).email,
  }));

  return {
    app,
    gatehouse,
    async close() {
      await app.close();
      await gatehouse.close();
    },
  };
}
