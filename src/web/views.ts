/**
 * Server-rendered pages. Every value is escaped by `html`; the only script is
 * /assets/gatehouse.js (CSP: script-src 'self'), needed for passkeys alone.
 */
import { html, raw, type Html } from './html.js';

export interface Shell {
  title: string;
  /** Shown in the header: a signed-in (full) user. */
  user?: { email: string; csrf: string } | null;
  /** role=alert error summary at the top of main. */
  error?: string | null;
  notice?: string | null;
  body: Html;
}

/** `product`: the deployment's product name (GATEHOUSE_PRODUCT_NAME), in the title and the header. */
export function page(shell: Shell, product = 'Gatehouse'): string {
  const signOut = shell.user
    ? html`<form method="post" action="/sign-out">
        <input type="hidden" name="_csrf" value="${shell.user.csrf}" /><span class="muted">${shell.user.email}</span>
        <button class="link" type="submit">Sign out</button>
      </form>`
    : null;
  return html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>${shell.title} · ${product}</title>
        <link rel="stylesheet" href="/assets/gatehouse.css" />
        <script type="module" src="/assets/gatehouse.js"></script>
      </head>
      <body>
        <header class="site"><a class="brand" href="/">${product}</a>${signOut}</header>
        <main id="main" tabindex="-1">
          <h1>${shell.title}</h1>
          ${shell.error ? html`<div class="alert" role="alert" id="form-error">${shell.error}</div>` : null}
          ${shell.notice ? html`<div class="notice" role="status">${shell.notice}</div>` : null} ${shell.body}
        </main>
      </body>
    </html>`.value;
}

/**
 * The pages are written with root-relative URLs (`href="/settings"`); under a base path
 * (the plugin's prefix) every such href, form action, src and passkey-options URL is moved
 * under it here, in one place. Only markup written in this folder can produce `attr="/`:
 * `html` escapes the quote in every interpolated value. `//host` (another origin) is left alone.
 */
export function rootedAt(base: string, markup: string): string {
  return base === '' ? markup : markup.replace(ROOT_RELATIVE_URL, (_m, attribute: string) => `${attribute}="${base}/`);
}

const ROOT_RELATIVE_URL = /\b(href|action|src|data-options)="\/(?!\/)/g;

/** Hidden form-token field for forms of a signed-in session. */
export const csrfField = (csrf: string | null | undefined) => (csrf ? html`<input type="hidden" name="_csrf" value="${csrf}" />` : null);

/** A form that is one button: posts the form token and `fields` to `action`. */
export function postButton(o: {
  action: string;
  csrf: string;
  label: string;
  fields?: Record<string, string>;
  className?: string;
  ariaLabel?: string;
  card?: boolean;
}): Html {
  const hidden = Object.entries(o.fields ?? {}).map(([name, value]) => html`<input type="hidden" name="${name}" value="${value}" />`);
  return html`<form${o.card ? raw(' class="card"') : null} method="post" action="${o.action}">${csrfField(o.csrf)}${hidden}<button${o.className ? html` class="${o.className}"` : null} type="submit"${
    o.ariaLabel ? html` aria-label="${o.ariaLabel}"` : null
  }>${o.label}</button></form>`;
}

/** A labelled input. `error` marks it invalid and describes it; the first error gets focus. */
export function field(opts: {
  name: string;
  label: string;
  type?: string;
  value?: string;
  autocomplete?: string;
  error?: string | null;
  autofocus?: boolean;
  hint?: string;
  inputmode?: string;
  className?: string;
  required?: boolean;
  maxlength?: number;
  pattern?: string;
  /** Element id, when one form page holds several fields of the same name. */
  id?: string;
}): Html {
  const id = opts.id ?? `f-${opts.name}`;
  const described = [opts.hint ? `${id}-hint` : null, opts.error ? `${id}-error` : null].filter(Boolean).join(' ');
  return html`<label for="${id}">${opts.label}</label>
    ${opts.hint ? html`<p class="hint" id="${id}-hint">${opts.hint}</p>` : null}
    <input
      id="${id}"
      name="${opts.name}"
      type="${opts.type ?? 'text'}"
      ${opts.value !== undefined ? html` value="${opts.value}"` : null}${
        opts.autocomplete ? html` autocomplete="${opts.autocomplete}"` : null
      }${opts.inputmode ? html` inputmode="${opts.inputmode}"` : null}${opts.className ? html` class="${opts.className}"` : null}${
        opts.required !== false ? raw(' required') : null
      }${opts.maxlength ? html` maxlength="${opts.maxlength}"` : null}${opts.pattern ? html` pattern="${opts.pattern}"` : null}${
        opts.autofocus || opts.error ? raw(' autofocus') : null
      }${opts.error ? raw(' aria-invalid="true"') : null}${described ? html` aria-describedby="${described}"` : null}
    />
    ${opts.error ? html`<p class="field-error" id="${id}-error">${opts.error}</p>` : null}`;
}

export function signUpView(v: { email?: string; error?: string | null; errorField?: 'email' | 'password' | null }): Html {
  return html`<form class="card" method="post" action="/sign-up" novalidate>
      ${field({ name: 'email', label: 'Email address', type: 'email', value: v.email ?? '', autocomplete: 'username', autofocus: true, error: v.errorField === 'email' ? v.error : null })}
      ${field({ name: 'password', label: 'Password', type: 'password', autocomplete: 'new-password', hint: 'At least 8 characters. Long passphrases are best; common passwords are refused.', error: v.errorField === 'password' ? v.error : null })}
      <button type="submit">Create account</button>
    </form>
    <p>Already have an account? <a href="/sign-in">Sign in</a></p>`;
}

export function signInView(v: {
  email?: string;
  error?: string | null;
  upstreams?: ReadonlyArray<{ name: string; label?: string }>;
}): Html {
  return html`<form class="card" method="post" action="/sign-in" novalidate>
      ${field({ name: 'email', label: 'Email address', type: 'email', value: v.email ?? '', autocomplete: 'username', autofocus: !v.error && !v.email, error: null })}
      ${field({ name: 'password', label: 'Password', type: 'password', autocomplete: 'current-password', autofocus: Boolean(v.email) || Boolean(v.error) })}
      <label class="check"><input type="checkbox" name="remember" value="1" /> Keep me signed in on this device</label>
      <button type="submit">Sign in</button>
    </form>
    ${(v.upstreams ?? []).map((u) => html`<p><a class="button" href="/sign-in/upstream/${u.name}">Sign in with ${u.label ?? u.name}</a></p>`)}
    <p><a href="/forgot-password">Forgot your password?</a> · <a href="/sign-up">Create an account</a></p>`;
}

export interface FactorForms {
  methods: string[];
  /** Field names differ between the login challenge and the in-place step-up. */
  prefix: '' | 'stepup_';
  action: string;
  /** Hidden fields carried along (step-up: the original action's fields). */
  hidden: Html | null;
  passkeyOptionsUrl: string;
  errorMethod?: string | null;
  error?: string | null;
  trustDevice?: boolean;
}

/** The second-factor forms: TOTP, recovery code, passkey, and (no factor) password. */
export function factorForms(f: FactorForms): Html {
  const p = f.prefix;
  const has = (m: string) => f.methods.includes(m);
  const trust = f.trustDevice
    ? html`<label class="check"
        ><input type="checkbox" name="trustDevice" value="1" /> Trust this device (skip the second factor here next time)</label
      >`
    : null;
  const forms: Html[] = [];
  if (has('webauthn')) {
    forms.push(
      html`<form class="card" method="post" action="${f.action}">
        ${f.hidden}<input type="hidden" name="${p}method" value="webauthn" /><input type="hidden" name="${p}response" value="" />
        <h2>Use your passkey</h2>
        <p class="hint">Your browser will ask for your security key, fingerprint, face or device PIN.</p>
        ${trust}
        <button
          type="button"
          data-passkey="authenticate"
          data-options="${f.passkeyOptionsUrl}"
          data-field="${p}response"
          data-status="passkey-status"
          hidden
        >
          Use passkey
        </button>
        <noscript><p class="hint">Passkeys need JavaScript; use a code below instead.</p></noscript>
        <p class="field-error" role="alert" id="passkey-status" ${f.errorMethod === 'webauthn' ? null : raw(' hidden')}>
          ${f.errorMethod === 'webauthn' ? f.error : ''}
        </p>
      </form>`,
    );
  }
  if (has('totp')) {
    forms.push(
      html`<form class="card" method="post" action="${f.action}">
        ${f.hidden}<input type="hidden" name="${p}method" value="totp" />
        <h2>Authenticator app</h2>
        ${field({ id: `f-${p}totp`, name: `${p}code`, label: '6-digit code from your authenticator app', autocomplete: 'one-time-code', inputmode: 'numeric', className: 'code', maxlength: 6, pattern: '[0-9]{6}', autofocus: !has('webauthn') || f.errorMethod === 'totp', error: f.errorMethod === 'totp' ? f.error : null })}
        ${trust}
        <button type="submit">Verify</button>
      </form>`,
    );
  }
  if (has('recovery_code')) {
    forms.push(html`<details${f.errorMethod === 'recovery_code' ? raw(' open') : null}><summary>Use a recovery code</summary>
<form class="card" method="post" action="${f.action}">
${f.hidden}<input type="hidden" name="${p}method" value="recovery_code">
${field({ id: `f-${p}recovery`, name: `${p}code`, label: 'Recovery code', autocomplete: 'off', className: 'code', hint: 'Each code works once.', autofocus: f.errorMethod === 'recovery_code', error: f.errorMethod === 'recovery_code' ? f.error : null })}
${trust}
<button type="submit">Use recovery code</button>
</form></details>`);
  }
  if (has('password')) {
    forms.push(
      html`<form class="card" method="post" action="${f.action}">
        ${f.hidden}<input type="hidden" name="${p}method" value="password" />
        ${field({ name: `${p}password`, label: 'Your password', type: 'password', autocomplete: 'current-password', autofocus: true, error: f.errorMethod === 'password' ? f.error : null })}
        <button type="submit">Confirm</button>
      </form>`,
    );
  }
  if (forms.length === 0) forms.push(html`<p class="alert" role="alert">No method you have can confirm this action here.</p>`);
  return html`${forms}`;
}

export function forgotView(v: { email?: string; sent?: boolean; error?: string | null }): Html {
  if (v.sent)
    return html`<p class="card">
        If an account exists for that address, we have sent it a link to choose a new password. The link works once, for 30 minutes.
      </p>
      <p><a href="/sign-in">Back to sign in</a></p>`;
  return html`<form class="card" method="post" action="/forgot-password" novalidate>
      ${field({ name: 'email', label: 'Email address', type: 'email', value: v.email ?? '', autocomplete: 'username', autofocus: true })}
      <button type="submit">Send reset link</button>
    </form>
    <p><a href="/sign-in">Back to sign in</a></p>`;
}

export function resetView(v: { token: string; error?: string | null }): Html {
  return html`<form class="card" method="post" action="/reset-password" novalidate>
    <input type="hidden" name="token" value="${v.token}" />
    ${field({ name: 'password', label: 'New password', type: 'password', autocomplete: 'new-password', autofocus: true, hint: 'At least 8 characters. Every session of the account is signed out.', error: v.error ?? null })}
    <button type="submit">Set new password</button>
  </form>`;
}

/** The recovery link after an admin's factor reset: the password, then setting up a new factor. */
export function recoverView(v: { token: string; error?: string | null }): Html {
  return html`<form class="card" method="post" action="/recover" novalidate>
    <input type="hidden" name="token" value="${v.token}" />
    <p>An administrator reset the second factors of your account. Enter your password to set up a new one.</p>
    ${field({ name: 'password', label: 'Password', type: 'password', autocomplete: 'current-password', autofocus: true, error: v.error ?? null })}
    <button type="submit">Continue</button>
  </form>`;
}

/** A button, not an automatic confirmation: link scanners fetch the mailed URL too. */
export function confirmEmailView(v: { token: string }): Html {
  return html`<form class="card" method="post" action="/confirm-email">
    <input type="hidden" name="token" value="${v.token}" />
    <p>Confirm that this address should be the one your Gatehouse account uses to sign in and to receive security mail.</p>
    <button type="submit">Confirm new address</button>
  </form>`;
}

export function cancelEmailChangeView(v: { token: string }): Html {
  return html`<form class="card" method="post" action="/cancel-email-change">
    <input type="hidden" name="token" value="${v.token}" />
    <p>
      Someone asked to change the e-mail address of your Gatehouse account. Cancel it if it was not you: the change is stopped and the
      session that asked for it is signed out. This does not sign you in.
    </p>
    <button type="submit">Cancel the change</button>
  </form>`;
}

export function recoveryCodesView(codes: string[], next: Html): Html {
  const text = `Gatehouse recovery codes\nEach code works once.\n\n${codes.join('\n')}\n`;
  return html`<section class="card">
      <h2>Your recovery codes</h2>
      <p>Keep these somewhere safe. Each one signs you in once if you lose your authenticator. They are shown only now.</p>
      <ol class="codes" id="recovery-codes">
        ${codes.map((c) => html`<li>${c}</li>`)}
      </ol>
      <a class="button secondary" download="gatehouse-recovery-codes.txt" href="data:text/plain;charset=utf-8,${encodeURIComponent(text)}"
        >Download as text</a
      >
      <button type="button" class="secondary" data-copy="recovery-codes" hidden>Copy</button>
    </section>
    ${next}`;
}
