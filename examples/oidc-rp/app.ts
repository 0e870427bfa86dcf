// A relying party that signs users in through Gatehouse (OpenID Connect, PKCE) and insists
// on MFA (acr urn:gatehouse:aal2); its API answers RFC 9470 step-up challenges.
import { randomBytes } from 'node:crypto';
import Fastify from 'fastify';
import * as oidc from 'openid-client';
import { ACR, createStepUpGuard } from 'gatehouse';

export interface RpOptions {
  issuer: string;
  clientId: string;
  clientSecret: string;
  baseUrl: string;
  api: string;
}

export async function createRp(o: RpOptions) {
  const insecure = o.issuer.startsWith('http:') ? { execute: [oidc.allowInsecureRequests] } : {}; // local development only
  const config = await oidc.discovery(new URL(o.issuer), o.clientId, o.clientSecret, undefined, insecure);
  const guard = createStepUpGuard({ issuer: o.issuer, audience: o.api });
  const flows = new Map<string, { verifier: string; state: string; nonce: string }>(); // per browser (cookie)
  const app = Fastify();

  // /login?acr_values=…&max_age=… : what an API challenge asked for (default: MFA).
  app.get<{ Querystring: { acr_values?: string; max_age?: string } }>('/login', async (req, reply) => {
    const flow = { verifier: oidc.randomPKCECodeVerifier(), state: oidc.randomState(), nonce: oidc.randomNonce() };
    const id = randomBytes(32).toString('base64url');
    flows.set(id, flow);
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: `${o.baseUrl}/callback`,
      scope: 'openid email',
      resource: o.api,
      state: flow.state,
      nonce: flow.nonce,
      code_challenge: await oidc.calculatePKCECodeChallenge(flow.verifier),
      code_challenge_method: 'S256',
      acr_values: req.query.acr_values ?? ACR.aal2,
      ...(req.query.max_age ? { max_age: req.query.max_age } : {}),
    });
    return reply.header('set-cookie', `rp_flow=${id}; HttpOnly; SameSite=Lax; Path=/callback; Max-Age=600`).redirect(url.href);
  });

  app.get('/callback', async (req, reply) => {
    const id = /(?:^|;\s*)rp_flow=([\w-]+)/.exec(req.headers.cookie ?? '')?.[1];
    const flow = id ? flows.get(id) : undefined;
    if (!id || !flow) return reply.code(400).send({ error: 'no sign-in in progress' });
    flows.delete(id);
    const url = new URL(req.url, o.baseUrl);
    if (url.searchParams.get('error')) return reply.code(403).send({ error: url.searchParams.get('error') });
    const tokens = await oidc.authorizationCodeGrant(
      config,
      url,
      { pkceCodeVerifier: flow.verifier, expectedState: flow.state, expectedNonce: flow.nonce },
      { resource: o.api },
    );
    const { sub, acr, amr, auth_time } = tokens.claims()!;
    // A real app would start its own session here; the demo shows what it got.
    return { sub, acr, amr, auth_time, access_token: tokens.access_token };
  });

  app.get('/api/balance', { preHandler: guard.fastify({ acrValues: [ACR.aal2] }) }, async () => ({ balance: 1234 }));
  app.post('/api/payees', { preHandler: guard.fastify({ acrValues: [ACR.phr], maxAge: 300 }) }, async () => ({ added: true }));
  return app;
}
