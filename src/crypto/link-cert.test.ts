import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { CryptoError } from './errors.js';
import { IdentityKey, relayIdOf, verifySignature, X25519Key } from './keys.js';
import {
  LINK_CERT_LEN,
  LINK_CERT_MAX_VALIDITY_MS,
  linkCertExpiry,
  makeLinkCert,
  verifyLinkCert,
  verifyLinkCertFor,
} from './link-cert.js';

const numRuns = Number(process.env.FUZZ_RUNS ?? 200);
const linkIdentity = (e: unknown) => e instanceof CryptoError && e.code === 'ALLIUM_LINK_IDENTITY';
const expired = (e: unknown) => e instanceof CryptoError && e.code === 'ALLIUM_LINK_CERT_EXPIRED';

describe('link certificates', () => {
  const identity = IdentityKey.fromSeed(Buffer.alloc(32, 0x44));
  const link = X25519Key.fromSecret(Buffer.alloc(32, 0x77));
  /** The time the test vector's checks run at: a day before it expires. */
  const EXPIRES = 1_900_000_000_000;
  const NOW = EXPIRES - 24 * 3600_000;

  it('matches the test vector of protocol §1.1', () => {
    assert.equal(
      identity.publicKey.toString('hex'),
      'd759793bbc13a2819a827c76adb6fba8a49aee007f49f2d0992d99b825ad2c48',
    );
    assert.equal(
      link.publicKey.toString('hex'),
      '1cf579aba45a10ba1d1ef06d91fca2aa9ed0a1150515653155405d0b18cb9a67',
    );
    const cert = makeLinkCert(identity, link.publicKey, EXPIRES);
    assert.equal(
      cert.toString('hex'),
      'd759793bbc13a2819a827c76adb6fba8a49aee007f49f2d0992d99b825ad2c48' +
        '00000000713fb300' +
        'f55deb50d72c9c6ba578b5e178463ded882a6253ec8dc1f6662c010bedef8498' +
        'ab03f8f1c4c8d5fa5c3daf0f4335b55c0d0be48cfa1128d26f2d413a71e19600',
    );
    assert.equal(
      verifyLinkCert(cert, link.publicKey, NOW).toString('hex'),
      'b14705888f4a68391a09aa5968dd25d16c3bba7bb3b6d15bf354d8dcaae85a47',
    );
  });

  it('is identity_pub | expires(u64 s) | Ed25519 over "allium-link-cert-v2" | link_pub | expires', () => {
    const cert = makeLinkCert(identity, link.publicKey, EXPIRES + 999);
    assert.equal(cert.length, LINK_CERT_LEN);
    assert.deepEqual(cert.subarray(0, 32), identity.publicKey);
    assert.equal(cert.readBigUInt64BE(32), BigInt(EXPIRES / 1000), 'whole seconds, rounded down');
    assert.equal(linkCertExpiry(cert), EXPIRES);
    const signed = Buffer.concat([link.publicKey, cert.subarray(32, 40)]);
    assert.ok(verifySignature(identity.publicKey, 'allium-link-cert-v2', signed, cert.subarray(40)));
  });

  it('verifies and returns the relay id', () => {
    const cert = makeLinkCert(identity, link.publicKey, EXPIRES);
    assert.deepEqual(verifyLinkCert(cert, link.publicKey, NOW), identity.id);
    assert.deepEqual(verifyLinkCert(cert, link.publicKey, NOW), relayIdOf(identity.publicKey));
    assert.deepEqual(verifyLinkCertFor(cert, link.publicKey, identity.id, NOW), identity.id);
    // Without a time: now. A fresh certificate is valid.
    assert.deepEqual(verifyLinkCert(makeLinkCert(identity, link.publicKey), link.publicKey), identity.id);
  });

  it('refuses an expired certificate, and one valid for longer than allowed', () => {
    const cert = makeLinkCert(identity, link.publicKey, EXPIRES);
    assert.throws(() => verifyLinkCert(cert, link.publicKey, EXPIRES), expired);
    assert.throws(() => verifyLinkCert(cert, link.publicKey, EXPIRES + 1), expired);
    assert.throws(() => verifyLinkCertFor(cert, link.publicKey, identity.id, EXPIRES + 1), expired);
    assert.deepEqual(verifyLinkCert(cert, link.publicKey, EXPIRES - LINK_CERT_MAX_VALIDITY_MS), identity.id);
    assert.throws(
      () => verifyLinkCert(cert, link.publicKey, EXPIRES - LINK_CERT_MAX_VALIDITY_MS - 1000),
      linkIdentity,
    );
  });

  it('refuses a changed expiry (it is signed)', () => {
    const cert = makeLinkCert(identity, link.publicKey, EXPIRES);
    const later = Buffer.from(cert);
    later[39] ^= 1;
    assert.throws(() => verifyLinkCert(later, link.publicKey, NOW), linkIdentity);
  });

  it('rejects a certificate for another link key', () => {
    const cert = makeLinkCert(identity, link.publicKey, EXPIRES);
    assert.throws(() => verifyLinkCert(cert, X25519Key.generate().publicKey, NOW), linkIdentity);
    assert.throws(() => verifyLinkCert(cert, Buffer.alloc(31), NOW), linkIdentity);
  });

  it('rejects a wrong signature, a swapped identity, and wrong lengths', () => {
    const cert = makeLinkCert(identity, link.publicKey, EXPIRES);
    const badSig = Buffer.from(cert);
    badSig[60] ^= 1;
    assert.throws(() => verifyLinkCert(badSig, link.publicKey, NOW), linkIdentity);
    const otherIdentity = Buffer.from(cert);
    IdentityKey.generate().publicKey.copy(otherIdentity, 0);
    assert.throws(() => verifyLinkCert(otherIdentity, link.publicKey, NOW), linkIdentity);
    // A signature by the right key but for another domain does not count.
    const wrongDomain = Buffer.concat([
      identity.publicKey,
      cert.subarray(32, 40),
      identity.sign('allium-link-cert-v1', Buffer.concat([link.publicKey, cert.subarray(32, 40)])),
    ]);
    assert.throws(() => verifyLinkCert(wrongDomain, link.publicKey, NOW), linkIdentity);
    assert.throws(() => verifyLinkCert(cert.subarray(0, 103), link.publicKey, NOW), linkIdentity);
    assert.throws(() => verifyLinkCert(Buffer.alloc(0), link.publicKey, NOW), linkIdentity);
    // The older format (no expiry) is named in the error.
    const legacy = Buffer.concat([identity.publicKey, identity.sign('allium-link-cert-v1', link.publicKey)]);
    assert.throws(() => verifyLinkCert(legacy, link.publicKey, NOW), /before 0\.5\.0/);
  });

  it('rejects a valid certificate of a relay other than the one expected', () => {
    const cert = makeLinkCert(identity, link.publicKey, EXPIRES);
    assert.throws(
      () => verifyLinkCertFor(cert, link.publicKey, IdentityKey.generate().id, NOW),
      linkIdentity,
    );
  });

  it('throws only LINK_IDENTITY for random certificates', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 120 }), fc.boolean(), (bytes, fixedLen) => {
        const b = fixedLen
          ? Buffer.concat([Buffer.from(bytes), Buffer.alloc(LINK_CERT_LEN)]).subarray(0, LINK_CERT_LEN)
          : Buffer.from(bytes);
        assert.throws(() => verifyLinkCert(b, link.publicKey, NOW), linkIdentity);
      }),
      { numRuns },
    );
  });
});
