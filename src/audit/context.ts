// The shared vocabulary checks are written in: "log in with the password", "submit a code",
// "ask who I am", "give me a stale session". Everything target-specific comes from the
// profile here, so checks read like the attack they perform.
import { randomBytes } from 'node:crypto';
import { CodeSupply, type IssuedCode } from './factors.js';
import { sleep, type HttpClient, type HttpResult, type OutgoingRequest } from './http-client.js';
import { describeExtractor, extractorOf, extractValue } from './extract.js';
import { fillTemplate, getPath, matches, setPath, succeeded } from './matchers.js';
import type { SecretRegistry } from './mask.js';
import type { Account, FetchFirst, Profile, SensitiveAction } from './profile.js';
import { Session } from './session.js';
import { Inconclusive } from './inconclusive.js';

export interface ProgressEvents {
  onWait?(reason: string, ms: number): void;
}

export type CodePreference = 'totp' | 'recovery' | 'any';

/** What a request step's `fetchFirst` found, to be added to the request. */
export interface Prepared {
  fields: { path: string; value: string }[];
  headers: Record<string, string>;
  /** Values the page did not have (the request goes out without them), for notes and messages. */
  missing: string[];
}

/** A reply to a request step, with what its fetchFirst could not find. */
export type StepResult = HttpResult & { missing: string[] };

/** Any profile request that may say `fetchFirst`. */
export interface StepSpec {
  fetchFirst?: FetchFirst | undefined;
}

/** " (fetchFirst found no …)" for error messages, or "". */
export const missingNote = (missing: readonly string[]): string =>
  missing.length ? `; its fetchFirst found no ${missing.join(', no ')}` : '';

export interface LoginResult {
  session: Session;
  res: HttpResult;
  /** The target said a second factor is required. */
  challenged: boolean;
}

export interface FullLogin {
  session: Session;
  login: HttpResult;
  verify: StepResult;
  code: IssuedCode;
  /** When the second factor was verified, for step-up timing. */
  verifiedAt: number;
}

export class AuditContext {
  readonly account: Account;
  readonly codes: CodeSupply;
  /** Values for `{param}` placeholders in sensitive actions, looked up during preflight. */
  readonly params: Record<string, string> = {};
  /** The preflight's full session: left idle so it goes stale for the step-up checks. */
  preflight: FullLogin | undefined;
  /** Consecutive wrong codes sent for the primary account, to stay clear of its lockout. */
  private wrongStreak = 0;

  constructor(
    readonly profile: Profile,
    readonly http: HttpClient,
    readonly secrets: SecretRegistry,
    private readonly events: ProgressEvents = {},
  ) {
    const account = profile.accounts[0];
    if (!account) throw new Error('profile has no account');
    this.account = account;
    this.codes = new CodeSupply(account.totpSecret, account.recoveryCodes, profile.secondFactor.totpWindow);
    for (const a of profile.accounts) secrets.add(a.password, a.totpSecret, ...a.recoveryCodes);
  }

  nonce(): string {
    return randomBytes(4).toString('hex');
  }

  newSession(): Session {
    const { header, scheme } = this.profile.session;
    return new Session({ header, scheme });
  }

  async wait(ms: number, reason: string): Promise<void> {
    if (ms <= 0) return;
    this.events.onWait?.(reason, ms);
    await sleep(ms);
  }

  /**
   * Sends a request in a session and keeps the cookies the response sets. A bearer session
   * token is taken from the body only for login and second-factor replies (`takeToken`):
   * elsewhere a field of the same name may be something else, e.g. a new API token.
   */
  async send(req: OutgoingRequest, session?: Session, opts: { takeToken?: boolean } = {}): Promise<HttpResult> {
    const res = await this.http.send(req, session);
    if (session) {
      session.absorbSetCookies(res.setCookies);
      const { transport, tokenField } = this.profile.session;
      if (opts.takeToken && transport === 'bearer' && tokenField) {
        const token = getPath(res.json, tokenField);
        if (typeof token === 'string' && token) session.bearer = token;
      }
      this.secrets.add(...session.secrets());
    }
    return res;
  }

  /**
   * Runs a step's `fetchFirst`: GETs the page in the same session (so its cookies join the
   * jar) and reads each value. A value the page lacks is reported, not fatal: the request
   * then goes out without it, since a page that refuses a weak session is itself an answer.
   */
  async prepare(spec: StepSpec, session: Session, opts: { headers?: Record<string, string>; vars?: Record<string, string> } = {}): Promise<Prepared | undefined> {
    const f = spec.fetchFirst;
    if (!f) return undefined;
    const path = fillTemplate(f.path, opts.vars ?? this.vars(this.account));
    const wanted = f.values.map((v) => describeExtractor(extractorOf(v)));
    const res = await this.send({ method: f.method, path, headers: opts.headers, note: `fetch ${path} for ${wanted.join(', ')}` }, session);
    const out: Prepared = { fields: [], headers: {}, missing: [] };
    for (const [i, v] of f.values.entries()) {
      const value = extractValue(extractorOf(v), res, session);
      if (value === undefined) {
        out.missing.push(`${wanted[i]} (GET ${path} answered ${res.status}${res.location ? `, Location ${res.location}` : ''})`);
        continue;
      }
      this.secrets.add(value);
      if (v.field !== undefined) out.fields.push({ path: v.field, value });
      else if (v.header !== undefined) out.headers[v.header] = value;
    }
    return out;
  }

  /** Sends one request step: its fetchFirst (unless already `prepared`), then the request with the values added. */
  async sendStep(
    spec: StepSpec,
    req: OutgoingRequest,
    session: Session,
    opts: { takeToken?: boolean; prepared?: Prepared; vars?: Record<string, string> } = {},
  ): Promise<StepResult> {
    const prepared = opts.prepared ?? (await this.prepare(spec, session, { headers: req.headers, vars: opts.vars }));
    const res = await this.send(withPrepared(req, prepared), session, opts);
    return { ...res, missing: prepared?.missing ?? [] };
  }

  /** Step one only: username and password. */
  async passwordLogin(opts: { account?: Account; remember?: boolean; note?: string } = {}): Promise<LoginResult> {
    const account = opts.account ?? this.account;
    const spec = this.profile.login;
    const body = fillTemplate(structuredClone(spec.body ?? {}), this.vars(account));
    setPath(body, spec.usernameField, account.username);
    setPath(body, spec.passwordField, account.password);
    const remember = this.profile.rememberMe;
    if (opts.remember && remember) setPath(body, remember.loginField, remember.loginValue);
    const session = this.newSession();
    const res = await this.sendStep(
      spec,
      { method: spec.method, path: spec.path, encoding: spec.encoding, body, headers: spec.headers, note: opts.note ?? 'log in with the password' },
      session,
      { takeToken: true, vars: this.vars(account) },
    );
    const challenged = matches(res, spec.mfaRequired);
    // Some apps say "second factor required" with a 401; only an error that is not the
    // challenge means the password login itself failed.
    if (res.status >= 400 && !challenged) {
      throw new Inconclusive(`the password login for ${account.username} failed with status ${res.status}${missingNote(res.missing)}`);
    }
    return { session, res, challenged };
  }

  private codeSpec(kind: IssuedCode['kind']) {
    const factor = this.profile.secondFactor;
    const spec = kind === 'totp' ? factor.totp : factor.recoveryCode;
    if (!spec) throw new Inconclusive(`the profile has no secondFactor.${kind === 'totp' ? 'totp' : 'recoveryCode'}`);
    return spec;
  }

  /**
   * The code form's fetchFirst on its own, so that parallel submissions (the race check)
   * fetch their pages first and then really go out at once.
   */
  async prepareCode(session: Session, kind: IssuedCode['kind'], headers?: Record<string, string>): Promise<Prepared | undefined> {
    return this.prepare(this.codeSpec(kind), session, { headers });
  }

  /** Step two: submits a TOTP or recovery code in the session. */
  async submitCode(
    session: Session,
    code: Pick<IssuedCode, 'kind' | 'code'>,
    opts: { note?: string; headers?: Record<string, string>; prepared?: Prepared | undefined } = {},
  ): Promise<{ res: StepResult; accepted: boolean }> {
    const factor = this.profile.secondFactor;
    const spec = this.codeSpec(code.kind);
    this.secrets.add(code.code);
    const body = structuredClone(spec.body ?? {});
    setPath(body, spec.codeField, code.code);
    const res = await this.sendStep(
      spec,
      {
        method: spec.method,
        path: spec.path,
        encoding: spec.encoding,
        body,
        headers: { ...spec.headers, ...opts.headers },
        note: opts.note ?? `submit the ${code.kind === 'totp' ? 'TOTP' : 'recovery'} code`,
      },
      session,
      { takeToken: true, ...(opts.prepared ? { prepared: opts.prepared } : {}) },
    );
    const accepted = succeeded(res, factor.accepted);
    // Every session the checks submit codes in belongs to the primary account.
    this.wrongStreak = accepted ? 0 : this.wrongStreak + 1;
    return { res, accepted };
  }

  /** Whether the response says the target is limiting second-factor attempts. */
  isLimited(res: HttpResult): boolean {
    return matches(res, this.profile.secondFactor.limited);
  }

  /** A valid code for the primary account, waiting for the next TOTP step only if unavoidable. */
  async issueCode(preference: CodePreference): Promise<IssuedCode> {
    if (preference !== 'totp') {
      const recovery = this.codes.takeRecovery(false);
      if (recovery) return recovery;
      if (preference === 'recovery') throw new Inconclusive('no spare recovery code left in the profile');
    }
    if (!this.codes.hasTotp) {
      throw new Inconclusive('no TOTP secret and no spare recovery code left: add more recovery codes to the profile');
    }
    await this.wait(this.codes.totpWaitMs(), 'waiting for the next TOTP time step');
    return this.codes.takeTotp();
  }

  /** Password plus a second factor; fails the check (inconclusive) if the target refuses. */
  async fullLogin(opts: { remember?: boolean; code?: IssuedCode; preference?: CodePreference; note?: string } = {}): Promise<FullLogin> {
    const login = await this.passwordLogin({ remember: opts.remember, note: opts.note ?? 'log in with the password' });
    const code = opts.code ?? (await this.issueCode(opts.preference ?? 'any'));
    const { res: verify, accepted } = await this.submitCode(login.session, code, {
      note: `complete the login with a ${code.kind === 'totp' ? 'TOTP' : 'recovery'} code`,
    });
    if (!accepted) {
      throw new Inconclusive(
        `a valid ${code.kind} code was refused (status ${verify.status}${missingNote(verify.missing)}); is the profile's secret or code list current?`,
      );
    }
    return { session: login.session, login: login.res, verify, code, verifiedAt: Date.now() };
  }

  async whoami(session: Session, note = 'ask the protected who-am-I endpoint'): Promise<{ res: HttpResult; ok: boolean }> {
    const w = this.profile.whoami;
    const res = await this.send({ method: w.method, path: w.path, note }, session);
    return { res, ok: succeeded(res, w.success) };
  }

  /** Reads a value (JSON field or extractor) from a reply, e.g. an API token or a `params` lookup. */
  extract(spec: Parameters<typeof extractorOf>[0], res: HttpResult, session?: Session, jsonField?: string): string | undefined {
    return extractValue(extractorOf(spec, jsonField), res, session);
  }

  /**
   * The preflight session once it is older than the step-up window: it has a verified
   * second factor, but not a fresh one. Waits only for what is left of the window.
   */
  async staleSession(): Promise<Session> {
    const stepUp = this.profile.stepUp;
    if (!stepUp || !this.preflight) throw new Inconclusive('no stale session available');
    const staleAt = this.preflight.verifiedAt + stepUp.maxAgeSeconds * 1000 + 1000;
    await this.wait(staleAt - Date.now(), `waiting out the ${stepUp.maxAgeSeconds}s step-up window`);
    return this.preflight.session;
  }

  /**
   * Before sending up to `wrongCodes` wrong codes: if that could reach the account's
   * lockout threshold, clear the streak with one correct login first, so the audit does
   * not lock the test account (and then misreport every later check).
   */
  async ensureHeadroom(wrongCodes: number): Promise<void> {
    if (this.wrongStreak > 0 && this.wrongStreak + wrongCodes >= this.profile.limits.lockoutAfter) {
      try {
        await this.fullLogin({ note: 'log in correctly to reset the wrong-code count (avoids locking the account)' });
      } catch (err) {
        // Best effort: a target still limiting this client may refuse even a correct code.
        // The check itself decides what its own responses mean.
        if (!(err instanceof Inconclusive)) throw err;
      }
    }
  }

  /** The request for a sensitive action, with placeholders filled. */
  sensitiveRequest(action: SensitiveAction, note: string): OutgoingRequest {
    const vars = { ...this.vars(this.account), ...this.params };
    return {
      method: action.method,
      path: fillTemplate(action.path, vars),
      encoding: action.encoding,
      body: action.body === undefined ? undefined : fillTemplate(structuredClone(action.body), vars),
      headers: action.headers,
      note,
    };
  }

  vars(account: Account): Record<string, string> {
    return { username: account.username, password: account.password, nonce: this.nonce() };
  }
}

/** The request with what fetchFirst found: body fields (form or JSON) and headers. */
export function withPrepared(req: OutgoingRequest, prepared: Prepared | undefined): OutgoingRequest {
  if (!prepared) return req;
  let body = req.body;
  if (prepared.fields.length) {
    body = structuredClone(req.body ?? {});
    for (const f of prepared.fields) setPath(body, f.path, f.value);
  }
  const note = prepared.missing.length ? `${req.note} (sent without ${prepared.missing.join(', ')})` : req.note;
  return { ...req, body, headers: { ...req.headers, ...prepared.headers }, note };
}
