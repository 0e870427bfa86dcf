// Baseline: a bare Fastify route answering the same small JSON body. "READY <url>" on stderr.
// With BENCH_RESPONSE_HEADERS (a JSON object), every response also carries those headers:
// the benchmark passes the ones a Gatehouse response carries, which gives the ceiling of
// any route that sends them (no session read, no gate, nothing else).
import Fastify from 'fastify';

const extra = Object.entries(JSON.parse(process.env.BENCH_RESPONSE_HEADERS ?? '{}') as Record<string, string>);
const app = Fastify({ logger: false });
app.get('/api/account', async (_request, reply) => {
  for (const [name, value] of extra) reply.raw.setHeader(name, value);
  return { id: '01HZX0000000000000000000', email: 'bench@example.com', mfaEnabled: true };
});
const url = await app.listen({ host: '127.0.0.1', port: 0 });
process.stderr.write(`READY ${url}\n`);
process.once('SIGTERM', () => void app.close().then(() => process.exit(0)));
