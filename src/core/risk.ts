/**
 * Risk signals at sign-in, decided here (pure); services only gather the facts.
 *
 * A signal never lowers what a sign-in must prove. Structurally: every signal maps to a
 * `Demand`, demands form a lattice (booleans ordered false < true, the freshness window
 * ordered by "shorter is stricter"), and the demand of a sign-in is the *join* of the base
 * demand with the demands of its signals. A join is at least each of its operands, so no
 * set of signals can produce less than the base, and more signals never produce less
 * than fewer (test/core/risk.test.ts checks both with fast-check).
 */
import ipaddr from 'ipaddr.js';

export const RISK_SIGNALS = ['new_device', 'new_network', 'recent_failures', 'recent_password_change', 'remember_me_restore'] as const;
export type RiskSignal = (typeof RISK_SIGNALS)[number];

/** What a sign-in must prove; higher in the lattice is stricter. */
export interface Demand {
  /** Ask the second factor even when a trusted-device cookie came with the password. */
  secondFactor: boolean;
  /** This session may not mark its browser as a trusted device. */
  refuseDeviceTrust: boolean;
  /** Seconds a second-factor check stays fresh for ★ actions in this session (null: the deployment's). */
  stepUpMaxAgeSeconds: number | null;
}

/** The bottom of the lattice: demands nothing beyond the deployment's policy. */
export const NO_DEMAND: Demand = Object.freeze({ secondFactor: false, refuseDeviceTrust: false, stepUpMaxAgeSeconds: null });

function stricterWindow(a: number | null, b: number | null): number | null {
  if (a === null) return b;
  if (b === null) return a;
  return Math.min(a, b);
}

/** The least demand at least as strict as both (the lattice's join). */
export function join(a: Demand, b: Demand): Demand {
  return {
    secondFactor: a.secondFactor || b.secondFactor,
    refuseDeviceTrust: a.refuseDeviceTrust || b.refuseDeviceTrust,
    stepUpMaxAgeSeconds: stricterWindow(a.stepUpMaxAgeSeconds, b.stepUpMaxAgeSeconds),
  };
}

/** True when `a` demands at least what `b` demands. */
export function atLeast(a: Demand, b: Demand): boolean {
  if (b.secondFactor && !a.secondFactor) return false;
  if (b.refuseDeviceTrust && !a.refuseDeviceTrust) return false;
  if (b.stepUpMaxAgeSeconds === null) return true;
  return a.stepUpMaxAgeSeconds !== null && a.stepUpMaxAgeSeconds <= b.stepUpMaxAgeSeconds;
}

export interface RiskSettings {
  /** Failed passwords or codes on the account within `failureWindowSeconds` that count as "many". */
  failureThreshold: number;
  failureWindowSeconds: number;
  /** A password changed or reset this recently is a signal. */
  passwordChangeWindowSeconds: number;
  /** The freshness window of a session that carries a signal which shortens it. */
  riskyStepUpMaxAgeSeconds: number;
  /** Prefix lengths that make "the same network". */
  ipv4Prefix: number;
  ipv6Prefix: number;
}

export const DEFAULT_RISK_SETTINGS: RiskSettings = Object.freeze({
  failureThreshold: 3,
  failureWindowSeconds: 3600,
  passwordChangeWindowSeconds: 86_400,
  riskyStepUpMaxAgeSeconds: 300,
  ipv4Prefix: 24,
  ipv6Prefix: 48,
});

/** What each signal raises. None lowers anything: a signal's demand is joined, never met. */
export function demandOf(signal: RiskSignal, settings: RiskSettings): Demand {
  const shorter = settings.riskyStepUpMaxAgeSeconds;
  switch (signal) {
    case 'new_device':
      return { ...NO_DEMAND, secondFactor: true };
    case 'new_network':
      return { secondFactor: true, refuseDeviceTrust: false, stepUpMaxAgeSeconds: shorter };
    case 'recent_failures':
      return { secondFactor: true, refuseDeviceTrust: true, stepUpMaxAgeSeconds: shorter };
    case 'recent_password_change':
      return { secondFactor: true, refuseDeviceTrust: false, stepUpMaxAgeSeconds: shorter };
    case 'remember_me_restore':
      return { secondFactor: true, refuseDeviceTrust: true, stepUpMaxAgeSeconds: shorter };
  }
}

/** The facts the services gather about one sign-in. */
export interface RiskFacts {
  /** A live trusted-device cookie of this account came with the request. */
  knownDevice: boolean;
  /** The request's network was seen in an earlier successful sign-in of the account. */
  knownNetwork: boolean;
  /** Failed passwords and second factors on the account within the failure window. */
  recentFailures: number;
  /** Last password change or reset, if any (epoch ms). */
  passwordChangedAt: number | null;
  /** The session is being restored from a remember-me token. */
  rememberMeRestore: boolean;
}

/** The signals a sign-in carries, in `RISK_SIGNALS` order. */
export function detectSignals(facts: RiskFacts, now: number, settings: RiskSettings): RiskSignal[] {
  const found = new Set<RiskSignal>();
  if (!facts.knownDevice) found.add('new_device');
  if (!facts.knownNetwork) found.add('new_network');
  if (facts.recentFailures >= settings.failureThreshold) found.add('recent_failures');
  if (facts.passwordChangedAt !== null && now - facts.passwordChangedAt <= settings.passwordChangeWindowSeconds * 1000) {
    found.add('recent_password_change');
  }
  if (facts.rememberMeRestore) found.add('remember_me_restore');
  return RISK_SIGNALS.filter((s) => found.has(s));
}

/** What a session keeps of its sign-in's assessment (the gate reads it on every request). */
export interface SessionRisk {
  signals: RiskSignal[];
  refuseDeviceTrust: boolean;
  stepUpMaxAgeSeconds: number | null;
}

export function sessionRiskOf(assessment: Assessment): SessionRisk {
  return {
    signals: assessment.signals,
    refuseDeviceTrust: assessment.demand.refuseDeviceTrust,
    stepUpMaxAgeSeconds: assessment.demand.stepUpMaxAgeSeconds,
  };
}

/**
 * Reads a stored risk defensively: anything unreadable is the strictest reading (trust
 * refused, the shortest window given), never the loosest.
 */
export function parseSessionRisk(stored: string | null, strictestWindowSeconds: number): SessionRisk | null {
  if (stored === null) return null;
  try {
    const v = JSON.parse(stored) as Partial<SessionRisk>;
    const signals = Array.isArray(v.signals)
      ? v.signals.filter((s): s is RiskSignal => (RISK_SIGNALS as readonly unknown[]).includes(s))
      : [];
    const window = typeof v.stepUpMaxAgeSeconds === 'number' && v.stepUpMaxAgeSeconds > 0 ? v.stepUpMaxAgeSeconds : null;
    return {
      signals,
      refuseDeviceTrust: v.refuseDeviceTrust !== false,
      stepUpMaxAgeSeconds: v.stepUpMaxAgeSeconds === null ? null : (window ?? strictestWindowSeconds),
    };
  } catch {
    return { signals: [], refuseDeviceTrust: true, stepUpMaxAgeSeconds: strictestWindowSeconds };
  }
}

export interface Assessment {
  signals: RiskSignal[];
  demand: Demand;
}

/** The demand of a sign-in: the base joined with every signal's demand. */
export function assess(base: Demand, signals: readonly RiskSignal[], settings: RiskSettings): Assessment {
  return { signals: [...signals], demand: signals.reduce((d, s) => join(d, demandOf(s, settings)), base) };
}

/**
 * Whether a trusted-device cookie may stand in for the second factor: only when the
 * device is trusted and nothing demands the factor.
 */
export function deviceMayStandIn(deviceTrusted: boolean, demand: Demand): boolean {
  return deviceTrusted && !demand.secondFactor;
}

/** The freshness window in effect: the shortest of the deployment's and the demand's. */
export function effectiveStepUpWindow(deploymentSeconds: number, demand: Pick<Demand, 'stepUpMaxAgeSeconds'>): number {
  return stricterWindow(deploymentSeconds, demand.stepUpMaxAgeSeconds) ?? deploymentSeconds;
}

/**
 * The network an address belongs to (`/24` of IPv4, `/48` of IPv6 by default), as a
 * string to compare. IPv4-mapped IPv6 addresses count as IPv4. Unparseable: the address
 * itself (it is then only "known" when seen verbatim).
 */
export function networkOf(address: string, settings: Pick<RiskSettings, 'ipv4Prefix' | 'ipv6Prefix'>): string {
  const bare = address.trim().replace(/%.*$/, '');
  if (!ipaddr.IPv4.isValidFourPartDecimal(bare) && !ipaddr.IPv6.isValid(bare)) return `raw:${bare}`;
  let parsed = ipaddr.parse(bare);
  if (parsed.kind() === 'ipv6' && (parsed as ipaddr.IPv6).isIPv4MappedAddress()) parsed = (parsed as ipaddr.IPv6).toIPv4Address();
  const bits = parsed.kind() === 'ipv4' ? settings.ipv4Prefix : settings.ipv6Prefix;
  const bytes = parsed.toByteArray();
  const masked = bytes.map((b, i) => {
    const keep = Math.max(0, Math.min(8, bits - i * 8));
    return keep === 0 ? 0 : b & ((0xff << (8 - keep)) & 0xff);
  });
  return `${parsed.kind()}:${masked.join('.')}/${bits}`;
}

/** The words the activity page uses: "asked for your code because: new network". */
export const SIGNAL_WORDS: Record<RiskSignal, string> = {
  new_device: 'new device',
  new_network: 'new network',
  recent_failures: 'many recent failed attempts',
  recent_password_change: 'password changed recently',
  remember_me_restore: 'signed in from a remembered session',
};
