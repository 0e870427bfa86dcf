/**
 * Server-side key material, all derived from GATEHOUSE_SECRET_KEY with HKDF so each use
 * has its own key: AES-256-GCM for factor secrets at rest, HMAC-SHA-256 for keyed hashes
 * of recovery codes. Older keys (after a rotation) are kept for decryption only.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

const ENCRYPTION_INFO = 'gatehouse/factor-secret/v1';
const KEYED_HASH_INFO = 'gatehouse/keyed-hash/v1';

function derive(master: string, info: string): Buffer {
  return Buffer.from(crypto.hkdfSync('sha256', Buffer.from(master, 'utf8'), Buffer.alloc(0), info, 32));
}

/** A short, non-secret identifier for a master key, stored beside each ciphertext. */
function keyId(master: string): string {
  return crypto.createHash('sha256').update(`gatehouse/key-id/${master}`).digest('base64url').slice(0, 8);
}

export class SecretBox {
  private readonly current: { id: string; key: Buffer };
  private readonly byId = new Map<string, Buffer>();

  constructor(masterKey: string, previousKeys: string[] = []) {
    this.current = { id: keyId(masterKey), key: derive(masterKey, ENCRYPTION_INFO) };
    this.byId.set(this.current.id, this.current.key);
    for (const old of previousKeys) this.byId.set(keyId(old), derive(old, ENCRYPTION_INFO));
  }

  /** `v1.<keyId>.<iv>.<ciphertext>.<tag>`, base64url; `context` binds it to its row. */
  encrypt(plaintext: string, context: string): string {
    const iv = crypto.randomBytes(12);
    const cipher = crypto.createCipheriv('aes-256-gcm', this.current.key, iv);
    cipher.setAAD(Buffer.from(context, 'utf8'));
    const ct = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return ['v1', this.current.id, iv.toString('base64url'), ct.toString('base64url'), cipher.getAuthTag().toString('base64url')].join('.');
  }

  decrypt(sealed: string, context: string): string {
    const [version, id, iv, ct, tag] = sealed.split('.');
    const key = id ? this.byId.get(id) : undefined;
    if (version !== 'v1' || !key || !iv || ct === undefined || !tag) throw new Error('cannot decrypt: unknown format or key');
    const decipher = crypto.createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'));
    decipher.setAAD(Buffer.from(context, 'utf8'));
    decipher.setAuthTag(Buffer.from(tag, 'base64url'));
    return Buffer.concat([decipher.update(Buffer.from(ct, 'base64url')), decipher.final()]).toString('utf8');
  }

  /** True when one of this box's keys (current or previous) sealed the value. */
  canOpen(sealed: string): boolean {
    const id = sealed.split('.')[1];
    return id !== undefined && this.byId.has(id);
  }

  /** True when the value was sealed with an older key and should be re-encrypted. */
  isStale(sealed: string): boolean {
    return sealed.split('.')[1] !== this.current.id;
  }
}

export class KeyedHasher {
  private readonly key: Buffer;
  private readonly previous: Buffer[];
  constructor(masterKey: string, previousKeys: string[] = []) {
    this.key = derive(masterKey, KEYED_HASH_INFO);
    this.previous = previousKeys.map((k) => derive(k, KEYED_HASH_INFO));
  }
  /** The hash stored for new values: always under the current key. */
  hash(value: string): string {
    return crypto.createHmac('sha256', this.key).update(value, 'utf8').digest('base64url');
  }
  /**
   * Every hash a stored value may have: the current key's first, then each previous key's.
   * Keyed hashes cannot be re-keyed (the value is not recoverable), so values hashed before
   * a key rotation are found under the old key for as long as it stays configured.
   */
  candidates(value: string): string[] {
    return [this.hash(value), ...this.previous.map((key) => crypto.createHmac('sha256', key).update(value, 'utf8').digest('base64url'))];
  }
}

/** 256 random bits, base64url: session, remember-me, reset and API tokens. */
export function randomToken(bytes = 32): string {
  return crypto.randomBytes(bytes).toString('base64url');
}

export function newId(): string {
  return crypto.randomBytes(16).toString('base64url');
}

/** Tokens with 256 bits of entropy need no key or salt: a plain SHA-256 is enough. */
/** SHA-256 in one call where Node has it (20.12+): the gate hashes a token on every request. */
const sha256Base64url: (text: string) => string =
  typeof crypto.hash === 'function'
    ? (text) => crypto.hash('sha256', text, 'base64url')
    : (text) => crypto.createHash('sha256').update(text, 'utf8').digest('base64url');

export function hashToken(token: string): string {
  return sha256Base64url(token);
}

export function constantTimeEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a, 'utf8');
  const bb = Buffer.from(b, 'utf8');
  if (ab.length !== bb.length) {
    crypto.timingSafeEqual(ab, ab);
    return false;
  }
  return crypto.timingSafeEqual(ab, bb);
}

export interface ResolvedSecretKey {
  key: string;
  generated: boolean;
}

/**
 * The key format: at least 256 bits, written as base64url (43+ characters, what
 * `gatehouse keygen` prints), base64, or hex (64+ characters).
 */
export function keyStrengthProblem(key: string): string | null {
  const bytes =
    /^[0-9a-fA-F]+$/.test(key) && key.length % 2 === 0
      ? key.length / 2
      : /^[A-Za-z0-9_+/-]+={0,2}$/.test(key)
        ? Math.floor((key.replace(/=+$/, '').length * 6) / 8)
        : 0;
  return bytes >= 32 ? null : 'must be at least 256 bits of random data, base64url, base64 or hex (run `gatehouse keygen` for one)';
}

/** A new key in the documented format. */
export function generateSecretKey(): string {
  return crypto.randomBytes(32).toString('base64url');
}

/**
 * A non-secret fingerprint of a key, recorded in the database: an instance whose key is
 * not the one the data was written with refuses to start instead of failing on use.
 */
export function keyFingerprint(master: string): string {
  return crypto.createHmac('sha256', derive(master, 'gatehouse/key-fingerprint/v1')).update('fingerprint').digest('base64url').slice(0, 22);
}

export class KeyError extends Error {}

/** The configured key, or one generated once into the data dir (mode 0600). */
export function resolveSecretKey(configured: string | null, dataDir: string): ResolvedSecretKey {
  if (configured) {
    const problem = keyStrengthProblem(configured);
    if (problem) throw new KeyError(`GATEHOUSE_SECRET_KEY ${problem}`);
    return { key: configured, generated: false };
  }
  const file = path.join(dataDir, 'secret.key');
  try {
    return { key: fs.readFileSync(file, 'utf8').trim(), generated: false };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  fs.mkdirSync(dataDir, { recursive: true });
  const key = generateSecretKey();
  try {
    fs.writeFileSync(file, key + '\n', { mode: 0o600, flag: 'wx' });
    return { key, generated: true };
  } catch (err) {
    // Another instance created it first: use theirs.
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return { key: fs.readFileSync(file, 'utf8').trim(), generated: false };
    throw err;
  }
}

/**
 * Start-up check that the configured key is the one the data was written with: its
 * fingerprint is recorded (or, after a rotation, a previous key's is); on a database
 * without fingerprints yet, a stored ciphertext must open with it. Throws KeyError.
 */
export async function assertKeyMatchesData(
  store: { all(): Promise<Set<string>>; add(fingerprint: string, now: number): Promise<void>; sampleCiphertext(): Promise<string | null> },
  box: SecretBox,
  key: string,
  previousKeys: string[],
  now: number,
): Promise<void> {
  const known = await store.all();
  const current = keyFingerprint(key);
  if (known.has(current)) return;
  const refused = new KeyError(
    'GATEHOUSE_SECRET_KEY is not the key this database was written with: set it to that key (to rotate, keep the new one and list the old one in GATEHOUSE_PREVIOUS_SECRET_KEYS)',
  );
  if (known.size > 0) {
    if (!previousKeys.some((old) => known.has(keyFingerprint(old)))) throw refused;
  } else {
    const sample = await store.sampleCiphertext();
    if (sample !== null && !box.canOpen(sample)) throw refused;
  }
  await store.add(current, now);
}
