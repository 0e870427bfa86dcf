/**
 * Mailed links travel on the internal link-mail events, never on the public security
 * events: a host app's `gatehouse.on('*')` listener, the stored event log and the log
 * lines never see a reset, confirm or cancel token, while the mail carries each link and
 * works. The product name from the options names the sender, the subjects and the passkey
 * relying party.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGatehouse, gatehouseFastify, type Gatehouse, type SecurityEvent } from '../../src/index.js';
import { internalsOf } from '../../src/facade.js';
import { LinkMailChannel } from '../../src/services/link-mail.js';
import { signup, uniqueEmail } from '../helpers/accounts.js';
import { Client } from '../helpers/http-client.js';
import { capturedLogger } from '../helpers/logs.js';
import { mailedMessage } from '../helpers/mail-files.js';
import { FAST_ENV } from '../helpers/server.js';

const fast = {
  argon2: { memoryKiB: Number(FAST_ENV.GATEHOUSE_ARGON2_MEMORY_KIB), iterations: Number(FAST_ENV.GATEHOUSE_ARGON2_ITERATIONS) },
};

describe('links in mail, not in events', () => {
  let gatehouse: Gatehouse;
  let app: FastifyInstance;
  let base: string;
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatehouse-link-mail-'));
  const events: SecurityEvent[] = [];
  // Every log line, at the most verbose level, so a leaked token would show.
  const log = capturedLogger('trace');

  beforeAll(async () => {
    gatehouse = await createGatehouse({ dataDir, productName: 'Inkwell', logger: log.logger, ...fast });
    gatehouse.on('*', (event) => void events.push(event));
    app = Fastify({ loggerInstance: log.logger }) as unknown as FastifyInstance;
    await app.register(gatehouseFastify, { gatehouse });
    base = await app.listen({ host: '127.0.0.1', port: 0 });
  });
  afterAll(async () => {
    await app?.close();
    await gatehouse?.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  const storedDetails = async () =>
    (await internalsOf(gatehouse).database.db.selectFrom('events').select(['type', 'details']).execute()).map((r) => r.details).join('\n');

  it('the reset link is mailed (and works), but no listener, stored event or log line holds it', async () => {
    const account = await signup(base);
    expect((await new Client(base).post('/api/auth/password/forgot', { email: account.email })).status).toBe(202);
    const mail = await mailedMessage(dataDir, { to: account.email, event: 'password_reset.requested', linkPath: '/reset-password' });
    const token = mail.link.searchParams.get('token')!;
    expect(mail.raw).toMatch(/^From: "?Inkwell"? <gatehouse@localhost>/m);
    expect(mail.raw).toMatch(/^Subject: Inkwell: reset your password/m);

    await new Promise((r) => setTimeout(r, 50));
    const requested = events.find((e) => e.type === 'password_reset.requested' && e.userId === account.userId);
    expect(requested?.details).toEqual({});
    expect(JSON.stringify(events)).not.toContain(token);
    expect(await storedDetails()).not.toContain(token);
    expect(log.text()).not.toContain(token);

    // The legitimate flow: the link sets the new password.
    const reset = await new Client(base).post('/api/auth/password/reset', { token, password: 'copper-lantern-81-meadow' });
    expect(reset.status).toBe(200);
    expect(log.text()).not.toContain(token);
  });

  it('the confirm and cancel links of an e-mail change are mailed, the public event names only the new address', async () => {
    const account = await signup(base);
    const next = uniqueEmail('next');
    expect((await account.client.post('/api/account/email', { email: next }, { headers: { origin: base } })).status).toBe(202);
    const confirm = await mailedMessage(dataDir, {
      to: next,
      event: 'account.email_change_confirmation',
      linkPath: '/confirm-email',
    });
    const notice = await mailedMessage(dataDir, {
      to: account.email,
      event: 'account.email_change_requested',
      linkPath: '/cancel-email-change',
    });
    expect(confirm.raw).toMatch(/^Subject: Inkwell: confirm your new e-mail address/m);
    expect(notice.raw).toContain(next);
    const tokens = [confirm.link, notice.link].map((l) => l.searchParams.get('token')!);

    await new Promise((r) => setTimeout(r, 50));
    const requested = events.find((e) => e.type === 'account.email_change_requested' && e.userId === account.userId);
    expect(requested?.details).toEqual({ to: next });
    const stored = await storedDetails();
    for (const token of tokens) {
      expect(JSON.stringify(events)).not.toContain(token);
      expect(stored).not.toContain(token);
      expect(log.text()).not.toContain(token);
    }
    // The confirm link works.
    expect((await new Client(base).post('/api/account/email/confirm', { token: tokens[0] })).status).toBe(200);
    expect((await account.client.get('/api/account')).body.email).toBe(next);
  });

  it('the passkey relying party carries the product name', async () => {
    const account = await signup(base);
    const options = await account.client.post('/api/mfa/webauthn/register/options', undefined, { headers: { origin: base } });
    expect(options.status).toBe(200);
    expect(options.body.rp).toMatchObject({ name: 'Inkwell', id: 'localhost' });
  });
});

describe('the link-mail channel', () => {
  it('refuses to drop a link: emitting with no mail listener throws', async () => {
    const channel = new LinkMailChannel();
    const ctx = { ip: '127.0.0.1', userAgent: '', now: 0 };
    await expect(
      channel.emit('password_reset.link', { userId: 'u', to: 'a@example.com', resetLink: 'x' }, ctx, {} as never),
    ).rejects.toThrow(/no mail listener/);
    channel.on('password_reset.link', async () => {});
    expect(() => channel.on('password_reset.link', async () => {})).toThrow(/already registered/);
  });
});
