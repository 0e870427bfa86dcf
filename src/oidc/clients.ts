/**
 * Relying parties allowed to use the provider. Two sources: the database (`gatehouse
 * clients add`, secret sealed with SecretBox and shown once) and an optional JSON file in
 * the data dir, `oidc-clients.json` (an array of the same metadata; keep it private when it
 * holds secrets). A client in the database wins over one of the same id in the file.
 *
 * Public clients (`token_endpoint_auth_method: "none"`, e.g. SPAs and native apps) get no
 * secret; PKCE is required of every client anyway (provider.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Kysely } from 'kysely';
import type { AdapterPayload } from 'oidc-provider';
import { z } from 'zod';
import { InvalidRequestError } from '../core/errors.js';
import { randomToken, type SecretBox } from '../services/keys.js';
import type { Database } from '../store/schema.js';
import { withOidcTables } from './schema.js';

const httpUrl = z
  .string()
  .max(2000)
  .refine((v) => {
    try {
      const u = new URL(v);
      return (u.protocol === 'https:' || u.protocol === 'http:') && u.hash === '';
    } catch {
      return false;
    }
  }, 'must be an http(s) URL without a fragment');

/** A browser origin (scheme, host, port; no path), as a CORS request's Origin header names it. */
const webOrigin = z
  .string()
  .max(300)
  .refine((v) => {
    try {
      const u = new URL(v);
      return (u.protocol === 'https:' || u.protocol === 'http:') && u.origin === v;
    } catch {
      return false;
    }
  }, 'must be an origin like https://app.example.com (no path, no trailing slash)');

export const clientMetadataSchema = z
  .object({
    client_id: z.string().regex(/^[A-Za-z0-9._-]{3,64}$/, '3 to 64 letters, digits, ".", "_" or "-"'),
    client_name: z.string().max(200).optional(),
    redirect_uris: z.array(httpUrl).min(1).max(20),
    post_logout_redirect_uris: z.array(httpUrl).max(20).optional(),
    token_endpoint_auth_method: z.enum(['none', 'client_secret_basic', 'client_secret_post']).default('client_secret_basic'),
    application_type: z.enum(['web', 'native']).default('web'),
    grant_types: z.array(z.enum(['authorization_code', 'refresh_token'])).default(['authorization_code', 'refresh_token']),
    backchannel_logout_uri: httpUrl.optional(),
    /** ID tokens and logout tokens carry `sid` (the provider session), so the RP can end just that session. */
    backchannel_logout_session_required: z.boolean().optional(),
    /** Browser origins (SPAs) allowed to call the token, userinfo and revocation endpoints cross-origin. */
    allowed_origins: z.array(webOrigin).max(20).optional(),
    /** File only: the secret of a confidential client (the database keeps it sealed). */
    client_secret: z.string().min(32).max(200).optional(),
  })
  .strict();

export type ClientMetadata = z.output<typeof clientMetadataSchema>;

export const clientSecretContext = (clientId: string) => `oidc-client-secret/${clientId}`;

export const CLIENTS_FILE = 'oidc-clients.json';

function readClientsFile(dataDir: string): Map<string, ClientMetadata> {
  const file = path.join(dataDir, CLIENTS_FILE);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
    throw err;
  }
  const parsed = z.array(clientMetadataSchema).safeParse(JSON.parse(text));
  if (!parsed.success) throw new Error(`${file}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  const clients = new Map<string, ClientMetadata>();
  for (const c of parsed.data) {
    if (c.token_endpoint_auth_method !== 'none' && !c.client_secret)
      throw new Error(`${file}: client ${c.client_id} needs a client_secret (or token_endpoint_auth_method "none")`);
    clients.set(c.client_id, c);
  }
  return clients;
}

export class ClientRegistry {
  private readonly fromFile: Map<string, ClientMetadata>;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly box: SecretBox,
    dataDir: string,
  ) {
    this.fromFile = readClientsFile(dataDir);
  }

  /** The client's metadata as oidc-provider wants it (secret included), or undefined. */
  async find(clientId: string): Promise<AdapterPayload | undefined> {
    const row = await withOidcTables(this.db).selectFrom('oidc_clients').selectAll().where('client_id', '=', clientId).executeTakeFirst();
    if (row) {
      const metadata = JSON.parse(row.metadata) as ClientMetadata;
      return {
        ...metadata,
        ...(row.secret_enc ? { client_secret: this.box.decrypt(row.secret_enc, clientSecretContext(clientId)) } : {}),
      } as AdapterPayload;
    }
    const file = this.fromFile.get(clientId);
    return file ? ({ ...file } as AdapterPayload) : undefined;
  }

  /** Registers a client; returns its secret (confidential clients), shown only this once. */
  async add(input: unknown, now: number): Promise<{ client: ClientMetadata; clientSecret: string | null }> {
    const parsed = clientMetadataSchema.safeParse(input);
    if (!parsed.success)
      throw new InvalidRequestError(parsed.error.issues.map((i) => `${i.path.join('.') || 'client'}: ${i.message}`).join('; '));
    const { client_secret: _ignored, ...client } = parsed.data;
    const clientSecret = client.token_endpoint_auth_method === 'none' ? null : randomToken();
    const inserted = await withOidcTables(this.db)
      .insertInto('oidc_clients')
      .values({
        client_id: client.client_id,
        secret_enc: clientSecret ? this.box.encrypt(clientSecret, clientSecretContext(client.client_id)) : null,
        metadata: JSON.stringify(client),
        created_at: now,
      })
      .onConflict((oc) => oc.column('client_id').doNothing())
      .executeTakeFirst();
    if (Number(inserted.numInsertedOrUpdatedRows ?? 0n) !== 1)
      throw new InvalidRequestError(`A client with id "${client.client_id}" already exists.`);
    return { client, clientSecret };
  }

  async remove(clientId: string): Promise<boolean> {
    const r = await withOidcTables(this.db).deleteFrom('oidc_clients').where('client_id', '=', clientId).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  async list(): Promise<
    Array<{ client_id: string; source: 'database' | 'file'; redirect_uris: string[]; token_endpoint_auth_method: string }>
  > {
    const rows = await withOidcTables(this.db).selectFrom('oidc_clients').select(['client_id', 'metadata']).orderBy('client_id').execute();
    const out: Array<{ client_id: string; source: 'database' | 'file'; redirect_uris: string[]; token_endpoint_auth_method: string }> =
      rows.map((r) => {
        const m = JSON.parse(r.metadata) as ClientMetadata;
        return {
          client_id: m.client_id,
          source: 'database' as const,
          redirect_uris: m.redirect_uris,
          token_endpoint_auth_method: m.token_endpoint_auth_method,
        };
      });
    for (const m of this.fromFile.values()) {
      if (!out.some((o) => o.client_id === m.client_id))
        out.push({
          client_id: m.client_id,
          source: 'file',
          redirect_uris: m.redirect_uris,
          token_endpoint_auth_method: m.token_endpoint_auth_method,
        });
    }
    return out;
  }
}
