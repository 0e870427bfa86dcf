// Gatehouse as described by its HTTP contract (version 1). Written from the contract, not
// from Gatehouse's code: the auditor must stay a black box that speaks HTTP only.
// It has no accounts: a profile that `extends: builtin:gatehouse` adds them (and usually
// a short stepUp window matching the server's GATEHOUSE_STEP_UP_MAX_AGE).
export const gatehouseProfile: Record<string, unknown> = {
  name: 'Gatehouse (HTTP contract v1)',
  login: {
    method: 'POST',
    path: '/api/auth/login',
    encoding: 'json',
    usernameField: 'email',
    passwordField: 'password',
    mfaRequired: { status: 202, body: { path: 'status', equals: 'mfa_required' } },
  },
  // Cookie transport: the auditor sends back every cookie it got, as the contract asks.
  session: { transport: 'cookie' },
  secondFactor: {
    totp: { method: 'POST', path: '/api/auth/mfa/verify', codeField: 'code', body: { method: 'totp' } },
    recoveryCode: {
      method: 'POST',
      path: '/api/auth/mfa/verify',
      codeField: 'code',
      body: { method: 'recovery_code' },
    },
    // For accounts holding a passkey (the software authenticator answers the challenge).
    passkey: {
      options: { method: 'POST', path: '/api/auth/webauthn/options' },
      method: 'POST',
      path: '/api/auth/mfa/verify',
      body: { method: 'webauthn' },
      responseField: 'response',
    },
    accepted: { status: 200, body: { path: 'status', equals: 'authenticated' } },
    limited: { status: 429 },
    totpWindow: 1,
  },
  whoami: { method: 'GET', path: '/api/session', success: { status: 200 } },
  protectedEndpoints: [
    { method: 'GET', path: '/api/account' },
    { method: 'GET', path: '/api/mfa' },
    { method: 'GET', path: '/api/account/events' },
    { method: 'GET', path: '/api/sessions' },
    { method: 'GET', path: '/api/tokens' },
    { method: 'GET', path: '/api/account/transactions' },
  ],
  sensitiveActions: [
    {
      name: 'create API token',
      kind: 'create_api_token',
      method: 'POST',
      path: '/api/tokens',
      body: { name: 'gatehouse-audit-{nonce}', scopes: ['transactions:read'] },
      tokenField: 'token',
    },
    {
      name: 'change e-mail',
      kind: 'change_email',
      method: 'POST',
      path: '/api/account/email',
      body: { email: 'audit-{nonce}@example.invalid' },
    },
    {
      name: 'change password',
      kind: 'change_password',
      method: 'POST',
      path: '/api/account/password',
      // Same password in and out: if the target wrongly accepts it, the account still works.
      body: { currentPassword: '{password}', newPassword: '{password}' },
    },
    {
      name: 'large transfer',
      kind: 'other',
      method: 'POST',
      path: '/api/transfers',
      body: { to: 'audit-{nonce}', amountCents: 100000 },
    },
    {
      name: 'regenerate recovery codes',
      kind: 'other',
      method: 'POST',
      path: '/api/mfa/recovery-codes',
      // Would invalidate the recovery codes the audit relies on, so treat it as account-changing.
      changesAccount: true,
    },
    {
      name: 'remove TOTP factor',
      kind: 'disable_mfa',
      method: 'DELETE',
      path: '/api/mfa/totp/{factorId}',
      params: { factorId: { method: 'GET', path: '/api/mfa', field: 'factors.0.id' } },
    },
  ],
  apiToken: {
    header: 'Authorization',
    scheme: 'Bearer',
    probe: { method: 'GET', path: '/api/account/transactions' },
  },
  rememberMe: {
    loginField: 'remember',
    loginValue: true,
    // No cookie name: the contract does not fix one, so the auditor detects it.
    restore: { method: 'GET', path: '/api/session' },
  },
  passwordReset: {
    request: { method: 'POST', path: '/api/auth/password/forgot', emailField: 'email' },
    // Without GATEHOUSE_SMTP_URL, Gatehouse writes mail into its data dir. Match the reset
    // link itself: other mails (an e-mail change confirmation) carry a token= too.
    token: { from: 'mailDir', dir: './data', pattern: 'reset-password\\?token=([A-Za-z0-9._~%-]+)' },
    reset: { method: 'POST', path: '/api/auth/password/reset', tokenField: 'token', passwordField: 'password' },
  },
  tokenLogin: {
    method: 'POST',
    path: '/api/auth/login',
    usernameField: 'email',
    passwordField: 'password',
    body: { transport: 'token' },
    tokenField: 'sessionToken',
  },
  // With `provision: true` (--provision): sign up and enrol TOTP as any client would.
  accountSetup: {
    username: 'gatehouse-audit-{nonce}@example.test',
    password: 'Audit-{nonce}-pw-{nonce}',
    count: 2,
    steps: [
      { method: 'POST', path: '/api/auth/signup', body: { email: '{username}', password: '{password}' }, expect: { status: 201 } },
      { method: 'POST', path: '/api/mfa/totp/setup', capture: { totpSecret: { json: 'secret' } } },
      { method: 'POST', path: '/api/mfa/totp/confirm', body: { code: '{totp}' }, recoveryCodes: 'recoveryCodes' },
    ],
  },
  stepUp: { maxAgeSeconds: 900 },
  limits: { maxGuesses: 10, lockoutAfter: 10, raceParallelism: 3 },
};
