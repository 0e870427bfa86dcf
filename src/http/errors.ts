/**
 * Turns every failure into the contract's JSON error shape. Known failures keep their
 * code; framework errors for bad input become `invalid_request` (or `payload_too_large`);
 * anything else is logged and answered without internals.
 */
import type { FastifyError, FastifyInstance } from 'fastify';
import {
  GatehouseError,
  InvalidRequestError,
  NotFoundError,
  PayloadTooLargeError,
  ServiceUnavailableError,
  TooManyAttemptsError,
} from '../core/errors.js';
import { isDependencyOutage } from '../services/dependency-outage.js';

function asGatehouseError(error: FastifyError | Error): GatehouseError | null {
  if (error instanceof GatehouseError) return error;
  // A database or Redis outage: nothing was decided (limits stay closed); retry shortly.
  if (isDependencyOutage(error)) return new ServiceUnavailableError();
  const fe = error as FastifyError;
  if (fe.code === 'FST_ERR_CTP_BODY_TOO_LARGE' || fe.statusCode === 413) return new PayloadTooLargeError();
  if (fe.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' || fe.statusCode === 415) {
    return new InvalidRequestError('Send a JSON body with Content-Type: application/json.');
  }
  if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    if (fe.statusCode === 404) return new NotFoundError();
    return new InvalidRequestError(
      fe.code?.startsWith('FST_ERR_CTP') ? 'The request body is not valid JSON.' : 'The request is malformed.',
    );
  }
  return null;
}

export function installErrorHandling(app: FastifyInstance, options: { notFound: boolean } = { notFound: true }): void {
  app.setErrorHandler((error, request, reply) => {
    const known = asGatehouseError(error as FastifyError);
    if (known) {
      if (known instanceof TooManyAttemptsError || known instanceof ServiceUnavailableError)
        reply.header('Retry-After', String(known.retryAfter));
      if (known instanceof ServiceUnavailableError) request.log.warn({ err: error }, 'dependency unavailable: answered 503');
      return reply.status(known.status).type('application/json').send(known.toJSON());
    }
    request.log.error({ err: error }, 'unhandled error');
    return reply.status(500).type('application/json').send({ error: 'internal_error', message: 'Something went wrong on our side.' });
  });

  if (options.notFound)
    app.setNotFoundHandler((_request, reply) => reply.status(404).send(new NotFoundError('No such endpoint.').toJSON()));
}
