/**
 * The pages Gatehouse serves: sign up, sign in, the second-factor challenge, forgot/reset
 * password, e-mail confirmation, enrolment and security settings (with changing the e-mail
 * address and password). They call the same services as the JSON API and every route
 * declares its requirement to the same gate, so a page can never reach a state the API
 * would refuse. Gate refusals become redirects or
 * pages here: unauthenticated → /sign-in, pending → /sign-in/verify, step-up → the factor
 * prompt in place (step-up.ts), which then repeats the original request (307).
 *
 * Encapsulated (not fastify-plugin): the urlencoded body parser and the HTML error
 * handler apply to these routes only; the JSON API stays JSON-only.
 *
 * CSRF: the gate's same-origin rule (Origin / Sec-Fetch-Site) applies to every cookie
 * request, cookies are SameSite=Lax, and every form of a signed-in session also carries
 * a per-session form token (form-token.ts), checked before any handler runs.
 *
 * This file only assembles: the page groups live in pages/, one file each.
 */
import formbody from '@fastify/formbody';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { CsrfError, GatehouseError, ServiceUnavailableError, type StepUpRequiredError, type TooManyAttemptsError } from '../core/errors.js';
import type { Gatehouse } from '../gatehouse.js';
import type { CookiePolicy } from '../http/cookies.js';
import { assetRoutes } from './assets.js';
import { send, sessionOrNull, userOf, webContext, type Web } from './context.js';
import { html } from './html.js';
import { accountPages } from './pages/account.js';
import { confirmEmailPages } from './pages/confirm-email.js';
import { factorPages } from './pages/factors.js';
import { passwordPages } from './pages/password.js';
import { settingsPages } from './pages/settings.js';
import { signInPages } from './pages/sign-in.js';
import { upstreamPages } from './pages/upstream.js';
import { stepUpPrompt, stepUpRoutes } from './step-up.js';

export interface WebPagesOptions {
  gatehouse: Gatehouse;
  cookies: CookiePolicy;
  /** The prefix the pages are mounted under ('' at the root). */
  base: string;
}

export async function webPages(app: FastifyInstance, { gatehouse, cookies, base }: WebPagesOptions): Promise<void> {
  const web = webContext(gatehouse, cookies, base);
  await app.register(formbody, { bodyLimit: 64 * 1024 });

  // Helmet's default `no-referrer` makes Chromium send `Origin: null` on form posts, which
  // the gate's same-origin rule (rightly) refuses. Same-origin referrers only: nothing leaks
  // to other sites, and our own forms carry our Origin.
  app.addHook('onSend', async (_request, reply) => {
    reply.header('Referrer-Policy', 'same-origin');
  });

  // The per-session form token, after the gate (authentication, same-origin) and before any handler.
  app.addHook('preHandler', async (request) => {
    if (request.method !== 'POST') return;
    const session = sessionOrNull(request);
    if (!session || request.principal.kind !== 'session' || request.principal.via !== 'cookie') return;
    if (!web.tokens.carries(request, session)) throw new CsrfError();
  });

  app.setErrorHandler(async (error, request, reply) => pageForError(web, error, request, reply));

  // Called directly, not registered: the groups share this context's parser, hooks and error handler.
  await assetRoutes(app);
  await signInPages(app, web);
  await upstreamPages(app, web);
  await passwordPages(app, web);
  await confirmEmailPages(app, web);
  await factorPages(app, web);
  await settingsPages(app, web);
  await accountPages(app, web);
  await stepUpRoutes(app, web);
}

const refused = (web: Web, reply: FastifyReply) =>
  send(web, reply, 403, {
    title: 'Request refused',
    error: 'This form came from another site or an old page. Go back, reload the page and try again.',
    body: html`<p><a href="/settings">Security settings</a></p>`,
  });

/** Gate refusals and service errors as pages or redirects; anything unexpected is a logged 500 page. */
async function pageForError(web: Web, error: unknown, request: FastifyRequest, reply: FastifyReply) {
  if (error instanceof GatehouseError) {
    switch (error.code) {
      case 'unauthenticated':
      case 'no_pending_authentication':
        return reply.redirect(web.path('/sign-in'), 303);
      case 'mfa_required':
        return reply.redirect(web.path('/sign-in/verify'), 303);
      case 'enrollment_required':
        return reply.redirect(web.path('/enrol'), 303);
      case 'step_up_required': {
        // The gate refused before the form token was checked: check it now, so the prompt
        // never adopts (and later re-posts with a valid token) a form from elsewhere.
        const session = sessionOrNull(request);
        if (request.method === 'POST' && (!session || !web.tokens.carries(request, session))) return refused(web, reply);
        return stepUpPrompt(web, request, reply, (error as StepUpRequiredError).methods);
      }
      case 'csrf':
        return refused(web, reply);
      case 'too_many_attempts': {
        const retry = (error as TooManyAttemptsError).retryAfter;
        reply.header('Retry-After', String(retry));
        return send(web, reply, 429, {
          title: 'Too many attempts',
          error: `${error.message} Try again in ${Math.ceil(retry / 60)} minute(s).`,
          body: html`<p><a href="/sign-in">Sign in</a></p>`,
        });
      }
      default:
        // An unreachable dependency (e.g. an upstream sign-in provider): try again later.
        if (error instanceof ServiceUnavailableError) reply.header('Retry-After', String(error.retryAfter));
        return send(web, reply, error.status, {
          title: 'That did not work',
          user: userOf(web, request),
          error: error.message,
          body: html`<p><a href="/settings">Back</a></p>`,
        });
    }
  }
  const status = (error as { statusCode?: number }).statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return send(web, reply, status, {
      title: 'That did not work',
      error: 'The form could not be read.',
      body: html`<p><a href="/">Start again</a></p>`,
    });
  }
  request.log.error({ err: error }, 'page failed');
  return send(web, reply, 500, {
    title: 'Something went wrong',
    error: 'Something went wrong on our side. Try again.',
    body: html`<p><a href="/">Start again</a></p>`,
  });
}
