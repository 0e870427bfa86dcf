/**
 * `gatehouse serve`: one server instance from the environment's settings, with metrics
 * (if enabled) and an orderly shutdown. `serve(config)` starts one instance and installs
 * nothing process-wide, so a supervisor (e.g. `--workers N`) can start several;
 * `serveCommand` adds the signals and the one-line start-up errors.
 *
 * Shutdown (SIGTERM/SIGINT), one log line per phase:
 *   1. draining: /readyz answers 503 from now on; the listener stops accepting connections;
 *      requests still arriving on open keep-alive connections get 503 + Connection: close;
 *   2. drained: in-flight requests finished, or GATEHOUSE_SHUTDOWN_GRACE_SECONDS elapsed
 *      and the remaining connections are cut;
 *   3. closed: mail worker, timers, database and Redis released; exit 0.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ServerConfig } from '../config.js';
import { createMetrics, listenForMetrics, type MetricsListener } from './metrics.js';
import { startServer, type RunningServer } from './server.js';

export interface ServingInstance {
  server: RunningServer;
  /** The metrics listener, when GATEHOUSE_METRICS=on. */
  metrics: MetricsListener | null;
  /** Requests being answered right now. */
  inFlight(): number;
  /** The orderly shutdown above; resolves once everything is closed (idempotent). */
  shutdown(reason: string): Promise<void>;
}

function countInFlight(app: FastifyInstance): () => number {
  const active = new Set<FastifyRequest>();
  // Callback hooks: nothing here awaits, and an async hook costs a promise per request.
  app.addHook('onRequest', (request, _reply, done) => {
    active.add(request);
    done();
  });
  // onResponse for requests that got an answer; onRequestAbort for clients that left first.
  app.addHook('onResponse', (request, _reply, done) => {
    active.delete(request);
    done();
  });
  app.addHook('onRequestAbort', (request, done) => {
    active.delete(request);
    done();
  });
  return () => active.size;
}

export async function serve(config: ServerConfig): Promise<ServingInstance> {
  let inFlight: () => number = () => 0;
  let metricsRegistry: ReturnType<typeof createMetrics>['registry'] | null = null;
  const server = await startServer(config, {
    instrument(app, gatehouse, facade) {
      inFlight = countInFlight(app);
      if (config.metrics === 'on') {
        const metrics = createMetrics(gatehouse, facade);
        metrics.instrument(app);
        metricsRegistry = metrics.registry;
      }
    },
  });
  let metrics: MetricsListener | null = null;
  if (metricsRegistry) {
    try {
      metrics = await listenForMetrics(metricsRegistry, { host: config.metricsHost, port: config.metricsPort, token: config.metricsToken });
    } catch (err) {
      await server.close();
      throw Object.assign(err as Error, { metricsListener: true });
    }
    server.gatehouse.logger.info({ url: metrics.url }, 'metrics listening');
  }
  const log = server.gatehouse.logger;
  let stopping: Promise<void> | null = null;
  const shutdown = async (reason: string) => {
    const graceMs = config.shutdownGraceSeconds * 1000;
    const t0 = Date.now();
    log.info(
      { reason, inFlight: inFlight(), graceSeconds: config.shutdownGraceSeconds },
      'shutdown 1/3: draining (not ready, no new connections)',
    );
    server.gatehouse.beginDrain();
    let timer: NodeJS.Timeout | undefined;
    // The listener's own close: every connection ended (Fastify's onClose hooks come after).
    const httpClosed = new Promise<void>((resolve) => server.app.server.once('close', () => resolve()));
    const closed = server.close();
    const graceOver = new Promise<'grace'>((resolve) => (timer = setTimeout(() => resolve('grace'), graceMs)));
    // Idle keep-alive connections would otherwise hold the listener open until they time out.
    server.app.server.closeIdleConnections();
    const first = await Promise.race([httpClosed.then(() => 'drained' as const), graceOver]);
    if (first === 'grace') {
      log.warn({ inFlight: inFlight(), ms: Date.now() - t0 }, 'shutdown 2/3: grace period over, cutting the remaining connections');
      server.app.server.closeAllConnections();
    } else {
      log.info({ ms: Date.now() - t0 }, 'shutdown 2/3: drained, every in-flight request answered');
    }
    await closed;
    clearTimeout(timer);
    await metrics?.close();
    log.info({ ms: Date.now() - t0 }, 'shutdown 3/3: closed (database, Redis, mail worker); exiting');
  };
  return {
    server,
    metrics,
    inFlight: () => inFlight(),
    shutdown: (reason) => (stopping ??= shutdown(reason)),
  };
}
