/** `npm start`: runs the Gatehouse server from the environment's settings. */
import { ConfigError, loadConfig } from '../config.js';
import { startServer } from './server.js';
import { KeyError } from '../services/keys.js';

try {
  const config = loadConfig();
  const server = await startServer(config);
  const stop = async () => {
    await server.close();
    process.exit(0);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
} catch (err) {
  if (err instanceof ConfigError || err instanceof KeyError) {
    console.error(`gatehouse: configuration error: ${err.message}`);
    process.exit(2);
  }
  throw err;
}
