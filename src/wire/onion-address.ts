// Implements docs/protocol.md §8.1 (the layout of a `.allium` address): base32 of key | checksum |
// version. The checksum is a hash, so computing and checking it is src/crypto/onion-address.ts's job;
// this module only takes the text apart and puts it together.
import { OnionError } from './onion-errors.js';

export const ONION_SUFFIX = '.allium';
export const ONION_ADDRESS_VERSION = 1;
export const ONION_KEY_LEN = 32;
export const ONION_CHECKSUM_LEN = 2;
/** key(32) | checksum(2) | version(1): 35 bytes, 280 bits, exactly 56 base32 characters. */
export const ONION_ADDRESS_BYTES = ONION_KEY_LEN + ONION_CHECKSUM_LEN + 1;
export const ONION_LABEL_LEN = 56;

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567';
const VALUE = new Map([...ALPHABET].map((c, i) => [c, i]));

/** RFC 4648 base32, lowercase, no padding. */
export function base32Encode(bytes: Uint8Array): string {
  let out = '';
  let acc = 0;
  let bits = 0;
  for (const b of bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += ALPHABET[(acc >>> (bits - 5)) & 31];
      bits -= 5;
    }
    acc &= (1 << bits) - 1;
  }
  if (bits > 0) out += ALPHABET[(acc << (5 - bits)) & 31];
  return out;
}

/**
 * The bytes of unpadded base32 text (either case), or null if a character is not base32 or the
 * leftover bits are not zero (so each byte string has exactly one spelling, in each case).
 */
export function base32Decode(text: string): Buffer | null {
  const out = Buffer.alloc(Math.floor((text.length * 5) / 8));
  let acc = 0;
  let bits = 0;
  let at = 0;
  for (const c of text.toLowerCase()) {
    const v = VALUE.get(c);
    if (v === undefined) return null;
    acc = ((acc << 5) | v) & 0xfff;
    bits += 5;
    if (bits >= 8) {
      out[at++] = (acc >>> (bits - 8)) & 0xff;
      bits -= 8;
    }
  }
  if ((acc & ((1 << bits) - 1)) !== 0) return null;
  return out;
}

/** Whether `host` is meant as an onion address (ends in `.allium`, any case): route it as one. */
export function isOnionHost(host: string): boolean {
  return typeof host === 'string' && host.toLowerCase().replace(/\.$/, '').endsWith(ONION_SUFFIX);
}

/** The parts of an address as written; none is checked here (see src/crypto/onion-address.ts). */
export interface OnionAddressParts {
  publicKey: Buffer;
  checksum: Buffer;
  version: number;
}

/**
 * Takes `[subdomain.]<56 base32>.allium[.]` apart. Labels before the address are allowed and ignored,
 * as Tor does for `.onion`, so one service can tell virtual hosts apart. Throws OnionError
 * (ALLIUM_ONION_ADDRESS) on anything that is not that shape.
 */
export function splitOnionAddress(host: string): OnionAddressParts {
  if (typeof host !== 'string' || host.length > 255) {
    throw new OnionError('ALLIUM_ONION_ADDRESS', 'an onion address is a host name of at most 255 characters');
  }
  const name = host.toLowerCase().replace(/\.$/, '');
  if (!name.endsWith(ONION_SUFFIX)) {
    throw new OnionError('ALLIUM_ONION_ADDRESS', `"${clip(host)}" does not end in ${ONION_SUFFIX}`);
  }
  const labels = name.slice(0, -ONION_SUFFIX.length).split('.');
  const label = labels[labels.length - 1];
  if (label.length !== ONION_LABEL_LEN) {
    throw new OnionError(
      'ALLIUM_ONION_ADDRESS',
      `"${clip(host)}": the address before ${ONION_SUFFIX} is ${ONION_LABEL_LEN} characters, got ${label.length}`,
    );
  }
  const bytes = base32Decode(label);
  if (!bytes || bytes.length !== ONION_ADDRESS_BYTES) {
    throw new OnionError(
      'ALLIUM_ONION_ADDRESS',
      `"${clip(host)}": an onion address is written in letters a-z and digits 2-7 only`,
    );
  }
  return {
    publicKey: Buffer.from(bytes.subarray(0, ONION_KEY_LEN)),
    checksum: Buffer.from(bytes.subarray(ONION_KEY_LEN, ONION_KEY_LEN + ONION_CHECKSUM_LEN)),
    version: bytes[ONION_ADDRESS_BYTES - 1],
  };
}

/** `<56 base32>.allium` from its parts (lowercase). */
export function joinOnionAddress(parts: OnionAddressParts): string {
  if (parts.publicKey.length !== ONION_KEY_LEN || parts.checksum.length !== ONION_CHECKSUM_LEN) {
    throw new OnionError(
      'ALLIUM_ONION_ADDRESS',
      'an onion address holds a 32-byte key and a 2-byte checksum',
    );
  }
  if (!Number.isInteger(parts.version) || parts.version < 0 || parts.version > 255) {
    throw new OnionError(
      'ALLIUM_ONION_ADDRESS_VERSION',
      `an address version is one byte, got ${parts.version}`,
    );
  }
  const bytes = Buffer.concat([parts.publicKey, parts.checksum, Buffer.from([parts.version])]);
  return `${base32Encode(bytes)}${ONION_SUFFIX}`;
}

/** Quoted host text in a message: never unbounded, never a control character. */
function clip(host: string): string {
  const s = host.length > 80 ? `${host.slice(0, 77)}...` : host;
  return s.replace(/[^\x20-\x7e]/g, '?');
}
