/**
 * The provider's storage and keys: the whole flow on PostgreSQL (the Kysely adapter, single
 * use of codes there too), signing keys generated once, stored sealed and kept across
 * restarts, rotation with new kids, and the `gatehouse clients` command.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as oidc from 'openid-client';
import { afterAll, describe, expect, it } from 'vitest';
import { clientsCommand } from '../../src/commands/oidc.js';
import { ClientRegistry } from '../../src/oidc/clients.js';
import { withOidcTables } from '../../src/oidc/schema.js';
import { rotateSigningKeys } from '../../src/oidc/signing-keys.js';
import { PASSWORD, signupWithTotp } from '../helpers/accounts.js';
import { csrfIn, FormBrowser } from '../helpers/http-client.js';
import { pgSchema } from '../helpers/postgres.js';
import { FAST_ENV, startFastServer, type TestServer } from '../helpers/server.js';
import { authorize, follow, authPath, registerRp } from './rp.js';

async function mfaBrowser(server: TestServer) {
  const account = await signupWithTotp(server.url);
  const b = new FormBrowser(server.url);
  await b.go('POST', '/sign-in', { email: account.email, password: PASSWORD });
  const challenge = await b.go('GET', '/sign-in/verify');
  await b.go('POST', '/sign-in/verify', { _csrf: csrfIn(challenge.text), method: 'recovery_code', code: account.recoveryCodes.pop()! });
  return { account, b };
}

describe('PostgreSQL storage', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  it('runs the code flow with refresh, and a code is redeemed once', async () => {
    const schema = await pgSchema('oidc');
    cleanups.push(() => schema.drop());
    const server = await startFastServer({ GATEHOUSE_DATABASE_URL: schema.url });
    cleanups.push(() => server.close());
    const rp = await registerRp(server);
    const { account, b } = await mfaBrowser(server);
    const tokens = await authorize(server, rp, b);
    expect(tokens.claims()!.sub).toBe(account.userId);
    expect(tokens.claims()!.acr).toBe('urn:gatehouse:aal2');
    const refreshed = await oidc.refreshTokenGrant(rp.config, tokens.refresh_token!);
    expect(refreshed.claims()!.acr).toBe('urn:gatehouse:aal2');

    // Three parallel redemptions of one code: exactly one wins (conditional UPDATE).
    const req = await rp.start();
    const done = await follow(b, authPath(server, req.url));
    if (!('landed' in done)) throw new Error(JSON.stringify(done));
    const checks = { pkceCodeVerifier: req.verifier, expectedState: req.state, expectedNonce: req.nonce };
    const redeem = () => oidc.authorizationCodeGrant(rp.config, done.landed, checks);
    const results = await Promise.allSettled([redeem(), redeem(), redeem()]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    for (const r of results) if (r.status === 'rejected') expect(r.reason).toMatchObject({ error: 'invalid_grant' });
  });
});

describe('signing keys', () => {
  it('are generated once, stored sealed, kept across restarts, and rotate to new kids', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatehouse-oidc-keys-'));
    try {
      const env = { GATEHOUSE_DATA_DIR: dataDir };
      let server = await startFastServer(env);
      const jwks1 = (await (await fetch(`${server.url}/oidc/jwks`)).json()) as { keys: Array<{ kid: string; alg: string; d?: string }> };
      expect(jwks1.keys.map((k) => k.alg).sort()).toEqual(['ES256', 'RS256']);
      expect(jwks1.keys.every((k) => k.d === undefined)).toBe(true);
      const rows = await withOidcTables(server.server.gatehouse.database.db).selectFrom('oidc_signing_keys').selectAll().execute();
      expect(rows).toHaveLength(2);
      for (const r of rows) expect(r.jwk_enc).not.toMatch(/"d"|"kty"/);
      await rotateSigningKeys(server.server.gatehouse.database.db, server.server.gatehouse.keys.box, Date.now());
      await server.close();

      server = await startFastServer(env);
      try {
        const jwks2 = (await (await fetch(`${server.url}/oidc/jwks`)).json()) as { keys: Array<{ kid: string }> };
        expect(jwks2.keys).toHaveLength(4);
        for (const k of jwks1.keys) expect(jwks2.keys.map((x) => x.kid)).toContain(k.kid);
        // New tokens are signed with the new generation.
        const rp = await registerRp(server);
        const { b } = await mfaBrowser(server);
        const tokens = await authorize(server, rp, b);
        const header = JSON.parse(Buffer.from(tokens.id_token!.split('.')[0]!, 'base64url').toString()) as { kid: string };
        expect(jwks1.keys.map((k) => k.kid)).not.toContain(header.kid);
        expect(jwks2.keys.map((k) => k.kid)).toContain(header.kid);
      } finally {
        await server.close();
      }
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('gatehouse clients', () => {
  it('adds a confidential client (secret shown once, stored sealed) and a public one; refuses bad input', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatehouse-oidc-cli-'));
    const env = { ...process.env, ...FAST_ENV, GATEHOUSE_DATA_DIR: dataDir, GATEHOUSE_LOG_LEVEL: 'silent' };
    try {
      let printed = '';
      const out = (s: string) => (printed += s);
      expect(await clientsCommand(['add', '--id', 'billing-app', '--redirect-uri', 'https://billing.example.com/cb'], env, out)).toBe(0);
      const secret = /client_secret: (\S+)/.exec(printed)?.[1];
      expect(secret).toBeTruthy();
      expect(await clientsCommand(['add', '--id', 'spa', '--redirect-uri', 'https://spa.example.com/cb', '--public'], env, out)).toBe(0);
      expect(await clientsCommand(['add', '--id', 'spa', '--redirect-uri', 'https://spa.example.com/cb', '--public'], env, out)).toBe(2);
      expect(await clientsCommand(['add', '--id', 'bad', '--redirect-uri', 'javascript:alert(1)'], env, out)).toBe(2);

      const server = await startFastServer({ GATEHOUSE_DATA_DIR: dataDir });
      try {
        const g = server.server.gatehouse;
        const registry = new ClientRegistry(g.database.db, g.keys.box, dataDir);
        expect(await registry.find('billing-app')).toMatchObject({
          client_secret: secret,
          redirect_uris: ['https://billing.example.com/cb'],
        });
        expect(await registry.find('spa')).toMatchObject({ token_endpoint_auth_method: 'none' });
        expect(await registry.find('bad')).toBeUndefined();
        const row = await withOidcTables(g.database.db)
          .selectFrom('oidc_clients')
          .selectAll()
          .where('client_id', '=', 'billing-app')
          .executeTakeFirstOrThrow();
        expect(row.secret_enc).not.toContain(secret!);
        // The provider accepts the confidential client with its secret at discovery + token endpoint auth.
        const config = await oidc.discovery(new URL(`${server.url}/oidc`), 'billing-app', secret!, undefined, {
          execute: [oidc.allowInsecureRequests],
        });
        expect(config.serverMetadata().code_challenge_methods_supported).toEqual(['S256']);
      } finally {
        await server.close();
      }
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
