/**
 * The messages that carry a single-use link: the password-reset link, and for an e-mail
 * change the confirm link (to the new address) and the cancel link (to the current one).
 * They are queued from the link-mail events use cases raise (services/link-mail.ts), in
 * the transaction that stored the link's token; the outbox encrypts their bodies at rest.
 */
import type { RequestContext } from '../services/context.js';
import type { LinkMailChannel } from '../services/link-mail.js';
import { composeMail, IF_YOU, secureSteps, type MailSetting, type Occasion } from './notifications.js';
import type { MailOutbox } from './outbox.js';

/** The X-Gatehouse-Event of the confirmation mail to the new address (not a security event). */
export const EMAIL_CONFIRMATION_MAIL = 'account.email_change_confirmation';

const occasionOf = (ctx: RequestContext): Occasion => ({ at: ctx.now, ip: ctx.ip, userAgent: ctx.userAgent });

/** Queues the link mails for the events on `channel`. */
export function subscribeLinkMail(channel: LinkMailChannel, outbox: MailOutbox, setting: () => MailSetting): void {
  channel.on('password_reset.link', async (event, ctx, trx) => {
    const mail = composeMail(
      setting(),
      occasionOf(ctx),
      'reset your password',
      [
        'Someone asked to reset the password of your account.',
        'Open this link to choose a new password. It works once, for 30 minutes:',
        '',
        event.resetLink,
        '',
        'Resetting the password does not turn off your second factor: you will',
        'still need it to sign in.',
      ],
      [
        '',
        'If this was not you, ignore this message: your password stays as it is.',
        'Nobody can use the link without access to this mailbox.',
      ],
    );
    await outbox.enqueue(trx, { userId: event.userId, eventType: 'password_reset.requested', to: event.to, ...mail }, ctx.now);
  });

  channel.on('account_recovery.link', async (event, ctx, trx) => {
    const mail = composeMail(
      setting(),
      occasionOf(ctx),
      'an administrator reset your second factors',
      [
        `An administrator (${event.byEmail}) removed every second factor of your account`,
        'and signed it out everywhere, usually because you lost your phone or security key.',
        '',
        'To set up a new second factor, open this link and enter your password. It works once, for 24 hours:',
        '',
        event.recoveryLink,
        '',
        'Until you do, your password alone does not sign you in.',
      ],
      [
        '',
        'If you did not ask for this, contact your administrator and reset your password now:',
        `  ${setting().publicUrl}/forgot-password`,
      ],
    );
    await outbox.enqueue(trx, { userId: event.userId, eventType: 'admin.factors_reset', to: event.to, ...mail }, ctx.now);
  });

  channel.on('email_change.links', async (event, ctx, trx) => {
    const current = setting();
    const secure = secureSteps(current.publicUrl);
    const notice = composeMail(
      current,
      occasionOf(ctx),
      'someone asked to change your e-mail address',
      [
        `Someone signed in to your account asked to change its e-mail address to`,
        `${event.newEmail}. Nothing has changed yet: the change happens only`,
        'when the link sent to the new address is opened (within 24 hours).',
        'Whoever controls the account address can reset its password, so check this.',
      ],
      [
        ...IF_YOU,
        '',
        'If this was not you, open this link to cancel the change and sign out the',
        'session that asked for it. It works once and does not sign you in:',
        '',
        event.cancelLink,
        '',
        'Then, at once:',
        ...secure.map((s, i) => `  ${i + 1}. ${s}`),
        `  ${secure.length + 1}. Check your second factors (authenticator apps, passkeys): remove any you did not add.`,
      ],
    );
    await outbox.enqueue(
      trx,
      { userId: event.userId, eventType: 'account.email_change_requested', to: event.currentEmail, ...notice },
      ctx.now,
    );
    const confirmation = composeMail(
      current,
      occasionOf(ctx),
      'confirm your new e-mail address',
      [
        `Someone asked to use this address (${event.newEmail}) for a ${current.productName} account`,
        `that now uses ${event.currentEmail}.`,
        '',
        'To confirm, open this link. It works once, for 24 hours:',
        '',
        event.confirmLink,
      ],
      [
        '',
        'If you did not ask for this, ignore this message: nothing changes',
        'unless the link is opened. The current address has been told as well.',
      ],
    );
    await outbox.enqueue(trx, { userId: event.userId, eventType: EMAIL_CONFIRMATION_MAIL, to: event.newEmail, ...confirmation }, ctx.now);
  });
}
