// The Gatehouse server (with the demo bank) as `npm start` runs it, on GATEHOUSE_WORKERS
// processes: "READY <url>" on stderr once every worker listens.
import cluster from 'node:cluster';
import { loadConfig } from '../../src/config.js';
import { runServer } from '../../src/server/cluster.js';

const config = loadConfig();
const server = await runServer(config, config.workers);
if (cluster.isPrimary) process.stderr.write(`READY ${server.url}\n`);
process.once('SIGTERM', () => void server.close().then(() => process.exit(0)));
