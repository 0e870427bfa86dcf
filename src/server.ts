/**
 * A ready-to-run Gatehouse server: the library plus the demo bank, on Fastify.
 */
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { loadConfig, type GatehouseConfig } from './config.js';
import { registerDemoBank } from './demo-bank/routes.js';
import { createGatehouse, type Gatehouse } from './gatehouse.js';
import { gatehouseFastify } from './http/plugin.js';

/** The contract's body limit. */
export const BODY_LIMIT_BYTES = 64 * 1024;

export interface RunningServer {
  app: FastifyInstance;
  gatehouse: Gatehouse;
  url: string;
  close(): Promise<void>;
}

export async function buildServer(config: GatehouseConfig): Promise<{ app: FastifyInstance; gatehouse: Gatehouse }> {
  const gatehouse = await createGatehouse(config);
  const app: FastifyInstance = Fastify({
    loggerInstance: gatehouse.logger as FastifyBaseLogger,
    bodyLimit: BODY_LIMIT_BYTES,
    trustProxy: config.trustProxy.length > 0 ? config.trustProxy : false,
    // Slow clients must not hold connections open forever.
    connectionTimeout: 30_000,
    requestTimeout: 30_000,
    keepAliveTimeout: 5_000,
    return503OnClosing: true,
  });
  await app.register(gatehouseFastify, { gatehouse });
  await app.register(registerDemoBank, { gatehouse });
  app.addHook('onClose', async () => gatehouse.close());
  return { app, gatehouse };
}

export async function startServer(config: GatehouseConfig = loadConfig()): Promise<RunningServer> {
  const { app, gatehouse } = await buildServer(config);
  await app.listen({ host: config.host, port: config.port });
  const bound = app.server.address();
  const port = typeof bound === 'object' && bound ? bound.port : config.port;
  const url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
  if (!config.publicUrlConfigured) config.publicUrl = url;
  gatehouse.logger.info({ url, publicUrl: config.publicUrl, database: config.databaseUrl.split(':')[0] }, 'gatehouse listening');
  return { app, gatehouse, url, close: () => app.close() };
}
