/** The check could not reach a conclusion (e.g. a precondition failed on the target). */
export class Inconclusive extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'Inconclusive';
  }
}

/**
 * The target limited the auditor (429, Retry-After, the declared or a recognisable "too
 * many" reply) where a refusal would have been the verdict: reported `inconclusive: limited`.
 */
export class Limited extends Inconclusive {
  constructor(
    message: string,
    /** What identified the reply as a limit, e.g. `status 429, Retry-After 900`. */
    readonly signal: string,
  ) {
    super(message);
    this.name = 'Limited';
  }
}
