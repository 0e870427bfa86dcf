// `gatehouse audit init`: drafts a profile from an API description by finding, in order,
// the login, the second-factor verification, who-am-I, the account and factor actions, the
// token endpoints, password reset and sign-up/enrolment, by their methods, paths, field
// names and reply shapes. What it cannot place it says, so the draft is a start, not a guess
// presented as fact; every profile it writes passes the profile validator.
import type { ApiDescription, ApiOperation, Field, Reply } from './operations.js';

export interface Draft {
  profile: Record<string, unknown>;
  /** "role → METHOD /path (why)" for each placed endpoint. */
  placed: string[];
  /** Roles it could not fill and endpoints that look relevant but were not used. */
  unplaced: string[];
}

export interface DraftOptions {
  /** Where the target writes its mail (files): enables the password-reset check. */
  mailDir?: string | undefined;
}

const USERNAME = /^(email|e-?mail|username|user_?name|login|user|identifier)$/i;
const PASSWORD = /^(password|pass|passwd|pwd)$/i;
const CODE = /^(code|otp|totp|totp_?code|mfa_?code|one_?time_?code|passcode|token_?code|verification_?code|backup_?code|recovery_?code)$/i;
const MFA_WORDS = /mfa|2fa|two[_\s-]?factor|second[_\s-]?factor|otp|totp|multi[_\s-]?factor/i;
const MFA_VALUE = /mfa|2fa|two[_\s-]?factor|second[_\s-]?factor|otp|totp/i;
const SESSION_TOKEN = /^(access_?token|session_?token|token|jwt|id_?token|auth_?token)$/i;
const ENROLMENT = /setup|set-up|enrol|enroll|activate|confirm|register|begin|start/;

const leaf = (name: string) => name.split('.').pop() ?? name;
const topLevel = (f: Field) => !f.name.includes('.');
const fieldBy = (fields: Field[], re: RegExp) => fields.find((f) => topLevel(f) && re.test(leaf(f.name)));
const ok = (op: ApiOperation) => op.replies.filter((r) => r.status >= 200 && r.status < 300);
const has = (op: ApiOperation, re: RegExp) => re.test(op.text);
const hasParams = (op: ApiOperation) => op.path.includes('{');
const describe = (op: ApiOperation) => `${op.method} ${op.path}`;
const writes = (op: ApiOperation) => ['POST', 'PUT', 'PATCH'].includes(op.method);

export function draftProfile(api: ApiDescription, options: DraftOptions = {}): Draft {
  const placed: string[] = [];
  const unplaced: string[] = [];
  const used = new Set<ApiOperation>();
  const place = (role: string, op: ApiOperation, why: string) => {
    used.add(op);
    placed.push(`${role} → ${describe(op)} (${why})`);
  };
  const ops = api.operations;
  const profile: Record<string, unknown> = { name: `${api.title} (drafted by gatehouse audit init)` };

  // 1. Login: an open write with a username and a password field, not sign-up or reset.
  const login = best(
    ops.filter(
      (op) =>
        writes(op) &&
        op.secured !== true &&
        fieldBy(op.body, USERNAME) &&
        fieldBy(op.body, PASSWORD) &&
        !has(op, /sign-?up|register|reset|forgot|change|new/),
    ),
    (op) => (has(op, /login|log-in|sign-?in|session|token|auth/) ? 2 : 0) + (op.requires?.session === 'none' ? 1 : 0),
  );
  if (!login) {
    unplaced.push('login: no open POST with a username/e-mail and a password field; write login by hand');
    return finish();
  }
  const usernameField = fieldBy(login.body, USERNAME)!.name;
  const passwordField = fieldBy(login.body, PASSWORD)!.name;
  const challenge = mfaChallenge(login);
  place('login', login, `fields ${usernameField}, ${passwordField}`);
  const loginSpec: Record<string, unknown> = {
    method: login.method,
    path: login.path,
    encoding: login.encoding,
    usernameField,
    passwordField,
  };
  if (challenge) loginSpec.mfaRequired = challenge.matcher;
  else {
    loginSpec.mfaRequired = { status: 401, bodyContains: 'mfa' };
    unplaced.push('login.mfaRequired: no reply of the login says "second factor required"; the draft guesses 401 "mfa": check it');
  }
  profile.login = loginSpec;

  // 2. Session transport: a cookie scheme, or a token in the login's replies.
  const tokenReplyField = (op: ApiOperation | undefined) =>
    op ? ok(op).flatMap((r) => r.fields.filter((f) => topLevel(f) && SESSION_TOKEN.test(f.name)))[0]?.name : undefined;
  const loginSetsCookie = login.replies.some((r) => r.setsCookie);

  // 3. Second factor: a write with a code field about MFA, not enrolment or step-up.
  const verifyCandidates = ops.filter(
    (op) =>
      writes(op) &&
      op !== login &&
      fieldBy(op.body, CODE) &&
      (has(op, MFA_WORDS) || has(op, /verify|challenge|login|sign-?in|auth/) || op.requires?.session === 'pending' || hasMfaGrant(op)) &&
      !has(op, ENROLMENT) &&
      !has(op, /step-?up|reauth|re-auth|sudo|disable/),
  );
  const isRecovery = (op: ApiOperation) => /recovery|backup/i.test(`${op.path} ${fieldBy(op.body, CODE)?.name ?? ''}`);
  const verify = best(
    verifyCandidates,
    (op) => (op.requires?.session === 'pending' ? 4 : 0) + (has(op, /verify|challenge|login/) ? 1 : 0) + (isRecovery(op) ? -2 : 0),
  );
  const secondFactor: Record<string, unknown> = {};
  let pendingCapture: Record<string, unknown> | undefined;
  if (verify) {
    const codeField = fieldBy(verify.body, CODE)!.name;
    const methodField = verify.body.find((f) => topLevel(f) && f.values?.some((v) => v === 'totp'));
    const recoveryValue = methodField?.values?.find((v) => typeof v === 'string' && /recovery|backup/.test(v));
    const fixed: Record<string, unknown> = {};
    // A pending token the login hands out and the code request carries in its body.
    const pendingIn = verify.body.find((f) => topLevel(f) && /token/i.test(f.name) && f.name !== codeField && !CODE.test(f.name));
    const pendingOut = challenge?.reply.fields.find((f) => /token/i.test(leaf(f.name)) && f.type !== 'object');
    if (pendingIn && pendingOut) {
      pendingCapture = { pending: { json: pendingOut.name } };
      fixed[pendingIn.name] = '{pending}';
    }
    for (const f of verify.body) {
      // Fixed values the request needs (a grant type): the one known value of a required field.
      if (
        topLevel(f) &&
        f !== methodField &&
        f.name !== codeField &&
        !fixed[f.name] &&
        verify.required.includes(f.name) &&
        f.values?.length === 1
      )
        fixed[f.name] = f.values[0];
    }
    const step = (extra: Record<string, unknown>) => ({
      method: verify.method,
      path: verify.path,
      encoding: verify.encoding,
      codeField,
      ...(Object.keys({ ...fixed, ...extra }).length ? { body: { ...fixed, ...extra } } : {}),
    });
    secondFactor.totp = step(methodField ? { [methodField.name]: 'totp' } : {});
    if (methodField && recoveryValue) secondFactor.recoveryCode = step({ [methodField.name]: recoveryValue });
    place('secondFactor.totp', verify, `code field ${codeField}${methodField ? `, ${methodField.name}: totp` : ''}`);
    const accepted = acceptedMatcher(verify);
    if (accepted) secondFactor.accepted = accepted;
  } else unplaced.push('secondFactor: no request that submits a second-factor code; write secondFactor.totp by hand');
  if (!secondFactor.recoveryCode) {
    const recovery = ops.find(
      (op) => writes(op) && op !== verify && has(op, /backup|recovery/) && fieldBy(op.body, CODE) && !has(op, ENROLMENT),
    );
    if (recovery) {
      const pendingIn = pendingCapture ? recovery.body.find((f) => topLevel(f) && /token/i.test(f.name) && !CODE.test(f.name)) : undefined;
      secondFactor.recoveryCode = {
        method: recovery.method,
        path: recovery.path,
        encoding: recovery.encoding,
        codeField: fieldBy(recovery.body, CODE)!.name,
        ...(pendingIn ? { body: { [pendingIn.name]: '{pending}' } } : {}),
      };
      place('secondFactor.recoveryCode', recovery, 'a recovery/backup code submission');
    }
  }
  if (pendingCapture) loginSpec.capture = pendingCapture;
  profile.secondFactor = secondFactor;

  const tokenField = tokenReplyField(verify);
  if (api.cookieSession === true || loginSetsCookie || !tokenField) profile.session = { transport: 'cookie' };
  else {
    profile.session = { transport: 'bearer', tokenField };
    // A bearer API says "accepted" by handing out the token.
    const accepted = secondFactor.accepted as { status?: number; body?: unknown } | undefined;
    if (accepted && !accepted.body) secondFactor.accepted = { ...accepted, body: { path: tokenField } };
  }

  // 4. Who-am-I and other protected reads.
  const reads = ops.filter((op) => op.method === 'GET' && op.secured === true && !hasParams(op) && !used.has(op));
  const whoami = best(reads, (op) =>
    /\/(me|whoami|session|userinfo)$/.test(op.path)
      ? 3
      : /\/(user|account|profile)$/.test(op.path)
        ? 2
        : op.requires?.session === 'full'
          ? 1
          : 0,
  );
  if (whoami) {
    place('whoami', whoami, 'a protected read of the current user or session');
    profile.whoami = { method: 'GET', path: whoami.path, success: { status: ok(whoami)[0]?.status ?? 200 } };
  } else {
    unplaced.push('whoami: no protected GET of the current user; write whoami by hand');
    profile.whoami = { method: 'GET', path: '/me' };
  }
  const protectedReads = reads.filter((op) => op !== whoami).slice(0, 6);
  for (const op of protectedReads) place('protectedEndpoints', op, 'a protected read');
  profile.protectedEndpoints = protectedReads.map((op) => ({ method: 'GET', path: op.path }));

  // 5. Sensitive actions.
  const actions: Record<string, unknown>[] = [];
  const securedWrites = ops.filter((op) => op.secured === true && op.method !== 'GET' && !used.has(op));
  const fillBody = (op: ApiOperation, known: Record<string, unknown>) => {
    const body: Record<string, unknown> = { ...known };
    for (const name of op.required) if (!name.includes('.') && body[name] === undefined) body[name] = placeholderFor(op, name);
    return body;
  };
  const tokenCreate = securedWrites.find(
    (op) => op.method === 'POST' && /token|api[-_]?key/.test(op.path) && !hasParams(op) && !has(op, /oauth|login|session/),
  );
  if (tokenCreate) {
    const scopeField = tokenCreate.body.find((f) => topLevel(f) && /scope/i.test(f.name));
    const probe = ops.find((op) => op.method === 'GET' && op.tokenScopes.length && !hasParams(op));
    const scope = probe?.tokenScopes[0] ?? api.scopes[0];
    const nameField = tokenCreate.body.find((f) => topLevel(f) && /name|label|description|title/i.test(f.name));
    const tokenOut = ok(tokenCreate)
      .flatMap((r) => r.fields)
      .find((f) => /^(token|key|secret|api_?key|value)$/i.test(leaf(f.name)) && f.type === 'string');
    actions.push({
      name: 'create API token',
      kind: 'create_api_token',
      method: 'POST',
      path: tokenCreate.path,
      body: fillBody(tokenCreate, {
        ...(nameField ? { [nameField.name]: 'audit-{nonce}' } : {}),
        ...(scopeField ? { [scopeField.name]: scope ? [scope] : [] } : {}),
      }),
      ...(tokenOut ? { tokenField: tokenOut.name } : {}),
    });
    place('sensitiveActions: create API token', tokenCreate, tokenOut ? `token in ${tokenOut.name}` : 'no token field found');
    if (probe) {
      profile.apiToken = { header: 'Authorization', scheme: 'Bearer', probe: { method: 'GET', path: probe.path } };
      placed.push(`apiToken.probe → GET ${probe.path} (an API token with ${probe.tokenScopes.join(', ')} may call it)`);
    }
  }
  const emailChange = securedWrites.find(
    (op) => /e-?mail/.test(op.path) && fieldBy(op.body, /^(e-?mail|new_?email|newEmail)$/i) && !/confirm|cancel|verify/.test(op.path),
  );
  if (emailChange) {
    const field = fieldBy(emailChange.body, /^(e-?mail|new_?email|newEmail)$/i)!.name;
    actions.push({
      name: 'change e-mail',
      kind: 'change_email',
      method: emailChange.method,
      path: emailChange.path,
      body: fillBody(emailChange, { [field]: 'audit-{nonce}@example.invalid' }),
    });
    place('sensitiveActions: change e-mail', emailChange, `field ${field}`);
  }
  const passwordChange = securedWrites.find(
    (op) => /password/.test(op.path) && op.body.some((f) => /pass/i.test(f.name)) && !has(op, /forgot|reset/),
  );
  if (passwordChange) {
    // The same password in and out: if the target wrongly accepts it, the account still works.
    const known = Object.fromEntries(
      passwordChange.body.filter((f) => topLevel(f) && /pass/i.test(f.name)).map((f) => [f.name, '{password}']),
    );
    actions.push({
      name: 'change password',
      kind: 'change_password',
      method: passwordChange.method,
      path: passwordChange.path,
      body: fillBody(passwordChange, known),
    });
    place('sensitiveActions: change password', passwordChange, 'current and new password set to the same password');
  }
  const regenerate = securedWrites.find(
    (op) => op.method === 'POST' && /(recovery|backup)[-_]?codes/.test(op.path) && !fieldBy(op.body, CODE),
  );
  if (regenerate) {
    actions.push({ name: 'regenerate recovery codes', kind: 'other', method: 'POST', path: regenerate.path, changesAccount: true });
    place('sensitiveActions: regenerate recovery codes', regenerate, 'would void the codes the audit uses: account-changing');
  }
  const disable = best(
    securedWrites.filter(
      (op) =>
        ((op.method === 'DELETE' && MFA_WORDS.test(op.path)) || (writes(op) && /disable/.test(op.path) && MFA_WORDS.test(op.path))) &&
        !/webauthn|passkey|device|session|token/.test(op.path),
    ),
    (op) => (/totp|otp/.test(op.path) ? 1 : 0),
  );
  if (disable) {
    const params: Record<string, unknown> = {};
    for (const [, name] of disable.path.matchAll(/\{(\w+)\}/g)) {
      const lookup = paramLookup(ops, disable, name!);
      if (lookup) params[name!] = lookup;
      else unplaced.push(`sensitiveActions: disable MFA needs {${name}}: no protected list with ids found; add params by hand`);
    }
    const known: Record<string, unknown> = {};
    for (const f of disable.body.filter(topLevel)) {
      if (PASSWORD.test(f.name)) known[f.name] = '{password}';
      else if (CODE.test(f.name)) known[f.name] = '{totp}';
    }
    actions.push({
      name: 'disable MFA',
      kind: 'disable_mfa',
      method: disable.method,
      path: disable.path,
      ...(disable.body.length ? { body: fillBody(disable, known) } : {}),
      ...(Object.keys(params).length ? { params } : {}),
    });
    place(
      'sensitiveActions: disable MFA',
      disable,
      Object.keys(params).length ? `{${Object.keys(params).join('}, {')}} looked up` : 'no parameters',
    );
  }
  profile.sensitiveActions = actions;

  // 6. Step-up: the draft cannot know the window; it says so.
  const stepUp = ops.find((op) => writes(op) && has(op, /step-?up|reauth|re-auth|sudo/));
  const freshness = ops.some((op) => op.requires?.fresh === true) || stepUp;
  if (freshness) {
    profile.stepUp = { maxAgeSeconds: 900 };
    if (stepUp) place('stepUp', stepUp, 'the app has step-up');
    unplaced.push(
      "stepUp.maxAgeSeconds: the step-up window is a deployment setting, not in the API description; 900 s assumed (set the test deployment's, e.g. 2)",
    );
  } else if (actions.some((a) => /\{(password|totp)\}/.test(JSON.stringify(a.body ?? {})))) {
    // The actions ask for credentials in the request itself: any full session is "stale" for
    // them, so a short window lets the checks try them with a session older than its login.
    profile.stepUp = { maxAgeSeconds: 1 };
    placed.push('stepUp.maxAgeSeconds → 1 (the actions ask for the password or a code in the request itself)');
  }

  // 7. Remember-me and token login: options of the login request.
  const rememberField = login.body.find((f) => topLevel(f) && /remember/i.test(f.name));
  if (rememberField) {
    // A remember-me token in a reply body, exchanged at an endpoint that takes it in its body.
    const tokenOut =
      verify &&
      ok(verify)
        .flatMap((r) => r.fields)
        .find((f) => /remember/i.test(f.name) && f.type === 'string');
    const exchange = ops.find((op) => writes(op) && op.body.some((f) => topLevel(f) && /remember/i.test(f.name) && /token/i.test(f.name)));
    const exchangeField = exchange?.body.find((f) => topLevel(f) && /remember/i.test(f.name) && /token/i.test(f.name));
    const restore =
      tokenOut && exchange && exchangeField
        ? { method: exchange.method, path: exchange.path, body: { [exchangeField.name]: '{rememberToken}' } }
        : { method: 'GET', path: (profile.whoami as { path: string }).path };
    profile.rememberMe = {
      loginField: rememberField.name,
      loginValue: rememberField.type === 'boolean' ? true : 'on',
      ...(tokenOut && exchange ? { token: { json: tokenOut.name } } : {}),
      restore,
    };
    if (tokenOut && exchange) place('rememberMe.restore', exchange, `remember-me token from ${tokenOut.name} in its body`);
    else placed.push(`rememberMe → login field ${rememberField.name}, restored at who-am-I`);
  }
  const transportField = login.body.find((f) => topLevel(f) && f.values?.includes('token') && f.values.length > 1);
  const loginToken = ok(login)
    .flatMap((r) => r.fields)
    .find((f) => topLevel(f) && SESSION_TOKEN.test(f.name));
  if (transportField && loginToken) {
    profile.tokenLogin = {
      method: login.method,
      path: login.path,
      usernameField,
      passwordField,
      body: { [transportField.name]: 'token' },
      tokenField: loginToken.name,
    };
    placed.push(`tokenLogin → ${describe(login)} with ${transportField.name}: token (token in ${loginToken.name})`);
  }

  // 8. Password reset (the token arrives by mail: needs --mail-dir).
  const forgot = ops.find(
    (op) =>
      writes(op) &&
      op.secured !== true &&
      /forgot|reset/.test(op.text) &&
      fieldBy(op.body, /^(e-?mail|login|username)$/i) &&
      !fieldBy(op.body, PASSWORD),
  );
  const reset = ops.find((op) => writes(op) && op !== forgot && op.secured !== true && /reset/.test(op.text) && fieldBy(op.body, PASSWORD));
  if (forgot && reset) {
    const tokenIn = fieldBy(reset.body, /token|code|key/i);
    // No token field: the token is the path's parameter, and the mailed link ends the same way.
    const inPath = !tokenIn ? /\/([\w-]+)\/\{\w+\}$/.exec(reset.path) : null;
    if (options.mailDir && (tokenIn || inPath)) {
      profile.passwordReset = {
        request: { method: forgot.method, path: forgot.path, emailField: fieldBy(forgot.body, /^(e-?mail|login|username)$/i)!.name },
        token: { from: 'mailDir', dir: options.mailDir, ...(inPath ? { pattern: `/${inPath[1]}/([A-Za-z0-9._~%-]+)` } : {}) },
        reset: {
          method: reset.method,
          path: inPath ? reset.path.replace(/\{\w+\}$/, '{token}') : reset.path,
          passwordField: fieldBy(reset.body, PASSWORD)!.name,
          ...(tokenIn ? { tokenField: tokenIn.name } : {}),
        },
      };
      place('passwordReset.request', forgot, 'asks for a reset link');
      place('passwordReset.reset', reset, `token in ${tokenIn?.name ?? 'the path'}, read from mail in ${options.mailDir}`);
    } else {
      used.add(forgot).add(reset);
      unplaced.push(
        `passwordReset: found ${describe(forgot)} and ${describe(reset)}, but the token arrives by mail: run init with --mail-dir DIR (where the test deployment writes mail) to include it`,
      );
    }
  }

  // 9. Sign-up and enrolment, for --provision.
  const signup = ops.find(
    (op) => writes(op) && op.secured !== true && has(op, /sign-?up|register/) && fieldBy(op.body, PASSWORD) && fieldBy(op.body, USERNAME),
  );
  const setup = ops.find(
    (op) =>
      writes(op) && op !== verify && MFA_WORDS.test(op.path) && /setup|enrol|enroll|begin|start|create/.test(op.text) && secretField(op),
  );
  const confirm = ops.find(
    (op) =>
      writes(op) &&
      op !== verify &&
      op !== setup &&
      MFA_WORDS.test(op.path) &&
      /confirm|activate|enable|verify/.test(op.path) &&
      fieldBy(op.body, CODE),
  );
  if (signup && setup && confirm) {
    const su = fieldBy(signup.body, USERNAME)!.name;
    const secret = secretField(setup)!;
    const codes = ok(confirm)
      .flatMap((r) => r.fields)
      .find((f) => f.type === 'array' && /recovery|backup/i.test(f.name));
    profile.accountSetup = {
      username: /mail/i.test(su) ? 'audit-{nonce}@example.test' : 'audit-{nonce}',
      steps: [
        {
          method: signup.method,
          path: signup.path,
          encoding: signup.encoding,
          body: { [su]: '{username}', [fieldBy(signup.body, PASSWORD)!.name]: '{password}' },
          ...(ok(signup)[0] ? { expect: { status: ok(signup)[0]!.status } } : {}),
        },
        { method: setup.method, path: setup.path, capture: { totpSecret: secret } },
        {
          method: confirm.method,
          path: confirm.path,
          body: { [fieldBy(confirm.body, CODE)!.name]: '{totp}' },
          ...(codes ? { recoveryCodes: codes.name } : {}),
        },
      ],
    };
    place('accountSetup: sign-up', signup, `fields ${su}, password`);
    place('accountSetup: TOTP set-up', setup, `secret from ${JSON.stringify(secret)}`);
    place('accountSetup: TOTP confirmation', confirm, codes ? `recovery codes in ${codes.name}` : 'no recovery codes in the reply');
    unplaced.push('accounts: none (drafts never hold passwords); run with --provision on a test deployment, or add accounts');
  } else {
    unplaced.push(
      `accountSetup: ${[!signup && 'no sign-up', !setup && 'no TOTP set-up with a secret in the reply', !confirm && 'no enrolment confirmation'].filter(Boolean).join(', ')}; add accounts (with totpSecret and recoveryCodes) by hand`,
    );
    profile.accounts = [{ username: 'CHANGE-ME', password: 'CHANGE-ME', totpSecret: 'CHANGEME' }];
  }

  return finish();

  function finish(): Draft {
    const relevant = /auth|login|logout|mfa|2fa|otp|totp|factor|token|password|e-?mail|session|passkey|webauthn|recovery|backup|remember/;
    for (const op of ops) {
      if (!used.has(op) && relevant.test(op.text)) unplaced.push(`not used: ${describe(op)}`);
    }
    return { profile, placed, unplaced };
  }
}

function best<T>(list: T[], score: (t: T) => number): T | undefined {
  let top: T | undefined;
  let topScore = -Infinity;
  for (const t of list) {
    const s = score(t);
    if (s > topScore) [top, topScore] = [t, s];
  }
  return top;
}

/** The login reply that says "second factor required", and a matcher for it. */
function mfaChallenge(login: ApiOperation): { reply: Reply; matcher: Record<string, unknown> } | undefined {
  for (const reply of login.replies) {
    for (const f of reply.fields) {
      const value = f.values?.find((v) => typeof v === 'string' && MFA_VALUE.test(v));
      // A union of replies lists every value; only the status the MFA shape belongs to decides.
      if (typeof value === 'string') return { reply, matcher: { status: reply.status, body: { path: f.name, equals: value } } };
      if (f.values?.includes(true) && MFA_WORDS.test(leaf(f.name))) return { reply, matcher: { body: { path: f.name, equals: true } } };
    }
  }
  return undefined;
}

/** OAuth's MFA grant: a required field whose one value names an MFA grant type. */
function hasMfaGrant(op: ApiOperation): boolean {
  return op.body.some((f) => f.values?.some((v) => typeof v === 'string' && /mfa/i.test(v)));
}

/** How the verification says "accepted": a status, and a field value that names success. */
function acceptedMatcher(verify: ApiOperation): Record<string, unknown> | undefined {
  const reply = ok(verify)[0];
  if (!reply) return undefined;
  const field = reply.fields.find(
    (f) => topLevel(f) && f.values?.length === 1 && /authenticated|success|ok|verified/i.test(String(f.values[0])),
  );
  return field ? { status: reply.status, body: { path: field.name, equals: field.values![0] } } : { status: reply.status };
}

/** Where the new TOTP secret is in the set-up reply: a `secret` field, or inside an otpauth:// URI. */
function secretField(op: ApiOperation): Record<string, string> | undefined {
  const fields = ok(op).flatMap((r) => r.fields);
  const secret = fields.find((f) => /secret/i.test(leaf(f.name)) && f.type === 'string');
  if (secret) return { json: secret.name };
  const uri = fields.find((f) => /otpauth|uri|url/i.test(leaf(f.name)) && f.type === 'string');
  return uri ? { regex: 'secret=([A-Za-z2-7]+)' } : undefined;
}

/** A value for a required field the draft has no meaning for. */
function placeholderFor(op: ApiOperation, name: string): unknown {
  const f = op.body.find((x) => x.name === name);
  if (f?.values?.length) return f.values[0];
  if (f?.type === 'boolean') return true;
  if (f?.type === 'integer' || f?.type === 'number') return 1;
  if (f?.type === 'array') return [];
  return `audit-{nonce}`;
}

/** For a `{param}` of an action: a protected list under the same path whose items have an id. */
function paramLookup(ops: ApiOperation[], action: ApiOperation, _name: string): Record<string, unknown> | undefined {
  const parent = action.path.replace(/\/\{\w+\}.*$/, '');
  const lists = ops
    .filter(
      (op) => op.method === 'GET' && !hasParams(op) && op.secured === true && (parent === op.path || parent.startsWith(`${op.path}/`)),
    )
    .sort((a, b) => b.path.length - a.path.length);
  for (const list of lists) {
    const id = ok(list)
      .flatMap((r) => r.fields)
      .find((f) => /\.0\.id$/.test(f.name));
    if (id) return { method: 'GET', path: list.path, field: id.name };
  }
  return undefined;
}
