/** The check could not reach a conclusion (e.g. a precondition failed on the target). */
export class Inconclusive extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'Inconclusive';
  }
}
