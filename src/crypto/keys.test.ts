import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  IdentityKey,
  KeyError,
  randomBytes,
  relayIdOf,
  SpareEphemeralKey,
  sha256,
  verifySignature,
  X25519Key,
} from './keys.js';

const hex = (s: string) => Buffer.from(s, 'hex');
const keyCode = (c: string) => (e: unknown) => e instanceof KeyError && e.code === c;

describe('sha256 and relay ids', () => {
  it('hashes known inputs, over several parts', () => {
    assert.equal(
      sha256(Buffer.from('abc')).toString('hex'),
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    );
    assert.deepEqual(sha256(Buffer.from('a'), Buffer.from('bc')), sha256(Buffer.from('abc')));
    assert.deepEqual(relayIdOf(Buffer.alloc(32, 1)), sha256(Buffer.alloc(32, 1)));
  });

  it('randomBytes gives the length asked and differs between calls', () => {
    assert.equal(randomBytes(32).length, 32);
    assert.notDeepEqual(randomBytes(32), randomBytes(32));
  });
});

describe('IdentityKey (Ed25519)', () => {
  // RFC 8032 §7.1, TEST 1 (empty message): with an empty domain, sign() is plain Ed25519.
  const seed = hex('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60');
  const pub = hex('d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a');
  const sig = hex(
    'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
  );

  it('matches the RFC 8032 test vector', () => {
    const k = IdentityKey.fromSeed(seed);
    assert.deepEqual(k.publicKey, pub);
    assert.deepEqual(k.sign('', Buffer.alloc(0)), sig);
    assert.deepEqual(k.seed(), seed);
    assert.deepEqual(k.id, sha256(pub));
    assert.ok(verifySignature(pub, '', Buffer.alloc(0), sig));
  });

  it('separates domains and rejects tampering without throwing', () => {
    const k = IdentityKey.generate();
    const msg = Buffer.from('hello');
    const s = k.sign('allium-test-v1\n', msg);
    assert.ok(verifySignature(k.publicKey, 'allium-test-v1\n', msg, s));
    assert.equal(verifySignature(k.publicKey, 'allium-other-v1\n', msg, s), false);
    assert.equal(verifySignature(k.publicKey, 'allium-test-v1\n', Buffer.from('hellp'), s), false);
    const bad = Buffer.from(s);
    bad[0] ^= 1;
    assert.equal(verifySignature(k.publicKey, 'allium-test-v1\n', msg, bad), false);
    assert.equal(verifySignature(k.publicKey.subarray(1), 'allium-test-v1\n', msg, s), false);
    assert.equal(verifySignature(k.publicKey, 'allium-test-v1\n', msg, s.subarray(1)), false);
    assert.equal(verifySignature(Buffer.alloc(32, 0xff), 'allium-test-v1\n', msg, s), false);
  });

  it('rejects a seed of the wrong length', () => {
    assert.throws(() => IdentityKey.fromSeed(Buffer.alloc(31)), keyCode('ALLIUM_KEY_LENGTH'));
  });
});

describe('X25519Key', () => {
  // RFC 7748 §6.1.
  const aSecret = hex('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a');
  const aPublic = hex('8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a');
  const bSecret = hex('5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb');
  const bPublic = hex('de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f');
  const shared = hex('4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742');

  it('matches the RFC 7748 test vector', () => {
    const a = X25519Key.fromSecret(aSecret);
    const b = X25519Key.fromSecret(bSecret);
    assert.deepEqual(a.publicKey, aPublic);
    assert.deepEqual(b.publicKey, bPublic);
    assert.deepEqual(a.dh(bPublic), shared);
    assert.deepEqual(b.dh(aPublic), shared);
    assert.deepEqual(a.secret(), aSecret);
  });

  it('generated keys agree with each other', () => {
    const a = X25519Key.generate();
    const b = X25519Key.generate();
    assert.deepEqual(a.dh(b.publicKey), b.dh(a.publicKey));
  });

  it('rejects bad lengths and the all-zero (low-order) point', () => {
    const a = X25519Key.generate();
    assert.throws(() => X25519Key.fromSecret(Buffer.alloc(33)), keyCode('ALLIUM_KEY_LENGTH'));
    assert.throws(() => a.dh(Buffer.alloc(31)), keyCode('ALLIUM_KEY_LENGTH'));
    assert.throws(() => a.dh(Buffer.alloc(32)), keyCode('ALLIUM_KEY_DH'));
  });
});

describe('SpareEphemeralKey', () => {
  it('hands out the key it made ahead of time once, and a fresh one when none is ready', () => {
    const spare = new SpareEphemeralKey();
    const seen = new Set<string>();
    const a = spare.take(); // none ready: made now
    spare.refill();
    spare.refill();
    const b = spare.take();
    const c = spare.take(); // taken already: made now
    for (const k of [a, b, c]) seen.add(k.publicKey.toString('hex'));
    assert.equal(seen.size, 3, 'never the same key twice');
  });

  it('its keys agree like any X25519 key', () => {
    const spare = new SpareEphemeralKey();
    spare.refill();
    const mine = spare.take();
    const peer = X25519Key.generate();
    assert.deepEqual(mine.dh(peer.publicKey), peer.dh(mine.publicKey));
  });
});
