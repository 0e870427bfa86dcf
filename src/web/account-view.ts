/**
 * The settings page's "Email address" and "Password" sections. Pure rendering;
 * pages/account.ts handles the posts. Passwords are never put back into the page: a
 * refusal only names the field it belongs to.
 */
import { displayEmail } from '../core/email.js';
import { html, type Html } from './html.js';
import { csrfField, field } from './views.js';

export type PasswordField = 'currentPassword' | 'newPassword' | 'confirmPassword';

/** What the two forms show after a post: the typed address (not a secret), refusals, focus. */
export interface AccountFormState {
  email?: { value: string; error: string | null };
  password?: { errorField: PasswordField | null; error: string | null; focus?: boolean };
}

export function accountSections(v: { email: string; csrf: string; state: AccountFormState }): Html {
  const e = v.state.email;
  const p = v.state.password;
  const pwError = (name: PasswordField) => (p?.errorField === name ? p.error : null);
  return html`<section class="card" aria-labelledby="h-email">
      <h2 id="h-email">Email address</h2>
      <p>You sign in with <strong>${displayEmail(v.email)}</strong>.</p>
      <form method="post" action="/settings/email" novalidate>
        ${csrfField(v.csrf)}
        ${field({ name: 'email', label: 'New email address', type: 'email', autocomplete: 'email', maxlength: 320, value: e?.value ?? '', hint: 'We send a link to the new address; your address changes when you open it.', error: e?.error ?? null })}
        <button type="submit" class="secondary">Change email address</button>
      </form>
    </section>
    <section class="card" aria-labelledby="h-password">
      <h2 id="h-password">Password</h2>
      <form method="post" action="/settings/password" novalidate>
        ${csrfField(v.csrf)}
        <input type="email" name="username" autocomplete="username" value="${v.email}" hidden readonly />
        ${field({ name: 'currentPassword', label: 'Current password', type: 'password', autocomplete: 'current-password', autofocus: Boolean(p?.focus), error: pwError('currentPassword') })}
        ${field({ name: 'newPassword', label: 'New password', type: 'password', autocomplete: 'new-password', hint: 'At least 8 characters. Long passphrases are best; common passwords are refused. Your other sessions are signed out.', error: pwError('newPassword') })}
        ${field({ name: 'confirmPassword', label: 'New password again', type: 'password', autocomplete: 'new-password', error: pwError('confirmPassword') })}
        <button type="submit" class="secondary">Change password</button>
      </form>
    </section>`;
}
