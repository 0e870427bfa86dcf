/**
 * The model-based bypass search (issues 9 and 17) in CI: fixed seeds, SQLite and two
 * PostgreSQL instances, MFA optional and required. A violation fails with the shrunk
 * sequence (see test/model/search.ts); long runs: `npm run search:bypass -- --runs N`.
 *
 * Until the factor-lifecycle fix (contract v1.1) is merged, today's main violates the
 * model (findings in /work/notes/search-findings.md): the search must then find a
 * violation of a *known* rule — anything else (a harness error, an unknown rule) fails.
 * The fix flips LIFECYCLE_FIXED to true, and from then on no violation may be found.
 */
import { describe, expect, it } from 'vitest';
import { formatFinding, runSearch } from './search.js';

const LIFECYCLE_FIXED = true;

/** Rules today's main is known to break (issue 9 defects 1–2, issue 17, contract v1.1). */
const KNOWN_ON_MAIN = /^(I1|I2|I3-|I4-|I5-|serial\(|codes|star-without-freshness)/;

const CASES = [
  { backend: 'sqlite', mfaRequired: 'off', seed: 9001, runs: 80 },
  { backend: 'sqlite', mfaRequired: 'all', seed: 9002, runs: 60 },
  { backend: 'postgres', mfaRequired: 'off', seed: 9003, runs: 25 },
  { backend: 'postgres', mfaRequired: 'all', seed: 9004, runs: 20 },
] as const;

describe('model-based search for MFA bypasses', () => {
  for (const c of CASES) {
    it(`${c.backend}, GATEHOUSE_MFA_REQUIRED=${c.mfaRequired}, seed ${c.seed}`, { timeout: 60_000 }, async () => {
      const result = await runSearch({ ...c, maxCommands: 12 });
      const report = formatFinding(result);
      console.log(report);
      if (LIFECYCLE_FIXED) {
        expect(result.finding, report).toBeNull();
      } else if (result.finding) {
        expect(result.finding.rule, report).toMatch(KNOWN_ON_MAIN);
      }
    });
  }
});
