import type { FastifyInstance } from 'fastify';
import { requires } from '../gate.js';

export async function healthRoutes(app: FastifyInstance): Promise<void> {
  app.get('/healthz', { config: requires({ session: 'none' }) }, async () => ({ status: 'ok' }));
}
