// Baseline: a bare Fastify route answering the same small JSON body. "READY <url>" on stderr.
import Fastify from 'fastify';

const app = Fastify({ logger: false });
app.get('/api/account', async () => ({ id: '01HZX0000000000000000000', email: 'bench@example.com', mfaEnabled: true }));
const url = await app.listen({ host: '127.0.0.1', port: 0 });
process.stderr.write(`READY ${url}\n`);
process.once('SIGTERM', () => void app.close().then(() => process.exit(0)));
