import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { ed25519 } from '@noble/curves/ed25519.js';
import fc from 'fast-check';
import { expandSeed, signWithScalar } from './ed25519-arith.js';
import { blindPublicKey, blindSecret, signBlinded, subcredential } from './key-blinding.js';
import { IdentityKey, verifySignature } from './keys.js';

const numRuns = Number(process.env.FUZZ_RUNS ?? 30);
const seed = Buffer.alloc(32, 0x55);
const period = { number: 20_000, length: 86_400 };

describe('Ed25519 with a scalar and prefix (§8.2)', () => {
  it('signs exactly as node:crypto does for an ordinary seed (Ed25519 is deterministic)', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.uint8Array({ maxLength: 200 }),
        (s, m) => {
          const node = IdentityKey.fromSeed(s);
          const mine = signWithScalar(expandSeed(s), m);
          assert.deepEqual(expandSeed(s).publicKey, node.publicKey);
          assert.deepEqual(mine, node.sign('', m));
        },
      ),
      { numRuns },
    );
  });
});

describe('key blinding (§8.2)', () => {
  const A = IdentityKey.fromSeed(seed).publicKey;

  it('gives the pinned blinded key, signature and subcredential', () => {
    const blinded = blindPublicKey(A, period);
    assert.equal(blinded.toString('hex'), PINNED.blinded);
    const secret = blindSecret(seed, period);
    assert.deepEqual(secret.publicKey, blinded);
    const sig = signBlinded(secret, 'allium-test\n', Buffer.from('blinded vector'));
    assert.equal(sig.toString('hex'), PINNED.signature);
    assert.equal(subcredential(A, blinded).toString('hex'), PINNED.subcredential);
  });

  it("matches a from-the-spec recomputation of h and A' = h A", () => {
    const periodBytes = Buffer.alloc(16);
    periodBytes.writeBigUInt64BE(BigInt(period.number), 0);
    periodBytes.writeBigUInt64BE(BigInt(period.length), 8);
    const h = createHash('sha256').update('allium-hs-blind-v1').update(A).update(periodBytes).digest();
    h[0] &= 248;
    h[31] &= 63;
    h[31] |= 64;
    const n = BigInt(`0x${Buffer.from(h).reverse().toString('hex')}`) % ed25519.Point.Fn.ORDER;
    const expected = ed25519.Point.fromBytes(A).multiply(n).toBytes();
    assert.deepEqual(blindPublicKey(A, period), Buffer.from(expected));
    const credential = createHash('sha256').update('allium-hs-credential-v1').update(A).digest();
    const sub = createHash('sha256')
      .update('allium-hs-subcredential-v1')
      .update(credential)
      .update(expected)
      .digest();
    assert.deepEqual(subcredential(A, expected), sub);
  });

  it('computes the same key from the address alone as from the secret, for any key and period', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.integer({ min: 0, max: 2 ** 40 }),
        fc.constantFrom(60, 3600, 86_400),
        (s, number, length) => {
          const p = { number, length };
          const pub = IdentityKey.fromSeed(s).publicKey;
          const secret = blindSecret(s, p);
          assert.deepEqual(blindPublicKey(pub, p), secret.publicKey);
          const msg = Buffer.from(`period ${number}`);
          const sig = signBlinded(secret, 'd\n', msg);
          assert.ok(verifySignature(secret.publicKey, 'd\n', msg, sig), 'node:crypto accepts it');
          assert.ok(!verifySignature(pub, 'd\n', msg, sig), 'not a signature of the identity key');
          assert.ok(!verifySignature(secret.publicKey, 'd\n', Buffer.from('other'), sig));
        },
      ),
      { numRuns },
    );
  });

  it('gives a different key, subcredential and signature nonce in every period and period length', () => {
    const keys = new Set<string>();
    const nonces = new Set<string>();
    const subs = new Set<string>();
    for (const p of [
      period,
      { ...period, number: period.number + 1 },
      { number: period.number * 24, length: 3600 },
    ]) {
      const secret = blindSecret(seed, p);
      keys.add(secret.publicKey.toString('hex'));
      subs.add(subcredential(A, secret.publicKey).toString('hex'));
      nonces.add(signBlinded(secret, '', Buffer.from('same message')).subarray(0, 32).toString('hex'));
    }
    assert.equal(keys.size, 3);
    assert.equal(subs.size, 3);
    assert.equal(nonces.size, 3);
    assert.ok(!keys.has(A.toString('hex')));
  });
});

const PINNED = {
  blinded: '10e69cf91be3abca5a3afb880f9331d00f182c0c345ea14f8d80c2cc1164454d',
  signature:
    'c909beb5eff7e9d0c44983879957e9260503cef3fd8484df29498f8257e9a1e6' +
    'd4ac309d40643fe339921363dd744990a38e1178d8d7495325173115ec5a3806',
  subcredential: 'f4c349ef373278cfce192a617b474a5e137e08dd7c1bff30e824bb8759c15df0',
};
