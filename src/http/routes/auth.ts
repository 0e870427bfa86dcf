/** Sign-up, login, second-factor verification, step-up, re-authentication, logout, session. */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { assuranceLevel } from '../../core/session-state.js';
import type { Gatehouse } from '../../gatehouse.js';
import type { LoginResult } from '../../services/auth.js';
import { clearCookie, type CookiePolicy } from '../cookies.js';
import { endBrowserSignIns, issueRememberMeIfAsked, screenRememberMe, sessionToEnd, trustDeviceIfAsked } from '../credentials.js';
import { requires, sessionOf } from '../gate.js';
import { boundedString, parse } from '../validation.js';
import { parseSecondFactor } from '../second-factor-body.js';
import { deliverSession } from '../session-delivery.js';

export const Credentials = z
  .object({
    email: boundedString(1, 320),
    password: z.string().min(1).max(4096),
    remember: z.boolean().optional(),
    transport: z.enum(['cookie', 'token']).optional(),
  })
  .strict();

export const SignupBody = Credentials.omit({ remember: true });

export const CodeBody = z
  .object({
    method: z.enum(['totp', 'recovery_code']),
    code: boundedString(1, 64),
    trustDevice: z.boolean().optional(),
  })
  .strict();

export const StepUpBody = CodeBody.omit({ trustDevice: true });
export const ReauthBody = z.object({ password: z.string().min(1).max(4096) }).strict();

export interface AuthRouteOptions {
  gatehouse: Gatehouse;
  cookies: CookiePolicy;
}

function loginBody(result: LoginResult, pendingTtl: number) {
  switch (result.outcome) {
    case 'authenticated':
      return { status: 'authenticated', aal: assuranceLevel(result.session.facts), amr: result.session.facts.amr, user: result.user };
    case 'mfa_required':
      return { status: 'mfa_required', methods: result.methods, expiresIn: pendingTtl, user: result.user };
    case 'enrollment_required':
      return { status: 'enrollment_required', expiresIn: pendingTtl, user: result.user };
  }
}

/** Revokes the session a browser already had, so a planted (fixated) cookie dies at login. */
async function revokePresentedSession(request: FastifyRequest, gatehouse: Gatehouse, cookies: CookiePolicy): Promise<void> {
  const old = request.cookies[cookies.names.session];
  if (!old) return;
  const session = await gatehouse.sessions.resolve(old, 'cookie', request.ctx.now);
  if (session) await gatehouse.sessions.revoke(session.id);
}

export async function authRoutes(app: FastifyInstance, { gatehouse, cookies }: AuthRouteOptions): Promise<void> {
  const { auth, config } = gatehouse;

  app.post('/api/auth/signup', { config: requires({ session: 'none' }) }, async (request, reply) => {
    const body = parse(SignupBody, request.body);
    const transport = body.transport ?? 'cookie';
    await screenRememberMe(request, reply, gatehouse, cookies);
    const result = await auth.signup({ email: body.email, password: body.password, transport }, request.ctx);
    if (transport === 'cookie') await revokePresentedSession(request, gatehouse, cookies);
    const token = deliverSession(reply, cookies, result.session, transport);
    const status = result.outcome === 'authenticated' ? 'authenticated' : 'enrollment_required';
    return reply.status(201).send({ status, user: result.user, ...token });
  });

  app.post('/api/auth/login', { config: requires({ session: 'none' }) }, async (request, reply) => {
    const body = parse(Credentials, request.body);
    const transport = body.transport ?? 'cookie';
    // Before the password is checked: a stale cookie is evidence even on a failed login.
    await screenRememberMe(request, reply, gatehouse, cookies);
    const result = await auth.login(
      {
        email: body.email,
        password: body.password,
        transport,
        remember: body.remember === true,
        deviceToken: request.cookies[cookies.names.device],
      },
      request.ctx,
    );
    if (transport === 'cookie') await revokePresentedSession(request, gatehouse, cookies);
    const token = deliverSession(reply, cookies, result.session, transport);
    if (result.outcome === 'authenticated') {
      await issueRememberMeIfAsked(request, reply, gatehouse, cookies, {
        userId: result.user.id,
        sessionId: result.session.id,
        remember: body.remember === true,
        transport,
      });
    }
    return reply.status(result.outcome === 'authenticated' ? 200 : 202).send({ ...loginBody(result, config.pendingTtlSeconds), ...token });
  });

  app.post('/api/auth/mfa/verify', { config: requires({ session: 'pending' }) }, async (request, reply) => {
    const body = parseSecondFactor(CodeBody, request.body, { trustDevice: true });
    const session = sessionOf(request);
    const issued = await auth.verifySecondFactor(session, body.method, body.code, request.ctx, body.response);
    const token = deliverSession(reply, cookies, issued, session.transport);
    await issueRememberMeIfAsked(request, reply, gatehouse, cookies, {
      userId: session.userId,
      sessionId: session.id,
      remember: session.remember,
      transport: session.transport,
    });
    if (session.transport === 'cookie') await trustDeviceIfAsked(request, reply, gatehouse, cookies, session, body.trustDevice === true);
    return reply.send({ status: 'authenticated', aal: assuranceLevel(issued.facts), amr: issued.facts.amr, ...token });
  });

  app.post('/api/auth/step-up', { config: requires({ session: 'full' }) }, async (request, reply) => {
    const body = parseSecondFactor(StepUpBody, request.body, { trustDevice: false });
    const session = sessionOf(request);
    const issued = await auth.stepUp(session, body.method, body.code, request.ctx, body.response);
    const token = deliverSession(reply, cookies, issued, session.transport);
    return reply.send({ aal: 2, mfaAt: new Date(issued.facts.mfaAt!).toISOString(), ...token });
  });

  app.post('/api/auth/reauth', { config: requires({ session: 'full' }) }, async (request, reply) => {
    const body = parse(ReauthBody, request.body);
    const session = sessionOf(request);
    const issued = await auth.reauthenticate(session, body.password, request.ctx);
    const token = deliverSession(reply, cookies, issued, session.transport);
    return reply.send({ status: 'reauthenticated', passwordAt: new Date(issued.facts.passwordAt!).toISOString(), ...token });
  });

  app.post('/api/auth/logout', { config: requires({ session: 'any' }) }, async (request, reply) => {
    const session = await sessionToEnd(request, gatehouse, cookies);
    await auth.logout(session);
    await endBrowserSignIns(request, reply, gatehouse, cookies, session);
    clearCookie(reply, cookies, cookies.names.session);
    return reply.status(204).send();
  });

  app.get('/api/session', { config: requires({ session: 'full' }) }, async (request) => {
    const session = sessionOf(request);
    const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());
    return {
      user: { id: session.userId, email: session.email },
      aal: assuranceLevel(session.facts),
      amr: session.facts.amr,
      authTime: iso(session.facts.authTime),
      passwordAt: iso(session.facts.passwordAt),
      mfaAt: iso(session.facts.mfaAt),
      expiresAt: iso(Math.min(session.facts.expiresAt, session.facts.lastSeenAt + config.sessionIdleTtlSeconds * 1000)),
      transport: session.transport,
    };
  });
}
