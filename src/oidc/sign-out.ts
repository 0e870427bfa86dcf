/**
 * Gatehouse's own sign-out of a browser (POST /api/auth/logout, POST /sign-out, revoking
 * the current session in settings) also ends that browser's provider session, as an
 * RP-initiated logout answered "yes" does: every relying party of the session that
 * registered a backchannel_logout_uri receives a signed logout_token (with the session's
 * sid), the session's grants die (except offline_access ones, which outlive a logout by
 * design), and the provider session is destroyed.
 *
 * The provider session is found by the browser's provider cookie, whose signature is
 * checked (oidc-provider's cookie keys), so a forged or foreign value ends nothing.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type Provider from 'oidc-provider';

/** oidc-provider's Client sends the logout token itself; its type declarations leave the method out. */
interface BackchannelClient {
  backchannelLogout(sub: string, sid: string | undefined): Promise<void>;
}

/** oidc-provider's session cookie (its default name, which Gatehouse keeps). */
const PROVIDER_SESSION_COOKIE = /(?:^|;\s*)_session=/;

/** Whether the browser has been through the provider at all (else there is nothing to end, nor a provider to build). */
export const carriesProviderSession = (req: IncomingMessage) => PROVIDER_SESSION_COOKIE.test(req.headers.cookie ?? '');

export async function endProviderSession(provider: Provider, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const cookies = provider.createContext(req, res).cookies;
  const id = cookies.get(provider.cookieName('session'), { signed: true });
  if (!id) return;
  const session = await provider.Session.find(id);
  if (!session) return;
  const accountId = session.accountId;
  const deliveries: Promise<void>[] = [];
  for (const [clientId, authorization] of Object.entries(session.authorizations ?? {})) {
    const client = await provider.Client.find(clientId);
    if (client?.backchannelLogoutUri && accountId) {
      const sid = session.sidFor(clientId);
      deliveries.push(
        (client as unknown as BackchannelClient).backchannelLogout(accountId, sid).then(
          () => void provider.emit('backchannel.success', undefined, client, accountId, sid),
          (err: unknown) => void provider.emit('backchannel.error', undefined, err, client, accountId, sid),
        ),
      );
    }
    const grantId = authorization.grantId;
    if (grantId && !authorization.persistsLogout) {
      await Promise.all([provider.AccessToken, provider.RefreshToken, provider.AuthorizationCode].map((m) => m.revokeByGrantId(grantId)));
      await provider.Grant.adapter.destroy(grantId);
    }
  }
  await session.destroy();
  await Promise.all(deliveries);
}
