/**
 * The security settings page: e-mail address and password (account-view.ts), second
 * factors, recovery codes, sessions, trusted devices, API tokens and recent activity. Pure rendering; pages/settings.ts loads the data.
 */
import { RISK_SIGNALS, SIGNAL_WORDS, type RiskSignal } from '../core/risk.js';
import type { EffectivePolicy } from '../core/role-policy.js';
import type { Gatehouse } from '../gatehouse.js';
import { accountSections, type AccountFormState } from './account-view.js';
import { html, type Html } from './html.js';
import { csrfField, field, postButton } from './views.js';

type Loaded<F extends (...args: never[]) => unknown> = Awaited<ReturnType<F>>;

export interface SettingsData {
  /** The scopes the host app declared, offered for new API tokens. */
  scopes: readonly string[];
  sessionId: string;
  csrf: string;
  /** The account's address (the e-mail section shows it). */
  email: string;
  /** What the e-mail and password forms show after a post. */
  account: AccountFormState;
  mfa: Loaded<Gatehouse['factors']['list']>;
  passkeys: Loaded<Gatehouse['webauthn']['list']>;
  sessions: Loaded<Gatehouse['sessions']['list']>;
  events: Loaded<Gatehouse['log']['list']>;
  tokens: Loaded<Gatehouse['apiTokens']['list']>;
  /** null: trusted devices are turned off (the section is not shown). */
  devices: Loaded<Gatehouse['trustedDevices']['list']> | null;
  /** Linked sign-ins with upstream OpenID Providers, and the upstreams offered (none: the section is not shown). */
  upstreams: {
    linked: Loaded<Gatehouse['federation']['linkedTo']>;
    offered: readonly { name: string; label?: string | null | undefined }[];
  };
  /** The MFA policy that applies to the account and why (services/policy.ts). */
  policy: EffectivePolicy & { roles: string[]; dueAt: number | null; enrolled: boolean };
}

/** Security-log types in words; unknown types are shown as they are. */
const EVENT_NAMES: Record<string, string> = {
  'account.created': 'Account created',
  'login.succeeded': 'Signed in',
  'login.failed': 'Wrong password entered',
  'mfa.failed': 'Wrong second factor entered',
  'mfa.verified': 'Second factor verified',
  'mfa.step_up': 'Confirmed it was you (step-up)',
  'mfa.recovery_code_used': 'Recovery code used',
  'mfa.factor_added': 'Second factor added',
  'mfa.factor_removed': 'Second factor removed',
  'mfa.recovery_codes_regenerated': 'New recovery codes created',
  'mfa.webauthn_sign_count_regression': 'Passkey refused: its counter went backwards (possible clone)',
  'mfa.webauthn_backup_state_changed': 'Passkey backup state changed',
  'account.locked': 'Account temporarily locked after failed attempts',
  'account.email_change_requested': 'Email address change requested (your current address was told)',
  'account.email_change_cancelled': 'Email address change cancelled from the link sent to your address',
  'account.email_changed': 'Email address changed',
  'account.password_changed': 'Password changed',
  'session.revoked': 'A session was signed out',
  'token.created': 'API token created',
  'token.revoked': 'API token revoked',
  'password_reset.requested': 'Password reset requested',
  'password_reset.completed': 'Password reset',
  'upstream.linked': 'Sign-in with another provider linked',
  'upstream.unlinked': 'Sign-in with another provider unlinked',
  'login.challenged': 'Asked for your second factor',
  'account.enrolment_reminder': 'Reminder: your role requires a second factor',
  'account.roles_changed': 'Your roles were changed',
  'admin.sessions_revoked': 'An administrator signed out your sessions',
  'admin.account_unlocked': 'An administrator unlocked your account',
  'admin.factors_reset': 'An administrator reset your second factors',
  'account.recovered': 'Recovery link used to set up a new second factor',
};

/** "asked for your code because: new network" (or "signed in; noticed: …"). */
function riskNote(type: string, details: string): string | null {
  let signals: RiskSignal[] = [];
  try {
    const parsed = (JSON.parse(details) as { risk?: unknown }).risk;
    if (Array.isArray(parsed)) signals = RISK_SIGNALS.filter((s) => parsed.includes(s));
  } catch {
    return null;
  }
  if (signals.length === 0) return null;
  const words = signals.map((s) => SIGNAL_WORDS[s]).join(', ');
  return type === 'login.challenged' ? `asked for your code because: ${words}` : `noticed: ${words}`;
}

function policySection(p: SettingsData['policy']): Html {
  const kinds = p.allowedFactors === null ? 'any' : p.allowedFactors.map((k) => FACTOR_NAMES[k] ?? k).join(', ') || 'none';
  const due =
    p.mfa === 'required' && !p.enrolled && p.dueAt !== null
      ? html`<p class="error" id="enrolment-due">
          Set up a second factor before ${when(p.dueAt)}: after that, your account can only be used to set one up.
        </p>`
      : null;
  return html`<section class="card" aria-labelledby="h-policy">
    <h2 id="h-policy">Your sign-in policy</h2>
    <p id="policy-summary">
      Second factor: <strong>${p.mfa}</strong> · counts: <strong>${kinds}</strong> · sensitive actions need a check within
      <strong>${Math.round(p.stepUpMaxAgeSeconds / 60)} min</strong>${p.roles.length ? html` · roles: ${p.roles.join(', ')}` : null}
    </p>
    ${due}
    ${
      p.because.length
        ? html`<p>Why:</p>
            <ul id="policy-because">
              ${p.because.map((b) => html`<li>${b}</li>`)}
            </ul>`
        : html`<p class="muted" id="policy-because">This server’s default policy applies to your account.</p>`
    }
  </section>`;
}

const FACTOR_NAMES: Record<string, string> = { totp: 'Authenticator app', webauthn: 'Passkey', recovery_code: 'Recovery code' };

const when = (iso: string | number | null | undefined) => {
  if (iso === null || iso === undefined) return html`<span class="muted">never</span>`;
  const d = new Date(iso);
  return html`<time datetime="${d.toISOString()}">${d.toISOString().slice(0, 16).replace('T', ' ')} UTC</time>`;
};

/** One row of a list: what it is (and a mark after it), details under it, and the button that ends it. */
const item = (name: string, detail: Html, action: Html | null, mark: Html | null = null) =>
  html`<li>
    <span><strong>${name}</strong>${mark}<br /><span class="muted">${detail}</span></span
    >${action}
  </li>`;

/**
 * Linked sign-ins: each can be unlinked (★: the step-up prompt in place when the session is
 * not fresh); upstreams not linked yet can be linked through their sign-in, which asks to
 * confirm on the link page.
 */
function upstreamsSection(d: SettingsData): Html | null {
  const { linked, offered } = d.upstreams;
  if (linked.length === 0 && offered.length === 0) return null;
  const labelOf = (name: string) => offered.find((u) => u.name === name)?.label ?? name;
  const notLinked = offered.filter((u) => !linked.some((l) => l.upstream === u.name));
  return html`<section class="card" aria-labelledby="h-upstreams">
    <h2 id="h-upstreams">Linked sign-ins</h2>
    ${
      linked.length
        ? html`<ul class="list" id="linked-sign-ins">
            ${linked.map((l) =>
              item(
                labelOf(l.upstream),
                html`${l.email ?? 'no e-mail address'} · linked ${when(l.createdAt)}`,
                postButton({
                  action: '/settings/upstreams/unlink',
                  csrf: d.csrf,
                  fields: { linkId: l.id },
                  className: 'danger',
                  ariaLabel: `Unlink ${labelOf(l.upstream)}`,
                  label: 'Unlink',
                }),
              ),
            )}
          </ul>`
        : html`<p class="muted">No sign-in with another provider is linked.</p>`
    }
    ${notLinked.map((u) => html`<p><a class="button secondary" href="/sign-in/upstream/${u.name}">Link ${u.label ?? u.name}</a></p>`)}
    <p class="hint">A linked sign-in counts as your password: your second factor is still asked.</p>
  </section>`;
}

export function settingsView(d: SettingsData): Html {
  const { csrf } = d;
  const labels = new Map(d.passkeys.map((p) => [p.id, p]));
  const factorItems = d.mfa.factors.map((f) => {
    const pk = labels.get(f.id);
    const name = pk ? `Passkey “${pk.label ?? 'Passkey'}”` : (FACTOR_NAMES[f.type] ?? f.type);
    const detail = pk
      ? html` · ${pk.backedUp ? 'synced' : 'this device only'}${pk.userVerified ? ' · with PIN or biometrics' : ''} · last used
        ${when(pk.lastUsedAt)}`
      : null;
    return item(
      name,
      html`added ${when(f.createdAt)}${detail}`,
      postButton({
        action: '/settings/factors/remove',
        csrf,
        fields: { factorId: f.id, type: f.type },
        className: 'danger',
        ariaLabel: `Remove ${name}`,
        label: 'Remove',
      }),
    );
  });
  const hasTotp = d.mfa.factors.some((f) => f.type === 'totp');
  return html` ${policySection(d.policy)} ${accountSections({ email: d.email, csrf, state: d.account })}
    <section class="card" aria-labelledby="h-factors">
      <h2 id="h-factors">Second factors</h2>
      ${
        factorItems.length
          ? html`<ul class="list">
              ${factorItems}
            </ul>`
          : html`<p>You have no second factor. Add one so a stolen password is not enough to get in.</p>`
      }
      ${hasTotp ? null : postButton({ action: '/settings/totp/setup', csrf, label: 'Add authenticator app' })}
      ${postButton({ action: '/settings/passkeys/new', csrf, label: 'Add a passkey', className: hasTotp ? '' : 'secondary' })}
    </section>
    ${
      d.mfa.factors.length
        ? html`<section class="card" aria-labelledby="h-codes">
            <h2 id="h-codes">Recovery codes</h2>
            <p><strong id="codes-remaining">${d.mfa.recoveryCodesRemaining}</strong> of 10 unused recovery codes left.</p>
            ${postButton({ action: '/settings/recovery-codes', csrf, label: 'Create new codes', className: 'secondary' })}
            <p class="hint">New codes replace all old ones.</p>
          </section>`
        : null
    }
    ${upstreamsSection(d)}
    <section class="card" aria-labelledby="h-sessions">
      <h2 id="h-sessions">Where you’re signed in</h2>
      <ul class="list">
        ${d.sessions.map((row) =>
          item(
            row.user_agent.slice(0, 80) || 'Unknown client',
            html`${row.ip} · ${row.state === 'full' ? 'signed in' : 'waiting for second factor'} · since ${when(row.created_at)} · last seen
            ${when(row.last_seen_at)}`,
            postButton({
              action: '/settings/sessions/revoke',
              csrf,
              fields: { sessionId: row.id },
              className: 'danger',
              ariaLabel: `Sign out ${row.id === d.sessionId ? 'this session' : `session from ${row.ip}`}`,
              label: 'Sign out',
            }),
            row.id === d.sessionId ? html` <em>(this session)</em>` : null,
          ),
        )}
      </ul>
    </section>
    ${
      d.devices
        ? html`<section class="card" aria-labelledby="h-devices">
            <h2 id="h-devices">Trusted devices</h2>
            ${
              d.devices.length
                ? html`<ul class="list">
                    ${d.devices.map((dev) => item(dev.userAgent.slice(0, 80) || 'Unknown device', html`${dev.ip} · trusted until ${when(dev.expiresAt)}`, postButton({ action: '/settings/devices/revoke', csrf, fields: { deviceId: dev.id }, className: 'danger', label: 'Forget' })))}
                  </ul>`
                : html`<p class="muted">No trusted devices.</p>`
            }
          </section>`
        : null
    }
    <section class="card" aria-labelledby="h-tokens">
      <h2 id="h-tokens">API tokens</h2>
      ${
        d.tokens.length
          ? html`<ul class="list">
              ${d.tokens.map((t) => item(t.name, html`${t.scopes.join(', ') || 'no scopes'} · created ${when(t.createdAt)} · last used ${when(t.lastUsedAt)}`, postButton({ action: '/settings/tokens/revoke', csrf, fields: { tokenId: t.id }, className: 'danger', ariaLabel: `Revoke token ${t.name}`, label: 'Revoke' })))}
            </ul>`
          : html`<p class="muted">No API tokens.</p>`
      }
      <form method="post" action="/settings/tokens">
        ${csrfField(csrf)} ${field({ name: 'name', label: 'New token name', maxlength: 100 })}
        <fieldset>
          <legend>Scopes</legend>
          ${d.scopes.map((s) => html`<label class="check"><input type="checkbox" name="scopes" value="${s}" /> ${s}</label>`)}
        </fieldset>
        <button type="submit" class="secondary">Create token</button>
      </form>
    </section>
    <section class="card" aria-labelledby="h-activity">
      <h2 id="h-activity">Recent security activity</h2>
      <ul class="list">
        ${d.events.map((e) => {
          const note = riskNote(e.type, e.details);
          return item(
            EVENT_NAMES[e.type] ?? e.type,
            html`${when(e.at)} · ${e.ip}${note ? html` · <span class="risk">${note}</span>` : null}`,
            null,
          );
        })}
      </ul>
    </section>`;
}
