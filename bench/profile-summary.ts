/**
 * Summarises a V8 CPU profile (`node --cpu-prof`, e.g. from `npm run bench -- --profile DIR`):
 * self time by where the code lives (a package, a Gatehouse file, Node's internals, GC),
 * as shares of the busy (non-idle) time. Only the last LAST_MS of the profile count (the
 * load window, not the start-up). `npx tsx bench/profile-summary.ts FILE.cpuprofile [TOP] [LAST_MS]`
 */
import fs from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string };
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const [file, top = '25', lastMs = '0'] = process.argv.slice(2);
if (!file) throw new Error('usage: profile-summary FILE.cpuprofile [TOP]');
const profile = JSON.parse(fs.readFileSync(file, 'utf8')) as Profile;
const byId = new Map(profile.nodes.map((n) => [n.id, n]));

function placeOf({ functionName, url }: ProfileNode['callFrame']): string {
  if (!url) return functionName.startsWith('(') ? functionName : `(native) ${functionName}`;
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1]!;
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/')[0]}`;
  const ours = /\/(src|bench)\/(.+)$/.exec(url);
  return ours ? `${ours[1]}/${ours[2]}` : url;
}

const self = new Map<string, number>();
const functions = new Map<string, number>();
let busy = 0;
const total = profile.timeDeltas.reduce((a, b) => a + b, 0);
const from = Number(lastMs) > 0 ? total - Number(lastMs) * 1000 : 0;
let at = 0;
profile.samples.forEach((id, i) => {
  const node = byId.get(id)!;
  const dt = profile.timeDeltas[i] ?? 0;
  at += dt;
  if (at < from) return;
  const place = placeOf(node.callFrame);
  if (place === '(idle)') return;
  busy += dt;
  self.set(place, (self.get(place) ?? 0) + dt);
  const fn = `${node.callFrame.functionName || '(anonymous)'} ${place}`;
  functions.set(fn, (functions.get(fn) ?? 0) + dt);
});
const table = (m: Map<string, number>) =>
  [...m]
    .sort((a, b) => b[1] - a[1])
    .slice(0, Number(top))
    .map(([k, v]) => ({ share: `${((100 * v) / busy).toFixed(1)} %`, where: k }));
console.log(JSON.stringify({ busyMs: Math.round(busy / 1000), byPlace: table(self), byFunction: table(functions) }, null, 2));
