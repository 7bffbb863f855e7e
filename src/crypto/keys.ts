// Implements docs/protocol.md §1.1 and §3.1: identity (Ed25519) and onion/link (X25519) keys.
// The only place key objects are made. Private keys are built from raw bytes through JWK, never
// exported from generated KeyObjects (that export can deadlock on Node 20: see node20-notes).
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  sign as edSign,
  verify as edVerify,
  type KeyObject,
  randomBytes as nodeRandomBytes,
} from 'node:crypto';
import { AlliumError } from '../errors.js';

export class KeyError extends AlliumError {}

const b64u = (b: Uint8Array) => Buffer.from(b).toString('base64url');

export function randomBytes(n: number): Buffer {
  return nodeRandomBytes(n);
}

export function sha256(...parts: Uint8Array[]): Buffer {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
}

function rawPublic(pub: KeyObject): Buffer {
  const jwk = pub.export({ format: 'jwk' });
  if (typeof jwk.x !== 'string') throw new KeyError('ALLIUM_KEY_EXPORT', 'could not export a public key');
  return Buffer.from(jwk.x, 'base64url');
}

function check32(bytes: Uint8Array, what: string): void {
  if (bytes.length !== 32)
    throw new KeyError('ALLIUM_KEY_LENGTH', `${what} must be 32 bytes, got ${bytes.length}`);
}

/** A relay's or the directory's long-term Ed25519 signing key. */
export class IdentityKey {
  readonly publicKey: Buffer;
  private readonly priv: KeyObject;
  private readonly seedBytes: Buffer;

  private constructor(seed: Buffer) {
    check32(seed, 'an Ed25519 seed');
    this.seedBytes = Buffer.from(seed);
    this.priv = createPrivateKey({
      format: 'jwk',
      key: { kty: 'OKP', crv: 'Ed25519', d: b64u(seed), x: '' },
    });
    this.publicKey = rawPublic(createPublicKey(this.priv));
  }
  static generate(): IdentityKey {
    return new IdentityKey(randomBytes(32));
  }
  static fromSeed(seed: Uint8Array): IdentityKey {
    return new IdentityKey(Buffer.from(seed));
  }
  /** The 32 secret bytes, for the key file. */
  seed(): Buffer {
    return Buffer.from(this.seedBytes);
  }
  /** SHA-256 of the public key: the relay id. */
  get id(): Buffer {
    return sha256(this.publicKey);
  }
  /** Signs `domain | message`; the domain separates document kinds so one signature never serves two. */
  sign(domain: string, message: Uint8Array): Buffer {
    return edSign(null, Buffer.concat([Buffer.from(domain, 'utf8'), message]), this.priv);
  }
}

const edPublicCache = new Map<string, KeyObject>();
function edPublic(raw: Uint8Array): KeyObject {
  const k = b64u(raw);
  let key = edPublicCache.get(k);
  if (!key) {
    key = createPublicKey({ format: 'jwk', key: { kty: 'OKP', crv: 'Ed25519', x: k } });
    if (edPublicCache.size > 10_000) edPublicCache.clear();
    edPublicCache.set(k, key);
  }
  return key;
}

/** True when `signature` is `publicKey`'s Ed25519 signature over `domain | message`. Never throws. */
export function verifySignature(
  publicKey: Uint8Array,
  domain: string,
  message: Uint8Array,
  signature: Uint8Array,
): boolean {
  if (publicKey.length !== 32 || signature.length !== 64) return false;
  try {
    return edVerify(
      null,
      Buffer.concat([Buffer.from(domain, 'utf8'), message]),
      edPublic(publicKey),
      signature,
    );
  } catch {
    return false;
  }
}

/** The relay id of an identity public key (protocol §1.1). */
export function relayIdOf(identityPublicKey: Uint8Array): Buffer {
  return sha256(identityPublicKey);
}

/** An X25519 key pair: a relay's onion key, a link key, or an ephemeral handshake key. */
export class X25519Key {
  readonly publicKey: Buffer;
  private readonly priv: KeyObject;
  private readonly secretBytes: Buffer;

  private constructor(secret: Buffer) {
    check32(secret, 'an X25519 secret');
    this.secretBytes = Buffer.from(secret);
    this.priv = createPrivateKey({
      format: 'jwk',
      key: { kty: 'OKP', crv: 'X25519', d: b64u(secret), x: '' },
    });
    this.publicKey = rawPublic(createPublicKey(this.priv));
  }
  static generate(): X25519Key {
    return new X25519Key(randomBytes(32));
  }
  static fromSecret(secret: Uint8Array): X25519Key {
    return new X25519Key(Buffer.from(secret));
  }
  secret(): Buffer {
    return Buffer.from(this.secretBytes);
  }
  /** X25519(this secret, peer public). Throws KeyError on a malformed peer key. */
  dh(peerPublic: Uint8Array): Buffer {
    check32(peerPublic, 'an X25519 public key');
    try {
      const pub = createPublicKey({ format: 'jwk', key: { kty: 'OKP', crv: 'X25519', x: b64u(peerPublic) } });
      return diffieHellman({ privateKey: this.priv, publicKey: pub });
    } catch (err) {
      throw new KeyError('ALLIUM_KEY_DH', 'X25519 with the peer key failed (low-order or malformed point)', {
        cause: err,
      });
    }
  }
}

/**
 * One ephemeral X25519 key made ahead of need: making one costs about as much as a shared secret,
 * which a circuit handshake would otherwise spend on its critical path at the client and at every
 * relay. `take()` hands the key out once (or makes one now if none is ready); `refill()` makes the
 * next, for the caller to run once the handshake's message is on its way. A key is never handed out
 * twice.
 */
export class SpareEphemeralKey {
  private spare: X25519Key | null = null;

  take(): X25519Key {
    const key = this.spare ?? X25519Key.generate();
    this.spare = null;
    return key;
  }

  refill(): void {
    if (!this.spare) this.spare = X25519Key.generate();
  }
}
