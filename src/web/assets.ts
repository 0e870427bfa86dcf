/**
 * Static assets of the pages, served by the page plugin under /assets/: the stylesheet,
 * the one script (passkeys and copy buttons; everything else works without it) and the
 * ESM build of @simplewebauthn/browser, read from node_modules at start-up. Kept in code
 * so `tsc` output needs no copy step.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { requires } from '../http/gate.js';

export const STYLESHEET = `
:root { color-scheme: light dark; --fg: #1b1f24; --bg: #f6f7f9; --card: #fff; --muted: #5a6270; --accent: #1d4ed8; --danger: #b42318; --ok: #067647; --line: #d0d5dd; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6e8eb; --bg: #111418; --card: #1b2027; --muted: #a3aab5; --accent: #7aa2ff; --danger: #ff8a80; --ok: #6ee7b7; --line: #38404b; } }
* { box-sizing: border-box; }
[hidden] { display: none !important; }
body { margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
header.site { display: flex; justify-content: space-between; align-items: center; gap: 1rem; padding: .75rem 1rem; border-bottom: 1px solid var(--line); background: var(--card); }
header.site a.brand { font-weight: 700; color: var(--fg); text-decoration: none; }
header.site form { margin: 0; }
main { max-width: 40rem; margin: 0 auto; padding: 1rem; }
main:focus { outline: none; }
h1 { font-size: 1.6rem; margin: 1rem 0; }
h2 { font-size: 1.2rem; margin: 0 0 .75rem; }
section.card, form.card { background: var(--card); border: 1px solid var(--line); border-radius: .75rem; padding: 1rem; margin: 0 0 1rem; }
label { display: block; font-weight: 600; margin: .75rem 0 .25rem; }
label.check { display: flex; gap: .5rem; align-items: center; font-weight: 400; }
input[type=email], input[type=password], input[type=text] { width: 100%; font: inherit; padding: .6rem .7rem; border: 1px solid var(--line); border-radius: .5rem; background: var(--bg); color: var(--fg); }
input[aria-invalid=true] { border-color: var(--danger); }
input.code { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; letter-spacing: .15em; font-size: 1.25rem; }
button, .button { display: inline-block; font: inherit; font-weight: 600; padding: .6rem 1rem; margin: .75rem .5rem 0 0; border-radius: .5rem; border: 1px solid var(--accent); background: var(--accent); color: #fff; cursor: pointer; text-decoration: none; }
button.secondary, .button.secondary { background: transparent; color: var(--accent); }
button.danger { background: transparent; color: var(--danger); border-color: var(--danger); }
button.link { background: none; border: none; color: var(--accent); padding: 0; margin: 0; text-decoration: underline; }
:focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }
.alert { border: 1px solid var(--danger); color: var(--danger); border-radius: .5rem; padding: .75rem; margin: 0 0 1rem; background: var(--card); }
.notice { border: 1px solid var(--ok); color: var(--ok); border-radius: .5rem; padding: .75rem; margin: 0 0 1rem; background: var(--card); }
.hint, .muted { color: var(--muted); font-size: .9rem; }
.field-error { color: var(--danger); font-size: .9rem; margin: .25rem 0 0; }
ul.list { list-style: none; padding: 0; margin: 0; }
ul.list li { display: flex; flex-wrap: wrap; justify-content: space-between; align-items: center; gap: .5rem; padding: .6rem 0; border-top: 1px solid var(--line); }
ul.list li:first-child { border-top: none; }
ul.list li form { margin: 0; }
ul.list li button { margin: 0; }
ol.codes { columns: 2; font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 1.05rem; padding-left: 1.5rem; }
code.secret { display: block; word-break: break-all; font-size: 1.05rem; padding: .5rem; background: var(--bg); border-radius: .5rem; }
img.qr { display: block; width: 200px; height: 200px; background: #fff; padding: 8px; border-radius: .5rem; }
details { margin-top: 1rem; }
summary { cursor: pointer; font-weight: 600; }
fieldset { border: none; padding: 0; margin: 0; }
legend { font-weight: 600; padding: 0; }
.or { text-align: center; color: var(--muted); margin: 1rem 0 0; }
details + form, .card + form, .card + p { margin-top: 1rem; }
`;

export const SCRIPT = `
import { startAuthentication, startRegistration, browserSupportsWebAuthn } from './simplewebauthn/index.js';

function say(el, message) {
  if (!el) return;
  el.textContent = message;
  el.hidden = !message;
}

async function postJson(url) {
  const res = await fetch(url, { method: 'POST', credentials: 'same-origin', headers: { 'content-type': 'application/json', accept: 'application/json' }, body: '{}' });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(body.message || 'The server refused the request.');
  return body;
}

for (const button of document.querySelectorAll('button[data-passkey]')) {
  const form = button.closest('form');
  const status = document.getElementById(button.dataset.status || '');
  if (!browserSupportsWebAuthn()) {
    say(status, 'This browser cannot use passkeys.');
    continue;
  }
  button.hidden = false;
  button.addEventListener('click', async () => {
    button.disabled = true;
    say(status, '');
    try {
      const optionsJSON = await postJson(button.dataset.options);
      const result = button.dataset.passkey === 'register'
        ? await startRegistration({ optionsJSON })
        : await startAuthentication({ optionsJSON });
      form.querySelector('input[name="' + button.dataset.field + '"]').value = JSON.stringify(result);
      form.submit();
    } catch (error) {
      button.disabled = false;
      say(status, error && error.name === 'NotAllowedError' ? 'The passkey request was cancelled or timed out. Try again.' : (error && error.message) || 'The passkey did not work. Try again.');
      button.focus();
    }
  });
}

for (const button of document.querySelectorAll('button[data-copy]')) {
  const source = document.getElementById(button.dataset.copy);
  if (!source || !navigator.clipboard) continue;
  button.hidden = false;
  button.addEventListener('click', async () => {
    await navigator.clipboard.writeText(source.textContent.trim());
    button.textContent = 'Copied';
  });
}
`;

/** The ESM files of @simplewebauthn/browser, by path relative to its esm/ folder. */
export function loadWebAuthnBrowserModules(): Map<string, string> {
  const entry = fileURLToPath(import.meta.resolve('@simplewebauthn/browser'));
  const root = path.dirname(entry);
  const files = new Map<string, string>();
  const walk = (dir: string) => {
    for (const entryName of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entryName.name);
      if (entryName.isDirectory()) walk(full);
      else if (entryName.name.endsWith('.js'))
        files.set(path.relative(root, full).split(path.sep).join('/'), fs.readFileSync(full, 'utf8'));
    }
  };
  walk(root);
  return files;
}

/** /assets/…: public, so the sign-in page can load them. */
export async function assetRoutes(app: FastifyInstance): Promise<void> {
  const modules = loadWebAuthnBrowserModules();
  const js = (reply: FastifyReply, body: string) => reply.type('text/javascript; charset=utf-8').send(body);
  app.get('/assets/gatehouse.css', { config: requires({ session: 'none' }) }, async (_r, reply) =>
    reply.type('text/css; charset=utf-8').send(STYLESHEET),
  );
  app.get('/assets/gatehouse.js', { config: requires({ session: 'none' }) }, async (_r, reply) => js(reply, SCRIPT));
  app.get('/assets/simplewebauthn/*', { config: requires({ session: 'none' }) }, async (request, reply) => {
    const file = modules.get((request.params as { '*': string })['*']);
    return file === undefined ? reply.status(404).type('text/plain').send('not found') : js(reply, file);
  });
}
