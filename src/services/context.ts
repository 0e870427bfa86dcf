/** Who is asking, from where, and when: passed into every use case. */
export interface RequestContext {
  ip: string;
  userAgent: string;
  now: number;
}
