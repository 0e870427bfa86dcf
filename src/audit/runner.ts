// Runs the checks against one target: a preflight that proves the profile works (a full
// login and who-am-I), then every check in order, each with its own evidence log.
import { allChecks, type Check, type CheckResult } from './checks/index.js';
import { Inconclusive, Limited } from './checks/types.js';
import { AuditContext, missingNote } from './context.js';
import { AuditAbort, HttpClient, RequestFailed, type Exchange } from './http-client.js';
import { maskExchange, SecretRegistry } from './mask.js';
import { describeExtractor, extractorOf } from './extract.js';
import { describeMatcher } from './matchers.js';
import type { Profile } from './profile.js';
import { provisionAccounts, type Provisioned } from './provision.js';
import { AUDITOR_NAME, AUDITOR_VERSION, countStatuses, exitCodeFor, type AuditReport } from './report.js';

export interface AuditListener {
  onPreflight?(message: string): void;
  onCheckStart?(check: Check, index: number, total: number): void;
  onCheckEnd?(result: CheckResult, index: number, total: number): void;
  onWait?(reason: string, ms: number): void;
}

export interface AuditOptions {
  target: string;
  profile: Profile;
  listener?: AuditListener;
  /** Run only these check ids (default: all). */
  only?: readonly string[];
}

export function selectedChecks(only?: readonly string[]): Check[] {
  if (!only?.length) return [...allChecks];
  const unknown = only.filter((id) => !allChecks.some((c) => c.id === id));
  if (unknown.length) throw new AuditAbort(`unknown check id(s): ${unknown.join(', ')}`);
  const wanted = new Set(only);
  for (const c of allChecks) if (wanted.has(c.id)) for (const d of c.dependsOn ?? []) wanted.add(d);
  return allChecks.filter((c) => wanted.has(c.id));
}

export async function runAudit(options: AuditOptions): Promise<AuditReport> {
  const { listener = {} } = options;
  // A private copy: a check may update it (e.g. the password after a reset).
  const profile = structuredClone(options.profile);
  const started = Date.now();
  const checks = selectedChecks(options.only);
  const target = new URL(options.target).origin;
  const http = new HttpClient({
    target,
    maxRequests: profile.safety.maxRequests,
    requestsPerSecond: profile.safety.requestsPerSecond,
    burst: Math.max(4, profile.limits.raceParallelism),
    timeoutMs: profile.safety.timeoutSeconds * 1000,
  });
  const secrets = new SecretRegistry();
  const preflight: Exchange[] = [];
  const results: CheckResult[] = [];
  let aborted: string | undefined;
  const report = (): AuditReport => {
    const finished = Date.now();
    const counts = countStatuses(results);
    const masked = (list: Exchange[]) => list.map((e) => maskExchange(e, secrets));
    return {
      tool: { name: AUDITOR_NAME, version: AUDITOR_VERSION },
      target,
      profile: profile.name,
      startedAt: new Date(started).toISOString(),
      finishedAt: new Date(finished).toISOString(),
      durationMs: finished - started,
      requestCount: http.requestCount,
      ...(aborted !== undefined ? { aborted } : {}),
      preflight: masked(preflight),
      results: results.map((r) => ({ ...r, evidence: masked(r.evidence) })),
      counts,
      exitCode: exitCodeFor(counts, aborted),
    };
  };

  http.sink = preflight;
  let provisioned: Provisioned[] = [];
  if (profile.provision) {
    listener.onPreflight?.('provisioning: creating the test accounts on the target');
    try {
      provisioned = await provisionAccounts(profile, http, secrets);
    } catch (err) {
      aborted = `provisioning failed: ${(err as Error).message}`;
      return report();
    }
  }
  const ctx = new AuditContext(profile, http, secrets, { onWait: listener.onWait?.bind(listener) });
  const primary = provisioned.find((p) => p.account === ctx.account);
  if (primary?.usedTotpStep !== undefined) ctx.codes.markUsed(primary.usedTotpStep);

  // Recovery codes the recovery-code checks will need are kept out of routine logins.
  const recoveryChecks = checks.filter((c) => c.id.startsWith('recovery-code-') && !c.notApplicable(profile));
  ctx.codes.reserveRecovery(recoveryChecks.length);

  try {
    listener.onPreflight?.('preflight: unauthenticated who-am-I, full login, lookups');
    await runPreflight(ctx);
  } catch (err) {
    aborted = `preflight failed: ${(err as Error).message}`;
  }

  for (const [i, check] of checks.entries()) {
    if (aborted !== undefined) break;
    listener.onCheckStart?.(check, i, checks.length);
    const evidence: Exchange[] = [];
    http.sink = evidence;
    const t0 = Date.now();
    const { id, title, severity, references, description, fixHint } = check;
    const base = { id, title, severity, references, description, fixHint, evidence };
    let result: CheckResult;
    const reason = check.notApplicable(profile);
    if (reason !== undefined) {
      result = { ...base, status: 'not_applicable', summary: `Not applicable: ${reason}.`, durationMs: 0 };
    } else {
      try {
        const verdict = await check.run(ctx);
        result = { ...base, ...verdict, durationMs: Date.now() - t0 };
      } catch (err) {
        if (err instanceof Limited) {
          // A limiter's refusal proves nothing about the flaw behind it: never "blocked".
          result = {
            ...base,
            status: 'inconclusive',
            summary: `Inconclusive (limited): ${err.message}`,
            why: `limited: ${err.signal}`,
            durationMs: Date.now() - t0,
          };
          results.push(result);
          listener.onCheckEnd?.(result, i, checks.length);
          continue;
        }
        if (err instanceof AuditAbort) aborted = `stopped during ${check.id}: ${err.message}`;
        // Anything else unexpected is a bug in the check: report it on that check (so the
        // rest of the audit still runs) and make it recognisable as such.
        const expected = err instanceof Inconclusive || err instanceof RequestFailed || err instanceof AuditAbort;
        const message = err instanceof Error ? err.message : String(err);
        const summary = `Could not conclude: ${expected ? '' : 'internal error: '}${message}`;
        result = { ...base, status: 'error', summary, durationMs: Date.now() - t0 };
      }
    }
    results.push(result);
    listener.onCheckEnd?.(result, i, checks.length);
  }

  return report();
}

/**
 * Proves the profile describes the target correctly before any verdict is trusted:
 * who-am-I must refuse no session and accept a fully verified one.
 */
async function runPreflight(ctx: AuditContext): Promise<void> {
  const p = ctx.profile;
  const anonymous = await ctx.whoami(ctx.newSession(), 'who-am-I without any session');
  if (anonymous.ok) {
    throw new Error(`${p.whoami.path} answers ${anonymous.res.status} without any session: whoami.success cannot tell sessions apart`);
  }
  const login = await ctx.passwordLogin({ note: 'baseline: log in with the password' });
  const code = await ctx.issueCode(ctx.hasPasskey ? 'any' : ctx.codes.hasTotp ? 'totp' : 'recovery');
  const verify = await ctx.submitCode(login.session, code, { note: 'baseline: complete the login with a valid code' });
  if (verify.limited) {
    // The target is limiting the auditor itself: say so, rather than blame the secret.
    throw new Error(
      `a valid second-factor code got a limit reply (${verify.limited}): the target is limiting this client; ` +
        'wait until the limit ends (or raise it on the test deployment) and run again',
    );
  }
  const me = await ctx.whoami(login.session, 'baseline: who-am-I with the full session');
  // A refused code is fatal only if the session does not work anyway: an app that ignores
  // MFA entirely may have no pending state to verify, and that is a finding, not a setup error.
  if (!verify.accepted && !me.ok) {
    throw new Error(
      `could not complete a full login as ${ctx.account.username}: a valid ${code.kind} code was refused ` +
        `(status ${verify.res.status}${missingNote(verify.res.missing)}); is the profile's secret or code list current?`,
    );
  }
  if (!me.ok) {
    throw new Error(`after a full login ${p.whoami.path} answered ${me.res.status}: check whoami and session in the profile`);
  }
  if (!verify.accepted && login.challenged) {
    // The target asked for the factor and the session works after the code, yet the reply
    // did not match secondFactor.accepted. Unless the password alone already gives a full
    // session (MFA ignored: a finding), the matcher is wrong, and every code check would misjudge.
    const again = await ctx.passwordLogin({ note: 'baseline: log in with the password only (was the code needed?)' });
    const passwordOnly = await ctx.whoami(again.session, 'baseline: who-am-I with the password-only session');
    if (!passwordOnly.ok) {
      const where = verify.res.location ? `, Location ${verify.res.location}` : '';
      throw new Error(
        `a valid ${code.kind} code completed the login, but its reply (status ${verify.res.status}${where}) does not match ` +
          `secondFactor.accepted (${describeMatcher(p.secondFactor.accepted)}): fix secondFactor.accepted`,
      );
    }
  }
  const full = { session: login.session, login: login.res, verify: verify.res, code, verifiedAt: Date.now() };
  for (const action of p.sensitiveActions) {
    for (const [name, lookup] of Object.entries(action.params ?? {})) {
      if (ctx.params[name] !== undefined) continue;
      const res = await ctx.send({ method: lookup.method, path: lookup.path, note: `look up {${name}} for ${action.name}` }, full.session);
      const value = ctx.extract(lookup, res, full.session, lookup.field);
      if (value === undefined) {
        const where = describeExtractor(extractorOf(lookup, lookup.field));
        throw new Error(`${action.name}: ${lookup.method} ${lookup.path} gave no ${where} for {${name}} (status ${res.status})`);
      }
      ctx.params[name] = String(value);
    }
  }
  ctx.preflight = full;
}
