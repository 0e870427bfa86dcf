/**
 * Red team: ending a session must end the remember-me chain behind it, on the pages too.
 *
 * 1. "Sign out" on a page whose session has idled out (or whose session cookie is gone)
 *    while the remember-me cookie is still there: the gate used to restore a brand-new
 *    session from the remember-me cookie first, the form token (of the old session) then
 *    failed, and the browser was left signed in with a freshly rotated remember-me cookie.
 * 2. "Sign out" of another session in the settings page (the attacker's) used to delete
 *    only the session row: the attacker's remember-me cookie kept restoring sessions
 *    (full ones for an account without a second factor). The JSON API ended the chain.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFastServer, type TestServer } from '../helpers/server.js';
import { Client, csrfIn, FormBrowser } from '../helpers/http-client.js';
import { PASSWORD, signup } from '../helpers/accounts.js';

describe('red team: remember-me ends with the session on the pages', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startFastServer();
  });
  afterAll(async () => {
    await server?.close();
  });

  async function rememberedBrowser() {
    const account = await signup(server.url);
    const b = new FormBrowser(server.url);
    const signIn = await b.go('POST', '/sign-in', { email: account.email, password: PASSWORD, remember: '1' });
    expect(signIn.location).toBe('/settings');
    expect(b.cookies.get('gatehouse_remember')).toBeTruthy();
    const settings = await b.go('GET', '/settings');
    expect(settings.status).toBe(200);
    return { account, b, csrf: csrfIn(settings.text) };
  }

  it('sign-out with a dead session cookie and a live remember-me cookie signs out', async () => {
    const { b, csrf } = await rememberedBrowser();
    const remember = b.cookies.get('gatehouse_remember')!;
    b.cookies.delete('gatehouse_session'); // idled out / cleared by the browser
    const out = await b.go('POST', '/sign-out', { _csrf: csrf });
    expect(out.status).toBe(303);
    expect(out.location).toBe('/sign-in?notice=signed_out');
    expect(b.cookies.get('gatehouse_session')).toBeUndefined();
    expect(b.cookies.get('gatehouse_remember')).toBeUndefined();
    // The chain is over: the old remember-me cookie restores nothing.
    const replay = new Client(server.url);
    replay.cookies.set('gatehouse_remember', remember);
    expect((await replay.get('/api/session')).status).toBe(401);
    expect(replay.cookies.get('gatehouse_session')).toBeUndefined();
  });

  it('signing out another session in settings ends its remember-me chain', async () => {
    const { account, b } = await rememberedBrowser();
    // The attacker signs in with the password and asks to be remembered.
    const attacker = new Client(server.url);
    expect((await attacker.post('/api/auth/login', { email: account.email, password: PASSWORD, remember: true })).status).toBe(200);
    const attackerSession = (await attacker.get('/api/sessions')).body.sessions.find((s: { current: boolean }) => s.current).id as string;
    const attackerRemember = attacker.cookies.get('gatehouse_remember')!;
    expect(attackerRemember).toBeTruthy();

    const settings = await b.go('GET', '/settings');
    const revoke = await b.go('POST', '/settings/sessions/revoke', { _csrf: csrfIn(settings.text), sessionId: attackerSession });
    expect(revoke.location).toBe('/settings?notice=session_revoked');

    // Only the remember-me cookie is left to the attacker: it must not bring a session back.
    const onlyRemember = new Client(server.url);
    onlyRemember.cookies.set('gatehouse_remember', attackerRemember);
    const r = await onlyRemember.get('/api/session');
    expect(r.status).toBe(401);
    expect(r.body.error).toBe('unauthenticated');

    // Legitimate: the owner's own remember-me chain is untouched and still restores.
    const owner = new Client(server.url);
    owner.cookies.set('gatehouse_remember', b.cookies.get('gatehouse_remember')!);
    const restored = await owner.get('/api/session');
    expect(restored.status).toBe(200);
    expect(restored.body.amr).toEqual(['remember_me']);
  });

  it('legitimate: signing out with a live session ends session and chain', async () => {
    const { b, csrf } = await rememberedBrowser();
    const remember = b.cookies.get('gatehouse_remember')!;
    const out = await b.go('POST', '/sign-out', { _csrf: csrf });
    expect(out.location).toBe('/sign-in?notice=signed_out');
    expect((await b.go('GET', '/settings')).location).toBe('/sign-in');
    const replay = new Client(server.url);
    replay.cookies.set('gatehouse_remember', remember);
    expect((await replay.get('/api/session')).status).toBe(401);
  });
});
