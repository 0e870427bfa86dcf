/** Kept for `node dist/server/main.js`: the same as `gatehouse serve` (which `npm start` runs). */
import { serveCommand } from '../commands/serve.js';

process.exitCode = await serveCommand(process.argv.slice(2));
