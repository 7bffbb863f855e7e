// Implements docs/protocol.md §1.1 (link certificates) and the certificate checks of §1.2.
import { CryptoError, CryptoErrorCode, expectLength } from './errors.js';
import { type IdentityKey, relayIdOf, verifySignature } from './keys.js';

export const LINK_CERT_DOMAIN = 'allium-link-cert-v1';
export const LINK_CERT_LEN = 96;

/** identity_pub(32) | Ed25519-sign(identity, "allium-link-cert-v1" | link_pub)(64). */
export function makeLinkCert(identity: IdentityKey, linkPublic: Buffer): Buffer {
  expectLength(linkPublic, 32, 'a link public key');
  return Buffer.concat([identity.publicKey, identity.sign(LINK_CERT_DOMAIN, linkPublic)]);
}

/**
 * Checks that `cert` binds `linkPublic` (the peer's Noise static key) to an identity and returns
 * that identity's relay id. Throws LINK_IDENTITY if the length or signature is wrong.
 */
export function verifyLinkCert(cert: Buffer, linkPublic: Buffer): Buffer {
  if (cert.length !== LINK_CERT_LEN) {
    throw new CryptoError(
      CryptoErrorCode.LINK_IDENTITY,
      `a link certificate is ${LINK_CERT_LEN} bytes, got ${cert.length}: the peer is not an Allium relay`,
    );
  }
  const identityPub = cert.subarray(0, 32);
  if (
    linkPublic.length !== 32 ||
    !verifySignature(identityPub, LINK_CERT_DOMAIN, linkPublic, cert.subarray(32))
  ) {
    throw new CryptoError(
      CryptoErrorCode.LINK_IDENTITY,
      "the peer's link certificate does not sign its Noise static key: closing the link",
    );
  }
  return relayIdOf(identityPub);
}

/**
 * verifyLinkCert plus the check the initiator makes (§1.2): the certificate must prove the relay
 * id it meant to reach. Returns that id; throws LINK_IDENTITY otherwise.
 */
export function verifyLinkCertFor(cert: Buffer, linkPublic: Buffer, expectedRelayId: Buffer): Buffer {
  const id = verifyLinkCert(cert, linkPublic);
  if (!id.equals(expectedRelayId)) {
    throw new CryptoError(
      CryptoErrorCode.LINK_IDENTITY,
      `the peer proved relay id ${id.toString('hex')}, not the expected ${expectedRelayId.toString('hex')}`,
    );
  }
  return id;
}
