/**
 * The provider's signing keys: generated on first start (RS256, which every client can
 * verify, and ES256), stored as private JWKs sealed with SecretBox, each with its `kid`.
 *
 * Rotation (`gatehouse oidc rotate-keys`): a new generation is added and signs from the
 * next start; older generations stay published in the JWKS (so tokens they signed still
 * verify) until retired (`--retire-old`), after the longest token lifetime has passed.
 */
import crypto from 'node:crypto';
import type { Kysely } from 'kysely';
import type { SecretBox } from '../services/keys.js';
import type { Database } from '../store/schema.js';
import { withOidcTables } from './schema.js';

export const SIGNING_ALGS = ['RS256', 'ES256'] as const;

export const oidcKeyContext = (kid: string) => `oidc-signing-key/${kid}`;

export type PrivateJwk = crypto.JsonWebKey & { kid: string; alg: string; use: 'sig' };

function generateJwk(alg: (typeof SIGNING_ALGS)[number]): PrivateJwk {
  const { privateKey } =
    alg === 'RS256'
      ? crypto.generateKeyPairSync('rsa', { modulusLength: 2048 })
      : crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = privateKey.export({ format: 'jwk' });
  return { ...jwk, kid: crypto.randomBytes(12).toString('base64url'), alg, use: 'sig' };
}

async function insertGeneration(db: Kysely<Database>, box: SecretBox, generation: number, now: number): Promise<void> {
  const odb = withOidcTables(db);
  for (const alg of SIGNING_ALGS) {
    const jwk = generateJwk(alg);
    await odb
      .insertInto('oidc_signing_keys')
      .values({
        kid: jwk.kid,
        generation,
        alg,
        jwk_enc: box.encrypt(JSON.stringify(jwk), oidcKeyContext(jwk.kid)),
        created_at: now,
        retired_at: null,
      })
      // Another instance created this generation first: theirs is used.
      .onConflict((oc) => oc.columns(['generation', 'alg']).doNothing())
      .execute();
  }
}

/**
 * The live keys, newest generation first (oidc-provider signs with the first key of an
 * algorithm); generates the first generation when there is none.
 */
export async function loadSigningKeys(db: Kysely<Database>, box: SecretBox, now: number): Promise<PrivateJwk[]> {
  const odb = withOidcTables(db);
  const read = () =>
    odb.selectFrom('oidc_signing_keys').selectAll().where('retired_at', 'is', null).orderBy('generation', 'desc').orderBy('alg').execute();
  let rows = await read();
  if (rows.length === 0) {
    await insertGeneration(db, box, 1, now);
    rows = await read();
  }
  return rows.map((row) => JSON.parse(box.decrypt(row.jwk_enc, oidcKeyContext(row.kid))) as PrivateJwk);
}

/** Adds a new generation; with `retireOld`, retires all but the two newest generations. */
export async function rotateSigningKeys(
  db: Kysely<Database>,
  box: SecretBox,
  now: number,
  options: { retireOld?: boolean } = {},
): Promise<{ generation: number; retired: number }> {
  const odb = withOidcTables(db);
  const top = await odb
    .selectFrom('oidc_signing_keys')
    .select((eb) => eb.fn.max('generation').as('g'))
    .executeTakeFirst();
  const generation = Number(top?.g ?? 0) + 1;
  await insertGeneration(db, box, generation, now);
  let retired = 0;
  if (options.retireOld) {
    const r = await odb
      .updateTable('oidc_signing_keys')
      .set({ retired_at: now })
      .where('generation', '<', generation - 1)
      .where('retired_at', 'is', null)
      .executeTakeFirst();
    retired = Number(r.numUpdatedRows);
  }
  return { generation, retired };
}
