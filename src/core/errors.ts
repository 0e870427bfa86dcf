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
  readonly code = 'invalid_request';
  readonly status = 400;
  constructor(message = 'The request is malformed.', readonly details: FieldIssue[] = []) {
    super(message);
  }
  override extra() {
    return { details: this.details };
  }
}

export class WeakPasswordError extends GatehouseError {
  readonly code = 'weak_password';
  readonly status = 400;
}

export class InvalidTokenError extends GatehouseError {
  readonly code = 'invalid_token';
  readonly status = 400;
  constructor(message = 'This link or token is unknown, already used or expired.') {
    super(message);
  }
}

export class UnauthenticatedError extends GatehouseError {
  readonly code = 'unauthenticated';
  readonly status = 401;
  constructor(message = 'Sign in first.') {
    super(message);
  }
}

export class InvalidCredentialsError extends GatehouseError {
  readonly code = 'invalid_credentials';
  readonly status = 401;
  constructor() {
    super('Wrong email or password.');
  }
}

export class MfaRequiredError extends GatehouseError {
  readonly code = 'mfa_required';
  readonly status = 401;
  constructor(readonly methods: string[] = []) {
    super('Finish signing in with your second factor first.');
  }
  override extra() {
    return this.methods.length ? { methods: this.methods } : {};
  }
}

export class NoPendingAuthenticationError extends GatehouseError {
  readonly code = 'no_pending_authentication';
  readonly status = 401;
  constructor() {
    super('There is no sign-in waiting for a second factor. Sign in with your password first.');
  }
}

export class InvalidCodeError extends GatehouseError {
  readonly code = 'invalid_code';
  readonly status = 401;
  constructor() {
    super('That code is not valid.');
  }
}

export class CsrfError extends GatehouseError {
  readonly code = 'csrf';
  readonly status = 403;
  constructor() {
    super('Cross-site request refused.');
  }
}

export class EnrollmentRequiredError extends GatehouseError {
  readonly code = 'enrollment_required';
  readonly status = 403;
  constructor() {
    super('Set up a second factor before using your account.');
  }
}

/** Confirming a factor set-up that is expired, voided by a security change, or not this session's. */
export class NoPendingSetupError extends GatehouseError {
  readonly code = 'no_pending_setup';
  readonly status = 400;
  constructor() {
    super('There is no factor set-up in progress for this session (it expired or was voided): start again.');
  }
}

export class StepUpRequiredError extends GatehouseError {
  readonly code = 'step_up_required';
  readonly status = 403;
  constructor(readonly methods: string[], readonly maxAge: number) {
    super('This action needs a fresh check of your strongest factor.');
  }
  override extra() {
    return { methods: this.methods, maxAge: this.maxAge };
  }
}

export class InteractiveSessionRequiredError extends GatehouseError {
  readonly code = 'interactive_session_required';
  readonly status = 403;
  constructor() {
    super('API tokens cannot do this; sign in interactively.');
  }
}

export class InsufficientScopeError extends GatehouseError {
  readonly code = 'insufficient_scope';
  readonly status = 403;
  constructor(readonly scope: string) {
    super(`This token lacks the "${scope}" scope.`);
  }
  override extra() {
    return { scope: this.scope };
  }
}

export class NotFoundError extends GatehouseError {
  readonly code = 'not_found';
  readonly status = 404;
  constructor(message = 'Not found.') {
    super(message);
  }
}

export class MethodNotAllowedError extends GatehouseError {
  readonly code = 'method_not_allowed';
  readonly status = 405;
  constructor() {
    super('Method not allowed.');
  }
}

export class EmailTakenError extends GatehouseError {
  readonly code = 'email_taken';
  readonly status = 409;
  constructor() {
    super('An account with this email already exists.');
  }
}

export class PayloadTooLargeError extends GatehouseError {
  readonly code = 'payload_too_large';
  readonly status = 413;
  constructor() {
    super('The request body is larger than 64 KiB.');
  }
}

export class TooManyAttemptsError extends GatehouseError {
  readonly code = 'too_many_attempts';
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
