// The auditor's own upstream OpenID Provider, for the federated-login check: a small
// oidc-provider on a loopback port that the target is configured to trust as an upstream.
// It has no sign-in page: every authorization completes at once as the identity the check
// chose (signInAs), which is what an attacker controlling an account at an upstream has.
// The auditor plays the browser at this provider (authorize) and stops at the first
// redirect that leaves it, i.e. the target's callback with the code.
import { createECDH, createHmac } from 'node:crypto';
import http from 'node:http';
import Provider, { type Configuration } from 'oidc-provider';
import { request } from 'undici';
import type { Exchange } from './http-client.js';
import type { Profile } from './profile.js';
import { Session } from './session.js';

export type UpstreamProfile = NonNullable<Profile['upstreamLogin']>;

/** Who the upstream says signed in (claims of the ID token). */
export interface UpstreamIdentity {
  sub: string;
  email: string;
  emailVerified: boolean;
  /** Only a password at the upstream: no acr beyond this, amr ["pwd"]. */
  acr?: string;
  amr: string[];
}

/**
 * The signing key, derived from the client's credentials and the issuer: a target caches
 * an upstream's keys (openid-client for a minute or more), so a second audit run against a
 * running target must present the same key. It signs only the auditor's test identities.
 */
function signingKey(u: UpstreamProfile): Record<string, string> {
  for (let i = 0; ; i++) {
    const d = createHmac('sha256', u.clientSecret ?? u.clientId)
      .update(`gatehouse-audit upstream signing key\0${u.issuer}\0${i}`)
      .digest();
    const ecdh = createECDH('prime256v1');
    try {
      ecdh.setPrivateKey(d);
    } catch {
      continue; // not a valid scalar (about one in four billion): derive the next
    }
    const pub = ecdh.getPublicKey();
    return {
      kty: 'EC',
      crv: 'P-256',
      use: 'sig',
      alg: 'ES256',
      x: pub.subarray(1, 33).toString('base64url'),
      y: pub.subarray(33).toString('base64url'),
      d: d.toString('base64url'),
    };
  }
}

/** oidc-provider's storage, in memory: the provider lives for one check. */
class MemoryAdapter {
  private static readonly rows = new Map<string, Record<string, unknown>>();
  constructor(private readonly model: string) {}
  private key(id: string) {
    return `${this.model}:${id}`;
  }
  async upsert(id: string, payload: Record<string, unknown>) {
    MemoryAdapter.rows.set(this.key(id), payload);
  }
  async find(id: string) {
    return MemoryAdapter.rows.get(this.key(id));
  }
  async findByUid(uid: string) {
    return [...MemoryAdapter.rows.values()].find((p) => p.uid === uid);
  }
  async findByUserCode() {
    return undefined;
  }
  async consume(id: string) {
    const row = MemoryAdapter.rows.get(this.key(id));
    if (row) row.consumed = Math.floor(Date.now() / 1000);
  }
  async destroy(id: string) {
    MemoryAdapter.rows.delete(this.key(id));
  }
  async revokeByGrantId(grantId: string) {
    for (const [k, p] of MemoryAdapter.rows) if (p.grantId === grantId) MemoryAdapter.rows.delete(k);
  }
}

export class AuditUpstream {
  private identity: UpstreamIdentity | undefined;

  private constructor(
    private readonly server: http.Server,
    private readonly provider: Provider,
    readonly issuer: string,
    private readonly identities: Map<string, UpstreamIdentity>,
  ) {}

  /**
   * Starts the provider at the profile's issuer (a loopback http URL); the target's callback
   * is its redirect URI (one per origin: instances of one deployment behind several origins).
   */
  static async start(u: UpstreamProfile, targetOrigin: string | readonly string[]): Promise<AuditUpstream> {
    const origins = typeof targetOrigin === 'string' ? [targetOrigin] : targetOrigin;
    const identities = new Map<string, UpstreamIdentity>();
    const issuer = u.issuer.replace(/\/$/, '');
    const configuration: Configuration = {
      clients: [
        {
          client_id: u.clientId,
          ...(u.clientSecret
            ? { client_secret: u.clientSecret, token_endpoint_auth_method: u.clientAuth }
            : { token_endpoint_auth_method: 'none' }),
          redirect_uris: origins.map((o) => new URL(u.callbackPath, o).href),
          grant_types: ['authorization_code'],
          response_types: ['code'],
          id_token_signed_response_alg: 'ES256',
        },
      ],
      jwks: { keys: [signingKey(u)] },
      enabledJWA: { idTokenSigningAlgValues: ['ES256'] },
      cookies: { keys: [createHmac('sha256', 'gatehouse-audit upstream cookies').update(issuer).digest('hex')] },
      // amr as the identity says (left out of the ID token unless a scope lists it; an acr
      // would also need acrValues).
      claims: { openid: ['sub', 'amr'], email: ['email', 'email_verified'] },
      scopes: ['openid', 'email', 'profile'],
      // The e-mail claims in the ID token itself: many relying parties read only that.
      conformIdTokenClaims: false,
      adapter: MemoryAdapter,
      ttl: { AuthorizationCode: 60, AccessToken: 300, IdToken: 300, Interaction: 300, Session: 300, Grant: 300 },
      features: { devInteractions: { enabled: false } },
      interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
      // No consent screen: every scope the target asks for is granted.
      async loadExistingGrant(ctx) {
        const existing = ctx.oidc.result?.consent?.grantId ?? ctx.oidc.session!.grantIdFor(ctx.oidc.client!.clientId);
        if (existing) return ctx.oidc.provider.Grant.find(existing);
        const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client!.clientId, accountId: ctx.oidc.session!.accountId! });
        grant.addOIDCScope(String(ctx.oidc.params?.scope ?? 'openid'));
        await grant.save();
        return grant;
      },
      async findAccount(_ctx, sub) {
        const who = identities.get(sub);
        if (!who) return undefined;
        return { accountId: sub, claims: async () => ({ sub, email: who.email, email_verified: who.emailVerified }) };
      },
    };
    const provider = new Provider(issuer, configuration);
    let self: AuditUpstream | undefined;
    const server = http.createServer((req, res) => {
      if (req.url?.startsWith('/interaction/')) {
        void self!.finishInteraction(req, res);
        return;
      }
      provider.callback()(req, res);
    });
    const url = new URL(issuer);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(Number(url.port || 80), url.hostname.replace(/^\[|\]$/g, ''), () => resolve());
    });
    self = new AuditUpstream(server, provider, issuer, identities);
    return self;
  }

  /** The next authorization completes as this identity. */
  signInAs(identity: UpstreamIdentity): void {
    this.identities.set(identity.sub, identity);
    this.identity = identity;
  }

  private async finishInteraction(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    try {
      const who = this.identity;
      if (!who) throw new Error('no identity chosen for this sign-in');
      await this.provider.interactionFinished(
        req,
        res,
        { login: { accountId: who.sub, amr: who.amr, ...(who.acr ? { acr: who.acr } : {}) } },
        { mergeWithLastSubmission: false },
      );
    } catch (err) {
      res.writeHead(400, { 'content-type': 'text/plain' }).end((err as Error).message);
    }
  }

  /**
   * Plays the browser at this provider from the target's redirect (`url`): follows the
   * provider's own redirects, and answers the first one that leaves it (the target's
   * callback), or where the browser stopped.
   */
  async authorize(url: string, evidence: Exchange[]): Promise<{ callback: URL } | { stopped: string }> {
    const browser = new Session(undefined, this.issuer);
    let next = new URL(url);
    for (let hop = 0; hop < 10; hop++) {
      if (next.origin !== new URL(this.issuer).origin) return { callback: next };
      const started = Date.now();
      const res = await request(next, { method: 'GET', headers: browser.headers(next.pathname) });
      const body = await res.body.text();
      const headers = Object.fromEntries(Object.entries(res.headers).filter((e): e is [string, string | string[]] => e[1] !== undefined));
      evidence.push({
        note: `at the auditor's upstream (${hop === 0 ? 'authorization request' : `redirect ${hop}`})`,
        at: new Date(started).toISOString(),
        durationMs: Date.now() - started,
        request: { method: 'GET', url: next.href, headers: {} },
        response: { status: res.statusCode, headers: { ...(headers.location ? { location: headers.location } : {}) }, body: '' },
      });
      const setCookie = headers['set-cookie'];
      browser.absorbSetCookies(setCookie === undefined ? [] : Array.isArray(setCookie) ? setCookie : [setCookie], next.pathname);
      const location = headers.location;
      if (res.statusCode < 300 || res.statusCode >= 400 || !location)
        return { stopped: `${next.pathname} answered ${res.statusCode}: ${body.slice(0, 200)}` };
      next = new URL(String(location), next);
    }
    return { stopped: 'too many redirects at the upstream' };
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}
