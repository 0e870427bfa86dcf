/**
 * Runs the model-based bypass search (issues 9 and 17) with fast-check's
 * `asyncModelRun`: each run starts with one signed-up account on shared servers and
 * executes a generated command sequence; a violation shrinks to a minimal sequence and is
 * reported as its trace (one line per request, with the answers). Used by the CI test
 * (`search.test.ts`) and by `npm run search:bypass` (bench/search-bypass.ts).
 */
import type { MfaPolicy } from '../../src/core/session-state.js';
import fc from 'fast-check';
import { uniqueEmail } from '../helpers/accounts.js';
import { commandArbitrary, SearchViolation, type Real, type World } from './commands.js';
import { Driver, PASSWORDS, PENDING_SECONDS, startServers, STEP_UP_SECONDS, type Backend, type Servers } from './driver.js';
import { judge, initialState, type Action } from './model.js';

export interface SearchOptions {
  backend: Backend;
  mfaRequired: MfaPolicy;
  runs: number;
  seed: number;
  maxCommands?: number;
  /** Pairs ("a+b") left out of the generation (known failures). */
  withoutPairs?: string[];
  /** Rule prefixes tolerated (known defects of the server under test), see `ModelState.tolerate`. */
  tolerate?: string[];
  /** False: no remember-me cookies (servers before issue 18); default true. */
  rememberMe?: boolean;
  /** Time for shrinking after the first violation (ms; default 120 s): then the best so far is reported. */
  shrinkMs?: number;
  /** Servers to reuse (else started and closed here). */
  servers?: Servers;
}

export interface Finding {
  rule: string;
  detail: string;
  trace: string[];
  seed: number;
  path?: string;
}

/** When the first (unshrunk) violation came: runs, commands executed and ms so far. */
export interface FirstFailure {
  runs: number;
  commands: number;
  ms: number;
}

export interface SearchResult {
  backend: Backend;
  mfaRequired: MfaPolicy;
  runs: number;
  commands: number;
  ms: number;
  finding: Finding | null;
  first?: FirstFailure;
  /** Sequences executed before any failure (shrinking excluded). */
  runsToFirst: number;
  /** Tolerated rules seen. */
  tolerated: string[];
}

/** A new world: one account (a0) and its signup session. */
async function setup(
  servers: Servers,
  mfaRequired: MfaPolicy,
  tolerate: string[],
  rememberMe: boolean,
): Promise<{ model: World; real: Real }> {
  const driver = new Driver(servers);
  const model: World = {
    cands: [{ ...initialState(servers.clock.t, mfaRequired, STEP_UP_SECONDS, PENDING_SECONDS), tolerate, rememberMe }],
    nextId: 1,
  };
  const real: Real = { driver, trace: [], commands: 0 };
  const signup: Action = {
    t: 'signup',
    acct: 0,
    email: uniqueEmail('model'),
    password: PASSWORDS[0]!,
    newSession: 0,
    transport: 'cookie',
    instance: 0,
  };
  const obs = await driver.perform(model.cands[0]!, signup);
  const j = judge(model.cands[0]!, signup, obs);
  if (!j.ok) throw new Error(`setup signup: ${j.violation.detail}`);
  model.cands = [j.next];
  real.trace.push(`s0 = signup(a0, cookie) → ${obs.status}`);
  return { model, real };
}

export async function runSearch(options: SearchOptions): Promise<SearchResult> {
  const servers = options.servers ?? (await startServers(options.backend, options.mfaRequired));
  const started = Date.now();
  let runs = 0;
  let commands = 0;
  let last: Real | null = null;
  let first: FirstFailure | undefined;
  const tolerated = new Set<string>();
  try {
    const property = fc.asyncProperty(commandArbitrary(options.maxCommands ?? 20, options.withoutPairs), async (cmds) => {
      // Shrinking out of time: every further candidate passes untried, so the smallest
      // failing sequence found so far is the one reported.
      if (first && Date.now() - started - first.ms > (options.shrinkMs ?? 120_000)) return;
      runs++;
      const world = await setup(servers, options.mfaRequired, options.tolerate ?? [], options.rememberMe ?? true);
      last = world.real;
      try {
        await fc.asyncModelRun(() => Promise.resolve(world), cmds);
      } catch (err) {
        first ??= { runs, commands: commands + world.real.commands, ms: Date.now() - started };
        throw err;
      } finally {
        // MODEL_SEARCH_TRACE=1 prints every sequence (to see what the generator builds).
        if (process.env.MODEL_SEARCH_TRACE) console.log(`--- run ${runs}\n    ${world.real.trace.join('\n    ')}`);
        commands += world.real.commands;
        for (const c of world.model.cands) for (const t of c.tolerated) tolerated.add(t);
      }
    });
    const out = await fc.check(property, { numRuns: options.runs, seed: options.seed, endOnFailure: false, markInterruptAsFailure: false });
    let finding: Finding | null = null;
    if (out.failed) {
      const err = out.errorInstance;
      finding =
        err instanceof SearchViolation
          ? {
              rule: err.violation.rule,
              detail: err.violation.detail,
              trace: err.trace,
              seed: options.seed,
              path: out.counterexamplePath ?? undefined,
            }
          : {
              rule: 'harness-error',
              detail: String(err instanceof Error ? err.stack : err),
              trace: (last as Real | null)?.trace ?? [],
              seed: options.seed,
              path: out.counterexamplePath ?? undefined,
            };
    }
    return {
      backend: options.backend,
      mfaRequired: options.mfaRequired,
      runs: out.numRuns,
      commands,
      ms: Date.now() - started,
      finding,
      first,
      runsToFirst: first ? first.runs : runs,
      tolerated: [...tolerated],
    };
  } finally {
    if (!options.servers) await servers.close();
  }
}

/** A finding as text, ready to become a named regression test. */
export function formatFinding(r: SearchResult): string {
  const f = r.finding;
  if (!f) return `${r.backend}/${r.mfaRequired}: no violation in ${r.runs} runs (${r.commands} commands, ${(r.ms / 1000).toFixed(1)} s)`;
  return [
    `${r.backend}/MFA_REQUIRED=${r.mfaRequired} seed ${f.seed}${f.path ? ` path ${f.path}` : ''}: ${f.rule}`,
    ...(r.first
      ? [
          `  first violation after ${r.first.runs} run(s), ${r.first.commands} commands, ${(r.first.ms / 1000).toFixed(1)} s; ${r.runs} run(s) with shrinking, ${(r.ms / 1000).toFixed(1)} s`,
        ]
      : []),
    ...(r.tolerated.length ? [`  tolerated on the way: ${r.tolerated.join(', ')}`] : []),
    `  ${f.detail}`,
    '  shrunk sequence:',
    ...f.trace.map((l) => `    ${l}`),
  ].join('\n');
}
