/**
 * Every failure a client can see, one class per failure, each with a stable code and
 * HTTP status (the contract's error table). Services throw these; the HTTP layer only
 * serialises them. Anything that is not a GatehouseError is an internal error and is
 * never shown to the client as such.
 */

export abstract class GatehouseError extends Error {
  abstract readonly code: string;
  abstract readonly status: number;
  /** Extra fields merged into the JSON error body (never secrets). */
  extra(): Record<string, unknown> {
    return {};
  }
  toJSON(): Record<string, unknown> {
    return { error: this.code, message: this.message, ...this.extra() };
  }
}

export interface FieldIssue {
  path: string;
  message: string;
}

export class InvalidRequestError extends GatehouseError {
  static readonly code = 'invalid_request';
  readonly code = InvalidRequestError.code;
  readonly status = 400;
  constructor(
    message = 'The request is malformed.',
    readonly details: FieldIssue[] = [],
  ) {
    super(message);
  }
  override extra() {
    return { details: this.details };
  }
}

export class WeakPasswordError extends GatehouseError {
  static readonly code = 'weak_password';
  readonly code = WeakPasswordError.code;
  readonly status = 400;
}

export class InvalidTokenError extends GatehouseError {
  static readonly code = 'invalid_token';
  readonly code = InvalidTokenError.code;
  readonly status = 400;
  constructor(message = 'This link or token is unknown, already used or expired.') {
    super(message);
  }
}

export class UnauthenticatedError extends GatehouseError {
  static readonly code = 'unauthenticated';
  readonly code = UnauthenticatedError.code;
  readonly status = 401;
  constructor(message = 'Sign in first.') {
    super(message);
  }
}

export class InvalidCredentialsError extends GatehouseError {
  static readonly code = 'invalid_credentials';
  readonly code = InvalidCredentialsError.code;
  readonly status = 401;
  constructor() {
    super('Wrong email or password.');
  }
}

export class MfaRequiredError extends GatehouseError {
  static readonly code = 'mfa_required';
  readonly code = MfaRequiredError.code;
  readonly status = 401;
  constructor(readonly methods: string[] = []) {
    super('Finish signing in with your second factor first.');
  }
  override extra() {
    return this.methods.length ? { methods: this.methods } : {};
  }
}

export class NoPendingAuthenticationError extends GatehouseError {
  static readonly code = 'no_pending_authentication';
  readonly code = NoPendingAuthenticationError.code;
  readonly status = 401;
  constructor() {
    super('There is no sign-in waiting for a second factor. Sign in with your password first.');
  }
}

export class InvalidCodeError extends GatehouseError {
  static readonly code = 'invalid_code';
  readonly code = InvalidCodeError.code;
  readonly status = 401;
  constructor() {
    super('That code is not valid.');
  }
}

export class CsrfError extends GatehouseError {
  static readonly code = 'csrf';
  readonly code = CsrfError.code;
  readonly status = 403;
  constructor() {
    super('Cross-site request refused.');
  }
}

export class EnrollmentRequiredError extends GatehouseError {
  static readonly code = 'enrollment_required';
  readonly code = EnrollmentRequiredError.code;
  readonly status = 403;
  constructor() {
    super('Set up a second factor before using your account.');
  }
}

/** Confirming a factor set-up that is expired, voided by a security change, or not this session's. */
export class NoPendingSetupError extends GatehouseError {
  static readonly code = 'no_pending_setup';
  readonly code = NoPendingSetupError.code;
  readonly status = 400;
  constructor() {
    super('There is no factor set-up in progress for this session (it expired or was voided): start again.');
  }
}

export class StepUpRequiredError extends GatehouseError {
  static readonly code = 'step_up_required';
  readonly code = StepUpRequiredError.code;
  readonly status = 403;
  constructor(
    readonly methods: string[],
    readonly maxAge: number,
  ) {
    super('This action needs a fresh check of your strongest factor.');
  }
  override extra() {
    return { methods: this.methods, maxAge: this.maxAge };
  }
}

export class InteractiveSessionRequiredError extends GatehouseError {
  static readonly code = 'interactive_session_required';
  readonly code = InteractiveSessionRequiredError.code;
  readonly status = 403;
  constructor() {
    super('API tokens cannot do this; sign in interactively.');
  }
}

export class InsufficientScopeError extends GatehouseError {
  static readonly code = 'insufficient_scope';
  readonly code = InsufficientScopeError.code;
  readonly status = 403;
  constructor(readonly scope: string) {
    super(`This token lacks the "${scope}" scope.`);
  }
  override extra() {
    return { scope: this.scope };
  }
}

export class NotFoundError extends GatehouseError {
  static readonly code = 'not_found';
  readonly code = NotFoundError.code;
  readonly status = 404;
  constructor(message = 'Not found.') {
    super(message);
  }
}

export class MethodNotAllowedError extends GatehouseError {
  static readonly code = 'method_not_allowed';
  readonly code = MethodNotAllowedError.code;
  readonly status = 405;
  constructor() {
    super('Method not allowed.');
  }
}

export class EmailTakenError extends GatehouseError {
  static readonly code = 'email_taken';
  readonly code = EmailTakenError.code;
  readonly status = 409;
  constructor() {
    super('An account with this email already exists.');
  }
}

export class PayloadTooLargeError extends GatehouseError {
  static readonly code = 'payload_too_large';
  readonly code = PayloadTooLargeError.code;
  readonly status = 413;
  constructor() {
    super('The request body is larger than 64 KiB.');
  }
}

export class TooManyAttemptsError extends GatehouseError {
  static readonly code = 'too_many_attempts';
  readonly code = TooManyAttemptsError.code;
  readonly status = 429;
  /** Seconds until a retry may succeed; always at least 1. */
  readonly retryAfter: number;
  constructor(retryAfterSeconds: number, message = 'Too many attempts. Try again later.') {
    super(message);
    this.retryAfter = Math.max(1, Math.ceil(retryAfterSeconds));
  }
  override extra() {
    return { retryAfter: this.retryAfter };
  }
}

/** A dependency (database, Redis) cannot be reached: nothing was decided; try again later. */
export class ServiceUnavailableError extends GatehouseError {
  readonly code = 'service_unavailable';
  readonly status = 503;
  /** Seconds a client should wait before retrying; always at least 1. */
  readonly retryAfter: number;
  constructor(retryAfterSeconds = 5, message = 'The service is briefly unavailable. Try again shortly.') {
    super(message);
    this.retryAfter = Math.max(1, Math.ceil(retryAfterSeconds));
  }
  override extra() {
    return { retryAfter: this.retryAfter };
  }
}

/** An admin reset the account's factors: only the one-time recovery link mailed to the user starts a session. */
export class RecoveryLinkRequiredError extends GatehouseError {
  static readonly code = 'recovery_link_required';
  readonly code = RecoveryLinkRequiredError.code;
  readonly status = 403;
  constructor() {
    super('An administrator reset the second factors of this account. Use the recovery link mailed to you to set up a new one.');
  }
}

/** The session is valid but its account lacks the role the route requires. */
export class ForbiddenError extends GatehouseError {
  static readonly code = 'forbidden';
  readonly code = ForbiddenError.code;
  readonly status = 403;
  constructor(readonly role: string) {
    super(`This needs the "${role}" role.`);
  }
  override extra() {
    return { role: this.role };
  }
}
