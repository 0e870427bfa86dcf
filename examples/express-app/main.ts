/** Starts the Express example: `npx tsx examples/express-app/main.ts` (PORT, default 3001). */
import { createApp } from './app.js';

const port = Number(process.env.PORT ?? 3001);
const { app, close } = await createApp({ dataDir: process.env.GATEHOUSE_DATA_DIR ?? './data/express-app' });
const server = app.listen(port, '127.0.0.1', () => {
  const address = server.address();
  const bound = typeof address === 'object' && address ? address.port : port;
  console.log(`Notes (Express) listening on http://localhost:${bound}`);
});
for (const signal of ['SIGINT', 'SIGTERM'] as const)
  process.once(signal, () => server.close(() => void close().then(() => process.exit(0))));
