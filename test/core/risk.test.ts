import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  assess,
  atLeast,
  DEFAULT_RISK_SETTINGS,
  demandOf,
  detectSignals,
  deviceMayStandIn,
  effectiveStepUpWindow,
  join,
  networkOf,
  NO_DEMAND,
  RISK_SIGNALS,
  type Demand,
  type RiskFacts,
} from '../../src/core/risk.js';

const NOW = 1_700_000_000_000;
const settings = DEFAULT_RISK_SETTINGS;
const quiet: RiskFacts = { knownDevice: true, knownNetwork: true, recentFailures: 0, passwordChangedAt: null, rememberMeRestore: false };

const demand = fc.record({
  secondFactor: fc.boolean(),
  refuseDeviceTrust: fc.boolean(),
  stepUpMaxAgeSeconds: fc.option(fc.integer({ min: 1, max: 100_000 }), { nil: null }),
});
const signals = fc.subarray([...RISK_SIGNALS]);

describe('risk signals are detected from the facts', () => {
  it('a quiet sign-in (known device, known network, no failures, no recent password change) carries none', () => {
    expect(detectSignals(quiet, NOW, settings)).toEqual([]);
  });

  it.each([
    ['new_device', { knownDevice: false }],
    ['new_network', { knownNetwork: false }],
    ['recent_failures', { recentFailures: settings.failureThreshold }],
    ['recent_password_change', { passwordChangedAt: NOW - 1000 }],
    ['remember_me_restore', { rememberMeRestore: true }],
  ] as const)('%s', (signal, change) => {
    expect(detectSignals({ ...quiet, ...change }, NOW, settings)).toEqual([signal]);
  });

  it('just below the thresholds is quiet', () => {
    const facts = {
      ...quiet,
      recentFailures: settings.failureThreshold - 1,
      passwordChangedAt: NOW - settings.passwordChangeWindowSeconds * 1000 - 1,
    };
    expect(detectSignals(facts, NOW, settings)).toEqual([]);
  });
});

describe('each signal raises the requirement', () => {
  it.each(RISK_SIGNALS)('%s asks the second factor even on a trusted device', (signal) => {
    const { demand: d } = assess(NO_DEMAND, [signal], settings);
    expect(deviceMayStandIn(true, d)).toBe(false);
    expect(deviceMayStandIn(true, NO_DEMAND)).toBe(true);
  });

  it.each(['new_network', 'recent_failures', 'recent_password_change', 'remember_me_restore'] as const)(
    '%s shortens freshness',
    (signal) => {
      const { demand: d } = assess(NO_DEMAND, [signal], settings);
      expect(effectiveStepUpWindow(900, d)).toBe(settings.riskyStepUpMaxAgeSeconds);
      expect(effectiveStepUpWindow(900, NO_DEMAND)).toBe(900);
    },
  );

  it.each(['recent_failures', 'remember_me_restore'] as const)('%s refuses trusted-device trust', (signal) => {
    expect(assess(NO_DEMAND, [signal], settings).demand.refuseDeviceTrust).toBe(true);
  });
});

describe('no signal can lower a requirement (fast-check)', () => {
  it('join is an upper bound of both operands, commutative, associative and idempotent', () => {
    fc.assert(
      fc.property(demand, demand, demand, (a, b, c) => {
        const ab = join(a, b);
        expect(atLeast(ab, a) && atLeast(ab, b)).toBe(true);
        expect(join(b, a)).toEqual(ab);
        expect(join(join(a, b), c)).toEqual(join(a, join(b, c)));
        expect(join(a, a)).toEqual(a);
      }),
    );
  });

  it('the assessed demand is at least the base, whatever the signals', () => {
    fc.assert(
      fc.property(demand, signals, (base, found) => {
        expect(atLeast(assess(base, found, settings).demand, base)).toBe(true);
      }),
    );
  });

  it('more signals never demand less than fewer (monotone in the set of signals)', () => {
    fc.assert(
      fc.property(demand, signals, signals, (base, some, more) => {
        const fewer = assess(base, some, settings).demand;
        const superset = assess(base, [...new Set([...some, ...more])], settings).demand;
        expect(atLeast(superset, fewer)).toBe(true);
      }),
    );
  });

  it('the effective step-up window is never longer than the deployment’s, and a trusted device never stands in once a base demanded the factor', () => {
    fc.assert(
      fc.property(demand, signals, fc.integer({ min: 1, max: 100_000 }), (base, found, deployment) => {
        const d = assess(base, found, settings).demand;
        expect(effectiveStepUpWindow(deployment, d)).toBeLessThanOrEqual(deployment);
        expect(effectiveStepUpWindow(deployment, d)).toBeLessThanOrEqual(effectiveStepUpWindow(deployment, base));
        if (base.secondFactor) expect(deviceMayStandIn(true, d)).toBe(false);
        if (base.refuseDeviceTrust) expect(d.refuseDeviceTrust).toBe(true);
      }),
    );
  });

  it('facts with more risk never yield fewer signals', () => {
    const facts = fc.record({
      knownDevice: fc.boolean(),
      knownNetwork: fc.boolean(),
      recentFailures: fc.nat(20),
      passwordChangedAt: fc.option(fc.integer({ min: NOW - 10 * 86_400_000, max: NOW }), { nil: null }),
      rememberMeRestore: fc.boolean(),
    });
    fc.assert(
      fc.property(facts, (f) => {
        const worse = { ...f, knownDevice: false, recentFailures: f.recentFailures + 1 };
        const before = new Set(detectSignals(f, NOW, settings));
        for (const s of before) expect(detectSignals(worse, NOW, settings)).toContain(s);
      }),
    );
  });

  it('every signal’s own demand is above the bottom', () => {
    for (const s of RISK_SIGNALS) expect(atLeast(demandOf(s, settings), NO_DEMAND)).toBe(true);
    const top: Demand = { secondFactor: true, refuseDeviceTrust: true, stepUpMaxAgeSeconds: 1 };
    for (const s of RISK_SIGNALS) expect(atLeast(top, demandOf(s, settings))).toBe(true);
  });
});

describe('networks', () => {
  it('IPv4 /24, IPv6 /48, IPv4-mapped IPv6 as IPv4', () => {
    expect(networkOf('203.0.113.7', settings)).toBe(networkOf('203.0.113.200', settings));
    expect(networkOf('203.0.113.7', settings)).not.toBe(networkOf('203.0.114.7', settings));
    expect(networkOf('::ffff:203.0.113.9', settings)).toBe(networkOf('203.0.113.7', settings));
    expect(networkOf('2001:db8:1:2::1', settings)).toBe(networkOf('2001:db8:1:ffff::9', settings));
    expect(networkOf('2001:db8:1:2::1', settings)).not.toBe(networkOf('2001:db8:2:2::1', settings));
  });

  it('the prefix is configurable', () => {
    const narrow = { ipv4Prefix: 32, ipv6Prefix: 64 };
    expect(networkOf('203.0.113.7', narrow)).not.toBe(networkOf('203.0.113.8', narrow));
    const wide = { ipv4Prefix: 16, ipv6Prefix: 32 };
    expect(networkOf('203.0.113.7', wide)).toBe(networkOf('203.0.9.8', wide));
  });

  it('garbage is only equal to itself', () => {
    expect(networkOf('not-an-ip', settings)).toBe('raw:not-an-ip');
    expect(networkOf('0x7f.1', settings)).not.toBe(networkOf('127.0.0.1', settings));
  });
});
