// The raw argon2id rate on this process's core(s): sequential verifications at the given
// cost for the given time, through the same library Gatehouse uses. Prints JSON on stdout.
import { Algorithm, hash, verify } from '@node-rs/argon2';

const [memoryKiB, iterations, seconds] = process.argv.slice(2).map(Number) as [number, number, number];
const options = { algorithm: Algorithm.Argon2id, memoryCost: memoryKiB, timeCost: iterations, parallelism: 1 };
const password = 'bench-mark-ferret-5150';
const stored = await hash(password, options);
for (let i = 0; i < 3; i++) await verify(stored, password); // warm-up
let n = 0;
const start = performance.now();
const cpuStart = process.cpuUsage();
while (performance.now() - start < seconds * 1000) {
  if (!(await verify(stored, password))) throw new Error('argon2 verify failed');
  n++;
}
const elapsed = (performance.now() - start) / 1000;
const cpu = process.cpuUsage(cpuStart);
const cpuMs = (cpu.user + cpu.system) / 1000 / n;
process.stdout.write(JSON.stringify({ verifications: n, seconds: elapsed, perSecond: n / elapsed, cpuMs }) + '\n');
