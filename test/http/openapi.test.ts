// GET /openapi.json: generated from the registered routes, their requires(...) and the
// zod schemas the handlers parse; every documented body is what the route really accepts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFastServer, type TestServer } from '../helpers/server.js';

interface Operation {
  operationId: string;
  security: Record<string, string[]>[];
  requestBody?: { content: { 'application/json': { schema: { properties?: Record<string, unknown>; required?: string[] } } } };
  responses: Record<string, { content?: { 'application/json': { schema: unknown } } }>;
  'x-gatehouse-requires': { session: string; fresh: boolean | 'conditional'; scope?: string };
}
type Doc = {
  openapi: string;
  info: { version: string };
  paths: Record<string, Record<string, Operation>>;
  components: Record<string, unknown>;
};

describe('GET /openapi.json', () => {
  let server: TestServer;
  let doc: Doc;
  beforeAll(async () => {
    server = await startFastServer();
    const res = await fetch(`${server.url}/openapi.json`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/application\/json/);
    doc = (await res.json()) as Doc;
  });
  afterAll(async () => {
    await server?.close();
  });

  it('is OpenAPI 3.1 with the package version, security schemes and every API route', async () => {
    const { version } = (await import('../../package.json', { with: { type: 'json' } })).default as { version: string };
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.info.version).toBe(version);
    expect(Object.keys((doc.components as { securitySchemes: object }).securitySchemes).sort()).toEqual([
      'apiToken',
      'sessionCookie',
      'sessionToken',
    ]);
    for (const path of ['/api/auth/login', '/api/auth/mfa/verify', '/api/session', '/api/mfa/totp/{factorId}', '/api/tokens', '/healthz'])
      expect(Object.keys(doc.paths)).toContain(path);
    // The pages and the OpenID Provider are not part of the JSON API document.
    expect(Object.keys(doc.paths).filter((p) => !p.startsWith('/api/') && !['/healthz', '/readyz'].includes(p))).toEqual([]);
  });

  it("carries each route's requires(...) and derives its security from it", () => {
    const login = doc.paths['/api/auth/login']!.post!;
    expect(login['x-gatehouse-requires']).toEqual({ session: 'none', fresh: false });
    expect(login.security).toEqual([]);
    expect(doc.paths['/api/auth/mfa/verify']!.post!['x-gatehouse-requires'].session).toBe('pending');
    expect(doc.paths['/api/mfa/totp/{factorId}']!.delete!['x-gatehouse-requires']).toEqual({ session: 'full', fresh: true });
    expect(doc.paths['/api/mfa/totp/confirm']!.post!['x-gatehouse-requires'].fresh).toBe('conditional');
    const account = doc.paths['/api/account']!.get!;
    expect(account['x-gatehouse-requires'].scope).toBe('account:read');
    expect(account.security).toContainEqual({ apiToken: ['account:read'] });
    expect(account.security).toContainEqual({ sessionCookie: [] });
  });

  it('documents bodies from the zod schemas the handlers parse: a body built from the document is accepted', async () => {
    const login = doc.paths['/api/auth/login']!.post!.requestBody!.content['application/json'].schema;
    expect(login.required?.sort()).toEqual(['email', 'password']);
    expect(Object.keys(login.properties ?? {}).sort()).toEqual(['email', 'password', 'remember', 'transport']);
    expect(JSON.stringify(doc.paths['/api/auth/login']!.post!.responses['202'])).toContain('mfa_required');
    // The document's signup body (its required fields) signs up; a field it does not list is refused.
    const signup = doc.paths['/api/auth/signup']!.post!.requestBody!.content['application/json'].schema;
    const body = Object.fromEntries(
      (signup.required ?? []).map((k) => [k, k === 'email' ? 'openapi@example.test' : 'a-long-Passw0rd-for-openapi']),
    );
    const ok = await fetch(`${server.url}/api/auth/signup`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    expect(ok.status).toBe(201);
    const extra = await fetch(`${server.url}/api/auth/signup`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...body, email: 'other@example.test', notInTheDocument: 1 }),
    });
    expect(extra.status).toBe(400);
  });
});
