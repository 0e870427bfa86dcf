/**
 * `GET /openapi.json`: an OpenAPI 3.1 description of Gatehouse's JSON API, generated at
 * start-up from what the routes really are: every route registered in Gatehouse's own
 * context (collected by `RouteCatalogue`), its `requires(...)` (as `x-gatehouse-requires`
 * and as its security), and the zod schemas its handler parses (converted with zod's own
 * `toJSONSchema`). Response shapes are the contract's, written here in zod too, so a
 * client (or `gatehouse audit init --openapi`) can tell a second-factor challenge from a
 * full login without reading the prose.
 */
import type { FastifyInstance, RouteOptions } from 'fastify';
import { z } from 'zod';
import type { Gatehouse } from '../../gatehouse.js';
import type { CookiePolicy } from '../cookies.js';
import { requires, type RouteRequirement } from '../gate.js';
import { CodeBody, Credentials, ReauthBody, SignupBody, StepUpBody } from './auth.js';
import { ConfirmBody as EmailTokenBody, RequestBody as EmailChangeBody } from './email.js';
import { ConfirmBody as TotpConfirmBody } from './mfa.js';
import { ForgotBody, ResetBody } from './password-reset.js';
import { PasswordChangeBody } from './password.js';
import { CreateBody as TokenCreateBody } from './tokens.js';
import { RegisterBody as PasskeyRegisterBody } from './webauthn.js';

/** One route as registered: method, full URL (with any prefix) and what it requires. */
export interface CataloguedRoute {
  method: string;
  url: string;
  requires: RouteRequirement | undefined;
}

/** Collects Gatehouse's own routes as they are registered (fed by an `onRoute` hook). */
export class RouteCatalogue {
  readonly routes: CataloguedRoute[] = [];
  add(route: RouteOptions): void {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    for (const method of methods) {
      if (method === 'HEAD' || method === 'OPTIONS') continue;
      this.routes.push({ method, url: route.url, requires: route.config?.requires });
    }
  }
}

const ErrorBody = z.object({
  error: z.string().describe('a stable code from the contract (invalid_request, mfa_required, too_many_attempts, …)'),
  message: z.string(),
  retryAfter: z.number().int().optional().describe('seconds; on 429 and 503, with a Retry-After header'),
  details: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
});
const User = z.object({ id: z.string(), email: z.string() });
const Authenticated = z.object({
  status: z.literal('authenticated'),
  aal: z.number().int(),
  amr: z.array(z.string()).optional(),
  user: User.optional(),
  sessionToken: z.string().optional().describe('with transport "token" only'),
});
const MfaRequired = z.object({
  status: z.literal('mfa_required').describe('a second factor is required: the session is pending'),
  methods: z.array(z.enum(['totp', 'recovery_code', 'webauthn'])),
  expiresIn: z.number().int(),
  user: User.optional(),
  sessionToken: z.string().optional().describe('with transport "token" only (a pending session token)'),
});
const EnrollmentRequired = z.object({ status: z.literal('enrollment_required'), expiresIn: z.number().int().optional(), user: User });
const RecoveryCodes = z.object({ recoveryCodes: z.array(z.string()) });

interface Documented {
  summary: string;
  body?: z.ZodType;
  /** Status → [description, schema?]. */
  responses?: Record<number, [string, z.ZodType?]>;
}

/** What the handlers parse and answer, keyed `METHOD /path` (without prefix). */
const DOCUMENTED: Record<string, Documented> = {
  'POST /api/auth/signup': {
    summary: 'Sign up (creates an account and a session)',
    body: SignupBody,
    responses: { 201: ['account created', z.union([Authenticated, EnrollmentRequired])] },
  },
  'POST /api/auth/login': {
    summary: 'Log in with e-mail and password (first factor)',
    body: Credentials,
    responses: {
      200: ['logged in (no second factor enrolled)', Authenticated],
      202: ['second factor required (pending session), or enrolment required', z.union([MfaRequired, EnrollmentRequired])],
      401: ['invalid_credentials', ErrorBody],
    },
  },
  'POST /api/auth/mfa/verify': {
    summary: 'Verify the second factor of a pending login (TOTP, recovery code or passkey assertion)',
    body: z.union([CodeBody, z.object({ method: z.literal('webauthn'), response: z.record(z.string(), z.unknown()) })]),
    responses: { 200: ['the session is full; its token is replaced', Authenticated], 401: ['invalid_code', ErrorBody] },
  },
  'POST /api/auth/step-up': {
    summary: 'Step up: a fresh second-factor check for sensitive actions',
    body: StepUpBody,
    responses: { 200: ['fresh', z.object({ aal: z.number().int(), mfaAt: z.string() })] },
  },
  'POST /api/auth/reauth': { summary: 'Re-authenticate with the password (fresh password check)', body: ReauthBody },
  'POST /api/auth/logout': { summary: 'Log out', responses: { 204: ['logged out'] } },
  'GET /api/session': {
    summary: 'The current (full) session: who am I',
    responses: {
      200: [
        'a full session',
        z.object({ user: User, aal: z.number().int(), amr: z.array(z.string()), authTime: z.string(), mfaAt: z.string().nullable() }),
      ],
      401: ['unauthenticated, or mfa_required for a pending session', ErrorBody],
    },
  },
  'POST /api/auth/password/forgot': {
    summary: 'Ask for a password reset link (mailed)',
    body: ForgotBody,
    responses: { 202: ['accepted'] },
  },
  'POST /api/auth/password/reset': {
    summary: 'Reset the password with the mailed token (issues no session)',
    body: ResetBody,
    responses: { 200: ['changed', z.object({ status: z.literal('password_changed') })] },
  },
  'GET /api/mfa': {
    summary: 'List second factors',
    responses: {
      200: [
        'factors',
        z.object({
          factors: z.array(z.object({ id: z.string(), type: z.string(), createdAt: z.string() })),
          recoveryCodesRemaining: z.number().int(),
        }),
      ],
    },
  },
  'POST /api/mfa/totp/setup': {
    summary: 'Start a TOTP enrolment (secret and otpauth URI)',
    responses: {
      200: ['set-up started', z.object({ factorId: z.string(), secret: z.string(), otpauthUri: z.string(), qrSvg: z.string() })],
    },
  },
  'POST /api/mfa/totp/confirm': {
    summary: 'Confirm the TOTP enrolment with a current code',
    body: TotpConfirmBody,
    responses: { 200: ['enrolled; recovery codes for the first factor', RecoveryCodes.partial()] },
  },
  'DELETE /api/mfa/totp/{factorId}': { summary: 'Remove (disable) a TOTP factor', responses: { 204: ['removed'] } },
  'POST /api/mfa/recovery-codes': { summary: 'Regenerate recovery codes', responses: { 200: ['new codes', RecoveryCodes] } },
  'POST /api/mfa/webauthn/register/options': { summary: 'Start a passkey registration (creation options)' },
  'POST /api/mfa/webauthn/register': {
    summary: 'Finish a passkey registration',
    body: PasskeyRegisterBody,
    responses: {
      201: ['registered', z.object({ factorId: z.string(), recoveryCodes: z.array(z.string()).optional(), aal: z.number().int() })],
    },
  },
  'GET /api/mfa/webauthn': { summary: 'List passkeys' },
  'DELETE /api/mfa/webauthn/{factorId}': { summary: 'Remove (disable) a passkey', responses: { 204: ['removed'] } },
  'POST /api/auth/webauthn/options': { summary: 'Passkey assertion options for a pending login' },
  'POST /api/auth/step-up/webauthn/options': { summary: 'Passkey assertion options for a step-up' },
  'GET /api/account': { summary: 'The account' },
  'GET /api/account/events': { summary: 'Security events of the account' },
  'POST /api/account/email': {
    summary: 'Change the e-mail address (sends a confirmation)',
    body: EmailChangeBody,
    responses: { 202: ['confirmation sent'] },
  },
  'POST /api/account/email/confirm': { summary: 'Confirm an e-mail change with the mailed token', body: EmailTokenBody },
  'POST /api/account/email/cancel': { summary: 'Cancel an e-mail change with the mailed token', body: EmailTokenBody },
  'POST /api/account/password': { summary: 'Change the password', body: PasswordChangeBody },
  'GET /api/sessions': { summary: 'List sessions' },
  'DELETE /api/sessions/{id}': { summary: 'End a session', responses: { 204: ['ended'] } },
  'GET /api/devices': { summary: 'List trusted devices' },
  'DELETE /api/devices/{id}': { summary: 'Forget a trusted device', responses: { 204: ['forgotten'] } },
  'POST /api/tokens': {
    summary: 'Create a personal API token',
    body: TokenCreateBody,
    responses: { 201: ['created; the token is shown once', z.object({ id: z.string(), token: z.string(), scopes: z.array(z.string()) })] },
  },
  'GET /api/tokens': { summary: 'List personal API tokens' },
  'DELETE /api/tokens/{id}': { summary: 'Revoke a personal API token', responses: { 204: ['revoked'] } },
  'GET /healthz': { summary: 'Liveness' },
  'GET /readyz': { summary: 'Readiness' },
};

const jsonSchema = (schema: z.ZodType) => z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' });

/** Fastify's `:id` → OpenAPI's `{id}`. */
const openapiPath = (url: string) => url.replace(/:(\w+)/g, '{$1}');

/** Only the JSON API: not the pages, not the OpenID Provider (which has its own discovery). */
const isApiRoute = (path: string) => path.startsWith('/api/') || path === '/healthz' || path === '/readyz';

export interface OpenApiOptions {
  version: string;
  prefix: string;
  sessionCookie: string;
  scopes: readonly string[];
}

export function buildOpenApi(routes: readonly CataloguedRoute[], options: OpenApiOptions): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of routes) {
    const full = openapiPath(route.url);
    const local = full.slice(options.prefix.length) || '/';
    if (!isApiRoute(local)) continue;
    const doc = DOCUMENTED[`${route.method} ${local}`];
    const requirement = route.requires;
    const params = [...full.matchAll(/\{(\w+)\}/g)].map((m) => ({ name: m[1], in: 'path', required: true, schema: { type: 'string' } }));
    const responses: Record<string, unknown> = {};
    for (const [status, [description, schema]] of Object.entries(doc?.responses ?? { 200: ['success'] })) {
      responses[status] = schema ? { description, content: { 'application/json': { schema: jsonSchema(schema) } } } : { description };
    }
    responses['4XX'] = { description: 'refused', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } };
    const open = !requirement || requirement.session === 'none';
    paths[full] ??= {};
    paths[full][route.method.toLowerCase()] = {
      operationId: `${route.method.toLowerCase()}${local.replace(/[^A-Za-z0-9]+(\w)?/g, (_m, c: string | undefined) => (c ?? '').toUpperCase())}`,
      summary: doc?.summary ?? `${route.method} ${local}`,
      ...(params.length ? { parameters: params } : {}),
      ...(doc?.body ? { requestBody: { required: true, content: { 'application/json': { schema: jsonSchema(doc.body) } } } } : {}),
      responses,
      security: open
        ? []
        : [{ sessionCookie: [] }, { sessionToken: [] }, ...(requirement.scope ? [{ apiToken: [requirement.scope] }] : [])],
      'x-gatehouse-requires': requirement
        ? {
            session: requirement.session,
            // A function decides per request (e.g. by amount): documented as "conditional".
            fresh: typeof requirement.fresh === 'function' ? 'conditional' : (requirement.fresh ?? false),
            ...(requirement.scope ? { scope: requirement.scope } : {}),
          }
        : null,
    };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Gatehouse',
      version: options.version,
      description:
        "Authentication API in which multi-factor authentication cannot be bypassed. `x-gatehouse-requires` is each route's gate: " +
        'session none | any | pending (password verified, second factor due) | enrolling | full; fresh: a recent factor check (★).',
    },
    paths,
    components: {
      schemas: { Error: jsonSchema(ErrorBody) },
      securitySchemes: {
        sessionCookie: { type: 'apiKey', in: 'cookie', name: options.sessionCookie, description: 'browser session' },
        sessionToken: { type: 'http', scheme: 'bearer', description: 'session token of a login with transport "token"' },
        apiToken: {
          type: 'oauth2',
          description: "personal API token (POST /api/tokens), sent as a bearer token; the scopes are the token's",
          flows: {
            clientCredentials: { tokenUrl: `${options.prefix}/api/tokens`, scopes: Object.fromEntries(options.scopes.map((s) => [s, s])) },
          },
        },
      },
    },
  };
}

export interface OpenApiRouteOptions {
  gatehouse: Gatehouse;
  cookies: CookiePolicy;
  catalogue: RouteCatalogue;
  prefix: string;
  version: string;
}

export async function openapiRoutes(app: FastifyInstance, options: OpenApiRouteOptions): Promise<void> {
  let document: Record<string, unknown> | undefined;
  // Built on first request: by then every route of the context is registered.
  app.get('/openapi.json', { config: requires({ session: 'none' }) }, async () => {
    document ??= buildOpenApi(options.catalogue.routes, {
      version: options.version,
      prefix: options.prefix,
      sessionCookie: options.cookies.names.session,
      scopes: options.gatehouse.config.scopes,
    });
    return document;
  });
}
