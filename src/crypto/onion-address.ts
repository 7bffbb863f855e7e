// Implements docs/protocol.md §8.1 (onion addresses): the checksum and the key checks that turn the
// parts src/wire/onion-address.ts takes apart into a service's public key, and back.
import { joinOnionAddress, ONION_ADDRESS_VERSION, splitOnionAddress } from '../wire/onion-address.js';
import { OnionError } from '../wire/onion-errors.js';
import { isUsablePublicKey } from './ed25519-arith.js';
import { expectLength } from './errors.js';
import { sha256 } from './keys.js';

const CHECKSUM_DOMAIN = Buffer.from('.allium checksum', 'ascii');

/**
 * SHA-256(".allium checksum" | key | version)[0:2]. The same formula for every version, so a
 * mistyped character reads as a checksum error, never as an unknown version.
 */
export function onionChecksum(publicKey: Uint8Array, version: number): Buffer {
  return sha256(CHECKSUM_DOMAIN, publicKey, Buffer.from([version])).subarray(0, 2);
}

/** The address of a service's Ed25519 public key: `<56 base32>.allium`. */
export function onionAddressOf(publicKey: Uint8Array): string {
  expectLength(publicKey, 32, "a service's public key");
  if (!isUsablePublicKey(publicKey)) {
    throw new OnionError(
      'ALLIUM_ONION_ADDRESS_KEY',
      'this key cannot name a service (not a prime-order point)',
    );
  }
  const key = Buffer.from(publicKey);
  return joinOnionAddress({
    publicKey: key,
    checksum: onionChecksum(key, ONION_ADDRESS_VERSION),
    version: ONION_ADDRESS_VERSION,
  });
}

/**
 * The service key an address names. Throws OnionError: ALLIUM_ONION_ADDRESS (not the shape),
 * ALLIUM_ONION_ADDRESS_CHECKSUM (a character changed), ALLIUM_ONION_ADDRESS_VERSION (a valid
 * address of another version), ALLIUM_ONION_ADDRESS_KEY (checksum fine, key unusable).
 */
export function parseOnionAddress(host: string): Buffer {
  const parts = splitOnionAddress(host);
  const expected = onionChecksum(parts.publicKey, parts.version);
  if (!expected.equals(parts.checksum)) {
    throw new OnionError(
      'ALLIUM_ONION_ADDRESS_CHECKSUM',
      'the onion address does not match its checksum: a character is mistyped or missing',
    );
  }
  if (parts.version !== ONION_ADDRESS_VERSION) {
    throw new OnionError(
      'ALLIUM_ONION_ADDRESS_VERSION',
      `the onion address is of version ${parts.version}; this release knows version ${ONION_ADDRESS_VERSION}`,
    );
  }
  if (!isUsablePublicKey(parts.publicKey)) {
    throw new OnionError(
      'ALLIUM_ONION_ADDRESS_KEY',
      'the onion address checks out, but its key is not a usable Ed25519 public key',
    );
  }
  return parts.publicKey;
}
