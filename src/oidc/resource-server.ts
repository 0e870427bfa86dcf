/**
 * Step-up for APIs (RFC 9470): an API that accepts Gatehouse's JWT access tokens checks
 * each token's `acr` and `auth_time` against the route's requirement and, when they fall
 * short, answers 401 with
 *   WWW-Authenticate: Bearer error="insufficient_user_authentication", acr_values="…", max_age=…
 * The client then sends the user through the provider again with those `acr_values` and
 * `max_age` (Gatehouse runs the step-up or re-authentication) and retries with the new token.
 *
 * Usage (Fastify):  app.get('/transfers', { preHandler: stepUp.fastify({ acrValues: [ACR.aal2], maxAge: 300 }) }, …)
 * Usage (Express):  app.post('/transfers', stepUp.express({ acrValues: [ACR.phr] }), …)
 * where `stepUp = createStepUpGuard({ issuer: 'https://id.example.com/oidc', audience: 'https://api.example.com' })`.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { createRemoteJWKSet, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { acrSatisfies } from './assurance.js';

export interface AssuranceRequirement {
  /** Acceptable acr values (one must be met; phr meets aal2, aal2 meets aal1). */
  acrValues?: string[];
  /** Seconds since the user last authenticated. */
  maxAge?: number;
}

export interface VerifiedAccessToken extends JWTPayload {
  sub: string;
  acr?: string;
  amr?: string[];
  auth_time?: number;
  scope?: string;
}

export type GuardOutcome =
  { ok: true; token: VerifiedAccessToken } | { ok: false; status: 401; wwwAuthenticate: string; error: string; description: string };

export interface StepUpGuardOptions {
  /** The provider's issuer, e.g. `https://id.example.com/oidc`. */
  issuer: string;
  /** This API's resource indicator (the tokens' `aud`). */
  audience: string;
  /** Defaults to the issuer's `/jwks`. */
  jwks?: JWTVerifyGetKey;
  /** Epoch milliseconds; tests move it. */
  now?: () => number;
}

/** A quoted-string for an auth-param (RFC 9110): no quotes or backslashes unescaped. */
const quoted = (v: string) => `"${v.replace(/[\\"]/g, (c) => `\\${c}`)}"`;

function challenge(error: string, description: string, requirement?: AssuranceRequirement): string {
  const parts = [`error=${quoted(error)}`, `error_description=${quoted(description)}`];
  if (requirement?.acrValues?.length) parts.push(`acr_values=${quoted(requirement.acrValues.join(' '))}`);
  if (requirement?.maxAge !== undefined) parts.push(`max_age=${requirement.maxAge}`);
  return `Bearer ${parts.join(', ')}`;
}

/** Pure: whether a verified token meets a requirement, at `nowMs`. */
export function assuranceShortfall(token: VerifiedAccessToken, requirement: AssuranceRequirement, nowMs: number): string | null {
  if (requirement.acrValues?.length && !acrSatisfies(token.acr, requirement.acrValues)) return 'A stronger authentication is required.';
  if (requirement.maxAge !== undefined) {
    // A token without auth_time cannot show a recent enough authentication: fail closed.
    if (typeof token.auth_time !== 'number' || nowMs / 1000 - token.auth_time > requirement.maxAge)
      return 'A more recent authentication is required.';
  }
  return null;
}

/** The parts of Express's request and response the middleware uses. */
export interface ExpressLikeRequest {
  headers: Record<string, string | string[] | undefined>;
}
export interface ExpressLikeResponse {
  status(n: number): ExpressLikeResponse;
  set(k: string, v: string): ExpressLikeResponse;
  json(b: unknown): unknown;
  locals: Record<string, unknown>;
}

export function createStepUpGuard(options: StepUpGuardOptions) {
  const jwks = options.jwks ?? createRemoteJWKSet(new URL(`${options.issuer}/jwks`));
  const now = options.now ?? Date.now;

  async function check(authorization: string | undefined, requirement: AssuranceRequirement): Promise<GuardOutcome> {
    const m = typeof authorization === 'string' ? /^Bearer ([A-Za-z0-9._~+/=-]+)$/i.exec(authorization.trim()) : null;
    if (!m)
      return {
        ok: false,
        status: 401,
        error: 'invalid_token',
        description: 'A bearer access token is required.',
        wwwAuthenticate: 'Bearer',
      };
    let payload: VerifiedAccessToken;
    try {
      const verified = await jwtVerify(m[1]!, jwks, {
        issuer: options.issuer,
        audience: options.audience,
        typ: 'at+jwt',
        currentDate: new Date(now()),
        algorithms: ['ES256', 'RS256'],
      });
      payload = verified.payload as VerifiedAccessToken;
    } catch {
      return {
        ok: false,
        status: 401,
        error: 'invalid_token',
        description: 'The access token is invalid or expired.',
        wwwAuthenticate: challenge('invalid_token', 'The access token is invalid or expired.'),
      };
    }
    if (typeof payload.sub !== 'string') {
      return {
        ok: false,
        status: 401,
        error: 'invalid_token',
        description: 'The access token names no user.',
        wwwAuthenticate: challenge('invalid_token', 'The access token names no user.'),
      };
    }
    const shortfall = assuranceShortfall(payload, requirement, now());
    if (shortfall) {
      return {
        ok: false,
        status: 401,
        error: 'insufficient_user_authentication',
        description: shortfall,
        wwwAuthenticate: challenge('insufficient_user_authentication', shortfall, requirement),
      };
    }
    return { ok: true, token: payload };
  }

  return {
    check,
    /** A Fastify preHandler; the verified token is left on `request.accessToken`. */
    fastify(requirement: AssuranceRequirement = {}) {
      return async (request: FastifyRequest, reply: FastifyReply) => {
        const outcome = await check(request.headers.authorization, requirement);
        if (!outcome.ok) {
          return reply
            .status(401)
            .header('WWW-Authenticate', outcome.wwwAuthenticate)
            .send({ error: outcome.error, message: outcome.description });
        }
        (request as FastifyRequest & { accessToken?: VerifiedAccessToken }).accessToken = outcome.token;
      };
    },
    /** An Express middleware; the verified token is left on `res.locals.accessToken`. */
    express(requirement: AssuranceRequirement = {}) {
      return (req: ExpressLikeRequest, res: ExpressLikeResponse, next: (err?: unknown) => void) => {
        const auth = req.headers.authorization;
        check(typeof auth === 'string' ? auth : undefined, requirement).then((outcome) => {
          if (!outcome.ok) {
            res.status(401).set('WWW-Authenticate', outcome.wwwAuthenticate).json({ error: outcome.error, message: outcome.description });
            return;
          }
          res.locals.accessToken = outcome.token;
          next();
        }, next);
      };
    },
  };
}
