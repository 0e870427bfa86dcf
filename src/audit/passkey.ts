// A software WebAuthn authenticator, so the checks also run on apps whose second factor is
// a passkey. ES256 (P-256) keys from node:crypto, "none" attestation; authenticatorData
// and clientDataJSON are built as the WebAuthn Level 2 spec lays them out (§6.1, §6.5,
// §5.8.1); CBOR (attestation object, COSE key) by tiny-cbor. It answers the JSON options
// a server hands a browser (PublicKeyCredentialCreationOptionsJSON / RequestOptionsJSON)
// with the JSON a browser library would send back.
import { createHash, createPrivateKey, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { encodeCBOR, type CBORType } from '@levischuck/tiny-cbor';

/** What the auditor keeps of a passkey: enough to sign assertions later. */
export interface PasskeyCredential {
  /** base64url */
  credentialId: string;
  /** PKCS#8 PEM of the P-256 private key. */
  privateKey: string;
  rpId?: string | undefined;
  /** base64url user handle from the registration options. */
  userHandle?: string | undefined;
  signCount?: number | undefined;
}

interface CreationOptions {
  challenge: string;
  rp?: { id?: string };
  user?: { id?: string };
  pubKeyCredParams?: { alg: number }[];
}
interface RequestOptions {
  challenge: string;
  rpId?: string;
  allowCredentials?: { id: string }[];
}

const FLAG_UP = 0x01; // user present
const FLAG_UV = 0x04; // user verified
const FLAG_AT = 0x40; // attested credential data included
const ES256 = -7;

const b64u = (b: Uint8Array) => Buffer.from(b).toString('base64url');
const sha256 = (data: Uint8Array | string) => createHash('sha256').update(data).digest();

function clientData(type: 'webauthn.create' | 'webauthn.get', challenge: string, origin: string): Buffer {
  return Buffer.from(JSON.stringify({ type, challenge, origin: new URL(origin).origin, crossOrigin: false }));
}

function counterBytes(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

function asCreation(options: unknown): CreationOptions {
  const o = options as CreationOptions;
  if (!o || typeof o.challenge !== 'string') throw new Error('the passkey creation options have no challenge');
  if (o.pubKeyCredParams && !o.pubKeyCredParams.some((p) => p.alg === ES256))
    throw new Error('the target does not accept ES256 (alg -7) keys, the only kind the software authenticator makes');
  return o;
}

/** Creates a credential for creation options: the registration response and what to keep. */
export function createPasskey(options: unknown, origin: string): { credential: PasskeyCredential; response: Record<string, unknown> } {
  const o = asCreation(options);
  const rpId = o.rp?.id ?? new URL(origin).hostname;
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = publicKey.export({ format: 'jwk' });
  const credentialId = randomBytes(16);
  // COSE_Key (RFC 9053): kty EC2, alg ES256, crv P-256, x, y.
  const coseKey = encodeCBOR(
    new Map<number, CBORType>([
      [1, 2],
      [3, ES256],
      [-1, 1],
      [-2, new Uint8Array(Buffer.from(jwk.x!, 'base64url'))],
      [-3, new Uint8Array(Buffer.from(jwk.y!, 'base64url'))],
    ]),
  );
  const idLength = Buffer.alloc(2);
  idLength.writeUInt16BE(credentialId.length);
  const authData = Buffer.concat([
    sha256(rpId),
    Buffer.from([FLAG_UP | FLAG_UV | FLAG_AT]),
    counterBytes(0),
    Buffer.alloc(16), // AAGUID: all zero for a "none" attestation
    idLength,
    credentialId,
    coseKey,
  ]);
  const attestationObject = encodeCBOR(
    new Map<string, CBORType>([
      ['fmt', 'none'],
      ['attStmt', new Map()],
      ['authData', new Uint8Array(authData)],
    ]),
  );
  const id = b64u(credentialId);
  return {
    credential: {
      credentialId: id,
      privateKey: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
      rpId,
      userHandle: o.user?.id,
      signCount: 0,
    },
    response: {
      id,
      rawId: id,
      type: 'public-key',
      response: {
        clientDataJSON: b64u(clientData('webauthn.create', o.challenge, origin)),
        attestationObject: b64u(attestationObject),
        transports: ['internal'],
      },
      authenticatorAttachment: 'platform',
      clientExtensionResults: {},
    },
  };
}

/** Signs an assertion for request options with a kept credential (its counter moves on). */
export function assertPasskey(credential: PasskeyCredential, options: unknown, origin: string): Record<string, unknown> {
  const o = options as RequestOptions;
  if (!o || typeof o.challenge !== 'string') throw new Error('the passkey request options have no challenge');
  if (o.allowCredentials?.length && !o.allowCredentials.some((c) => c.id === credential.credentialId))
    throw new Error("the target's request options do not allow the account's passkey");
  const rpId = o.rpId ?? credential.rpId ?? new URL(origin).hostname;
  credential.signCount = (credential.signCount ?? 0) + 1;
  const authData = Buffer.concat([sha256(rpId), Buffer.from([FLAG_UP | FLAG_UV]), counterBytes(credential.signCount)]);
  const data = clientData('webauthn.get', o.challenge, origin);
  const key: KeyObject = createPrivateKey(credential.privateKey);
  // ES256 signatures are DER-encoded ECDSA over authenticatorData || SHA-256(clientDataJSON).
  const signature = sign('sha256', Buffer.concat([authData, sha256(data)]), key);
  return {
    id: credential.credentialId,
    rawId: credential.credentialId,
    type: 'public-key',
    response: {
      clientDataJSON: b64u(data),
      authenticatorData: b64u(authData),
      signature: b64u(signature),
      ...(credential.userHandle ? { userHandle: credential.userHandle } : {}),
    },
    authenticatorAttachment: 'platform',
    clientExtensionResults: {},
  };
}
