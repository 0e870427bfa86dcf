/**
 * The settings come from one schema: every GATEHOUSE_* variable is known (a typo is refused
 * with a suggestion), URLs have known schemes, numbers their ranges, and the table of
 * variables in docs/deploy.md is the one the schema generates.
 */
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { withEnvTable } from '../src/commands/config.js';
import { ConfigError, ENV_VARIABLES, envDocs, loadConfig } from '../src/config.js';

const refusal = (env: Record<string, string>) => {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('accepted');
};

describe('configuration', () => {
  it('refuses unknown GATEHOUSE_* variables, suggesting the closest name', () => {
    expect(refusal({ GATEHOUSE_SECERT_KEY: 'x' })).toMatch(
      /^unknown variable GATEHOUSE_SECERT_KEY \(did you mean GATEHOUSE_SECRET_KEY\?\)/,
    );
    expect(refusal({ GATEHOUSE_REDIS: 'redis://x' })).toMatch(/did you mean GATEHOUSE_REDIS_URL\?/);
    expect(refusal({ GATEHOUSE_SHUTDOWN_GRACE: '5' })).toMatch(/did you mean GATEHOUSE_SHUTDOWN_GRACE_SECONDS\?/);
    // Far from every name: no guess.
    expect(refusal({ GATEHOUSE_ZZZZZZZZZZZZZZZZ: '1' })).toMatch(/^unknown variable GATEHOUSE_ZZZZZZZZZZZZZZZZ; /);
    // Other variables are not Gatehouse's business.
    expect(() => loadConfig({ HOME: '/root', NODE_ENV: 'production' })).not.toThrow();
  });

  it('refuses unknown URL schemes instead of guessing (mysql:// is not a SQLite file name)', () => {
    expect(refusal({ GATEHOUSE_DATABASE_URL: 'mysql://u@h/db' })).toMatch(/^GATEHOUSE_DATABASE_URL: must be sqlite:PATH or postgres/);
    expect(refusal({ GATEHOUSE_DATABASE_URL: 'gatehouse.sqlite' })).toMatch(/^GATEHOUSE_DATABASE_URL/);
    expect(refusal({ GATEHOUSE_REDIS_URL: 'http://127.0.0.1:6379' })).toMatch(/^GATEHOUSE_REDIS_URL: must be redis/);
    expect(refusal({ GATEHOUSE_SMTP_URL: 'mailto:x@y' })).toMatch(/^GATEHOUSE_SMTP_URL/);
    expect(loadConfig({ GATEHOUSE_DATABASE_URL: 'sqlite:/tmp/x.sqlite' }).databaseUrl).toBe('sqlite:/tmp/x.sqlite');
    expect(loadConfig({ GATEHOUSE_DATABASE_URL: 'postgresql://u@h:5432/db' }).databaseUrl).toBe('postgresql://u@h:5432/db');
    expect(loadConfig({ GATEHOUSE_REDIS_URL: 'rediss://h:6380' }).redisUrl).toBe('rediss://h:6380');
  });

  it('blames the variable that is wrong', () => {
    expect(refusal({ PORT: '99999' })).toMatch(/^PORT: /);
    expect(refusal({ PORT: 'eighty' })).toMatch(/^PORT must be an integer/);
    expect(refusal({ GATEHOUSE_DATABASE_POOL_MAX: '0' })).toMatch(/^GATEHOUSE_DATABASE_POOL_MAX: /);
    expect(refusal({ GATEHOUSE_MIGRATE: 'later' })).toMatch(/^GATEHOUSE_MIGRATE: /);
    expect(refusal({ GATEHOUSE_ARGON2_MEMORY_KIB: '1' })).toMatch(/^GATEHOUSE_ARGON2_MEMORY_KIB: /);
    expect(refusal({ GATEHOUSE_METRICS: 'on', GATEHOUSE_METRICS_HOST: '0.0.0.0' })).toMatch(/^GATEHOUSE_METRICS_TOKEN is required/);
  });

  it('reads pool sizes, timeouts and the process settings, with the documented defaults', () => {
    const defaults = loadConfig({});
    expect(defaults).toMatchObject({
      port: 3000,
      host: '127.0.0.1',
      databasePoolMax: 10,
      databaseConnectTimeoutSeconds: 5,
      databaseStatementTimeoutSeconds: 30,
      redisConnectTimeoutSeconds: 5,
      migrate: 'on',
      shutdownGraceSeconds: 10,
      metrics: 'off',
    });
    const set = loadConfig({
      GATEHOUSE_DATABASE_POOL_MAX: '25',
      GATEHOUSE_DATABASE_CONNECT_TIMEOUT: '2',
      GATEHOUSE_DATABASE_STATEMENT_TIMEOUT: '0',
      GATEHOUSE_REDIS_CONNECT_TIMEOUT: '3',
      GATEHOUSE_MIGRATE: 'OFF',
      GATEHOUSE_SHUTDOWN_GRACE_SECONDS: '20',
    });
    expect(set).toMatchObject({
      databasePoolMax: 25,
      databaseConnectTimeoutSeconds: 2,
      databaseStatementTimeoutSeconds: 0,
      redisConnectTimeoutSeconds: 3,
      migrate: 'off',
      shutdownGraceSeconds: 20,
    });
  });

  it('docs/deploy.md carries the table the schema generates (run `gatehouse config --docs --write docs/deploy.md`)', () => {
    const doc = fs.readFileSync('docs/deploy.md', 'utf8');
    expect(withEnvTable(doc)).toBe(doc);
    for (const { name } of ENV_VARIABLES) expect(envDocs()).toContain(`\`${name}\``);
  });
});
