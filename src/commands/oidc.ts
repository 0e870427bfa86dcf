/**
 * `gatehouse clients …` (relying parties of the OpenID Provider) and `gatehouse oidc-keys
 * rotate` (its signing keys). Same environment as the server (GATEHOUSE_DATABASE_URL,
 * GATEHOUSE_DATA_DIR, GATEHOUSE_SECRET_KEY). Changes to clients apply at once; new signing
 * keys from the server's next start.
 */
import { parseArgs } from 'node:util';
import { loadConfig } from '../config.js';
import { GatehouseError, InvalidRequestError } from '../core/errors.js';
import { ClientRegistry } from '../oidc/clients.js';
import { rotateSigningKeys } from '../oidc/signing-keys.js';
import { resolveSecretKey, SecretBox } from '../services/keys.js';
import { openDatabase } from '../store/database.js';

const CLIENTS_HELP = `Usage:
  gatehouse clients add --id ID --redirect-uri URL [--redirect-uri URL …] [--public]
                        [--post-logout-redirect-uri URL …] [--backchannel-logout-uri URL]
                        [--name NAME] [--native] [--allowed-origin ORIGIN …]
  gatehouse clients list
  gatehouse clients remove --id ID

add      registers a relying party. Without --public it is confidential: its client secret
         is printed once (stored encrypted). --public: no secret (SPA, native app); PKCE
         is required of every client anyway. --native: application_type "native".
         --allowed-origin: a browser origin (SPA) that may call the token, userinfo and
         revocation endpoints cross-origin (CORS).
`;

async function withStore<T>(
  env: NodeJS.ProcessEnv,
  run: (registry: ClientRegistry, box: SecretBox, db: Awaited<ReturnType<typeof openDatabase>>) => Promise<T>,
): Promise<T> {
  const config = loadConfig(env);
  const box = new SecretBox(resolveSecretKey(config.secretKey, config.dataDir).key, config.previousSecretKeys);
  const database = await openDatabase(config.databaseUrl);
  try {
    return await run(new ClientRegistry(database.db, box, config.dataDir), box, database);
  } finally {
    await database.close();
  }
}

export async function clientsCommand(
  argv: string[],
  env: NodeJS.ProcessEnv = process.env,
  out: (s: string) => void = (s) => process.stdout.write(s),
): Promise<number> {
  const [sub, ...rest] = argv;
  if (!sub || sub === '-h' || sub === '--help') {
    out(CLIENTS_HELP);
    return sub ? 0 : 2;
  }
  let values;
  try {
    ({ values } = parseArgs({
      args: rest,
      options: {
        id: { type: 'string' },
        'redirect-uri': { type: 'string', multiple: true },
        'post-logout-redirect-uri': { type: 'string', multiple: true },
        'backchannel-logout-uri': { type: 'string' },
        'allowed-origin': { type: 'string', multiple: true },
        name: { type: 'string' },
        public: { type: 'boolean' },
        native: { type: 'boolean' },
      },
      strict: true,
    }));
  } catch (err) {
    process.stderr.write(`gatehouse clients: ${(err as Error).message}\n\n${CLIENTS_HELP}`);
    return 2;
  }
  try {
    return await withStore(env, async (registry) => {
      switch (sub) {
        case 'add': {
          const { clientSecret } = await registry.add(
            {
              client_id: values.id,
              redirect_uris: values['redirect-uri'],
              ...(values['post-logout-redirect-uri'] ? { post_logout_redirect_uris: values['post-logout-redirect-uri'] } : {}),
              ...(values['backchannel-logout-uri'] ? { backchannel_logout_uri: values['backchannel-logout-uri'] } : {}),
              ...(values.name ? { client_name: values.name } : {}),
              ...(values['allowed-origin'] ? { allowed_origins: values['allowed-origin'] } : {}),
              token_endpoint_auth_method: values.public ? 'none' : 'client_secret_basic',
              application_type: values.native ? 'native' : 'web',
            },
            Date.now(),
          );
          out(`client_id:     ${values.id}\n`);
          out(
            clientSecret
              ? `client_secret: ${clientSecret}\n(shown only now; store it in the application's secrets)\n`
              : 'public client: no secret, PKCE (S256) required\n',
          );
          return 0;
        }
        case 'list':
          for (const c of await registry.list())
            out(`${c.client_id}\t${c.source}\t${c.token_endpoint_auth_method}\t${c.redirect_uris.join(' ')}\n`);
          return 0;
        case 'remove':
          if (!values.id) throw new InvalidRequestError('--id is required');
          if (!(await registry.remove(values.id))) {
            process.stderr.write(`gatehouse clients: no client "${values.id}" in the database\n`);
            return 1;
          }
          out(`removed ${values.id}\n`);
          return 0;
        default:
          process.stderr.write(`gatehouse clients: unknown subcommand "${sub}"\n\n${CLIENTS_HELP}`);
          return 2;
      }
    });
  } catch (err) {
    if (err instanceof GatehouseError) {
      process.stderr.write(`gatehouse clients: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
}

const KEYS_HELP = `Usage: gatehouse oidc-keys rotate [--retire-old]

Adds a new generation of signing keys (RS256, ES256), used from the server's next start.
Older keys stay published so tokens they signed still verify; --retire-old retires all but
the previous generation (run it once the longest token lifetime has passed since the last
rotation).
`;

export async function oidcKeysCommand(
  argv: string[],
  env: NodeJS.ProcessEnv = process.env,
  out: (s: string) => void = (s) => process.stdout.write(s),
): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub !== 'rotate' || rest.some((a) => a !== '--retire-old')) {
    out(KEYS_HELP);
    return sub === '-h' || sub === '--help' ? 0 : 2;
  }
  return withStore(env, async (_registry, box, database) => {
    const r = await rotateSigningKeys(database.db, box, Date.now(), { retireOld: rest.includes('--retire-old') });
    out(
      `signing keys: generation ${r.generation} added${r.retired ? `, ${r.retired} old key(s) retired` : ''}; restart the servers to sign with it\n`,
    );
    return 0;
  });
}
