/**
 * Security notifications: the plain-text mail for each notification type of the
 * contract, and the SecurityLog listener that queues them in the same transaction as the
 * event. Every message says what happened, when, from which address and browser, and what
 * to do if it was not the account holder.
 */
import type { Kysely, Transaction } from 'kysely';
import type { SecurityEventName } from '../core/events.js';
import type { SecurityEvent } from '../services/security-log.js';
import type { MailOutboxStore } from '../store/mail-outbox.js';
import type { Database } from '../store/schema.js';
import type { MailOutbox } from './outbox.js';

/** The contract's notification types: each is mailed when recorded. */
export const NOTIFIED_EVENT_TYPES = [
  'mfa.failed',
  'mfa.recovery_code_used',
  'mfa.factor_added',
  'mfa.factor_removed',
  'mfa.recovery_codes_regenerated',
  'account.email_change_requested',
  'account.email_changed',
  'account.password_changed',
  'account.locked',
  'token.created',
  'password_reset.requested',
  // Not in the contract's list: a stolen remember-me cookie was caught (issue 18).
  'remember_me.replayed',
  // Policy (issue 15): an admin signed the account out; a role requires a second factor.
  // (An admin's factor reset is mailed with its recovery link: mail/link-mail.ts.)
  'admin.sessions_revoked',
  'account.enrolment_reminder',
] as const satisfies readonly SecurityEventName[];

/** An enrolment reminder is mailed at most once per account in this window (ms). */
export const ENROLMENT_REMINDER_MAIL_WINDOW_MS = 24 * 3_600_000;

/** A wrong second factor is mailed at most once per account in this window (ms). */
export const MFA_FAILED_MAIL_WINDOW_MS = 5 * 60_000;

/** What every message names: the product, where it lives, and who acted from where and when. */
export interface MailSetting {
  productName: string;
  publicUrl: string;
}

export interface Occasion {
  at: number;
  ip: string;
  userAgent: string;
}

export interface Rendered {
  subject: string;
  text: string;
}

/** Control characters out, length bounded: a user agent is attacker-chosen text. */
function clean(value: string, max = 200): string {
  const stripped = value.replace(/[\p{Cc}\p{Cf}\u2028\u2029]/gu, ' ').trim();
  return (stripped.length > max ? `${stripped.slice(0, max)}…` : stripped) || 'unknown';
}

function when(at: number): string {
  return new Date(at).toUTCString().replace('GMT', 'UTC');
}

/** A message in the one layout: what happened, when and from where, what to do. */
export function composeMail(setting: MailSetting, occasion: Occasion, subject: string, what: string[], tail: string[]): Rendered {
  const where = [`When:    ${when(occasion.at)}`, `From IP: ${clean(occasion.ip, 64)}`, `Browser: ${clean(occasion.userAgent)}`];
  return {
    subject: `${setting.productName}: ${subject}`,
    text: [
      'Hello,',
      '',
      ...what,
      '',
      ...where,
      ...tail,
      '',
      '-- ',
      `${setting.productName} security notifications, ${setting.publicUrl}`,
      '',
    ].join('\n'),
  };
}

export const IF_YOU = ['', 'If this was you, there is nothing to do.'];
export const notYou = (steps: string[]) => ['', 'If this was not you:', ...steps.map((s, i) => `  ${i + 1}. ${s}`)];
/** The steps that secure an account someone else may control. */
export const secureSteps = (publicUrl: string) => [
  `Reset your password now: ${publicUrl}/forgot-password`,
  'Sign in, review your second factors, sessions and API tokens, and remove what you do not recognise.',
  'Check your security events in your account for other changes.',
];

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

function render(event: SecurityEvent, setting: MailSetting): Rendered | null {
  const d = event.parsedDetails;
  const forgot = `${setting.publicUrl}/forgot-password`;
  const secure = secureSteps(setting.publicUrl);
  const ifYou = IF_YOU;
  const compose = (subject: string, what: string[], tail: string[]) =>
    composeMail(setting, { at: event.at, ip: event.ip, userAgent: event.user_agent }, subject, what, tail);

  switch (event.type) {
    case 'mfa.failed':
      return compose(
        'a wrong second-factor code was entered',
        [
          'Someone entered your correct password and then a wrong second-factor',
          `code (${str(d.method) === 'recovery_code' ? 'recovery code' : 'authenticator code'}) for your account.`,
          'Your second factor stopped them, but they know your password.',
        ],
        [...ifYou, ...notYou([`Change your password at once: ${forgot}`, 'Do not share your codes with anyone who asks for them.'])],
      );
    case 'mfa.recovery_code_used': {
      const remaining = typeof d.remaining === 'number' ? d.remaining : null;
      return compose(
        'a recovery code was used',
        [
          'A recovery code was used to sign in to your account.',
          ...(remaining !== null ? [`Recovery codes left: ${remaining}.`] : []),
          'Each code works once; create new ones when you run low.',
        ],
        [
          ...ifYou,
          ...notYou([
            'Someone has your password and a recovery code.',
            ...secure,
            'Create new recovery codes (the old ones stop working).',
          ]),
        ],
      );
    }
    case 'mfa.factor_added':
      return compose(
        'a second factor was added',
        ['A new second factor (authenticator app) was added to your account.'],
        [...ifYou, ...notYou(['Someone may control your account.', ...secure])],
      );
    case 'mfa.factor_removed':
      return compose(
        'a second factor was removed',
        ['A second factor was removed from your account.', 'Signing in may now need only your password.'],
        [...ifYou, ...notYou(['Someone may control your account.', ...secure, 'Add your second factor again.'])],
      );
    case 'mfa.recovery_codes_regenerated':
      return compose(
        'new recovery codes were created',
        ['New recovery codes were created for your account.', 'All earlier recovery codes stopped working.'],
        [...ifYou, ...notYou(['Someone may control your account.', ...secure])],
      );
    case 'account.email_changed':
      return compose(
        'your e-mail address was changed',
        [
          `The e-mail address of your account was changed from ${str(d.from) ?? 'this address'}`,
          `to ${str(d.to) ?? 'a new address'}. Mail about the account now goes there.`,
          'This is the last message sent to this address.',
        ],
        [
          ...ifYou,
          ...notYou(['Someone has taken over your account.', 'Contact your administrator or support at once and quote this message.']),
        ],
      );
    case 'account.password_changed':
      return compose(
        'your password was changed',
        [
          str(d.via) === 'reset'
            ? 'The password of your account was reset with a link sent to this address.'
            : 'The password of your account was changed.',
          'Other sessions of the account were signed out.',
        ],
        [
          ...ifYou,
          ...notYou([`Reset your password: ${forgot}`, 'Check your mailbox for forwarding rules you did not set.', ...secure.slice(1)]),
        ],
      );
    case 'account.locked': {
      const seconds = typeof d.seconds === 'number' ? d.seconds : null;
      const what = str(d.check) === 'second_factor' ? 'second-factor codes' : 'passwords';
      return compose(
        'sign-in to your account was locked',
        [
          `After too many wrong ${what}, sign-in to your account is locked`,
          seconds !== null ? `for about ${Math.ceil(seconds / 60)} minute(s).` : 'for a while.',
          'Someone may be trying to guess their way in.',
        ],
        [
          ...ifYou.slice(0, 1),
          'If this was you, wait and try again.',
          ...notYou([`Make sure your password is not used elsewhere: ${forgot}`, 'Keep your second factor enabled.']),
        ],
      );
    }
    case 'token.created':
      return compose(
        'a personal API token was created',
        [
          `A personal API token${str(d.name) ? ` named "${clean(str(d.name)!, 100)}"` : ''} was created for your account`,
          `with these scopes: ${Array.isArray(d.scopes) && d.scopes.length ? d.scopes.join(', ') : '(none)'}.`,
          'Whoever holds it can use your account within those scopes.',
        ],
        [...ifYou, ...notYou(['Sign in and delete the token under API tokens.', ...secure])],
      );
    case 'remember_me.replayed':
      // At most one per chain per burst: RememberMeService claims the chain's alarm first.
      return compose(
        'a copy of your "keep me signed in" cookie was used',
        [
          'A "keep me signed in" cookie of your account was presented after it had',
          'already been used or signed out. That happens when someone copied it from',
          'your browser (malware, a shared or lost computer, a synced profile).',
          '',
          'We signed out every session that came from that cookie, including any the',
          'copy had opened, and it will not work again. The address and browser below',
          "are those of the request that presented it: yours or the copy's.",
        ],
        [
          '',
          'What to do now:',
          `  1. Change your password (or reset it: ${forgot}). This signs out everything else.`,
          '  2. Sign in and check your sessions: sign out any you do not recognise.',
          '  3. Check your second factors, passkeys and API tokens, and remove what you did not add.',
          '  4. Check your security events for other changes, and scan the computer for malware.',
          '',
          'Rarely, several tabs of your own browser restoring at the same moment look the same;',
          'changing your password is the safe answer either way.',
        ],
      );
    case 'admin.sessions_revoked':
      return compose(
        'an administrator signed you out everywhere',
        ['An administrator signed your account out of every session and remembered browser.'],
        ['', 'Sign in again to continue. If you did not expect this, contact your administrator.'],
      );
    case 'account.enrolment_reminder':
      return compose(
        'set up a second factor',
        [
          'Your account’s role requires a second factor (an authenticator app or a passkey).',
          `Set one up before ${when(Date.parse(str(d.dueAt) ?? '') || event.at)} in your security settings:`,
          `  ${setting.publicUrl}/settings`,
          '',
          'After that date your account can only be used to set one up.',
        ],
        [],
      );
    default:
      return null;
  }
}

/**
 * Mailed by the link-mail listener (./link-mail.ts) instead: their message carries a
 * single-use link, which the security event never holds.
 */
export const LINK_MAILED_EVENT_TYPES = [
  'password_reset.requested',
  'account.email_change_requested',
] as const satisfies readonly SecurityEventName[];

export interface NotifierDeps {
  outbox: MailOutbox;
  store: MailOutboxStore;
  /** Read at enqueue time: in development the public URL is known only after listen. */
  setting: () => MailSetting;
}

/** The SecurityLog listener: queues the notification in the event's transaction. */
export function notificationListener(deps: NotifierDeps) {
  const linkMailed = new Set<string>(LINK_MAILED_EVENT_TYPES);
  const notified = new Set<string>(NOTIFIED_EVENT_TYPES.filter((type) => !linkMailed.has(type)));
  return async (event: SecurityEvent, trx: Transaction<Database> | Kysely<Database>): Promise<void> => {
    if (!notified.has(event.type) || !event.user_id) return;
    const user = await trx.selectFrom('users').select(['email']).where('id', '=', event.user_id).executeTakeFirst();
    // The e-mail change notice goes to the old address, as it was stored for the account.
    const to = event.type === 'account.email_changed' ? str(event.parsedDetails.from) : user?.email;
    if (!to) return;
    if (
      event.type === 'mfa.failed' &&
      (await deps.store.queuedSince(trx, event.user_id, event.type, event.at - MFA_FAILED_MAIL_WINDOW_MS))
    ) {
      return; // a guessing run must not flood the mailbox; the first one says it all
    }
    if (
      event.type === 'account.enrolment_reminder' &&
      (await deps.store.queuedSince(trx, event.user_id, event.type, event.at - ENROLMENT_REMINDER_MAIL_WINDOW_MS))
    ) {
      return; // one reminder a day, however often the account signs in
    }
    const rendered = render(event, deps.setting());
    if (!rendered) return;
    await deps.outbox.enqueue(trx, { userId: event.user_id, eventType: event.type, to, ...rendered }, event.at);
  };
}
