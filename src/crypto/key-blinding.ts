// Implements docs/protocol.md §8.2 (per-period key blinding and the subcredential). A service's
// descriptors for period p are signed by a key A'_p = h_p x A that anyone who knows the address (A)
// can compute, and that nobody who does not can link to A or to A'_q of another period.
import { createHash } from 'node:crypto';
import {
  clamp,
  ED25519_ORDER,
  type ExpandedSecret,
  expandSeed,
  multiplyPublicKey,
  publicKeyOf,
  scalarFromBytes,
  signWithScalar,
} from './ed25519-arith.js';
import { CryptoError, CryptoErrorCode, expectLength } from './errors.js';
import { sha256 } from './keys.js';

const BLIND_DOMAIN = Buffer.from('allium-hs-blind-v1', 'ascii');
const PREFIX_DOMAIN = Buffer.from('allium-hs-blind-prefix-v1', 'ascii');
const CREDENTIAL_DOMAIN = Buffer.from('allium-hs-credential-v1', 'ascii');
const SUBCREDENTIAL_DOMAIN = Buffer.from('allium-hs-subcredential-v1', 'ascii');

/** A time period: its number and its length, both in the consensus (§8.3). */
export interface Period {
  /** floor(unix seconds / length). */
  number: number;
  /** Seconds. */
  length: number;
}

function u64(n: number, what: string): Buffer {
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new CryptoError(CryptoErrorCode.ARGUMENT, `${what} must be a non-negative integer, got ${n}`);
  }
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
}

/** The period's fields as they enter every hash: number(u64) | length(u64). */
export function periodBytes(period: Period): Buffer {
  if (period.length < 1) throw new CryptoError(CryptoErrorCode.ARGUMENT, 'a period lasts at least 1 second');
  return Buffer.concat([u64(period.number, 'a period number'), u64(period.length, 'a period length')]);
}

/**
 * h = clamp(SHA-256("allium-hs-blind-v1" | A | period)) as a scalar mod l. Clamped as Ed25519 clamps
 * secrets, so h is never 0 mod l and a multiple of the cofactor (kept from Tor's scheme).
 */
function blindingFactor(publicKey: Uint8Array, period: Period): { h: bigint; bytes: Buffer } {
  expectLength(publicKey, 32, "a service's public key");
  const bytes = clamp(sha256(BLIND_DOMAIN, publicKey, periodBytes(period)));
  return { h: scalarFromBytes(bytes) % ED25519_ORDER, bytes };
}

/** A'_p = h_p x A: from the address alone, what clients ask stores for and descriptors are signed by. */
export function blindPublicKey(publicKey: Uint8Array, period: Period): Buffer {
  return multiplyPublicKey(publicKey, blindingFactor(publicKey, period).h);
}

/**
 * The service's secret for period p: scalar a' = h_p a mod l, and a nonce prefix of its own (a hash
 * of the identity prefix and h_p), so nonces of different periods never repeat and reveal nothing
 * shared. Its public key is A'_p (= a' B).
 */
export function blindSecret(seed: Uint8Array, period: Period): ExpandedSecret {
  const identity = expandSeed(seed);
  const { h, bytes } = blindingFactor(identity.publicKey, period);
  const scalar = (h * identity.scalar) % ED25519_ORDER;
  const prefix = createHash('sha512').update(PREFIX_DOMAIN).update(identity.prefix).update(bytes).digest();
  identity.prefix.fill(0);
  return { scalar, prefix: Buffer.from(prefix.subarray(0, 32)), publicKey: publicKeyOf(scalar) };
}

/** An Ed25519 signature over `domain | message` by a blinded secret; verifySignature checks it. */
export function signBlinded(secret: ExpandedSecret, domain: string, message: Uint8Array): Buffer {
  return signWithScalar(secret, Buffer.concat([Buffer.from(domain, 'utf8'), message]));
}

/**
 * N_p = SHA-256("allium-hs-subcredential-v1" | SHA-256("allium-hs-credential-v1" | A) | A'_p): a secret
 * of everyone who knows the address, per period. It keys the descriptor's inner layer (§8.4) and the
 * introduction (§8.6), so a store, which knows only A'_p, can read neither.
 */
export function subcredential(publicKey: Uint8Array, blindedKey: Uint8Array): Buffer {
  expectLength(publicKey, 32, "a service's public key");
  expectLength(blindedKey, 32, 'a blinded key');
  return sha256(SUBCREDENTIAL_DOMAIN, sha256(CREDENTIAL_DOMAIN, publicKey), blindedKey);
}
