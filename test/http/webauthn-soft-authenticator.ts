/**
 * A minimal software WebAuthn authenticator for HTTP tests: ES256, attestation "none",
 * produces the JSON that @simplewebauthn/browser would send. Not for production use.
 */
import crypto from 'node:crypto';

function head(major: number, n: number): Buffer {
  if (n < 24) return Buffer.from([(major << 5) | n]);
  if (n < 256) return Buffer.from([(major << 5) | 24, n]);
  if (n < 65536) return Buffer.from([(major << 5) | 25, n >> 8, n & 255]);
  const b = Buffer.alloc(5);
  b[0] = (major << 5) | 26;
  b.writeUInt32BE(n, 1);
  return b;
}

type Cbor = number | string | Buffer | Map<Cbor, Cbor> | Record<string, unknown>;

export function cbor(value: Cbor): Buffer {
  if (typeof value === 'number') return value >= 0 ? head(0, value) : head(1, -1 - value);
  if (typeof value === 'string') {
    const b = Buffer.from(value, 'utf8');
    return Buffer.concat([head(3, b.length), b]);
  }
  if (Buffer.isBuffer(value)) return Buffer.concat([head(2, value.length), value]);
  const entries: [Cbor, Cbor][] = value instanceof Map ? [...value] : (Object.entries(value) as [Cbor, Cbor][]);
  return Buffer.concat([head(5, entries.length), ...entries.flatMap(([k, v]) => [cbor(k), cbor(v)])]);
}

const b64u = (b: Buffer) => b.toString('base64url');

export interface SoftAuthenticatorOptions {
  origin: string;
  userVerified?: boolean;
  backupEligible?: boolean;
  backedUp?: boolean;
}

export class SoftAuthenticator {
  readonly credentialId = crypto.randomBytes(16);
  private readonly keys = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  counter = 0;
  constructor(readonly options: SoftAuthenticatorOptions) {}

  get id(): string {
    return b64u(this.credentialId);
  }

  private flags(extra: number): number {
    let f = 0x01 | extra; // user present
    if (this.options.userVerified !== false) f |= 0x04;
    if (this.options.backupEligible) f |= 0x08;
    if (this.options.backedUp) f |= 0x10;
    return f;
  }

  private clientData(type: string, challenge: string): Buffer {
    return Buffer.from(JSON.stringify({ type, challenge, origin: this.options.origin, crossOrigin: false }));
  }

  private rpIdHash(rpId: string): Buffer {
    return crypto.createHash('sha256').update(rpId).digest();
  }

  /** A registration response for PublicKeyCredentialCreationOptionsJSON. */
  register(options: { challenge: string; rp: { id?: string } }): Record<string, unknown> {
    const rpId = options.rp.id ?? new URL(this.options.origin).hostname;
    const jwk = this.keys.publicKey.export({ format: 'jwk' });
    const cose = cbor(
      new Map<Cbor, Cbor>([
        [1, 2],
        [3, -7],
        [-1, 1],
        [-2, Buffer.from(jwk.x!, 'base64url')],
        [-3, Buffer.from(jwk.y!, 'base64url')],
      ]),
    );
    const count = Buffer.alloc(4);
    count.writeUInt32BE(this.counter);
    const idLen = Buffer.alloc(2);
    idLen.writeUInt16BE(this.credentialId.length);
    const authData = Buffer.concat([
      this.rpIdHash(rpId),
      Buffer.from([this.flags(0x40)]),
      count,
      Buffer.alloc(16),
      idLen,
      this.credentialId,
      cose,
    ]);
    const attestationObject = cbor({ fmt: 'none', attStmt: new Map(), authData });
    return {
      id: this.id,
      rawId: this.id,
      type: 'public-key',
      response: {
        clientDataJSON: b64u(this.clientData('webauthn.create', options.challenge)),
        attestationObject: b64u(attestationObject),
        transports: ['internal'],
      },
      clientExtensionResults: {},
    };
  }

  /** An assertion for PublicKeyCredentialRequestOptionsJSON; `counter` overrides the next counter. */
  authenticate(options: { challenge: string; rpId?: string }, counter?: number): Record<string, unknown> {
    const rpId = options.rpId ?? new URL(this.options.origin).hostname;
    this.counter = counter ?? this.counter + 1;
    const count = Buffer.alloc(4);
    count.writeUInt32BE(this.counter);
    const authData = Buffer.concat([this.rpIdHash(rpId), Buffer.from([this.flags(0)]), count]);
    const clientData = this.clientData('webauthn.get', options.challenge);
    const signature = crypto.sign(
      'sha256',
      Buffer.concat([authData, crypto.createHash('sha256').update(clientData).digest()]),
      this.keys.privateKey,
    );
    return {
      id: this.id,
      rawId: this.id,
      type: 'public-key',
      response: { clientDataJSON: b64u(clientData), authenticatorData: b64u(authData), signature: b64u(signature) },
      clientExtensionResults: {},
    };
  }
}
