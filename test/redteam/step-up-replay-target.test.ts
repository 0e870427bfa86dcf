/**
 * Red team: the in-place step-up repeats the original action (307) only for an allowlisted
 * ★ page action. The allowlist check used `in`, which also accepts the names every object
 * inherits (`constructor`, `__proto__`, `toString`, …): a crafted `stepup_next` then got a
 * 307 replay of the form (codes and all) to a target outside the allowlist.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { totpCodeAt } from '../../src/services/totp.js';
import { startFastServer, type TestServer } from '../helpers/server.js';
import { PASSWORD, signupWithTotp } from '../helpers/accounts.js';
import { csrfIn, FormBrowser } from '../helpers/http-client.js';

describe('red team: step-up replay targets', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startFastServer();
  });
  afterAll(async () => {
    await server?.close();
  });

  async function signedIn() {
    const account = await signupWithTotp(server.url);
    const b = new FormBrowser(server.url);
    await b.go('POST', '/sign-in', { email: account.email, password: PASSWORD });
    const challenge = await b.go('GET', '/sign-in/verify');
    const code = account.recoveryCodes.pop()!;
    expect((await b.go('POST', '/sign-in/verify', { _csrf: csrfIn(challenge.text), method: 'recovery_code', code })).location).toBe(
      '/settings',
    );
    const csrf = csrfIn((await b.go('GET', '/settings')).text);
    return { account, b, csrf };
  }

  for (const next of ['constructor', '__proto__', 'toString', 'hasOwnProperty']) {
    it(`stepup_next=${next} is not replayed`, async () => {
      const { account, b, csrf } = await signedIn();
      const r = await b.go('POST', '/settings/step-up', {
        _csrf: csrf,
        stepup_next: next,
        stepup_method: 'recovery_code',
        stepup_code: account.recoveryCodes.pop()!,
      });
      expect(r.status).toBe(303);
      expect(r.location).toBe('/settings');
    });
  }

  it('the prompt never names an inherited property as the action', async () => {
    const { b, csrf } = await signedIn();
    // A stale session is needed for the prompt; a form naming an odd target posted to a ★ route.
    const prompt = await b.go('POST', '/settings/step-up', {
      _csrf: csrf,
      stepup_next: 'constructor',
      stepup_method: 'totp',
      stepup_code: '000000',
    });
    expect(prompt.status).toBe(401);
    expect(prompt.text).not.toContain('native code');
  });

  it('legitimate: an allowlisted action is repeated with the fresh session (307)', async () => {
    const { account, b, csrf } = await signedIn();
    const r = await b.go('POST', '/settings/step-up', {
      _csrf: csrf,
      stepup_next: '/settings/recovery-codes',
      stepup_method: 'totp',
      stepup_code: totpCodeAt(account.secret, Date.now() + 30_000),
    });
    expect(r.status).toBe(307);
    expect(r.location).toBe('/settings/recovery-codes');
  });
});
