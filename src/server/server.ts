/**
 * A ready-to-run Gatehouse server (`gatehouse/server`): the library plus the demo bank,
 * on Fastify, configured from the environment. Its `gatehouse` field is the assembled
 * services (for operations and tests), not the library facade.
 */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { loadConfig, type ServerConfig } from '../config.js';
import { registerDemoBank } from '../demo-bank/routes.js';
import { facadeOf, type Gatehouse as GatehouseFacade } from '../facade.js';
import { assembleGatehouse, redactUrlQuery, type Gatehouse } from '../gatehouse.js';
import { gatehouseFastify } from '../http/plugin.js';
import { LazyChildLogger } from './lazy-logger.js';

/** The contract's body limit. */
export const BODY_LIMIT_BYTES = 64 * 1024;

export interface RunningServer {
  app: FastifyInstance;
  /** The assembled services behind the server (internal; tests and operations). */
  gatehouse: Gatehouse;
  /** What a host application would get from createGatehouse. */
  facade: GatehouseFacade;
  url: string;
  close(): Promise<void>;
}

/** Limits for slow or idle clients, in milliseconds. */
export interface ServerTimeouts {
  /** Complete request headers must arrive within this time. */
  headers: number;
  /** The whole request (headers and body) must arrive within this time. */
  request: number;
  /** A socket with no traffic at all is closed after this time. */
  idle: number;
  /** An idle keep-alive connection is closed after this time. */
  keepAlive: number;
}

export const DEFAULT_TIMEOUTS: ServerTimeouts = { headers: 10_000, request: 30_000, idle: 30_000, keepAlive: 5_000 };

/** Largest request head (request line and headers) Node parses; beyond it, a JSON 431. */
export const MAX_HEADER_BYTES = 16 * 1024;

/**
 * Errors Node raises before Fastify sees a request (oversized or malformed headers, slow
 * clients) get the contract's JSON error shape too, never a bare status line.
 */
function clientErrorHandler(err: NodeJS.ErrnoException, socket: import('node:net').Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, reason, message] =
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? [408, 'Request Timeout', 'The request took too long to arrive.']
      : err.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'Request Header Fields Too Large', 'The request headers are too large.']
        : [400, 'Bad Request', 'The request is malformed.'];
  const body = JSON.stringify({ error: 'invalid_request', message, details: [] });
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
        'Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nX-Frame-Options: DENY\r\n' +
        `Content-Security-Policy: default-src 'none'; frame-ancestors 'none'\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}

/**
 * Fastify's two lines per request at info cost a fifth of the gate's time: one compact
 * line at debug instead. Errors are logged by our error handler at any level, and a reply
 * that fails while being sent still is here.
 */
class CompactRequestLog extends LogController {
  constructor(private readonly enabled: () => boolean) {
    super();
  }

  override incomingRequest(): void {}

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    if (error) return super.requestCompleted(error, request, reply);
    if (!this.enabled()) return;
    const ms = Math.round(reply.elapsedTime * 10) / 10;
    request.log.debug({ method: request.method, url: redactUrlQuery(request.url), status: reply.statusCode, ms }, 'request');
  }
}

export interface BuildOptions {
  timeouts?: Partial<ServerTimeouts>;
  /** Runs before any route is registered (request hooks for metrics see every route). */
  instrument?: (app: FastifyInstance, gatehouse: Gatehouse, facade: GatehouseFacade) => void;
}

export async function buildServer(
  config: ServerConfig,
  options: BuildOptions = {},
): Promise<{ app: FastifyInstance; gatehouse: Gatehouse; facade: GatehouseFacade }> {
  const gatehouse = await assembleGatehouse(config);
  const facade = facadeOf(gatehouse);
  const timeouts = { ...DEFAULT_TIMEOUTS, ...options.timeouts };
  const app: FastifyInstance = Fastify({
    loggerInstance: gatehouse.logger as FastifyBaseLogger,
    bodyLimit: BODY_LIMIT_BYTES,
    trustProxy: config.trustProxy.length > 0 ? config.trustProxy : false,
    // Slow clients must not hold connections open forever.
    connectionTimeout: timeouts.idle,
    requestTimeout: timeouts.request,
    keepAliveTimeout: timeouts.keepAlive,
    http: {
      headersTimeout: Math.min(timeouts.headers, timeouts.request),
      requestTimeout: timeouts.request,
      // How often Node checks the two timeouts above (its default, 30 s, is too coarse).
      connectionsCheckingInterval: Math.max(100, Math.min(1_000, Math.floor(timeouts.headers / 4))),
      maxHeaderSize: MAX_HEADER_BYTES,
    },
    clientErrorHandler,
    // A URL Fastify cannot decode (e.g. a lone "%") never reaches the error handler.
    frameworkErrors: (_error, _request, reply) => {
      void (reply as unknown as FastifyReply)
        .status(400)
        .headers({
          'content-type': 'application/json; charset=utf-8',
          'cache-control': 'no-store',
          'x-content-type-options': 'nosniff',
          'x-frame-options': 'DENY',
          'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
        })
        .send(JSON.stringify({ error: 'invalid_request', message: 'The request URL is malformed.', details: [] }));
    },
    return503OnClosing: true,
    logController: new CompactRequestLog(() => gatehouse.logger.isLevelEnabled('debug')),
    childLoggerFactory: (logger, bindings, options) => new LazyChildLogger(logger, bindings, options),
  });
  options.instrument?.(app, gatehouse, facade);
  // The whole server is Gatehouse's: its JSON 404 answers unknown URLs too.
  await app.register(gatehouseFastify, {
    gatehouse: facade,
    notFound: true,
    conventions: 'whole-app',
    behindProxy: config.trustProxy.length > 0,
  });
  await app.register(registerDemoBank, { db: gatehouse.database.db, transferStepUpCents: config.transferStepUpCents });
  app.addHook('onClose', async () => gatehouse.close());
  return { app, gatehouse, facade };
}

export async function startServer(config: ServerConfig = loadConfig(), options: BuildOptions = {}): Promise<RunningServer> {
  const { app, gatehouse, facade } = await buildServer(config, options);
  try {
    await app.listen({ host: config.host, port: config.port });
  } catch (err) {
    await app.close();
    throw err;
  }
  const bound = app.server.address();
  const port = typeof bound === 'object' && bound ? bound.port : config.port;
  const url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
  gatehouse.logger.info(
    {
      url,
      publicUrl: gatehouse.config.publicUrl,
      database: config.databaseUrl.split(':')[0],
      passwordHashSlots: gatehouse.passwords.concurrency,
    },
    'gatehouse listening',
  );
  if (gatehouse.origins.development) {
    gatehouse.logger.warn(
      { accepted: gatehouse.origins.accepted() },
      'GATEHOUSE_PUBLIC_URL is not set: development mode, accepting localhost and 127.0.0.1 at the listening port. Set it in production.',
    );
  }
  // Expired-row cleanup: first run shortly after start, then every ten minutes (unref'd);
  // stopped by gatehouse.close() on the app's onClose.
  gatehouse.maintenance.start();
  return { app, gatehouse, facade, url, close: () => app.close() };
}
