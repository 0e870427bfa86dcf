// `gatehouse audit init`: drafts a profile from an OpenAPI document (file or URL) or a HAR
// recording, prints what it placed and what it could not, and writes the draft as YAML.
import { readFile, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { parseProfile, ProfileError } from '../profile.js';
import type { Output } from '../reports/terminal.js';
import { draftProfile } from './draft.js';
import { fromHar, fromOpenApi, type ApiDescription } from './operations.js';

export const INIT_USAGE = `Usage: gatehouse audit init (--openapi FILE|URL | --har FILE) [options]

Drafts an audit profile by finding the login, second-factor, who-am-I, account, factor,
token, password-reset and sign-up endpoints; says what it could not place.

Options:
  --openapi FILE|URL  an OpenAPI 3 document (JSON or YAML), e.g. https://app/openapi.json
  --har FILE          a browser recording (HAR) of a login with the second factor
  --out FILE          write the profile here (default: standard output)
  --mail-dir DIR      where the test deployment writes mail (adds the password-reset check)
  -h, --help          this text
`;

export async function initCommand(argv: string[], io: { stdout: Output; stderr: Output }): Promise<number> {
  let args;
  try {
    args = parseArgs({
      args: argv,
      options: {
        openapi: { type: 'string' },
        har: { type: 'string' },
        out: { type: 'string' },
        'mail-dir': { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (err) {
    io.stderr.write(`gatehouse audit init: ${(err as Error).message}\n\n${INIT_USAGE}`);
    return 2;
  }
  if (args.help) {
    io.stdout.write(INIT_USAGE);
    return 0;
  }
  const fail = (reason: string) => {
    io.stderr.write(`gatehouse audit init: ${reason}\n`);
    return 2;
  };
  if ((args.openapi === undefined) === (args.har === undefined)) return fail('give exactly one of --openapi FILE|URL, --har FILE');
  let api: ApiDescription;
  try {
    if (args.openapi !== undefined) api = fromOpenApi(await readSource(args.openapi));
    else api = fromHar(await readFile(args.har!, 'utf8'));
  } catch (err) {
    return fail(`cannot read ${args.openapi ?? args.har}: ${(err as Error).message}`);
  }
  const draft = draftProfile(api, { mailDir: args['mail-dir'] });
  // The draft must at least be a valid profile (accounts come from --provision).
  let invalid: string[] = [];
  try {
    parseProfile(draft.profile, 'draft', draft.profile.accountSetup ? { provision: true } : undefined);
  } catch (err) {
    if (!(err instanceof ProfileError)) throw err;
    invalid = err.problems;
  }
  const source = args.openapi ?? args.har!;
  const header = [
    `Drafted by gatehouse audit init from ${source}. Review before use.`,
    'Placed:',
    ...draft.placed.map((p) => `  ${p}`),
    'Could not place:',
    ...(draft.unplaced.length ? draft.unplaced.map((p) => `  ${p}`) : ['  (nothing)']),
  ];
  const yaml = `${header.map((l) => `# ${l}`).join('\n')}\n${stringify(draft.profile, { lineWidth: 0 })}`;
  if (args.out) {
    await writeFile(args.out, yaml);
    io.stdout.write(`wrote ${args.out}\n`);
  } else io.stdout.write(yaml);
  io.stderr.write(
    `placed ${draft.placed.length} endpoint(s); could not place:\n${draft.unplaced.map((u) => `  - ${u}`).join('\n') || '  (nothing)'}\n`,
  );
  if (invalid.length) {
    io.stderr.write(`the draft is not yet a valid profile:\n${invalid.map((p) => `  - ${p}`).join('\n')}\n`);
    return 2;
  }
  return 0;
}

async function readSource(spec: string): Promise<string> {
  if (!/^https?:\/\//.test(spec)) return readFile(spec, 'utf8');
  const res = await fetch(spec, { redirect: 'error', signal: AbortSignal.timeout(10_000) });
  if (!res.ok) throw new Error(`GET answered ${res.status}`);
  return res.text();
}
