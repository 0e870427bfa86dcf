// The target profile: everything the auditor needs to know about an app it has never seen.
// Validated strictly (unknown keys are errors) because a typo in a profile would otherwise
// silently turn a check into "not applicable" and hide a real bypass.
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { builtinProfiles } from './builtin/index.js';

const httpMethod = z.enum(['GET', 'POST', 'PUT', 'PATCH', 'DELETE']);
const encoding = z.enum(['json', 'form']);

// Paths only: the origin always comes from --target, so a profile cannot point the auditor
// at a second host (protocol-relative "//host" is refused for the same reason).
const targetPath = z.string().regex(/^\/(?!\/)/, 'must be a path on the target starting with "/" (not a full URL)');

const bodyFields = z.record(z.string(), z.unknown());
const headerMap = z.record(z.string(), z.string());

const matcherConditions = {
  status: z.union([z.number().int().min(100).max(599), z.array(z.number().int().min(100).max(599)).min(1)]).optional(),
  body: z
    .strictObject({
      path: z.string().min(1),
      equals: z.union([z.string(), z.number(), z.boolean(), z.null()]).optional(),
    })
    .optional(),
  bodyContains: z.string().min(1).optional(),
  redirect: z.string().min(1).optional(),
};
const MATCHER_KEYS = 'status, body, bodyContains, redirect';
const hasCondition = (m: Record<string, unknown>) => Object.values(m).some((v) => v !== undefined);

/** A matcher without `not`: what `not` may exclude (one level of negation keeps it readable). */
const plainMatcher = z.strictObject(matcherConditions).refine(hasCondition, { message: `give at least one of ${MATCHER_KEYS}` });

/**
 * Describes what a response looks like; every condition given must hold. `not` excludes
 * responses: a matcher (or each matcher of a list) that must NOT match, e.g.
 * `{status: 302, not: {redirect: /login}}`.
 */
export const matcherSchema = z
  .strictObject({
    ...matcherConditions,
    not: z.union([plainMatcher, z.array(plainMatcher).min(1)]).optional(),
  })
  .refine(hasCondition, { message: `give at least one of ${MATCHER_KEYS}, not` });
export type Matcher = z.infer<typeof matcherSchema>;

/**
 * Where a value is read from in a response: exactly one of a JSON field (dotted path), a
 * hidden/any `<input name=…>`'s value, a `<meta name=…>`'s content, a cookie (set by the
 * response or already in the session's jar), or a regular expression's one capture group.
 */
export const EXTRACTOR_KEYS = ['json', 'input', 'meta', 'cookie', 'replyHeader', 'regex'] as const;
const extractorFields = {
  json: z.string().min(1).optional(),
  /** A response header (e.g. a token in `X-MFA-Token`), by name. */
  replyHeader: z.string().min(1).optional(),
  input: z.string().min(1).optional(),
  meta: z.string().min(1).optional(),
  cookie: z.string().min(1).optional(),
  regex: z
    .string()
    .min(1)
    .superRefine((src, ctx) => {
      let groups: number;
      try {
        // Matching the empty alternative reports how many capture groups the pattern has.
        groups = (new RegExp(`${src}|`).exec('')?.length ?? 1) - 1;
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: `not a valid regular expression: ${(err as Error).message}` });
        return;
      }
      if (groups !== 1) {
        ctx.addIssue({
          code: 'custom',
          message: `needs exactly one capture group (the value), found ${groups}; use (?:…) for other groups`,
        });
      }
    })
    .optional(),
};
export type Extractor = { [K in (typeof EXTRACTOR_KEYS)[number]]?: string };

const extractorKeysGiven = (v: Record<string, unknown>) => EXTRACTOR_KEYS.filter((k) => v[k] !== undefined);
function exactlyOneExtractor(v: Record<string, unknown>, ctx: z.RefinementCtx, extraKeys: string[] = []): void {
  const given = [...extraKeys.filter((k) => v[k] !== undefined), ...extractorKeysGiven(v)];
  if (given.length !== 1) {
    ctx.addIssue({
      code: 'custom',
      message: `give exactly one of ${[...extraKeys, ...EXTRACTOR_KEYS].join(', ')}${given.length ? ` (got ${given.join(', ')})` : ''}`,
    });
  }
}

export const extractorSchema = z.strictObject(extractorFields).superRefine((v, ctx) => exactlyOneExtractor(v, ctx));

/** One value fetchFirst reads from the page, and where the request then carries it. */
const fetchedValue = z
  .strictObject({
    ...extractorFields,
    /** Sent as this body field (dotted for nested JSON). */
    field: z.string().min(1).optional(),
    /** Sent in this request header. */
    header: z.string().min(1).optional(),
  })
  .superRefine((v, ctx) => {
    exactlyOneExtractor(v, ctx);
    if ((v.field === undefined) === (v.header === undefined)) {
      ctx.addIssue({ code: 'custom', message: 'give exactly one of field, header (where the value is sent)' });
    }
  });

/** GET a page in the same session before the request and carry values from it (CSRF tokens). */
export const fetchFirstSchema = z.strictObject({
  method: z.literal('GET').default('GET'),
  path: targetPath,
  values: z.array(fetchedValue).min(1),
});
export type FetchFirst = z.infer<typeof fetchFirstSchema>;

const endpoint = {
  method: httpMethod.default('GET'),
  path: targetPath,
};

const placeholderName = z.string().regex(/^\w+$/, 'names are letters, digits, _');

/**
 * A request step. Besides the body and headers, `{placeholders}` may go into the path, the
 * `query` and `cookies`; `capture` reads values from this step's reply (JSON, header,
 * cookie, HTML) into the session, for `{name}` in any later step of the same session.
 */
const requestSpec = {
  method: httpMethod.default('POST'),
  path: targetPath,
  encoding: encoding.default('json'),
  body: bodyFields.optional(),
  headers: headerMap.optional(),
  query: z.record(z.string(), z.string()).optional(),
  cookies: z.record(z.string(), z.string()).optional(),
  fetchFirst: fetchFirstSchema.optional(),
  capture: z.record(placeholderName, extractorSchema).optional(),
};

const codeSubmission = z.strictObject({ ...requestSpec, codeField: z.string().min(1).default('code') });

/**
 * A passkey as second factor: `options` asks the target for request options (a challenge),
 * the software authenticator signs an assertion, and the request itself (path, body…)
 * carries it in `responseField`.
 */
const passkeySubmission = z.strictObject({
  ...requestSpec,
  options: z.strictObject(requestSpec),
  /** Where the request options are in the `options` reply (dotted); default: the whole reply. */
  optionsField: z.string().min(1).optional(),
  responseField: z.string().min(1).default('response'),
});

const sensitiveKind = z.enum(['change_email', 'change_password', 'create_api_token', 'disable_mfa', 'other']);
export type SensitiveKind = z.infer<typeof sensitiveKind>;

/** `field` is a JSON field (as `json`); or any other extractor, e.g. `input: factor_id`. */
const paramLookup = z
  .strictObject({ ...endpoint, field: z.string().min(1).optional(), ...extractorFields })
  .superRefine((v, ctx) => exactlyOneExtractor(v, ctx, ['field']));
type ParamLookup = z.infer<typeof paramLookup>;

const sensitiveAction = z
  .strictObject({
    name: z.string().min(1),
    kind: sensitiveKind,
    ...requestSpec,
    /** Placeholders in path/body filled from a GET made with a full session before the audit. */
    params: z.record(z.string().regex(/^\w+$/, 'param names are letters, digits, _'), paramLookup).optional(),
    success: matcherSchema.optional(),
    /** For create_api_token: the response body field that carries the new token. */
    tokenField: z.string().min(1).optional(),
    /** For create_api_token: where the new token is, for replies that are not JSON (e.g. `regex`). */
    token: extractorSchema.optional(),
    /** Defaults to true for change_email, change_password and disable_mfa. */
    changesAccount: z.boolean().optional(),
    /** Requests sent in the same session right before the action (re-authentication, step-up), e.g. with `{password}` and `{totp}`. */
    stepUp: z.array(z.strictObject(requestSpec)).optional(),
  })
  .refine((a) => a.tokenField === undefined || a.token === undefined, {
    message: 'give tokenField or token, not both',
    path: ['token'],
  });
export type SensitiveAction = z.infer<typeof sensitiveAction>;

const account = z.strictObject({
  username: z.string().min(1),
  /** Where the account's mail goes, for password reset; defaults to username. */
  email: z.string().min(1).optional(),
  password: z.string().min(1),
  totpSecret: z
    .string()
    .transform((s) => s.replace(/[\s-]/g, '').toUpperCase())
    .pipe(z.string().regex(/^[A-Z2-7]+=*$/, 'must be a base32 TOTP secret'))
    .optional(),
  recoveryCodes: z.array(z.string().min(1)).default([]),
  /** A passkey the software authenticator holds (made by provisioning, or exported from an earlier run). */
  passkey: z
    .strictObject({
      credentialId: z.string().min(1),
      privateKey: z.string().includes('PRIVATE KEY', { message: 'a PKCS#8 PEM private key' }),
      rpId: z.string().min(1).optional(),
      userHandle: z.string().min(1).optional(),
      signCount: z.number().int().min(0).optional(),
    })
    .optional(),
});
export type Account = z.infer<typeof account>;

const resetToken = z.discriminatedUnion('from', [
  z
    .strictObject({ from: z.literal('response'), field: z.string().min(1).optional(), ...extractorFields })
    .superRefine((v, ctx) => exactlyOneExtractor(v, ctx, ['field'])),
  z.strictObject({
    from: z.literal('mailDir'),
    dir: z.string().min(1),
    pattern: z.string().min(1).default('token=([A-Za-z0-9._~%-]+)'),
  }),
]);

/**
 * One request of an account's set-up (sign-up, enrolment): a flow step with `{username}`,
 * `{password}`, `{email}`, `{totp}` (from a captured `totpSecret`) and earlier captures.
 * Capturing `totpSecret` gives the new account its TOTP secret; `recoveryCodes` names the
 * JSON field (a list) that hands out its recovery codes.
 */
const setupStep = z.strictObject({
  ...requestSpec,
  expect: matcherSchema.optional(),
  recoveryCodes: z.string().min(1).optional(),
  /** This reply holds passkey creation options (true: the whole reply; else the dotted field); `{passkeyCredential}` in a later step's body is the software authenticator's answer. */
  passkeyOptions: z.union([z.literal(true), z.string().min(1)]).optional(),
});

/** How to create a test account on the target (used with `provision: true` / `--provision`). */
const accountSetup = z.strictObject({
  /** Templates; `{nonce}` makes each account's own. */
  username: z.string().min(1).default('audit-{nonce}@example.test'),
  email: z.string().min(1).optional(),
  password: z.string().min(8).default('Audit-{nonce}-pw-{nonce}'),
  /** Accounts the audit needs in all: the first is audited, the second serves otp-cross-account. */
  count: z.number().int().min(1).max(5).default(2),
  steps: z.array(setupStep).min(1),
});
export type AccountSetup = z.infer<typeof accountSetup>;

export const profileSchema = z
  .strictObject({
    name: z.string().min(1).default('unnamed target'),
    extends: z.string().optional(),
    login: z.strictObject({
      ...requestSpec,
      usernameField: z.string().min(1).default('email'),
      passwordField: z.string().min(1).default('password'),
      mfaRequired: matcherSchema,
    }),
    session: z
      .strictObject({
        transport: z.enum(['cookie', 'bearer']).default('cookie'),
        tokenField: z.string().min(1).optional(),
        header: z.string().min(1).default('Authorization'),
        scheme: z.string().default('Bearer'),
      })
      .refine((s) => s.transport !== 'bearer' || s.tokenField, {
        message: 'transport "bearer" needs tokenField (the response body field carrying the token)',
      })
      .default({ transport: 'cookie', header: 'Authorization', scheme: 'Bearer' }),
    secondFactor: z
      .strictObject({
        totp: codeSubmission.optional(),
        recoveryCode: codeSubmission.optional(),
        passkey: passkeySubmission.optional(),
        accepted: matcherSchema.optional(),
        limited: matcherSchema.default({ status: 429 }),
        totpWindow: z.number().int().min(0).max(3).default(1),
      })
      .refine((f) => f.totp || f.recoveryCode || f.passkey, { message: 'give totp, recoveryCode, passkey, or several' }),
    whoami: z.strictObject({ ...endpoint, success: matcherSchema.optional() }),
    protectedEndpoints: z.array(z.strictObject({ ...endpoint, success: matcherSchema.optional() })).default([]),
    sensitiveActions: z.array(sensitiveAction).default([]),
    apiToken: z
      .strictObject({
        header: z.string().min(1).default('Authorization'),
        scheme: z.string().default('Bearer'),
        probe: z.strictObject(endpoint).optional(),
      })
      .optional(),
    rememberMe: z
      .strictObject({
        loginField: z.string().min(1),
        loginValue: z.union([z.string(), z.boolean(), z.number()]).default(true),
        cookie: z.string().min(1).optional(),
        /** A remember-me token handed out in a reply body (or header) instead of a cookie: read it here; `{rememberToken}` then goes into `restore`. */
        token: extractorSchema.optional(),
        restore: z.strictObject({ ...requestSpec, method: httpMethod.default('GET') }).optional(),
      })
      .optional(),
    passwordReset: z
      .strictObject({
        request: z.strictObject({ ...requestSpec, emailField: z.string().min(1).default('email') }),
        token: resetToken,
        /** `{token}` in the path or query places the reset token there (then no body field unless tokenField is given). */
        reset: z.strictObject({
          ...requestSpec,
          tokenField: z.string().min(1).optional(),
          passwordField: z.string().min(1).default('password'),
        }),
        newPassword: z.string().min(1).optional(),
      })
      .optional(),
    tokenLogin: z
      .strictObject({
        ...requestSpec,
        usernameField: z.string().min(1).default('email'),
        passwordField: z.string().min(1).default('password'),
        tokenField: z.string().min(1),
        header: z.string().min(1).default('Authorization'),
        scheme: z.string().default('Bearer'),
      })
      .optional(),
    stepUp: z.strictObject({ maxAgeSeconds: z.number().positive().max(3600) }).optional(),
    /**
     * The target as an OpenID Provider: a client registered there for the audit. The
     * auditor never contacts `redirectUri` (it only reads the redirects that point there).
     */
    oidc: z
      .strictObject({
        authorizationPath: targetPath.default('/oidc/auth'),
        tokenPath: targetPath.default('/oidc/token'),
        clientId: z.string().min(1),
        /** Confidential clients (client_secret_basic); none for a public client. */
        clientSecret: z.string().min(1).optional(),
        redirectUri: z.string().url(),
        scope: z.string().min(1).default('openid'),
        /** An acr value the first account cannot reach (e.g. a passkey level for a TOTP account). */
        unreachableAcr: z.string().min(1).optional(),
      })
      .optional(),
    /**
     * Federated login: the target trusts an upstream OpenID Provider that the auditor itself
     * runs at `issuer` (a loopback http URL) during the check, with this client registered.
     * `startPath` begins the target's upstream sign-in; `callbackPath` is the redirect URI
     * the target sends (default: startPath + "/callback").
     */
    upstreamLogin: z
      .strictObject({
        issuer: z
          .string()
          .url()
          .refine((v) => {
            const u = new URL(v);
            return u.protocol === 'http:' && ['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname) && u.port !== '';
          }, 'must be http://127.0.0.1:PORT (or localhost, [::1]): the auditor listens there, on loopback only'),
        clientId: z.string().min(1),
        clientSecret: z.string().min(1).optional(),
        /** How the target authenticates at the token endpoint (with a clientSecret). */
        clientAuth: z.enum(['client_secret_basic', 'client_secret_post']).default('client_secret_basic'),
        startPath: targetPath,
        callbackPath: targetPath.optional(),
      })
      .transform((u) => ({ ...u, callbackPath: u.callbackPath ?? `${u.startPath.replace(/\/$/, '')}/callback` }))
      .optional(),
    limits: z
      .strictObject({
        maxGuesses: z.number().int().min(1).max(50).default(10),
        lockoutAfter: z.number().int().min(1).max(1000).default(10),
        raceParallelism: z.number().int().min(2).max(10).default(3),
        /** Longest Retry-After the auditor waits out before calling a check inconclusive: limited. */
        maxWaitSeconds: z.number().min(0).max(600).default(10),
      })
      .default({ maxGuesses: 10, lockoutAfter: 10, raceParallelism: 3, maxWaitSeconds: 10 }),
    safety: z
      .strictObject({
        allowAccountChanges: z.boolean().default(false),
        maxRequests: z.number().int().min(1).max(5000).default(500),
        requestsPerSecond: z.number().positive().max(200).default(10),
        timeoutSeconds: z.number().positive().max(120).default(10),
      })
      .default({ allowAccountChanges: false, maxRequests: 500, requestsPerSecond: 10, timeoutSeconds: 10 }),
    /** Create the accounts the audit needs (up to accountSetup.count) on the target before it starts. */
    provision: z.boolean().default(false),
    accountSetup: accountSetup.optional(),
    accounts: z
      .array(account)
      .default([])
      .refine((a) => !a[0] || a[0].totpSecret || a[0].recoveryCodes.length > 0 || a[0].passkey, {
        message: 'the first account needs a totpSecret, recoveryCodes or a passkey, or the auditor cannot complete a login',
      }),
  })
  .refine((p) => !p.provision || p.accountSetup, {
    message: 'provision: true needs accountSetup (the sign-up and enrolment steps)',
    path: ['accountSetup'],
  })
  .refine((p) => p.secondFactor.totp || !p.accounts.some((a) => a.totpSecret), {
    message: 'accounts give a totpSecret but there is no secondFactor.totp to submit codes to',
    path: ['secondFactor', 'totp'],
  })
  .refine((p) => p.secondFactor.passkey || !p.accounts.some((a) => a.passkey), {
    message: 'accounts give a passkey but there is no secondFactor.passkey to use it with',
    path: ['secondFactor', 'passkey'],
  })
  .refine((p) => p.secondFactor.recoveryCode || !p.accounts.some((a) => a.recoveryCodes.length), {
    message: 'accounts give recoveryCodes but there is no secondFactor.recoveryCode to submit them to',
    path: ['secondFactor', 'recoveryCode'],
  });

export type Profile = z.infer<typeof profileSchema>;
export type ProfileInput = z.input<typeof profileSchema>;

const ACCOUNTS_HINT =
  ': the test accounts to audit with; a profile that extends a built-in one adds them, or provision: true (--provision) creates them with accountSetup (see docs/audit.md)';

export class ProfileError extends Error {
  constructor(
    readonly source: string,
    readonly problems: string[],
  ) {
    super(`invalid profile ${source}:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ProfileError';
  }
}

/** Validates an already-parsed profile (after resolving `extends`); `overrides` merge over it (e.g. `--provision`). */
export function parseProfile(raw: unknown, source = 'profile', overrides?: Record<string, unknown>): Profile {
  const merged = overrides ? deepMerge(resolveExtends(raw, source), overrides) : resolveExtends(raw, source);
  const result = profileSchema.safeParse(merged);
  const problems = result.success
    ? []
    : result.error.issues.map((issue) => {
        const where = issue.path.length ? issue.path.map(String).join('.') : '(top level)';
        const message = issue.message.replace(/^Invalid input: expected (\w+), received undefined$/, 'missing (expected $1)');
        return `${where}: ${message}`;
      });
  // Checked here, not in the schema, so it is reported together with every other problem.
  const given = isPlainObject(merged) ? merged : {};
  if (given.provision !== true && (given.accounts === undefined || (Array.isArray(given.accounts) && given.accounts.length === 0))) {
    problems.push(`accounts: ${given.accounts === undefined ? 'missing' : 'give at least one test account'}${ACCOUNTS_HINT}`);
  }
  if (problems.length || !result.success) throw new ProfileError(source, problems);
  return result.data;
}

/** Loads `builtin:NAME` or a JSON/YAML file. */
export async function loadProfile(spec: string, overrides?: Record<string, unknown>): Promise<Profile> {
  if (spec.startsWith('builtin:')) return parseProfile({ extends: spec }, spec, overrides);
  let text: string;
  try {
    text = await readFile(spec, 'utf8');
  } catch (err) {
    throw new ProfileError(spec, [`cannot read the file: ${(err as Error).message}`]);
  }
  let raw: unknown;
  try {
    // YAML is a superset of JSON, so one parser serves both formats.
    raw = parseYaml(text);
  } catch (err) {
    throw new ProfileError(spec, [`not valid JSON/YAML: ${(err as Error).message}`]);
  }
  return parseProfile(raw, spec, overrides);
}

function resolveExtends(raw: unknown, source: string): unknown {
  if (!isPlainObject(raw) || raw.extends === undefined) return raw;
  const name = raw.extends;
  if (typeof name !== 'string' || !name.startsWith('builtin:')) {
    throw new ProfileError(source, [`extends: expected "builtin:NAME", got ${JSON.stringify(name)}`]);
  }
  const base = builtinProfiles[name.slice('builtin:'.length)];
  if (!base) {
    const known = Object.keys(builtinProfiles)
      .map((k) => `builtin:${k}`)
      .join(', ');
    throw new ProfileError(source, [`extends: unknown built-in profile "${name}" (known: ${known})`]);
  }
  const { extends: _ignored, ...own } = raw;
  return deepMerge(base, own);
}

/**
 * Objects merge key by key; arrays and scalars from `over` replace those in `base`.
 * `null` over a section (an object in `base`) removes it: that is how a profile that
 * extends a built-in one drops a feature its target lacks.
 */
export function deepMerge(base: unknown, over: unknown): unknown {
  if (!isPlainObject(base) || !isPlainObject(over)) return over === undefined ? base : over;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (v === null && isPlainObject(base[k])) delete out[k];
    else out[k] = deepMerge(base[k], v);
  }
  return out;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Whether a sensitive action may change the account's e-mail, password or factors. */
export function changesAccount(action: SensitiveAction): boolean {
  return action.changesAccount ?? ['change_email', 'change_password', 'disable_mfa'].includes(action.kind);
}
