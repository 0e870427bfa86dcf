/**
 * An Express app protected by Gatehouse: sign-in pages and API from Gatehouse, a notes
 * API that needs a full session (or a `notes:read` token), and a ★ action (publishing)
 * that needs a fresh second factor. Only the public package API is used.
 */
import express from 'express';
import { createGatehouse, type GatehouseOptions } from 'gatehouse';
import { gatehouseExpress } from 'gatehouse/express';

export async function createApp(options: GatehouseOptions = {}) {
  const gatehouse = await createGatehouse({ productName: 'Notes (Express)', scopes: ['notes:read'], ...options });
  const auth = await gatehouseExpress(gatehouse);
  const notes = new Map<string, string[]>();

  const app = express();
  app.use(auth.handler); // Gatehouse's routes and pages: before any body parser
  app.use(express.json());

  // Every route on this router must start with auth.requireSession(...): a route
  // without one throws here, at start-up.
  const routes = auth.router();
  routes.get('/api/status', auth.requireSession.none, (_req, res) => {
    res.json({ app: 'notes', pages: ['/sign-up', '/sign-in', '/settings'] });
  });
  routes.get('/api/notes', auth.requireSession({ session: 'full', scope: 'notes:read' }), (req, res) => {
    res.json({ notes: notes.get(auth.userIdOf(req)) ?? [] });
  });
  routes.post('/api/notes', auth.requireSession({ session: 'full' }), (req, res) => {
    const text = typeof req.body?.text === 'string' ? req.body.text.slice(0, 500) : '';
    if (!text) return void res.status(400).json({ error: 'invalid_request', message: 'Send {"text": "..."}.' });
    const mine = notes.get(auth.userIdOf(req)) ?? [];
    notes.set(auth.userIdOf(req), [...mine, text]);
    res.status(201).json({ notes: notes.get(auth.userIdOf(req)) });
  });
  // ★ Publishing all notes: a fresh second-factor check (403 step_up_required otherwise).
  routes.post('/api/notes/publish', auth.requireSession({ session: 'full', fresh: true }), (req, res) => {
    res.json({ published: (notes.get(auth.userIdOf(req)) ?? []).length, by: auth.sessionOf(req).email });
  });
  app.use(routes);

  return {
    app,
    gatehouse,
    async close() {
      await auth.close();
      await gatehouse.close();
    },
  };
}
