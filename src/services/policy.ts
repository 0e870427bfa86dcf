/**
 * The policy service: gathers the facts (I/O) that the core's risk and role-policy
 * modules decide on. Sign-in calls `decideSignIn` from one place (AuthService.establish);
 * the gate calls `gateView` (no I/O) on every request; second-factor checks call
 * `assertMethodCounts`.
 */
import { rolesOf } from '../store/json-columns.js';
import type { Kysely } from 'kysely';
import { InvalidRequestError, RecoveryLinkRequiredError } from '../core/errors.js';
import type { AccountFacts, FreshnessPolicy } from '../core/requirements.js';
import {
  assess,
  detectSignals,
  deviceMayStandIn,
  effectiveStepUpWindow,
  networkOf,
  NO_DEMAND,
  sessionRiskOf,
  type RiskSettings,
  type SessionRisk,
} from '../core/risk.js';
import {
  effectivePolicy,
  enrolmentStatus,
  methodCounts,
  usableMethods,
  type DeploymentPolicy,
  type EffectivePolicy,
  type EnrolmentStatus,
  type RolePolicy,
} from '../core/role-policy.js';
import type { AccountFactsForLogin, FirstFactor } from '../core/session-state.js';
import type { Database, UserRow } from '../store/schema.js';
import type { RequestContext } from './context.js';
import type { ActiveSession } from './sessions.js';

export interface PolicySettings {
  deployment: DeploymentPolicy;
  roles: Readonly<Record<string, RolePolicy>>;
  risk: RiskSettings;
  /** GATEHOUSE_STEP_UP_PHISHING_RESISTANT. */
  phishingResistantOnly: boolean;
}

export interface SignInDecision {
  account: AccountFactsForLogin;
  /** The first factor as the state machine sees it: a trusted device no longer stands in when a signal demands the factor. */
  factor: FirstFactor;
  /** Methods to offer at the challenge. */
  methods: string[];
  risk: SessionRisk;
  enrolment: EnrolmentStatus;
  /** When the grace period ends (reminders), if the account is subject to a role's `required`. */
  dueAt: number | null;
}

/** What the enrolment decision reads of an account (a session's or an API token's read joins it). */
export type AccountPolicyFacts = Pick<ActiveSession, 'roles' | 'factorMethods' | 'mfaDueAt'>;

/** Events whose address makes a network known to the account. */
const KNOWN_NETWORK_EVENTS = ['login.succeeded', 'account.created'];
const FAILURE_EVENTS = ['login.failed', 'mfa.failed'];
const PASSWORD_EVENTS = ['account.password_changed', 'password_reset.completed'];
/** How far back sign-ins make a network known, and how many are read. */
const NETWORK_MEMORY_MS = 180 * 86_400_000;
const HISTORY_ROWS = 500;

/** Stored roles (one parser for the column: store/json-columns.ts; malformed fails closed). */
export const parseRoles = (stored: string): string[] => rolesOf({ roles: stored });

export class PolicyService {
  constructor(
    private readonly db: Kysely<Database>,
    readonly settings: PolicySettings,
  ) {}

  policyOf(roles: readonly string[]): EffectivePolicy {
    return effectivePolicy(roles, this.settings.roles, this.settings.deployment);
  }

  /** True when some configured role makes a second factor required (for `subjectSince`). */
  requiresFactor(roles: readonly string[]): boolean {
    const p = this.policyOf(roles);
    return p.mfa === 'required' && !p.requiredByDeployment;
  }

  /** What the gate decides with, for one session: no I/O (the session's read joined the account). */
  gateView(session: ActiveSession, now: number): { account: AccountFacts; freshness: FreshnessPolicy } {
    const policy = this.policyOf(session.roles);
    return {
      account: {
        factorMethods: usableMethods(session.factorMethods, policy),
        enrolmentDue: this.enrolmentDue(session, now),
        roles: session.roles,
      },
      freshness: this.freshnessFor(session.roles, session.risk),
    };
  }

  /**
   * Whether the account must enrol before anything else (a role requires a factor, its grace
   * ended, none counts): decided alike for a session and for an API token of the account.
   */
  enrolmentDue(account: AccountPolicyFacts, now: number): boolean {
    return enrolmentStatus(this.policyOf(account.roles), account.factorMethods, account.mfaDueAt, now) === 'due';
  }

  /**
   * The step-up window for a session of an account with these roles: the deployment's,
   * shortened by the roles and the session's risk (never lengthened). The gate and the
   * re-judgement under the account lock (AccountChanges) both use this one.
   */
  freshnessFor(roles: readonly string[], risk: SessionRisk | null): FreshnessPolicy {
    return {
      stepUpMaxAgeSeconds: effectiveStepUpWindow(this.policyOf(roles).stepUpMaxAgeSeconds, risk ?? NO_DEMAND),
      phishingResistantOnly: this.settings.phishingResistantOnly,
    };
  }

  /**
   * A sign-in after its first factor: gathers the risk facts, asks the core, and starts the
   * grace period of an account that just became subject to a role's `required`.
   */
  async decideSignIn(
    userId: string,
    factorMethods: string[],
    factor: FirstFactor,
    ctx: RequestContext,
    user?: Pick<UserRow, 'roles' | 'mfa_due_at' | 'factors_reset_at'>,
  ): Promise<SignInDecision> {
    const row =
      user ??
      (await this.db.selectFrom('users').select(['roles', 'mfa_due_at', 'factors_reset_at']).where('id', '=', userId).executeTakeFirst());
    if (!row) throw new RecoveryLinkRequiredError();
    // An admin reset this account's factors and it has none yet: only the mailed recovery
    // link (with the password) starts a session, and that one is enrolling. The flag ends
    // when a factor is confirmed (FactorStore.refreshFactorMethods, under the account lock).
    if (row.factors_reset_at !== null && factorMethods.length === 0 && factor.kind !== 'recovery_link')
      throw new RecoveryLinkRequiredError();
    const roles = parseRoles(row.roles);
    const policy = this.policyOf(roles);
    const dueAt = await this.startGraceIfSubject(userId, roles, row.mfa_due_at === null ? null : Number(row.mfa_due_at), ctx.now);
    const facts = await this.gatherFacts(userId, factor, ctx);
    const assessment = assess(NO_DEMAND, detectSignals(facts, ctx.now, this.settings.risk), this.settings.risk);
    const methods = usableMethods(factorMethods, policy);
    const enrolment = enrolmentStatus(policy, factorMethods, dueAt, ctx.now);
    const standsIn = factor.kind === 'password_on_trusted_device' && deviceMayStandIn(true, assessment.demand);
    // A trusted device only stands in for a factor that counts.
    const trustedCounts = standsIn && methods.some((m) => methodCounts(m, policy));
    return {
      account: { hasSecondFactor: methods.length > 0, mfaPolicy: enrolment === 'due' ? 'all' : 'off' },
      factor: factor.kind === 'password_on_trusted_device' && !trustedCounts ? { kind: 'password' } : factor,
      methods,
      risk: sessionRiskOf(assessment),
      enrolment,
      dueAt: enrolment === 'grace' ? dueAt : null,
    };
  }

  /** A second factor of a kind the account's roles do not count never satisfies a check (unless none of its factors counts: then it may only lead to enrolment). */
  assertMethodCounts(session: Pick<ActiveSession, 'roles' | 'factorMethods'>, method: string): void {
    const policy = this.policyOf(session.roles);
    // No role restricts the kinds: the verifier alone decides (an unknown method is a wrong code).
    if (policy.allowedFactors === null) return;
    if (!usableMethods(session.factorMethods, policy).includes(method)) {
      throw new InvalidRequestError('This kind of second factor does not count for your account’s role.', [
        { path: 'method', message: `allowed: ${usableMethods(session.factorMethods, policy).join(', ') || 'none'}` },
      ]);
    }
  }

  /** Whether this session may mark its browser as a trusted device. */
  mayTrustDevice(session: Pick<ActiveSession, 'risk'>): boolean {
    return session.risk?.refuseDeviceTrust !== true;
  }

  /**
   * The grace period starts the first time an account is seen subject to a role's
   * `required` (role assignment, or its first sign-in after the policy changed). A
   * conditional UPDATE: parallel sign-ins agree on one due time.
   */
  async startGraceIfSubject(userId: string, roles: readonly string[], dueAt: number | null, now: number): Promise<number | null> {
    if (dueAt !== null || !this.requiresFactor(roles)) return dueAt;
    const proposed = now + this.settings.deployment.enrolmentGraceSeconds * 1000;
    await this.db.updateTable('users').set({ mfa_due_at: proposed }).where('id', '=', userId).where('mfa_due_at', 'is', null).execute();
    const row = await this.db.selectFrom('users').select('mfa_due_at').where('id', '=', userId).executeTakeFirst();
    return row?.mfa_due_at === null || row?.mfa_due_at === undefined ? proposed : Number(row.mfa_due_at);
  }

  private async gatherFacts(userId: string, factor: FirstFactor, ctx: RequestContext) {
    const history = await this.db
      .selectFrom('events')
      .select(['type', 'at', 'ip'])
      .where('user_id', '=', userId)
      .where('at', '>=', ctx.now - NETWORK_MEMORY_MS)
      .where('type', 'in', [...KNOWN_NETWORK_EVENTS, ...FAILURE_EVENTS, ...PASSWORD_EVENTS])
      .orderBy('at', 'desc')
      .limit(HISTORY_ROWS)
      .execute();
    const here = networkOf(ctx.ip, this.settings.risk);
    const failuresSince = ctx.now - this.settings.risk.failureWindowSeconds * 1000;
    const passwordChange = history.find((e) => PASSWORD_EVENTS.includes(e.type));
    return {
      // A remember-me token is bound to this browser as a trusted device is.
      knownDevice: factor.kind === 'password_on_trusted_device' || factor.kind === 'remember_me',
      knownNetwork: history.some((e) => KNOWN_NETWORK_EVENTS.includes(e.type) && networkOf(e.ip, this.settings.risk) === here),
      recentFailures: history.filter((e) => FAILURE_EVENTS.includes(e.type) && Number(e.at) >= failuresSince).length,
      passwordChangedAt: passwordChange ? Number(passwordChange.at) : null,
      rememberMeRestore: factor.kind === 'remember_me',
    };
  }
}
