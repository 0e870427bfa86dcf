import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';
import {
  Client,
  FAST,
  expectError,
  expectIso,
  login,
  mfaUser,
  signup,
  sleep,
  startMailCatcher,
  strongPassword,
  uniqueEmail,
  type MailCatcher,
  takeRecovery,
} from './client.js';

let srv: TestServer;
let ttl: TestServer;
let mail: MailCatcher;

beforeAll(async () => {
  mail = await startMailCatcher();
  [srv, ttl] = await Promise.all([
    startTestServer({ ...FAST, GATEHOUSE_SMTP_URL: mail.url }),
    startTestServer({ ...FAST, GATEHOUSE_SESSION_IDLE_TTL: '3', GATEHOUSE_SESSION_TTL: '5' }),
  ]);
});
afterAll(async () => {
  await Promise.all([srv?.close(), ttl?.close()]);
  await mail?.close();
});

describe.concurrent('account', () => {
  it('GET /api/account → {id, email, mfaEnabled, createdAt}', async () => {
    const u = await signup(srv.url, 'acc');
    const r = await u.client.get('/api/account');
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ id: u.id, email: u.email, mfaEnabled: false });
    expectIso(r.body.createdAt);
    expectError(await new Client(srv.url).get('/api/account'), 401, 'unauthenticated');
  });

  it('GET /api/account/events: {type, at, ip, userAgent}, newest first', async () => {
    const u = await signup(srv.url, 'ev');
    u.client.headers['user-agent'] = 'ContractSuite/1.0';
    await u.client.post('/api/auth/logout');
    const c = new Client(srv.url);
    c.headers['user-agent'] = 'ContractSuite/2.0';
    await c.post('/api/auth/login', { email: u.email, password: 'Wrong!pass123' });
    await c.post('/api/auth/login', { email: u.email, password: u.password });
    await c.post('/api/tokens', { name: 'x', scopes: [] });
    const r = await c.get('/api/account/events');
    expect(r.status).toBe(200);
    const ev = r.body.events as { type: string; at: string; ip: string; userAgent: string }[];
    expect(ev.length).toBeGreaterThan(0);
    for (const e of ev) {
      expect(typeof e.type).toBe('string');
      expectIso(e.at);
      expect(e).toHaveProperty('ip');
      expect(e).toHaveProperty('userAgent');
    }
    for (let i = 1; i < ev.length; i++) expect(Date.parse(ev[i - 1]!.at)).toBeGreaterThanOrEqual(Date.parse(ev[i]!.at));
    expect(ev[0]!.type).toBe('token.created');
    expect(ev[0]!.userAgent).toBe('ContractSuite/2.0');
    expect(ev[0]!.ip).toMatch(/127\.0\.0\.1/);
  });
});

describe.concurrent('sessions', () => {
  it('GET /api/sessions lists {id, current, createdAt, lastSeenAt, ip, userAgent, aal}', async () => {
    const u = await signup(srv.url, 'ss');
    const other = await login(srv.url, u);
    other.client.headers['user-agent'] = 'OtherDevice/1';
    await other.client.get('/api/session');
    const r = await u.client.get('/api/sessions');
    expect(r.status).toBe(200);
    const ss = r.body.sessions as any[];
    expect(ss).toHaveLength(2);
    expect(ss.filter((s) => s.current)).toHaveLength(1);
    for (const s of ss) {
      expect(typeof s.id).toBe('string');
      expectIso(s.createdAt);
      expectIso(s.lastSeenAt);
      expect(s).toHaveProperty('ip');
      expect(s).toHaveProperty('userAgent');
      expect(s.aal).toBe(1);
    }
  });

  it("DELETE /api/sessions/:id → 204 ends that session; another account's session id is 404", async () => {
    const u = await signup(srv.url, 'ssdel');
    const v = await signup(srv.url, 'ssdel2');
    const other = await login(srv.url, u);
    const list = (await u.client.get('/api/sessions')).body.sessions as any[];
    const otherId = list.find((s) => !s.current).id;
    const vId = ((await v.client.get('/api/sessions')).body.sessions as any[])[0].id;
    expectError(await u.client.del(`/api/sessions/${vId}`), 404, 'not_found');
    expectError(await u.client.del(`/api/sessions/not-a-session`), 404, 'not_found');
    expect((await v.client.get('/api/session')).status).toBe(200);
    expect((await u.client.del(`/api/sessions/${otherId}`)).status).toBe(204);
    expectError(await other.client.get('/api/session'), 401, 'unauthenticated');
    expect((await u.client.get('/api/session')).status).toBe(200);
  });

  it('DELETE /api/sessions/:id of the current session ends it', async () => {
    const u = await signup(srv.url, 'ssown');
    const own = ((await u.client.get('/api/sessions')).body.sessions as any[]).find((s) => s.current).id;
    expect((await u.client.del(`/api/sessions/${own}`)).status).toBe(204);
    expectError(await u.client.get('/api/session'), 401, 'unauthenticated');
  });

  it('pending sessions of the account are not full sessions', async () => {
    const u = await mfaUser(srv.url, 'sspend');
    const p = await login(srv.url, u);
    expect(p.res.status).toBe(202);
    const r = await u.client.get('/api/sessions');
    for (const s of r.body.sessions) expect([1, 2]).toContain(s.aal);
  });

  it('an idle session ends after GATEHOUSE_SESSION_IDLE_TTL', async () => {
    const u = await signup(ttl.url, 'idle');
    await sleep(1000);
    expect((await u.client.get('/api/session')).status).toBe(200);
    await sleep(3400);
    expectError(await u.client.get('/api/session'), 401, 'unauthenticated');
  });

  it('an active session ends after GATEHOUSE_SESSION_TTL', async () => {
    const t0 = Date.now();
    const u = await signup(ttl.url, 'abs');
    const s = await u.client.get('/api/session');
    expect(Date.parse(s.body.expiresAt) - t0).toBeLessThanOrEqual(5500);
    while (Date.now() < t0 + 4000) {
      await sleep(900);
      if (Date.now() < t0 + 4500) expect((await u.client.get('/api/session')).status).toBe(200);
    }
    await sleep(Math.max(0, t0 + 5600 - Date.now()));
    expectError(await u.client.get('/api/session'), 401, 'unauthenticated');
  });
});

describe.concurrent('email change', () => {
  it('★ POST /api/account/email → 202; link to the new address; confirm with the token alone; old address told', async () => {
    const u = await signup(srv.url, 'ec');
    const newEmail = uniqueEmail('ecnew');
    const r = await u.client.post('/api/account/email', { email: newEmail });
    expect(r.status, r.text).toBe(202);
    expect(r.body).toEqual({ status: 'confirmation_sent' });
    const m = await mail.waitFor((x) => x.to.includes(newEmail) && x.tokens.length > 0);
    expect(m.to).toEqual([newEmail]);
    // not yet changed
    expect((await u.client.get('/api/account')).body.email).toBe(u.email);
    const c = await new Client(srv.url).post('/api/account/email/confirm', { token: m.tokens[0] });
    expect(c.status, c.text).toBe(200);
    const told = await mail.waitFor((x) => x.to.includes(u.email) && x.event === 'account.email_changed');
    expect(told.to).toEqual([u.email]);
    expect((await u.client.get('/api/account')).body.email).toBe(newEmail);
    expect((await new Client(srv.url).post('/api/auth/login', { email: newEmail, password: u.password })).status).toBe(200);
    expectError(await new Client(srv.url).post('/api/auth/login', { email: u.email, password: u.password }), 401, 'invalid_credentials');
    // single use
    expectError(await new Client(srv.url).post('/api/account/email/confirm', { token: m.tokens[0] }), 400, 'invalid_token');
  });

  it('the new address is normalised; mail goes to the stored form', async () => {
    const u = await signup(srv.url, 'ecn');
    const plain = uniqueEmail('ecnorm');
    const r = await u.client.post('/api/account/email', { email: `  ${plain.toUpperCase()} ` });
    expect(r.status, r.text).toBe(202);
    const m = await mail.waitFor((x) => x.to.some((t) => t.toLowerCase() === plain) && x.tokens.length > 0);
    expect((await new Client(srv.url).post('/api/account/email/confirm', { token: m.tokens[0] })).status).toBe(200);
    // Interpretation: the contract normalises for matching; Gatehouse keeps the address as typed (trimmed).
    const stored = (await u.client.get('/api/account')).body.email as string;
    expect(stored.normalize('NFKC').trim().toLowerCase()).toBe(plain);
    // (the SMTP client lower-cases the domain part of the envelope address)
    expect(m.to).toHaveLength(1);
    expect(m.to[0]!.split('@')[0]).toBe(stored.split('@')[0]);
    expect((await new Client(srv.url).post('/api/auth/login', { email: plain, password: u.password })).status).toBe(200);
  });

  it('two accounts confirming the same new address at once: one wins, the other gets a 4xx', async () => {
    const a = await signup(srv.url, 'eca2');
    const b = await signup(srv.url, 'ecb2');
    const x = uniqueEmail('ectarget');
    expect((await a.client.post('/api/account/email', { email: x })).status).toBe(202);
    expect((await b.client.post('/api/account/email', { email: x })).status).toBe(202);
    const ma = await mail.waitFor((m) => m.to.includes(x) && m.tokens.length > 0);
    const mb = await mail.waitFor((m) => m.to.includes(x) && m.tokens.length > 0 && m !== ma);
    const rs = await Promise.all([ma, mb].map((m) => new Client(srv.url).post('/api/account/email/confirm', { token: m.tokens[0] })));
    expect(rs.map((r) => r.status).sort()).toEqual([200, rs.find((r) => r.status !== 200)!.status]);
    const loser = rs.find((r) => r.status !== 200)!;
    expect(loser.status).toBeGreaterThanOrEqual(400);
    expect(loser.status).toBeLessThan(500);
    const emails = [(await a.client.get('/api/account')).body.email, (await b.client.get('/api/account')).body.email];
    expect(emails.filter((e) => e === x)).toHaveLength(1);
  });

  it('unknown token is 400 invalid_token; bad fields 400 invalid_request; unauthenticated request 401', async () => {
    expectError(await new Client(srv.url).post('/api/account/email/confirm', { token: 'bogus' }), 400, 'invalid_token');
    expectError(await new Client(srv.url).post('/api/account/email/confirm', {}), 400, 'invalid_request');
    expectError(await new Client(srv.url).post('/api/account/email', { email: uniqueEmail('x') }), 401, 'unauthenticated');
    const u = await signup(srv.url, 'ecbad');
    expectError(await u.client.post('/api/account/email', { email: 42 }), 400, 'invalid_request');
  });

  it('the password changes only through ★ POST /api/account/password, with other sessions revoked', async () => {
    const u = await signup(srv.url, 'pw');
    const o = await login(srv.url, u);
    const r = await u.client.post('/api/account/password', { currentPassword: u.password, newPassword: strongPassword() });
    expect(r.status).toBe(200);
    expectError(await o.client.get('/api/session'), 401, 'unauthenticated');
    const m = await mail.waitFor((x) => x.to.includes(u.email) && x.event === 'account.password_changed');
    expect(m).toBeDefined();
  });
});

describe('logout and email-change edges', () => {
  let srv: TestServer;
  let mail: MailCatcher;
  beforeAll(async () => {
    mail = await startMailCatcher();
    srv = await startTestServer({ ...FAST, GATEHOUSE_SMTP_URL: mail.url });
  });
  afterAll(async () => {
    await srv?.close();
    await mail?.close();
  });

  describe.concurrent('logout and email-change edges', () => {
    it('logout carrying only the remember-me cookie revokes it', async () => {
      const u = await signup(srv.url, 'lor');
      const { client } = await login(srv.url, u, { remember: true });
      const r0 = client.jar.get('gatehouse_remember')!;
      const c = new Client(srv.url);
      c.jar.set('gatehouse_remember', r0);
      const out = await c.post('/api/auth/logout');
      expect(out.status).toBe(204);
      const d = new Client(srv.url);
      for (const [k, v] of c.jar.snapshot()) d.jar.set(k, v);
      expectError(await d.get('/api/session'), 401, 'unauthenticated');
      const e = new Client(srv.url);
      e.jar.set('gatehouse_remember', r0);
      expectError(await e.get('/api/session'), 401, 'unauthenticated');
    });
    it('logout of a pending session restored from remember-me revokes the remember-me token', async () => {
      const u = await mfaUser(srv.url, 'lorp');
      const c = new Client(srv.url);
      await c.post('/api/auth/login', { email: u.email, password: u.password, remember: true });
      await c.post('/api/auth/mfa/verify', { method: 'recovery_code', code: takeRecovery(u) });
      const d = new Client(srv.url);
      d.jar.set('gatehouse_remember', c.jar.get('gatehouse_remember')!);
      expectError(await d.get('/api/session'), 401, 'mfa_required');
      expect((await d.post('/api/auth/logout')).status).toBe(204);
      const e = new Client(srv.url);
      const r = d.jar.get('gatehouse_remember');
      if (r) {
        e.jar.set('gatehouse_remember', r);
        expectError(await e.get('/api/session'), 401, 'unauthenticated');
      }
    });
    it('email confirm uses the token alone, whatever session comes with it', async () => {
      const a = await signup(srv.url, 'eca');
      const b = await signup(srv.url, 'ecb');
      const ne = uniqueEmail('ecnew');
      expect((await a.client.post('/api/account/email', { email: ne })).status).toBe(202);
      const m = await mail.waitFor((x) => x.to.includes(ne) && x.tokens.length > 0);
      expect((await b.client.post('/api/account/email/confirm', { token: m.tokens[0] })).status).toBe(200);
      expect((await a.client.get('/api/account')).body.email).toBe(ne);
      expect((await b.client.get('/api/account')).body.email).toBe(b.email);
    });
    it('email-change link carries the public URL origin; reset link too', async () => {
      const a = await signup(srv.url, 'lnk');
      const ne = uniqueEmail('lnknew');
      await a.client.post('/api/account/email', { email: ne });
      const m = await mail.waitFor((x) => x.to.includes(ne) && x.tokens.length > 0);
      expect(m.text).toContain(`${srv.url}/`);
      expect(m.text).toMatch(new RegExp(`${srv.url.replace(/[.]/g, '\\.')}/\\S*token=`));
    });
  });
});
