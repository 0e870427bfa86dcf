/**
 * Prometheus metrics (`GATEHOUSE_METRICS=on`). They are served by a listener of their own
 * (GATEHOUSE_METRICS_HOST:GATEHOUSE_METRICS_PORT, 127.0.0.1:9464 by default), never on the
 * public port, and that listener knows nothing of sessions: a browser's cookies open
 * nothing there. On loopback it answers only requests whose Host names a loopback address
 * (a DNS-rebinding page cannot read it); elsewhere it requires GATEHOUSE_METRICS_TOKEN as a
 * bearer token (loadConfig refuses a non-loopback host without one).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { isLoopback } from '../config.js';
import type { Gatehouse as GatehouseFacade } from '../facade.js';
import type { Gatehouse } from '../gatehouse.js';
import { constantTimeEqual } from '../services/keys.js';

/** Login answers by status (unknown accounts leave no security event, so the route's answer is counted). */
const LOGIN_OUTCOMES: Record<number, string> = {
  200: 'succeeded',
  202: 'second_factor_pending',
  400: 'invalid_request',
  401: 'failed',
  403: 'refused',
  429: 'limited',
  503: 'unavailable',
};

export interface Metrics {
  registry: Registry;
  /** Counts requests of `app` (call before routes are registered or after; hooks apply to all). */
  instrument(app: FastifyInstance): void;
}

export function createMetrics(gatehouse: Gatehouse, facade: GatehouseFacade): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const requests = new Counter({
    name: 'gatehouse_http_requests_total',
    help: 'HTTP requests by route pattern, method and status.',
    labelNames: ['route', 'method', 'status'] as const,
    registers: [registry],
  });
  const latency = new Histogram({
    name: 'gatehouse_http_request_duration_seconds',
    help: 'HTTP request latency by route pattern, method and status.',
    labelNames: ['route', 'method', 'status'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const unavailable = new Counter({
    name: 'gatehouse_unavailable_responses_total',
    help: 'Answers 503 service_unavailable (a dependency was down, or the instance was closing).',
    registers: [registry],
  });
  const logins = new Counter({
    name: 'gatehouse_logins_total',
    help: 'Password logins (POST /api/auth/login and the login page) by outcome.',
    labelNames: ['outcome'] as const,
    registers: [registry],
  });
  const secondFactorFailures = new Counter({
    name: 'gatehouse_second_factor_failures_total',
    help: 'Wrong second-factor codes or assertions (security event mfa.failed) by method.',
    labelNames: ['method'] as const,
    registers: [registry],
  });
  const secondFactorSuccesses = new Counter({
    name: 'gatehouse_second_factor_verified_total',
    help: 'Second-factor checks passed at login (security event mfa.verified) by method.',
    labelNames: ['method'] as const,
    registers: [registry],
  });
  const lockouts = new Counter({
    name: 'gatehouse_lockouts_total',
    help: 'Accounts locked after too many failures (security event account.locked) by check.',
    labelNames: ['check'] as const,
    registers: [registry],
  });
  new Gauge({
    name: 'gatehouse_password_hash_queue_depth',
    help: 'Password hashes and verifications waiting for a core.',
    registers: [registry],
    collect() {
      this.set(gatehouse.passwords.queueDepth);
    },
  });
  const outboxDepth = new Gauge({ name: 'gatehouse_mail_outbox_depth', help: 'Mails waiting to be sent.', registers: [registry] });
  const outboxAge = new Gauge({
    name: 'gatehouse_mail_outbox_oldest_age_seconds',
    help: 'Age of the oldest mail waiting to be sent (0 when none).',
    registers: [registry],
    // One query feeds both outbox gauges; a database outage leaves them at their last values.
    async collect() {
      try {
        const row = await gatehouse.database.db
          .selectFrom('mail_outbox')
          .select((eb) => [eb.fn.countAll<number>().as('n'), eb.fn.min('created_at').as('oldest')])
          .where('status', '=', 'pending')
          .executeTakeFirst();
        const n = Number(row?.n ?? 0);
        outboxDepth.set(n);
        this.set(n > 0 && row?.oldest != null ? Math.max(0, (gatehouse.config.now() - Number(row.oldest)) / 1000) : 0);
      } catch {
        /* the database is down: /readyz says so */
      }
    },
  });

  const label = (value: unknown) => (typeof value === 'string' && value ? value : 'unknown');
  facade.on('mfa.failed', (event) => secondFactorFailures.inc({ method: label(event.details.method) }));
  facade.on('mfa.verified', (event) => secondFactorSuccesses.inc({ method: label(event.details.method) }));
  facade.on('account.locked', (event) => lockouts.inc({ check: label(event.details.check) }));

  return {
    registry,
    instrument(app) {
      app.addHook('onResponse', async (request, reply) => {
        // The route pattern, never the raw URL (bounded label values); unmatched URLs share one.
        const route = request.routeOptions.url ?? '(unmatched)';
        const labels = { route, method: request.method, status: String(reply.statusCode) };
        requests.inc(labels);
        latency.observe(labels, reply.elapsedTime / 1000);
        if (reply.statusCode === 503) unavailable.inc();
        if (request.method === 'POST' && (route === '/api/auth/login' || route === '/login')) {
          logins.inc({ outcome: LOGIN_OUTCOMES[reply.statusCode] ?? (reply.statusCode < 400 ? 'succeeded' : 'other') });
        }
      });
    },
  };
}

export interface MetricsListener {
  url: string;
  close(): Promise<void>;
}

/** The metrics listener: GET /metrics only, no cookies read, Host or bearer token checked. */
export async function listenForMetrics(
  registry: Registry,
  options: { host: string; port: number; token: string | null },
): Promise<MetricsListener> {
  const server = http.createServer((req, res) => {
    const refuse = (status: number, message: string) => {
      res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' }).end(`${message}\n`);
    };
    const hostname = (req.headers.host ?? '').replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
    if (options.token === null && !isLoopback(hostname)) return refuse(421, 'metrics answer only to a loopback Host');
    if (options.token !== null) {
      const given = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1] ?? '';
      if (!constantTimeEqual(given, options.token)) return refuse(401, 'bearer token required');
    }
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') return refuse(404, 'not found');
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType, 'cache-control': 'no-store' }).end(text),
      () => refuse(500, 'metrics collection failed'),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${options.host.includes(':') ? `[${options.host}]` : options.host}:${port}/metrics`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
