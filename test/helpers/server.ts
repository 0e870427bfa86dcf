/**
 * Starts a real Gatehouse server on 127.0.0.1 with a fresh temporary data dir (SQLite),
 * for HTTP tests. Settings are the contract's environment variables.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/config.js';
import { startServer, type RunningServer } from '../../src/server.js';

export interface TestServer {
  url: string;
  dataDir: string;
  server: RunningServer;
  close(): Promise<void>;
}

export async function startTestServer(env: Record<string, string> = {}): Promise<TestServer> {
  const dataDir = env.GATEHOUSE_DATA_DIR ?? fs.mkdtempSync(path.join(os.tmpdir(), 'gatehouse-test-'));
  const config = loadConfig({
    HOST: '127.0.0.1',
    PORT: '0',
    GATEHOUSE_LOG_LEVEL: 'silent',
    ...env,
    GATEHOUSE_DATA_DIR: dataDir,
  });
  const server = await startServer(config);
  const url = server.url;
  return {
    url,
    dataDir,
    server,
    async close() {
      await server.close();
      if (!env.GATEHOUSE_DATA_DIR) fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
