// Implements docs/protocol.md §8.4 (sealing and opening descriptors): the outer layer signed by the
// period's blinded key, which a store checks knowing nothing else; the inner layer under keys from
// the subcredential, which only those who know the address can derive.
import { createCipheriv, createDecipheriv, hkdfSync } from 'node:crypto';
import {
  DESCRIPTOR_INNER_LEN,
  DESCRIPTOR_SALT_LEN,
  decodeInnerDescriptor,
  decodeOuterDescriptor,
  descriptorSignedPart,
  encodeInnerDescriptor,
  encodeOuterDescriptor,
  type IntroPointEntry,
  type OuterDescriptor,
} from '../wire/onion-descriptor.js';
import { OnionError } from '../wire/onion-errors.js';
import type { ExpandedSecret } from './ed25519-arith.js';
import { expectLength } from './errors.js';
import { blindPublicKey, type Period, signBlinded, subcredential } from './key-blinding.js';
import { randomBytes, verifySignature } from './keys.js';

export const DESCRIPTOR_DOMAIN = 'allium-hs-descriptor-v1\n';
const INNER_INFO = Buffer.from('allium-hs-descriptor-inner-v1', 'ascii');
/** A descriptor lives at most 3 hours (Tor's lifetime): long enough to outlast a service's refresh. */
export const MAX_DESCRIPTOR_LIFETIME_S = 3 * 3600;
/** How far a store's or client's clock may be behind the service's before a fresh descriptor looks too long-lived. */
export const DESCRIPTOR_CLOCK_SKEW_S = 5 * 60;

function innerKeys(
  sub: Buffer,
  blindedKey: Buffer,
  revision: number,
  salt: Buffer,
): { key: Buffer; iv: Buffer } {
  const rev = Buffer.alloc(8);
  rev.writeBigUInt64BE(BigInt(revision));
  const okm = Buffer.from(hkdfSync('sha256', sub, salt, Buffer.concat([INNER_INFO, blindedKey, rev]), 44));
  return { key: okm.subarray(0, 32), iv: okm.subarray(32, 44) };
}

export interface DescriptorContents {
  /** The service's identity public key A (what its address names). */
  identityKey: Buffer;
  /** The period's blinded secret (blindSecret): its public key is A'_p. */
  blindedSecret: ExpandedSecret;
  revision: number;
  /** Unix seconds. */
  expires: number;
  introPoints: IntroPointEntry[];
  /** Fixed only by test vectors; fresh random bytes otherwise. */
  salt?: Buffer;
}

/**
 * The descriptor bytes a service stores (§8.4). The salt is fresh every time, so two descriptors
 * sealed with one revision (a restart within a millisecond) still never share a GCM key and nonce.
 */
export function sealDescriptor(c: DescriptorContents): Buffer {
  expectLength(c.identityKey, 32, "a service's public key");
  const blindedKey = c.blindedSecret.publicKey;
  const salt = c.salt ?? randomBytes(DESCRIPTOR_SALT_LEN);
  const { key, iv } = innerKeys(subcredential(c.identityKey, blindedKey), blindedKey, c.revision, salt);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  const sealed = Buffer.concat([cipher.update(encodeInnerDescriptor(c.introPoints)), cipher.final()]);
  key.fill(0);
  const unsigned = { blindedKey, revision: c.revision, expires: c.expires, salt };
  const ciphertext = Buffer.concat([sealed, cipher.getAuthTag()]);
  const signature = signBlinded(
    c.blindedSecret,
    DESCRIPTOR_DOMAIN,
    descriptorSignedPart({ ...unsigned, ciphertext }),
  );
  return encodeOuterDescriptor({ ...unsigned, ciphertext, signature });
}

/**
 * What a store (and a client, first) checks, knowing only the blinded key: the layout (WireError),
 * the signature (ALLIUM_ONION_DESCRIPTOR_SIGNATURE), that it is the key asked for when one was
 * (ALLIUM_ONION_DESCRIPTOR_KEY), and that it is neither expired nor claiming a longer life than
 * descriptors have (ALLIUM_ONION_DESCRIPTOR_EXPIRED). `now` is unix seconds.
 */
export function checkDescriptor(bytes: Buffer, opts: { now: number; blindedKey?: Buffer }): OuterDescriptor {
  const outer = decodeOuterDescriptor(bytes);
  if (opts.blindedKey && !outer.blindedKey.equals(opts.blindedKey)) {
    throw new OnionError(
      'ALLIUM_ONION_DESCRIPTOR_KEY',
      'the descriptor is for another blinded key than asked',
    );
  }
  if (!verifySignature(outer.blindedKey, DESCRIPTOR_DOMAIN, descriptorSignedPart(outer), outer.signature)) {
    throw new OnionError(
      'ALLIUM_ONION_DESCRIPTOR_SIGNATURE',
      'the descriptor is not signed by the blinded key it names',
    );
  }
  if (outer.expires <= opts.now) {
    throw new OnionError(
      'ALLIUM_ONION_DESCRIPTOR_EXPIRED',
      `the descriptor expired ${opts.now - outer.expires} s ago`,
    );
  }
  if (outer.expires > opts.now + MAX_DESCRIPTOR_LIFETIME_S + DESCRIPTOR_CLOCK_SKEW_S) {
    throw new OnionError(
      'ALLIUM_ONION_DESCRIPTOR_EXPIRED',
      `the descriptor claims to live ${outer.expires - opts.now} s more; descriptors live at most ${MAX_DESCRIPTOR_LIFETIME_S} s`,
    );
  }
  return outer;
}

/**
 * What a client does with a fetched descriptor: every check of checkDescriptor against the blinded
 * key of the address for `period`, then the inner layer (ALLIUM_ONION_DESCRIPTOR_DECRYPT if its GCM
 * tag fails: changed, or sealed for another address).
 */
export function openDescriptor(
  bytes: Buffer,
  opts: { identityKey: Buffer; period: Period; now: number },
): { outer: OuterDescriptor; introPoints: IntroPointEntry[] } {
  const blindedKey = blindPublicKey(opts.identityKey, opts.period);
  const outer = checkDescriptor(bytes, { now: opts.now, blindedKey });
  const sub = subcredential(opts.identityKey, blindedKey);
  const { key, iv } = innerKeys(sub, blindedKey, outer.revision, outer.salt);
  const decipher = createDecipheriv('aes-256-gcm', key, iv);
  decipher.setAuthTag(outer.ciphertext.subarray(DESCRIPTOR_INNER_LEN));
  let inner: Buffer;
  try {
    inner = Buffer.concat([
      decipher.update(outer.ciphertext.subarray(0, DESCRIPTOR_INNER_LEN)),
      decipher.final(),
    ]);
  } catch (err) {
    throw new OnionError(
      'ALLIUM_ONION_DESCRIPTOR_DECRYPT',
      "the descriptor's inner layer does not decrypt for this address",
      { cause: err },
    );
  } finally {
    key.fill(0);
  }
  return { outer, introPoints: decodeInnerDescriptor(inner) };
}
