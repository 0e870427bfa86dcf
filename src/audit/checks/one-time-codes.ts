// Second-factor codes must be single-use and bound to their account: TOTP replay, recovery
// code reuse (sequential and racing), and a valid code of another account.
import { CodeSupply } from '../factors.js';
import type { AuditContext, Prepared } from '../context.js';
import type { Session } from '../session.js';
import { blocked, bypassed, Inconclusive, notApplicable, type Check } from './types.js';

/** The result of recovery-code-reuse, so the race check does not report the same flaw twice. */
const reusable = new WeakMap<AuditContext, boolean>();

/**
 * A reply that matches secondFactor.accepted counts as a bypass only once who-am-I agrees
 * the session is now signed in; a matcher that also fits a refusal (e.g. a 200 error page)
 * must not turn into a finding.
 */
async function confirmAccepted(ctx: AuditContext, session: Session, r: { res: { status: number }; accepted: boolean }): Promise<boolean> {
  if (!r.accepted) return false;
  const me = await ctx.whoami(session, 'confirm the session is now signed in');
  if (!me.ok) {
    throw new Inconclusive(
      `the reply (status ${r.res.status}) matched secondFactor.accepted, but ${ctx.profile.whoami.path} still refuses the session ` +
        `(status ${me.res.status}): the accepted matcher may be too loose`,
    );
  }
  return true;
}

export const totpReplay: Check = {
  id: 'totp-replay',
  title: 'TOTP code accepted twice',
  severity: 'medium',
  references: ['WSTG-ATHN-11', 'ASVS 5.0 V6.5.1'],
  description:
    'Completes a login with a TOTP code, then submits the same code in a new login. ' +
    'A code seen over someone’s shoulder or phished in real time must not work a second time.',
  fixHint: 'Store the last accepted time step per factor and refuse any code from that step or earlier.',
  notApplicable: (p) =>
    !p.secondFactor.totp
      ? 'the profile has no secondFactor.totp'
      : !p.accounts[0]?.totpSecret
        ? 'the first account has no totpSecret'
        : undefined,
  plan: () => ['full login with a fresh TOTP code', 'new password login, submit the same code'],
  async run(ctx) {
    const code = await ctx.issueCode('totp');
    await ctx.fullLogin({ code, note: 'log in (first use of the code)' });
    await ctx.ensureHeadroom(1);
    const { session, replay } = await ctx.retryLimited(
      'the replayed TOTP code',
      async () => {
        const second = await ctx.passwordLogin({ note: 'log in again' });
        return { session: second.session, replay: await ctx.submitCode(second.session, code, { note: 'submit the same TOTP code again' }) };
      },
      (r) => (r.replay.accepted ? undefined : r.replay.res),
    );
    if (await confirmAccepted(ctx, session, replay))
      return bypassed(`The same TOTP code was accepted a second time (status ${replay.res.status}).`);
    return blocked(
      `The second use of the code was refused (status ${replay.res.status}).`,
      ctx.refusalWhy(replay.res, 'secondFactor.accepted'),
    );
  },
};

export const recoveryCodeReuse: Check = {
  id: 'recovery-code-reuse',
  title: 'Recovery code reusable',
  severity: 'high',
  references: ['WSTG-ATHN-11', 'ASVS 5.0 V6.5.1'],
  description: 'Completes a login with a recovery code, then submits the same code in a new login.',
  fixHint: 'Delete (or mark used) a recovery code in the same transaction that accepts it.',
  notApplicable: (p) =>
    !p.secondFactor.recoveryCode
      ? 'the profile has no secondFactor.recoveryCode'
      : !p.accounts[0]?.recoveryCodes.length
        ? 'the first account has no recoveryCodes'
        : undefined,
  plan: () => ['full login with a recovery code', 'new password login, submit the same recovery code'],
  async run(ctx) {
    const code = ctx.codes.takeRecovery(true);
    if (!code) throw new Inconclusive('no recovery code left');
    await ctx.fullLogin({ code, note: 'log in (first use of the recovery code)' });
    await ctx.ensureHeadroom(1);
    const { session, reuse } = await ctx.retryLimited(
      'the reused recovery code',
      async () => {
        const second = await ctx.passwordLogin({ note: 'log in again' });
        return {
          session: second.session,
          reuse: await ctx.submitCode(second.session, code, { note: 'submit the same recovery code again' }),
        };
      },
      (r) => (r.reuse.accepted ? undefined : r.reuse.res),
    );
    if (await confirmAccepted(ctx, session, reuse)) {
      reusable.set(ctx, true);
      return bypassed(`The used recovery code was accepted again (status ${reuse.res.status}).`);
    }
    return blocked(
      `The second use of the recovery code was refused (status ${reuse.res.status}).`,
      ctx.refusalWhy(reuse.res, 'secondFactor.accepted'),
    );
  },
};

export const recoveryCodeRace: Check = {
  id: 'recovery-code-race',
  title: 'Recovery code race (parallel use)',
  severity: 'medium',
  references: ['WSTG-ATHN-11', 'ASVS 5.0 V6.5.1'],
  description:
    'Opens several pending sessions and submits one unused recovery code in all of them at the same moment. ' +
    'A check-then-delete without a transaction lets the code through more than once.',
  fixHint: 'Consume the code with one atomic statement (e.g. DELETE … WHERE hash = ? and check the row count) before granting the session.',
  notApplicable: recoveryCodeReuse.notApplicable,
  dependsOn: ['recovery-code-reuse'],
  plan: (p) => [
    `${p.limits.raceParallelism} password logins (pending sessions)`,
    `submit one unused recovery code in all ${p.limits.raceParallelism} at once`,
  ],
  async run(ctx) {
    if (reusable.get(ctx)) {
      // A code that works any number of times also works in parallel: one flaw, one finding.
      return notApplicable('The recovery code is simply reusable (reported by recovery-code-reuse); a race adds nothing.');
    }
    const n = ctx.profile.limits.raceParallelism;
    await ctx.ensureHeadroom(n - 1);
    // A submission a limiter turned away never raced: wait a short Retry-After out and run
    // the race again with a new code; otherwise the check is inconclusive: limited.
    const { sessions, results } = await ctx.retryLimited(
      'a parallel submission',
      async () => {
        const sessions: Session[] = [];
        for (let i = 1; i <= n; i++) sessions.push((await ctx.passwordLogin({ note: `pending session ${i} of ${n}` })).session);
        const code = ctx.codes.takeRecovery(true);
        if (!code) throw new Inconclusive('no recovery code left');
        // Any fetchFirst page (a CSRF token) is fetched for every session first, so that the
        // submissions themselves still go out at the same moment.
        const prepared: (Prepared | undefined)[] = [];
        for (const s of sessions) prepared.push(await ctx.prepareCode(s, 'recovery'));
        const results = await Promise.all(
          sessions.map((s, i) => ctx.submitCode(s, code, { note: `parallel submission ${i + 1} of ${n}`, prepared: prepared[i] })),
        );
        return { sessions, results };
      },
      (r) => (r.results.filter((x) => x.accepted).length > 1 ? undefined : r.results.find((x) => x.limited)?.res),
    );
    let accepted = results.filter((r) => r.accepted).length;
    if (accepted > 1) {
      accepted = 0;
      for (const [i, r] of results.entries()) if (await confirmAccepted(ctx, sessions[i]!, r)) accepted++;
    }
    if (accepted > 1) return bypassed(`One recovery code was accepted by ${accepted} of ${n} parallel sessions.`);
    if (accepted === 0) throw new Inconclusive('none of the parallel submissions was accepted; is the recovery code valid?');
    const refused = results.find((r) => !r.accepted);
    return blocked(
      `Exactly one of ${n} parallel submissions was accepted.`,
      refused ? ctx.refusalWhy(refused.res, 'secondFactor.accepted') : undefined,
    );
  },
};

export const otpCrossAccount: Check = {
  id: 'otp-cross-account',
  title: 'OTP accepted for another account',
  severity: 'critical',
  references: ['WSTG-ATHN-11', 'ASVS 5.0 V6.3.3'],
  description:
    'Logs in as the first account and submits a currently valid TOTP code of the second account. ' +
    'An attacker with a victim’s password and their own authenticator must not get in.',
  fixHint: 'Verify the code against the factor of the account the pending session belongs to, never a factor chosen by the request.',
  notApplicable: (p) =>
    !p.secondFactor.totp
      ? 'the profile has no secondFactor.totp'
      : !p.accounts[1]
        ? 'needs a second account in accounts'
        : !p.accounts[1].totpSecret
          ? 'the second account has no totpSecret'
          : undefined,
  plan: () => ['password login as the first account', 'submit a valid TOTP code of the second account'],
  async run(ctx) {
    const other = ctx.profile.accounts[1];
    if (!other?.totpSecret) throw new Inconclusive('no second account with a TOTP secret');
    const code = new CodeSupply(other.totpSecret, [], 0).peekTotp();
    // One in a million, but a code valid for both accounts would prove nothing.
    if (ctx.codes.isNearValid(code)) throw new Inconclusive('the two accounts’ current codes coincide; run again');
    await ctx.ensureHeadroom(1);
    const { session, res } = await ctx.retryLimited(
      `${other.username}’s code`,
      async () => {
        const login = await ctx.passwordLogin({ note: `log in as ${ctx.account.username}` });
        return {
          session: login.session,
          res: await ctx.submitCode(login.session, { kind: 'totp', code }, { note: `submit ${other.username}’s current TOTP code` }),
        };
      },
      (r) => (r.res.accepted ? undefined : r.res.res),
    );
    if (await confirmAccepted(ctx, session, res))
      return bypassed(`${other.username}’s code completed ${ctx.account.username}’s login (status ${res.res.status}).`);
    return blocked(`The other account’s code was refused (status ${res.res.status}).`, ctx.refusalWhy(res.res, 'secondFactor.accepted'));
  },
};
