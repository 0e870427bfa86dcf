/**
 * Long runs of the model-based bypass search (issues 9 and 17):
 *   npm run search:bypass -- --runs N [--backend sqlite|postgres] [--seed S] [--mfa off|all] [--max-commands K]
 *     [--without a+b,c+d]   (leave out concurrent pairs already known to fail)
 *     [--tolerate R1,R2]    (rule prefixes of known defects: noted, and the search goes on past them)
 *     [--stop K]            (stop after K findings)
 *     [--shrink-seconds S]  (time for shrinking a finding, default 120)
 * Each seed runs up to N command sequences; a violation is shrunk and printed, then the
 * search goes on with the next seed until N sequences ran in total. Prints runs, commands
 * executed and time; exits 1 when something was found.
 */
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
if (!['sqlite', 'postgres'].includes(backend) || !Number.isInteger(total) || total < 1) {
  console.error('usage: npm run search:bypass -- --runs N [--backend sqlite|postgres] [--seed S] [--mfa off|all] [--max-commands K] [--without a+b,…]');
  process.exit(2);
}

const started = Date.now();
let runs = 0;
let commands = 0;
let found = 0;
for (const mfa of mfas) {
  const servers = await startServers(backend, mfa);
  let left = Math.ceil(total / mfas.length);
  try {
    while (left > 0 && found < stopAfter) {
      const r = await runSearch({ backend, mfaRequired: mfa, runs: left, seed, maxCommands, servers, withoutPairs, tolerate, shrinkMs });
      runs += r.runs;
      commands += r.commands;
      left -= r.runs;
      if (r.finding) {
        found++;
        const t = (Date.now() - started) / 1000;
        console.log(`\n[finding ${found} at ${t.toFixed(1)} s of the whole run, ${runs} runs / ${commands} commands so far]\n${formatFinding(r)}\n`);
      } else if (r.tolerated.length) console.log(`seed ${seed}: tolerated ${r.tolerated.join(', ')}`);
      seed++;
    }
  } finally {
    await servers.close();
  }
}
console.log(`backend ${backend}, MFA_REQUIRED ${mfas.join('+')}: ${runs} runs, ${commands} commands, ${((Date.now() - started) / 1000).toFixed(1)} s, ${found} finding(s)`);
process.exit(found ? 1 : 0);
