/**
 * Long runs of the model-based bypass search (issues 9 and 17):
 *   npm run search:bypass -- --runs N [--backend sqlite|postgres] [--seed S] [--mfa off|all] [--max-commands K]
 *     [--without a+b,c+d]   (leave out concurrent pairs already known to fail)
 *     [--tolerate R1,R2]    (rule prefixes of known defects: noted, and the search goes on past them)
 *     [--stop K]            (stop after K findings)
 *     [--shrink-seconds S]  (time for shrinking a finding, default 120)
 *     [--no-remember]       (no remember-me cookies: servers before issue 18)
 *     [--minutes M]         (stop after M minutes, in chunks of 50 runs; the runs split evenly over the MFA modes)
 *     [--workers W]         (W processes with their own servers and seeds S, S+1000, …; runs split)
 * Each seed runs up to N command sequences; a violation is shrunk and printed, then the
 * search goes on with the next seed until N sequences ran in total. Prints runs, commands
 * executed and time; exits 1 when something was found.
 */
import { spawn } from 'node:child_process';
import { formatFinding, runSearch } from '../test/model/search.js';
import { startServers, type Backend } from '../test/model/driver.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}

const total = Number(arg('runs', '200'));
const backend = arg('backend', 'sqlite') as Backend;
const mfas = arg('mfa', 'off,all').split(',') as ('off' | 'all')[];
let seed = Number(arg('seed', String(Date.now() % 1_000_000)));
const maxCommands = Number(arg('max-commands', '20'));
const shrinkMs = Number(arg('shrink-seconds', '120')) * 1000;
const withoutPairs = arg('without', '').split(',').filter(Boolean);
const tolerate = arg('tolerate', '').split(',').filter(Boolean);
const stopAfter = Number(arg('stop', '0')) || Infinity;
const minutes = Number(arg('minutes', '0'));
if (!['sqlite', 'postgres'].includes(backend) || !Number.isInteger(total) || total < 1) {
  console.error(
    'usage: npm run search:bypass -- --runs N [--backend sqlite|postgres] [--seed S] [--mfa off|all] [--max-commands K] [--without a+b,…]',
  );
  process.exit(2);
}

const workers = Number(arg('workers', '1'));
if (workers > 1) {
  // Each worker is this script with its own seed range and share of the runs.
  const rest = process.argv
    .slice(2)
    .filter(
      (_, i, all) => !['--workers', '--seed', '--runs'].includes(all[i]!) && !['--workers', '--seed', '--runs'].includes(all[i - 1]!),
    );
  const started = Date.now();
  const totals = await Promise.all(
    Array.from(
      { length: workers },
      (_, w) =>
        new Promise<{ runs: number; commands: number; found: number }>((resolve) => {
          const child = spawn(
            process.execPath,
            [
              ...process.execArgv,
              process.argv[1]!,
              ...rest,
              '--seed',
              String(seed + w * 1000),
              '--runs',
              String(Math.ceil(total / workers)),
            ],
            { stdio: ['ignore', 'pipe', 'inherit'] },
          );
          let last = '';
          child.stdout.on('data', (d: Buffer) => {
            for (const line of d.toString().split('\n')) {
              if (line) console.log(`[w${w}] ${line}`);
              if (line.startsWith('backend ')) last = line;
            }
          });
          child.on('close', () => {
            const m = /(\d+) runs, (\d+) commands, [\d.]+ s, (\d+) finding/.exec(last);
            resolve(m ? { runs: Number(m[1]), commands: Number(m[2]), found: Number(m[3]) } : { runs: 0, commands: 0, found: 1 });
          });
        }),
    ),
  );
  const sum = totals.reduce((a, b) => ({ runs: a.runs + b.runs, commands: a.commands + b.commands, found: a.found + b.found }));
  const secs = (Date.now() - started) / 1000;
  console.log(
    `backend ${backend}, ${workers} workers: ${sum.runs} runs, ${sum.commands} commands, ${secs.toFixed(1)} s (${(sum.runs / secs).toFixed(2)} runs/s, ${(sum.commands / secs).toFixed(1)} commands/s), ${sum.found} finding(s)`,
  );
  process.exit(sum.found ? 1 : 0);
}

const started = Date.now();
let runs = 0;
let commands = 0;
let found = 0;
const perMode = (minutes * 60_000) / mfas.length;
for (const mfa of mfas) {
  const modeStarted = Date.now();
  const servers = await startServers(backend, mfa);
  let left = Math.ceil(total / mfas.length);
  try {
    while (left > 0 && found < stopAfter && (!minutes || Date.now() - modeStarted < perMode)) {
      const r = await runSearch({
        backend,
        mfaRequired: mfa,
        runs: minutes ? Math.min(left, 50) : left,
        seed,
        maxCommands,
        servers,
        withoutPairs,
        tolerate,
        shrinkMs,
        rememberMe: !process.argv.includes('--no-remember'),
      });
      runs += r.runs;
      commands += r.commands;
      left -= r.runs;
      if (r.finding) {
        found++;
        const t = (Date.now() - started) / 1000;
        console.log(
          `\n[finding ${found} at ${t.toFixed(1)} s of the whole run, ${runs} runs / ${commands} commands so far]\n${formatFinding(r)}\n`,
        );
      } else if (r.tolerated.length) console.log(`seed ${seed}: tolerated ${r.tolerated.join(', ')}`);
      seed++;
    }
  } finally {
    await servers.close();
  }
}
const secs = (Date.now() - started) / 1000;
console.log(
  `backend ${backend}, MFA_REQUIRED ${mfas.join('+')}: ${runs} runs, ${commands} commands, ${secs.toFixed(1)} s, ${found} finding(s) (${(runs / secs).toFixed(2)} runs/s, ${(commands / secs).toFixed(1)} commands/s)`,
);
process.exit(found ? 1 : 0);
