// Implements docs/protocol.md §8.2 (the Ed25519 arithmetic under key blinding): what node:crypto does
// not offer. Signing with a blinded key needs a secret scalar and prefix that no seed produces, and
// blinding a public key needs point multiplication; both come from @noble/curves here (audited,
// pure JavaScript), while every hash stays on node:crypto. Verification needs neither: a signature
// made here is plain Ed25519, which keys.ts's verifySignature checks.
import { createHash } from 'node:crypto';
import { ed25519 } from '@noble/curves/ed25519.js';
import { CryptoError, CryptoErrorCode, expectLength } from './errors.js';

const Point = ed25519.Point;
type EdPoint = InstanceType<typeof Point>;
/** The order of the prime-order subgroup, l = 2^252 + 27742317777372353535851937790883648493. */
export const ED25519_ORDER: bigint = Point.Fn.ORDER;

function sha512(...parts: Uint8Array[]): Buffer {
  const h = createHash('sha512');
  for (const p of parts) h.update(p);
  return h.digest();
}

/** A little-endian byte string as an integer. */
export function scalarFromBytes(bytes: Uint8Array): bigint {
  let n = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(bytes[i]);
  return n;
}

/** An integer below 2^256 as 32 little-endian bytes. */
export function scalarToBytes(n: bigint): Buffer {
  const out = Buffer.alloc(32);
  let v = n;
  for (let i = 0; i < 32; i++) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

/** RFC 8032's clamping of a 32-byte string to a scalar: a multiple of 8 with bit 254 set. */
export function clamp(bytes: Uint8Array): Buffer {
  const c = Buffer.from(bytes.subarray(0, 32));
  c[0] &= 248;
  c[31] &= 63;
  c[31] |= 64;
  return c;
}

/** An Ed25519 secret as a scalar and the prefix that makes its nonces (RFC 8032 §5.1.5). */
export interface ExpandedSecret {
  /** The secret scalar, reduced mod l. */
  scalar: bigint;
  /** 32 bytes hashed with each message into the signature's nonce. */
  prefix: Buffer;
  /** scalar x B, encoded. */
  publicKey: Buffer;
}

/** The scalar and prefix of a 32-byte Ed25519 seed, as every Ed25519 signer derives them. */
export function expandSeed(seed: Uint8Array): ExpandedSecret {
  expectLength(seed, 32, 'an Ed25519 seed');
  const h = sha512(seed);
  const scalar = scalarFromBytes(clamp(h.subarray(0, 32))) % ED25519_ORDER;
  const prefix = Buffer.from(h.subarray(32, 64));
  h.fill(0);
  return { scalar, prefix, publicKey: publicKeyOf(scalar) };
}

/** scalar x B, encoded (scalar in [1, l)). */
export function publicKeyOf(scalar: bigint): Buffer {
  return Buffer.from(Point.BASE.multiply(checkScalar(scalar)).toBytes());
}

function checkScalar(s: bigint): bigint {
  if (s <= 0n || s >= ED25519_ORDER) {
    throw new CryptoError(CryptoErrorCode.ARGUMENT, 'an Ed25519 scalar must lie in [1, l)');
  }
  return s;
}

/**
 * The point of an encoded public key if it is one a service may be named by: canonically encoded,
 * on the curve, and in the prime-order subgroup (no small-order part). A key with a small-order part
 * would blind to the same key as the key without it, so two addresses would name one service.
 */
function usablePoint(publicKey: Uint8Array): EdPoint | null {
  if (publicKey.length !== 32) return null;
  let p: EdPoint;
  try {
    p = Point.fromBytes(publicKey, false);
  } catch {
    return null;
  }
  if (p.is0() || p.isSmallOrder() || !p.isTorsionFree()) return null;
  return p;
}

/** Whether `publicKey` can name a service (see usablePoint). Never throws. */
export function isUsablePublicKey(publicKey: Uint8Array): boolean {
  return usablePoint(publicKey) !== null;
}

/** scalar x P for a usable public key P, encoded; ARGUMENT on a key that is not usable. */
export function multiplyPublicKey(publicKey: Uint8Array, scalar: bigint): Buffer {
  const p = usablePoint(publicKey);
  if (!p) throw new CryptoError(CryptoErrorCode.ARGUMENT, 'not a usable Ed25519 public key');
  return Buffer.from(p.multiply(checkScalar(scalar)).toBytes());
}

/**
 * An RFC 8032 Ed25519 signature of `message` by the secret (scalar, prefix) whose public key is
 * `publicKey`: r = SHA-512(prefix | M) mod l, R = rB, k = SHA-512(R | A | M) mod l, S = r + k a mod l.
 * Any Ed25519 verifier accepts it under `publicKey`.
 */
export function signWithScalar(secret: ExpandedSecret, message: Uint8Array): Buffer {
  const r = scalarFromBytes(sha512(secret.prefix, message)) % ED25519_ORDER;
  // r is 0 with probability 2^-252: publicKeyOf then refuses it rather than sign with a zero nonce.
  const R = publicKeyOf(r);
  const k = scalarFromBytes(sha512(R, secret.publicKey, message)) % ED25519_ORDER;
  const S = (r + k * secret.scalar) % ED25519_ORDER;
  return Buffer.concat([R, scalarToBytes(S)]);
}
