/** Access-token lifetime (seconds): short, since a JWT access token outlives a revocation until it expires. */
export const OIDC_TTL_ACCESS = 600;
