// Implements docs/protocol.md §1.1 (link certificates) and the certificate checks of §1.2.
import { CryptoError, CryptoErrorCode, expectLength } from './errors.js';
import { type IdentityKey, relayIdOf, verifySignature } from './keys.js';

export const LINK_CERT_DOMAIN = 'allium-link-cert-v2';
export const LINK_CERT_LEN = 104;
/** The format of older releases (no expiry, protocol §1.1): named in the error a peer of one gets. */
const LEGACY_LINK_CERT_LEN = 96;
/** A certificate may expire at most this far ahead of the verifier's clock (§1.1). */
export const LINK_CERT_MAX_VALIDITY_MS = 31 * 24 * 3600_000;
/** What makeLinkCert gives when not told (tests and tools; relays say, from their key schedule). */
const DEFAULT_VALIDITY_MS = 24 * 3600_000;

/**
 * identity_pub(32) | expires(u64, Unix seconds) | Ed25519-sign(identity, "allium-link-cert-v2" | link_pub
 * | expires)(64). `expiresAtMs` is rounded down to a whole second.
 */
export function makeLinkCert(
  identity: IdentityKey,
  linkPublic: Buffer,
  expiresAtMs = Date.now() + DEFAULT_VALIDITY_MS,
): Buffer {
  expectLength(linkPublic, 32, 'a link public key');
  const expires = Buffer.alloc(8);
  expires.writeBigUInt64BE(BigInt(Math.max(0, Math.floor(expiresAtMs / 1000))));
  return Buffer.concat([
    identity.publicKey,
    expires,
    identity.sign(LINK_CERT_DOMAIN, Buffer.concat([linkPublic, expires])),
  ]);
}

/** When a certificate of the right length expires, in ms since the epoch (not verified). */
export function linkCertExpiry(cert: Buffer): number {
  return Number(cert.readBigUInt64BE(32)) * 1000;
}

/**
 * Checks that `cert` binds `linkPublic` (the peer's Noise static key) to an identity, and that it has
 * not expired at `now` nor expires more than LINK_CERT_MAX_VALIDITY_MS after it; returns that
 * identity's relay id. Throws LINK_IDENTITY (wrong length, signature or validity) or LINK_CERT_EXPIRED.
 */
export function verifyLinkCert(cert: Buffer, linkPublic: Buffer, now = Date.now()): Buffer {
  if (cert.length !== LINK_CERT_LEN) {
    const why =
      cert.length === LEGACY_LINK_CERT_LEN
        ? 'the peer runs a release before 0.5.0, whose certificates do not expire'
        : 'the peer is not an Allium relay';
    throw new CryptoError(
      CryptoErrorCode.LINK_IDENTITY,
      `a link certificate is ${LINK_CERT_LEN} bytes, got ${cert.length}: ${why}`,
    );
  }
  const identityPub = cert.subarray(0, 32);
  const signed = Buffer.concat([linkPublic, cert.subarray(32, 40)]);
  if (
    linkPublic.length !== 32 ||
    !verifySignature(identityPub, LINK_CERT_DOMAIN, signed, cert.subarray(40))
  ) {
    throw new CryptoError(
      CryptoErrorCode.LINK_IDENTITY,
      "the peer's link certificate does not sign its Noise static key: closing the link",
    );
  }
  const expires = linkCertExpiry(cert);
  if (expires <= now) {
    throw new CryptoError(
      CryptoErrorCode.LINK_CERT_EXPIRED,
      `the peer's link certificate expired ${Math.round((now - expires) / 1000)} s ago (by this machine's clock): it must rotate its link key`,
    );
  }
  if (expires - now > LINK_CERT_MAX_VALIDITY_MS) {
    throw new CryptoError(
      CryptoErrorCode.LINK_IDENTITY,
      `the peer's link certificate is valid for ${Math.round((expires - now) / 86_400_000)} days, more than the ${LINK_CERT_MAX_VALIDITY_MS / 86_400_000} allowed (or this machine's clock is far behind)`,
    );
  }
  return relayIdOf(identityPub);
}

/**
 * verifyLinkCert plus the check the initiator makes (§1.2): the certificate must prove the relay
 * id it meant to reach. Returns that id; throws LINK_IDENTITY otherwise.
 */
export function verifyLinkCertFor(
  cert: Buffer,
  linkPublic: Buffer,
  expectedRelayId: Buffer,
  now = Date.now(),
): Buffer {
  const id = verifyLinkCert(cert, linkPublic, now);
  if (!id.equals(expectedRelayId)) {
    throw new CryptoError(
      CryptoErrorCode.LINK_IDENTITY,
      `the peer proved relay id ${id.toString('hex')}, not the expected ${expectedRelayId.toString('hex')}`,
    );
  }
  return id;
}
