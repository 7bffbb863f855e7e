import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { CryptoError } from './errors.js';
import { IdentityKey, relayIdOf, verifySignature, X25519Key } from './keys.js';
import { LINK_CERT_LEN, makeLinkCert, verifyLinkCert, verifyLinkCertFor } from './link-cert.js';

const numRuns = Number(process.env.FUZZ_RUNS ?? 200);
const linkIdentity = (e: unknown) => e instanceof CryptoError && e.code === 'ALLIUM_LINK_IDENTITY';

describe('link certificates', () => {
  const identity = IdentityKey.fromSeed(Buffer.alloc(32, 0x44));
  const link = X25519Key.fromSecret(Buffer.alloc(32, 0x77));

  it('is identity_pub | Ed25519 signature over "allium-link-cert-v1" | link_pub (pinned)', () => {
    const cert = makeLinkCert(identity, link.publicKey);
    assert.equal(cert.length, LINK_CERT_LEN);
    assert.deepEqual(cert.subarray(0, 32), identity.publicKey);
    assert.ok(verifySignature(identity.publicKey, 'allium-link-cert-v1', link.publicKey, cert.subarray(32)));
    // Ed25519 is deterministic, so the whole certificate is fixed by the two keys.
    assert.equal(
      cert.toString('hex'),
      Buffer.concat([identity.publicKey, identity.sign('allium-link-cert-v1', link.publicKey)]).toString(
        'hex',
      ),
    );
  });

  it('verifies and returns the relay id', () => {
    const cert = makeLinkCert(identity, link.publicKey);
    assert.deepEqual(verifyLinkCert(cert, link.publicKey), identity.id);
    assert.deepEqual(verifyLinkCert(cert, link.publicKey), relayIdOf(identity.publicKey));
    assert.deepEqual(verifyLinkCertFor(cert, link.publicKey, identity.id), identity.id);
  });

  it('rejects a certificate for another link key', () => {
    const cert = makeLinkCert(identity, link.publicKey);
    assert.throws(() => verifyLinkCert(cert, X25519Key.generate().publicKey), linkIdentity);
    assert.throws(() => verifyLinkCert(cert, Buffer.alloc(31)), linkIdentity);
  });

  it('rejects a wrong signature, a swapped identity, and wrong lengths', () => {
    const cert = makeLinkCert(identity, link.publicKey);
    const badSig = Buffer.from(cert);
    badSig[60] ^= 1;
    assert.throws(() => verifyLinkCert(badSig, link.publicKey), linkIdentity);
    const otherIdentity = Buffer.from(cert);
    IdentityKey.generate().publicKey.copy(otherIdentity, 0);
    assert.throws(() => verifyLinkCert(otherIdentity, link.publicKey), linkIdentity);
    // A signature by the right key but for another domain does not count.
    const wrongDomain = Buffer.concat([
      identity.publicKey,
      identity.sign('allium-descriptor-v1\n', link.publicKey),
    ]);
    assert.throws(() => verifyLinkCert(wrongDomain, link.publicKey), linkIdentity);
    assert.throws(() => verifyLinkCert(cert.subarray(0, 95), link.publicKey), linkIdentity);
    assert.throws(() => verifyLinkCert(Buffer.alloc(0), link.publicKey), linkIdentity);
  });

  it('rejects a valid certificate of a relay other than the one expected', () => {
    const cert = makeLinkCert(identity, link.publicKey);
    assert.throws(() => verifyLinkCertFor(cert, link.publicKey, IdentityKey.generate().id), linkIdentity);
  });

  it('throws only LINK_IDENTITY for random certificates', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 120 }), fc.boolean(), (bytes, fixedLen) => {
        const b = fixedLen
          ? Buffer.concat([Buffer.from(bytes), Buffer.alloc(96)]).subarray(0, 96)
          : Buffer.from(bytes);
        assert.throws(() => verifyLinkCert(b, link.publicKey), linkIdentity);
      }),
      { numRuns },
    );
  });
});
