/**
 * Security notifications: the plain-text mail for each notification type of the
 * contract, and the SecurityLog listener that queues them in the same transaction as the
 * event. Every message says what happened, when, from which address and browser, and what
 * to do if it was not the account holder.
 */
import type { Kysely, Transaction } from 'kysely';
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
  // Policy (issue 15): an admin acted on the account; a role requires a second factor.
  'admin.factors_reset',
  'admin.sessions_revoked',
  'account.enrolment_reminder',
] as const;

/** An enrolment reminder is mailed at most once per account in this window (ms). */
export const ENROLMENT_REMINDER_MAIL_WINDOW_MS = 24 * 3_600_000;

/**
 * A link that belongs in the notification but must not be stored with the event (it
 * carries a single-use token). Symbol keys are skipped by JSON.stringify, so the security
 * log never persists it; the listener reads it from the in-memory event.
 */
export const MAIL_LINK = Symbol('gatehouse.mailLink');

/** A wrong second factor is mailed at most once per account in this window (ms). */
export const MFA_FAILED_MAIL_WINDOW_MS = 5 * 60_000;

export interface NotificationContext {
  publicUrl: string;
  /** The address the mail goes to (already resolved from the account). */
  to: string;
}

interface Rendered {
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

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

function render(event: SecurityEvent, ctx: NotificationContext): Rendered | null {
  const d = event.parsedDetails;
  const url = ctx.publicUrl;
  const forgot = `${url}/forgot-password`;
  const where = [`When:    ${when(event.at)}`, `From IP: ${clean(event.ip, 64)}`, `Browser: ${clean(event.user_agent)}`];
  const notYou = (steps: string[]) => ['', 'If this was not you:', ...steps.map((s, i) => `  ${i + 1}. ${s}`)];
  const secure = [
    `Reset your password now: ${forgot}`,
    'Sign in, review your second factors, sessions and API tokens, and remove what you do not recognise.',
    'Check your security events in your account for other changes.',
  ];
  const compose = (subject: string, what: string[], tail: string[]): Rendered => ({
    subject: `Gatehouse: ${subject}`,
    text: ['Hello,', '', ...what, '', ...where, ...tail, '', '-- ', `Gatehouse security notifications, ${url}`, ''].join('\n'),
  });
  const ifYou = ['', 'If this was you, there is nothing to do.'];

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
    case 'account.email_change_requested': {
      const link = str((d as Record<PropertyKey, unknown>)[MAIL_LINK]);
      return compose(
        'someone asked to change your e-mail address',
        [
          `Someone signed in to your account asked to change its e-mail address to`,
          `${str(d.to) ?? 'a new address'}. Nothing has changed yet: the change happens only`,
          'when the link sent to the new address is opened (within 24 hours).',
          'Whoever controls the account address can reset its password, so check this.',
        ],
        [
          ...ifYou,
          '',
          'If this was not you, open this link to cancel the change and sign out the',
          'session that asked for it. It works once and does not sign you in:',
          '',
          ...(link ? [link, ''] : []),
          'Then, at once:',
          ...secure.map((s, i) => `  ${i + 1}. ${s}`),
          `  ${secure.length + 1}. Check your second factors (authenticator apps, passkeys): remove any you did not add.`,
        ],
      );
    }
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
    case 'admin.factors_reset': {
      const link = str((d as Record<PropertyKey, unknown>)[MAIL_LINK]);
      return compose(
        'an administrator reset your second factors',
        [
          `An administrator (${clean(str(d.byEmail) ?? 'unknown', 320)}) removed every second factor of your account`,
          'and signed it out everywhere, usually because you lost your phone or security key.',
          '',
          ...(link
            ? ['To set up a new second factor, open this link and enter your password. It works once, for 24 hours:', '', link, '']
            : []),
          'Until you do, your password alone does not sign you in.',
        ],
        ['', 'If you did not ask for this, contact your administrator and reset your password now:', `  ${forgot}`],
      );
    }
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
          `  ${url}/settings`,
          '',
          'After that date your account can only be used to set one up.',
        ],
        [],
      );
    case 'password_reset.requested': {
      const link = str((d as Record<PropertyKey, unknown>)[MAIL_LINK]);
      return compose(
        'reset your password',
        [
          'Someone asked to reset the password of your account.',
          ...(link ? ['Open this link to choose a new password. It works once, for 30 minutes:', '', link, ''] : []),
          'Resetting the password does not turn off your second factor: you will',
          'still need it to sign in.',
        ],
        [
          '',
          'If this was not you, ignore this message: your password stays as it is.',
          'Nobody can use the link without access to this mailbox.',
        ],
      );
    }
    default:
      return null;
  }
}

export interface NotifierDeps {
  outbox: MailOutbox;
  store: MailOutboxStore;
  publicUrl: () => string;
}

/** The SecurityLog listener: queues the notification in the event's transaction. */
export function notificationListener(deps: NotifierDeps) {
  const notified = new Set<string>(NOTIFIED_EVENT_TYPES);
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
    const rendered = render(event, { publicUrl: deps.publicUrl(), to });
    if (!rendered) return;
    await deps.outbox.enqueue(trx, { userId: event.user_id, eventType: event.type, to, ...rendered }, event.at);
  };
}
