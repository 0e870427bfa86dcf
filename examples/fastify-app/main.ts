/** Starts the Fastify example: `npx tsx examples/fastify-app/main.ts` (PORT, default 3002). */
import { createApp } from './app.js';

const port = Number(process.env.PORT ?? 3002);
const { app, close } = await createApp({ dataDir: process.env.GATEHOUSE_DATA_DIR ?? './data/fastify-app' });
const url = await app.listen({ host: '127.0.0.1', port });
console.log(`Notes (Fastify) listening on ${url.replace('127.0.0.1', 'localhost')}`);
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void close().then(() => process.exit(0)));
