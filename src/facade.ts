/**
 * What a host application gets from `createGatehouse`: requirements, the caller of a
 * request, security events, the Fastify plugin and the Node handler, and `close`. Stores,
 * keys and the database stay inside (`internalsOf` is for Gatehouse's own entry points).
 */
import type { FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { resolveOptions, type GatehouseOptionsInput } from './config.js';
import { UnauthenticatedError } from './core/errors.js';
import type { SecurityEventName } from './core/events.js';
import { assuranceLevel, type AuthMethod, type SessionState } from './core/session-state.js';
import { assembleGatehouse, type Gatehouse as Internals } from './gatehouse.js';
import { requires, userIdOf, type RequestPrincipal, type RouteRequirement } from './http/gate.js';

/** The options of `createGatehouse`: every field optional, defaults in docs/library.md. */
export interface GatehouseOptions extends GatehouseOptionsInput {
  /** A pino logger to use instead of the one Gatehouse creates (secrets are redacted in its own). */
  logger?: Logger;
  /** The clock (epoch milliseconds); Date.now. For tests that move time. */
  now?: () => number;
}

/** The session behind a request, as a host application may see it. */
export interface SessionInfo {
  id: string;
  userId: string;
  email: string;
  state: SessionState;
  /** Authenticator assurance level: 2 once a second factor was checked in this session. */
  aal: 1 | 2;
  amr: AuthMethod[];
  authTime: Date;
  mfaAt: Date | null;
  transport: 'cookie' | 'token';
}

/** One entry of the security log, as delivered to `gatehouse.on(...)` listeners. */
export interface SecurityEvent<T extends SecurityEventName = SecurityEventName> {
  type: T;
  userId: string | null;
  at: Date;
  ip: string;
  userAgent: string;
  /** What the log stored about it (never a secret). */
  details: Readonly<Record<string, unknown>>;
}

/** The typed event map: one entry per security event name. */
export type GatehouseEvents = { [K in SecurityEventName]: SecurityEvent<K> };

export type EventListener<K extends SecurityEventName> = (event: GatehouseEvents[K]) => void | Promise<void>;

/** Operator actions for the host application (docs/policy.md). None of them yields a session. */
export interface GatehouseAdmin {
  /** Sets an account's roles (policy per role in the `roles` option); starts a grace period when one now requires a factor. */
  setRoles(userId: string, roles: string[]): Promise<{ roles: string[]; enrolmentDueAt: Date | null }>;
  rolesOf(userId: string): Promise<string[]>;
  listSessions(
    userId: string,
  ): Promise<Array<{ id: string; state: string; ip: string; userAgent: string; createdAt: string; lastSeenAt: string }>>;
  /** Signs the account out everywhere (sessions and remember-me). */
  revokeSessions(userId: string): Promise<void>;
  /** Lifts a lockout after too many failed passwords or codes. */
  unlock(userId: string): Promise<void>;
  /**
   * Removes the account's second factors and mails its owner a one-time recovery link.
   * `request` must carry the session of an account with the `admin` role and a fresh
   * second factor of its own (else the refusal is thrown: step_up_required, forbidden…).
   */
  resetFactors(request: FastifyRequest, userId: string): Promise<void>;
}

export interface Gatehouse {
  readonly productName: string;
  /** Operator actions: roles, sessions, unlock, factor reset. */
  readonly admin: GatehouseAdmin;
  /** The scopes API tokens may carry (as declared in the options). */
  readonly scopes: readonly string[];
  /** The public URL in effect (in development: localhost at the listening port). */
  publicUrl(): string;
  /** Declares a route's requirement; pass the result as the route's `config`. */
  requires(requirement: RouteRequirement): { requires: RouteRequirement };
  /** The session behind a request that passed a session requirement. */
  sessionOf(request: FastifyRequest): SessionInfo;
  /** The account behind a request (session or API token). */
  userIdOf(request: FastifyRequest): string;
  /**
   * Subscribes to security events (`'*'` for all). Listeners run after the event is
   * recorded, outside Gatehouse's transaction; a throwing listener is logged, never
   * fails the request. Returns the unsubscribe function.
   */
  on<K extends SecurityEventName>(type: K, listener: EventListener<K>): () => void;
  on(type: '*', listener: EventListener<SecurityEventName>): () => void;
  /** Stops timers and the mail worker, closes the database and Redis connections. */
  close(): Promise<void>;
}

const internals = new WeakMap<Gatehouse, Internals>();

/** The assembled services behind a facade: for Gatehouse's own plugin, adapters and server. */
export function internalsOf(gatehouse: Gatehouse): Internals {
  const found = internals.get(gatehouse);
  if (!found) throw new TypeError('not a Gatehouse instance: create one with createGatehouse(options)');
  return found;
}

/** The public view of a session resolved by the gate. */
export function sessionInfoOf(request: FastifyRequest): SessionInfo {
  return sessionInfoOfPrincipal(request.principal);
}

/** The public view of a principal the gate resolved (for the Express and Node adapters too). */
export function sessionInfoOfPrincipal(p: RequestPrincipal | undefined): SessionInfo {
  if (p?.kind !== 'session') throw new Error('route requires a session but the gate resolved none');
  const { session } = p;
  return {
    id: session.id,
    userId: session.userId,
    email: session.email,
    state: session.facts.state,
    aal: assuranceLevel(session.facts),
    amr: [...session.facts.amr],
    authTime: new Date(session.facts.authTime),
    mfaAt: session.facts.mfaAt === null ? null : new Date(session.facts.mfaAt),
    transport: session.transport,
  };
}

/** Wraps assembled services in the facade. */
export function facadeOf(inner: Internals): Gatehouse {
  const listeners = new Map<string, Set<EventListener<SecurityEventName>>>();
  inner.log.onEvent(async (event) => {
    const wanted = [...(listeners.get(event.type) ?? []), ...(listeners.get('*') ?? [])];
    if (wanted.length === 0) return;
    // The stored details (JSON), not the in-memory ones: nothing beyond what the log keeps.
    const delivered: SecurityEvent = Object.freeze({
      type: event.type,
      userId: event.user_id,
      at: new Date(event.at),
      ip: event.ip,
      userAgent: event.user_agent,
      details: Object.freeze(JSON.parse(event.details) as Record<string, unknown>),
    });
    // Outside the recording transaction, so a slow or throwing listener cannot hold or fail it.
    setImmediate(() => {
      for (const listener of wanted) {
        Promise.resolve()
          // The listener was registered for this event's type (or '*'); TypeScript cannot
          // relate a union of more than 25 event types member by member.
          .then(() => listener(delivered as Parameters<typeof listener>[0]))
          .catch((err: unknown) => inner.logger.error({ err, event: delivered.type }, 'security event listener failed'));
      }
    });
  });
  const operator = { kind: 'operator' as const, via: 'library' as const };
  const libraryCtx = () => ({ ip: 'library', userAgent: 'gatehouse library', now: inner.config.now() });
  const admin: GatehouseAdmin = Object.freeze({
    async setRoles(userId: string, roles: string[]) {
      const result = await inner.admin.setRoles((await inner.admin.findUser(userId)).id, roles, operator, libraryCtx());
      return { roles: result.roles, enrolmentDueAt: result.dueAt === null ? null : new Date(result.dueAt) };
    },
    rolesOf: async (userId: string) => JSON.parse((await inner.admin.findUser(userId)).roles) as string[],
    listSessions: async (userId: string) => inner.admin.listSessions((await inner.admin.findUser(userId)).id, inner.config.now()),
    revokeSessions: async (userId: string) => inner.admin.revokeSessions((await inner.admin.findUser(userId)).id, operator, libraryCtx()),
    unlock: async (userId: string) => inner.admin.unlock(userId, operator, libraryCtx()),
    async resetFactors(request: FastifyRequest, userId: string) {
      const p = request.principal;
      if (p?.kind !== 'session') throw new UnauthenticatedError();
      await inner.admin.resetFactors(p.session, (await inner.admin.findUser(userId)).id, request.ctx);
    },
  });
  const facade: Gatehouse = {
    productName: inner.config.productName,
    admin,
    scopes: Object.freeze([...inner.config.scopes]),
    publicUrl: () => inner.origins.url(),
    requires,
    sessionOf: sessionInfoOf,
    userIdOf,
    on(type: string, listener: EventListener<SecurityEventName>) {
      const set = listeners.get(type) ?? new Set();
      set.add(listener);
      listeners.set(type, set);
      return () => void set.delete(listener);
    },
    close: () => inner.close(),
  };
  Object.freeze(facade);
  internals.set(facade, inner);
  return facade;
}

/** Creates a Gatehouse from partial options; see docs/library.md for every default. */
export async function createGatehouse(options: GatehouseOptions = {}): Promise<Gatehouse> {
  const { logger, now, ...rest } = options;
  const config = resolveOptions({ ...rest, now });
  return facadeOf(await assembleGatehouse(config, { logger }));
}
