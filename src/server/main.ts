/** `npm start`: runs the Gatehouse server from the environment's settings (`--workers N`: on N processes). */
import { ConfigError, loadConfig } from '../config.js';
import { runServer, workersFlag } from './cluster.js';
import { KeyError } from '../services/keys.js';

try {
  const config = loadConfig();
  const server = await runServer(config, workersFlag(process.argv.slice(2)) ?? config.workers);
  const stop = async () => {
    await server.close();
    process.exit(0);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
} catch (err) {
  if (err instanceof ConfigError || err instanceof KeyError || err instanceof RangeError) {
    console.error(`gatehouse: configuration error: ${err.message}`);
    process.exit(2);
  }
  throw err;
}
