/**
 * Cookie names and flags. HttpOnly, SameSite=Lax, Path=/, and Secure with the `__Host-`
 * prefix whenever the public URL is https.
 */
import type { CookieSerializeOptions } from '@fastify/cookie';

export interface CookiePolicy {
  secure: boolean;
  names: { session: string; remember: string; device: string };
}

export function cookiePolicy(publicUrl: string): CookiePolicy {
  const secure = new URL(publicUrl).protocol === 'https:';
  const prefix = secure ? '__Host-' : '';
  return {
    secure,
    names: { session: `${prefix}gatehouse_session`, remember: `${prefix}gatehouse_remember`, device: `${prefix}gatehouse_device` },
  };
}

export function cookieOptions(policy: CookiePolicy, maxAgeSeconds?: number): CookieSerializeOptions {
  return {
    httpOnly: true,
    sameSite: 'lax',
    path: '/',
    secure: policy.secure,
    ...(maxAgeSeconds !== undefined ? { maxAge: maxAgeSeconds } : {}),
  };
}

/** Anything that can clear a cookie: a Fastify reply, or the Express adapter's writer. */
export function clearCookie(
  reply: { clearCookie(name: string, options: CookieSerializeOptions): unknown },
  policy: CookiePolicy,
  name: string,
): void {
  reply.clearCookie(name, cookieOptions(policy));
}
