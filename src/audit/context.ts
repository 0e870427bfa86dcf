// The shared vocabulary checks are written in: "log in with the password", "submit a code",
// "ask who I am", "give me a stale session". Everything target-specific comes from the
// profile here, so checks read like the attack they perform.
import { randomBytes } from 'node:crypto';
import { CodeSupply, type IssuedCode } from './factors.js';
import { sleep, type HttpClient, type HttpResult, type OutgoingRequest } from './http-client.js';
import { describeExtractor, extractorOf, extractValue } from './extract.js';
import { describeMatcher, fillTemplate, getPath, matches, setPath, succeeded } from './matchers.js';
import type { SecretRegistry } from './mask.js';
import type { Account, Extractor, FetchFirst, Profile, SensitiveAction } from './profile.js';
import { Session } from './session.js';
import { Inconclusive, Limited } from './inconclusive.js';
import { assertPasskey } from './passkey.js';

/**
 * Words apps put in a refusal when they stop taking requests. A 4xx saying one of these is
 * read as a limit even when the app answers it with 400 or 403 instead of 429.
 */
const LIMIT_WORDS = /too[\s_-]?many|rate[\s_-]?limit|slow[\s_-]?down|try[\s_-]again[\s_-]later|throttl/i;

/** Retry-After in milliseconds (seconds or an HTTP date), or undefined. */
export function retryAfterMs(res: Pick<HttpResult, 'headers'>, now = Date.now()): number | undefined {
  const raw = res.headers['retry-after'];
  const v = Array.isArray(raw) ? raw[0] : raw;
  if (v === undefined) return undefined;
  if (/^\d+$/.test(v.trim())) return Number(v.trim()) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

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

/** Any profile request step: a page to fetch first, values to carry from its reply, extra query and cookies. */
export interface StepSpec {
  fetchFirst?: FetchFirst | undefined;
  /** Values read from this step's reply into the session, for `{name}` in later steps. */
  capture?: Record<string, Extractor> | undefined;
  query?: Record<string, string> | undefined;
  cookies?: Record<string, string> | undefined;
}

/** The request a profile endpoint describes, with this body, headers and evidence note. */
export function requestOf(
  endpoint: Pick<OutgoingRequest, 'method' | 'path' | 'encoding' | 'headers'>,
  body: Record<string, unknown>,
  note: string,
  headers = endpoint.headers,
): OutgoingRequest {
  return { method: endpoint.method, path: endpoint.path, encoding: endpoint.encoding, body, headers, note };
}

/** For `{password}` and `{totp}`/`{recoveryCode}` in a request: the right value or a wrong one. */
export interface Credentials {
  password: 'right' | 'wrong';
  factor: 'right' | 'wrong';
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
  /**
   * Set when the target limited the auditor's own password logins for longer than it will
   * wait: later checks then report `inconclusive: limited` without sending more.
   */
  private lockout: { until: number; signal: string } | undefined;

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

  /** The audited account holds a passkey and the profile says how to use it. */
  get hasPasskey(): boolean {
    return this.account.passkey !== undefined && this.profile.secondFactor.passkey !== undefined;
  }

  nonce(): string {
    return randomBytes(4).toString('hex');
  }

  newSession(): Session {
    const { header, scheme } = this.profile.session;
    return new Session({ header, scheme }, this.http.origin);
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
      session.absorbSetCookies(res.setCookies, new URL(res.exchange.request.url).pathname);
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
  async prepare(
    spec: StepSpec,
    session: Session,
    opts: { headers?: Record<string, string>; vars?: Record<string, string> } = {},
  ): Promise<Prepared | undefined> {
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

  /**
   * Sends one request step: its fetchFirst (unless already `prepared`), then the request with
   * the values added. `{name}` placeholders anywhere in the path, query, body, headers and
   * cookies are filled from the session's captured values, the account (`{username}`,
   * `{password}`, `{email}`), looked-up params, and `{totp}` (a fresh, never-used step) or
   * `{recoveryCode}` (a spare code) when the step asks for them. The step's `capture` then
   * reads values from the reply into the session, for the steps after it.
   */
  async sendStep(
    spec: StepSpec,
    req: OutgoingRequest,
    session: Session,
    opts: { takeToken?: boolean; prepared?: Prepared; vars?: Record<string, string>; credentials?: Credentials } = {},
  ): Promise<StepResult> {
    const vars = await this.stepVars([req, spec.query, spec.cookies], session, opts.vars, opts.credentials);
    const prepared = opts.prepared ?? (await this.prepare(spec, session, { headers: req.headers, vars }));
    let path = fillTemplate(req.path, vars);
    if (spec.query) {
      const url = new URL(path, 'http://x');
      for (const [k, v] of Object.entries(spec.query)) url.searchParams.set(k, fillTemplate(v, vars));
      path = `${url.pathname}${url.search}`;
    }
    for (const [k, v] of Object.entries(spec.cookies ?? {})) session.setCookie(k, fillTemplate(v, vars));
    const filled: OutgoingRequest = {
      ...req,
      path,
      ...(req.body !== undefined ? { body: fillTemplate(req.body, vars) } : {}),
      ...(req.headers !== undefined ? { headers: fillTemplate(req.headers, vars) } : {}),
    };
    const res = await this.send(withPrepared(filled, prepared), session, opts);
    for (const [name, ex] of Object.entries(spec.capture ?? {})) {
      const value = extractValue(extractorOf(ex), res, session);
      if (value !== undefined) {
        this.secrets.add(value);
        session.vars.set(name, value);
      }
    }
    return { ...res, missing: prepared?.missing ?? [] };
  }

  /** Placeholder values for one step; a code is only issued if the step really asks for one. */
  private async stepVars(
    templates: unknown[],
    session: Session,
    extra: Record<string, string> = {},
    creds?: Credentials,
  ): Promise<Record<string, string>> {
    const text = JSON.stringify(templates);
    const vars: Record<string, string> = { ...this.vars(this.account), ...this.params, ...Object.fromEntries(session.vars), ...extra };
    if (creds?.password === 'wrong') vars.password = `wrong-${this.nonce()}-Pw`;
    if (text.includes('{totp}') && extra.totp === undefined) {
      vars.totp = creds?.factor === 'wrong' ? this.codes.wrongTotp() : (await this.issueCode('totp')).code;
      this.secrets.add(vars.totp);
    }
    if (text.includes('{recoveryCode}') && extra.recoveryCode === undefined) {
      const code = creds?.factor === 'wrong' ? undefined : this.codes.takeRecovery(false);
      vars.recoveryCode = code?.code ?? `wrong-${this.nonce()}`;
      this.secrets.add(vars.recoveryCode);
    }
    return vars;
  }

  /**
   * Step one only: username and password. A limited reply is the auditor's own lockout
   * (a correct password was refused for rate): it waits a short Retry-After out once,
   * otherwise the check ends `inconclusive: limited`.
   */
  async passwordLogin(opts: { account?: Account; remember?: boolean; note?: string } = {}): Promise<LoginResult> {
    if (this.lockout && Date.now() < this.lockout.until) {
      throw new Limited(
        'the target locked the auditor out earlier in the run (correct password logins were limited); not sending more until it ends',
        this.lockout.signal,
      );
    }
    return this.retryLimited(
      'a login with the correct password',
      () => this.passwordLoginOnce(opts),
      (r) => (r.challenged ? undefined : r.res),
      (signal, waitMs) => {
        if (waitMs !== undefined) this.lockout = { until: Date.now() + waitMs, signal };
      },
    );
  }

  private async passwordLoginOnce(opts: { account?: Account; remember?: boolean; note?: string }): Promise<LoginResult> {
    const account = opts.account ?? this.account;
    const spec = this.profile.login;
    const body = fillTemplate(structuredClone(spec.body ?? {}), this.vars(account));
    setPath(body, spec.usernameField, account.username);
    setPath(body, spec.passwordField, account.password);
    const remember = this.profile.rememberMe;
    if (opts.remember && remember) setPath(body, remember.loginField, remember.loginValue);
    const session = this.newSession();
    const res = await this.sendStep(spec, requestOf(spec, body, opts.note ?? 'log in with the password'), session, {
      takeToken: true,
      vars: this.vars(account),
    });
    const challenged = matches(res, spec.mfaRequired);
    if (!challenged && this.limitSignal(res)) return { session, res, challenged };
    // Some apps say "second factor required" with a 401; only an error that is not the
    // challenge means the password login itself failed.
    if (res.status >= 400 && !challenged) {
      throw new Inconclusive(`the password login for ${account.username} failed with status ${res.status}${missingNote(res.missing)}`);
    }
    return { session, res, challenged };
  }

  private codeSpec(kind: IssuedCode['kind']) {
    const factor = this.profile.secondFactor;
    const key = kind === 'recovery' ? 'recoveryCode' : kind;
    const spec = factor[key];
    if (!spec) throw new Inconclusive(`the profile has no secondFactor.${key}`);
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
  ): Promise<{ res: StepResult; accepted: boolean; limited: string | undefined }> {
    const factor = this.profile.secondFactor;
    const spec = this.codeSpec(code.kind);
    const body = structuredClone(spec.body ?? {});
    if (code.kind === 'passkey') {
      const signed = await this.passkeyAssertion(session);
      // No challenge to sign (e.g. the login needed no second factor): that reply is the answer.
      if ('refused' in signed)
        return { res: { ...signed.refused, missing: [] }, accepted: false, limited: this.limitSignal(signed.refused) };
      setPath(body, factor.passkey!.responseField, signed.assertion);
    } else {
      this.secrets.add(code.code);
      setPath(body, (spec as { codeField: string }).codeField, code.code);
    }
    const res = await this.sendStep(
      spec,
      requestOf(spec, body, opts.note ?? `submit the ${codeLabel(code.kind)}`, {
        ...spec.headers,
        ...opts.headers,
      }),
      session,
      { takeToken: true, ...(opts.prepared ? { prepared: opts.prepared } : {}) },
    );
    const accepted = succeeded(res, factor.accepted);
    // Every session the checks submit codes in belongs to the primary account.
    this.wrongStreak = accepted ? 0 : this.wrongStreak + 1;
    return { res, accepted, limited: accepted ? undefined : this.limitSignal(res) };
  }

  /**
   * Asks the target for passkey request options in the session (`secondFactor.passkey.options`)
   * and signs them with the account's software passkey.
   */
  private async passkeyAssertion(session: Session): Promise<{ assertion: Record<string, unknown> } | { refused: StepResult }> {
    const spec = this.profile.secondFactor.passkey;
    const credential = this.account.passkey;
    if (!spec || !credential) throw new Inconclusive('the account has no passkey, or the profile no secondFactor.passkey');
    const o = spec.options;
    const res = await this.sendStep(
      o,
      { method: o.method, path: o.path, encoding: o.encoding, body: o.body, headers: o.headers, note: 'ask for passkey request options' },
      session,
    );
    const options = spec.optionsField ? getPath(res.json, spec.optionsField) : res.json;
    if (res.status >= 400 || !options) return { refused: res };
    try {
      return { assertion: assertPasskey(credential, options, this.http.origin) };
    } catch (err) {
      throw new Inconclusive(`the software passkey cannot answer: ${(err as Error).message}`);
    }
  }

  /** Whether the response says the target is limiting attempts (see limitSignal). */
  isLimited(res: HttpResult): boolean {
    return this.limitSignal(res) !== undefined;
  }

  /**
   * What makes a reply a limit reply, or undefined: status 429, a Retry-After on an error,
   * the profile's `secondFactor.limited`, or a 4xx whose body says "too many", "rate limit"
   * and the like (apps that answer limits with 400 need no hand-written matcher).
   */
  limitSignal(res: HttpResult): string | undefined {
    const signals: string[] = [];
    if (res.status === 429) signals.push('status 429');
    const retry = res.headers['retry-after'];
    if (retry !== undefined && res.status >= 400) signals.push(`Retry-After ${String(retry)}`);
    if (matches(res, this.profile.secondFactor.limited) && !signals.length) {
      signals.push(`status ${res.status} matches secondFactor.limited (${describeMatcher(this.profile.secondFactor.limited)})`);
    }
    if (!signals.length && res.status >= 400 && res.status < 500) {
      const words = LIMIT_WORDS.exec(res.text.slice(0, 4000));
      if (words) signals.push(`status ${res.status} saying "${words[0]}"`);
    }
    return signals.length ? signals.join(', ') : undefined;
  }

  /** Why a reply counts as a refusal: for verdicts, so a reader can check the reasoning. */
  refusalWhy(res: HttpResult, expected: string): string {
    const where = res.location ? `, Location ${res.location}` : '';
    return `status ${res.status}${where} is not ${expected}, and not a limit reply (no 429, Retry-After, secondFactor.limited or "too many" wording)`;
  }

  /**
   * Runs `attempt`; if its deciding reply is a limit reply, waits out a Retry-After of at
   * most `limits.maxWaitSeconds` and tries again (twice at most), else ends the check as
   * `inconclusive: limited`. A limiter's refusal is never read as the flaw being absent.
   */
  async retryLimited<T>(
    what: string,
    attempt: () => Promise<T>,
    decisive: (t: T) => HttpResult | undefined,
    onGiveUp?: (signal: string, waitMs: number | undefined) => void,
  ): Promise<T> {
    const maxWait = this.profile.limits.maxWaitSeconds * 1000;
    let backedOff = 0;
    for (let tries = 0; ; tries++) {
      const out = await attempt();
      const res = decisive(out);
      const signal = res ? this.limitSignal(res) : undefined;
      if (!res || !signal) return out;
      const waitMs = retryAfterMs(res);
      if (tries < 2 && waitMs !== undefined && waitMs <= maxWait) {
        await this.wait(waitMs + 250, `the target limits requests (${signal}): pacing`);
        continue;
      }
      // No Retry-After (e.g. a 400 "too many"): back off on its own, 2 s then 4 s, within
      // limits.maxWaitSeconds, so a short limiter still lets the check conclude.
      const backoff = Math.min(2000 * 2 ** tries, maxWait - backedOff);
      if (tries < 2 && waitMs === undefined && backoff >= 1000) {
        backedOff += backoff;
        await this.wait(backoff, `the target limits requests (${signal}, no Retry-After): backing off`);
        continue;
      }
      onGiveUp?.(signal, waitMs);
      const wait =
        waitMs === undefined
          ? `no Retry-After, still limited after backing off ${Math.round(backedOff / 1000)}s`
          : `Retry-After ${Math.round(waitMs / 1000)}s, more than limits.maxWaitSeconds`;
      throw new Limited(`${what} got a limit reply (${signal}; ${wait}), so a refusal here would prove nothing`, signal);
    }
  }

  /** A valid code for the primary account, waiting for the next TOTP step only if unavoidable. */
  async issueCode(preference: CodePreference): Promise<IssuedCode> {
    // A passkey costs no waiting and nothing runs out: first choice for routine logins.
    if (preference === 'any' && this.hasPasskey) return { kind: 'passkey', code: 'passkey' };
    if (preference !== 'totp') {
      const recovery = this.codes.takeRecovery(false);
      if (recovery) return recovery;
      if (preference === 'recovery') throw new Inconclusive('no spare recovery code left in the profile');
    }
    if (!this.codes.hasTotp) {
      if (this.hasPasskey) return { kind: 'passkey', code: 'passkey' };
      throw new Inconclusive('no TOTP secret and no spare recovery code left: add more recovery codes to the profile');
    }
    await this.wait(this.codes.totpWaitMs(), 'waiting for the next TOTP time step');
    return this.codes.takeTotp();
  }

  /** Password plus a second factor; fails the check (inconclusive) if the target refuses. */
  async fullLogin(opts: { remember?: boolean; code?: IssuedCode; preference?: CodePreference; note?: string } = {}): Promise<FullLogin> {
    let code = opts.code;
    const out = await this.retryLimited(
      'a valid second-factor code',
      async () => {
        const r = await this.fullLoginOnce({ ...opts, ...(code ? { code } : {}) });
        if ('limited' in r) code = r.code; // a limited reply did not judge the code: retry it
        return r;
      },
      // Not recorded as a lockout of the whole run: a code limit may be per address or per
      // account for codes only, and a check that varies the address (X-Forwarded-For) still runs.
      (r) => ('limited' in r ? r.res : undefined),
    );
    if ('limited' in out) throw new Error('unreachable');
    return out;
  }

  private async fullLoginOnce(opts: {
    remember?: boolean;
    code?: IssuedCode;
    preference?: CodePreference;
    note?: string;
  }): Promise<FullLogin | { limited: string; res: HttpResult; code: IssuedCode }> {
    const login = await this.passwordLogin({ remember: opts.remember, note: opts.note ?? 'log in with the password' });
    const code = opts.code ?? (await this.issueCode(opts.preference ?? 'any'));
    const { res: verify, accepted } = await this.submitCode(login.session, code, {
      note: `complete the login with a ${codeLabel(code.kind)}`,
    });
    const limited = accepted ? undefined : this.limitSignal(verify);
    if (limited) return { limited, res: verify, code };
    if (!accepted) {
      throw new Inconclusive(
        `a valid ${code.kind} code was refused (status ${verify.status}${missingNote(verify.missing)}); is the profile's secret or code list current?`,
      );
    }
    return { session: login.session, login: login.res, verify, code, verifiedAt: Date.now() };
  }

  /** Who-am-I; a limit reply is waited out (short Retry-After) or ends the check as limited, never read as "refused". */
  async whoami(session: Session, note = 'ask the protected who-am-I endpoint'): Promise<{ res: HttpResult; ok: boolean }> {
    const w = this.profile.whoami;
    return this.retryLimited(
      `${w.method} ${w.path}`,
      async () => {
        const res = await this.send({ method: w.method, path: w.path, note }, session);
        return { res, ok: succeeded(res, w.success) };
      },
      (r) => (r.ok ? undefined : r.res),
    );
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

  /** The request for a sensitive action (placeholders are filled when it is sent). */
  sensitiveRequest(action: SensitiveAction, note: string): OutgoingRequest {
    return {
      method: action.method,
      path: action.path,
      encoding: action.encoding,
      body: action.body === undefined ? undefined : structuredClone(action.body),
      headers: action.headers,
      note,
    };
  }

  /**
   * A sensitive action in a session: its step-up sequence first (if any), then the action.
   * `credentials` says whether `{password}` and `{totp}`/`{recoveryCode}` get the right
   * values or wrong ones (the checks probe what the app demands without making the change).
   */
  async sendAction(
    action: SensitiveAction,
    session: Session,
    note: string,
    credentials: Credentials = { password: 'right', factor: 'wrong' },
  ): Promise<StepResult> {
    for (const [i, step] of (action.stepUp ?? []).entries()) {
      await this.sendStep(
        step,
        {
          method: step.method,
          path: step.path,
          encoding: step.encoding,
          body: structuredClone(step.body ?? {}),
          headers: step.headers,
          note: `${note}: step-up ${i + 1}`,
        },
        session,
        { takeToken: true, credentials },
      );
    }
    return this.sendStep(action, this.sensitiveRequest(action, note), session, { credentials });
  }

  /**
   * After an account-changing action went through: carry the change into the account the
   * later checks log in with (a new e-mail address, which may be the login name; a new
   * password), so one check's success does not turn every later one into an error.
   * Returns what was followed, for the summary.
   */
  followChange(action: SensitiveAction, res: HttpResult): string | undefined {
    const raw = res.exchange.request.body;
    if (raw === undefined) return undefined;
    let fields: [string, string][];
    try {
      const json = JSON.parse(raw) as unknown;
      fields = flatten(json);
    } catch {
      fields = [...new URLSearchParams(raw)];
    }
    const a = this.account;
    if (action.kind === 'change_email') {
      const old = a.email ?? a.username;
      const next = fields.map(([, v]) => v).find((v) => v.includes('@') && v !== old);
      if (!next) return undefined;
      if (a.username === old) a.username = next;
      a.email = next;
      return `the account's address is now ${next}; later checks use it`;
    }
    if (action.kind === 'change_password') {
      const next =
        fields.find(([k, v]) => /new/i.test(k) && /pass/i.test(k) && v !== a.password)?.[1] ??
        fields.find(([k, v]) => /pass/i.test(k) && v !== a.password && !v.startsWith('wrong-'))?.[1];
      if (!next) return undefined;
      a.password = next;
      this.secrets.add(next);
      return 'the account has a new password; later checks use it';
    }
    return undefined;
  }

  vars(account: Account): Record<string, string> {
    return { username: account.username, password: account.password, email: account.email ?? account.username, nonce: this.nonce() };
  }
}

function codeLabel(kind: IssuedCode['kind']): string {
  return kind === 'totp' ? 'TOTP code' : kind === 'recovery' ? 'recovery code' : 'passkey assertion';
}

/** [dotted path, string value] for every string or number leaf of a JSON value. */
function flatten(value: unknown, prefix = ''): [string, string][] {
  if (typeof value === 'string' || typeof value === 'number') return [[prefix, String(value)]];
  if (value === null || typeof value !== 'object') return [];
  return Object.entries(value).flatMap(([k, v]) => flatten(v, prefix ? `${prefix}.${k}` : k));
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
