/**
 * Resource servers (APIs) that may receive access tokens, from `oidc-resources.json` in the
 * data dir: `[{ "indicator": "https://api.example.com", "scope": "read write" }]`. A client
 * asks for one with the `resource` parameter (RFC 8707) and gets a JWT access token for it,
 * with `aud` = the indicator and the sign-in's `acr`, `amr` and `auth_time`, which the API
 * checks with the step-up helper (resource-server.ts). Unknown indicators are refused.
 */
import fs from 'node:fs';
import path from 'node:path';
import { errors } from 'oidc-provider';
import { z } from 'zod';
import { OIDC_TTL_ACCESS } from './ttl.js';

const resourceSchema = z
  .object({
    indicator: z.string().url().max(2000),
    scope: z
      .string()
      .regex(/^[\x21\x23-\x5B\x5D-\x7E]+( [\x21\x23-\x5B\x5D-\x7E]+)*$/)
      .max(1000),
    accessTokenTTL: z.number().int().min(30).max(3600).optional(),
  })
  .strict();

export type ResourceServer = z.output<typeof resourceSchema>;

export const RESOURCES_FILE = 'oidc-resources.json';

export class ResourceServers {
  private readonly byIndicator = new Map<string, ResourceServer>();

  constructor(dataDir: string, extra: ResourceServer[] = []) {
    const file = path.join(dataDir, RESOURCES_FILE);
    let list: unknown = [];
    try {
      list = JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`${file}: ${(err as Error).message}`);
    }
    const parsed = z.array(resourceSchema).safeParse(list);
    if (!parsed.success) throw new Error(`${file}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    for (const r of [...parsed.data, ...extra]) this.byIndicator.set(r.indicator, r);
  }

  info(indicator: string) {
    const r = this.byIndicator.get(indicator);
    if (!r) throw new errors.InvalidTarget();
    return {
      scope: r.scope,
      audience: r.indicator,
      accessTokenTTL: r.accessTokenTTL ?? OIDC_TTL_ACCESS,
      accessTokenFormat: 'jwt' as const,
      jwt: { sign: { alg: 'ES256' as const } },
    };
  }
}
