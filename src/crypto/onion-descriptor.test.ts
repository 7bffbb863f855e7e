import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { WireError } from '../wire/errors.js';
import { ONION_DESCRIPTOR_LEN } from '../wire/onion-descriptor.js';
import { OnionError } from '../wire/onion-errors.js';
import { blindPublicKey, blindSecret } from './key-blinding.js';
import { IdentityKey, sha256 } from './keys.js';
import {
  checkDescriptor,
  MAX_DESCRIPTOR_LIFETIME_S,
  openDescriptor,
  sealDescriptor,
} from './onion-descriptor.js';

const numRuns = Number(process.env.FUZZ_RUNS ?? 200);
const isCode = (code: string) => (e: unknown) => e instanceof OnionError && e.code === code;
const seed = Buffer.alloc(32, 0x55);
const identity = IdentityKey.fromSeed(seed).publicKey;
const period = { number: 20_000, length: 86_400 };
const now = period.number * period.length + 3600;
const introPoints = [1, 2, 3].map((i) => ({
  relayId: Buffer.alloc(32, 0x10 + i),
  authKey: Buffer.alloc(32, 0x20 + i),
  encKey: Buffer.alloc(32, 0x30 + i),
}));

function seal(over: Partial<Parameters<typeof sealDescriptor>[0]> = {}): Buffer {
  return sealDescriptor({
    identityKey: identity,
    blindedSecret: blindSecret(seed, period),
    revision: 3_600_000,
    expires: now + MAX_DESCRIPTOR_LIFETIME_S,
    introPoints,
    ...over,
  });
}

describe('onion descriptors (§8.4)', () => {
  it('gives the pinned bytes for a fixed salt, and opens to its introduction points', () => {
    const d = seal({ salt: Buffer.alloc(16, 0x66) });
    assert.equal(d.length, ONION_DESCRIPTOR_LEN);
    assert.equal(sha256(d).toString('hex'), PINNED_SHA256);
    const opened = openDescriptor(d, { identityKey: identity, period, now });
    assert.deepEqual(opened.introPoints, introPoints);
    assert.deepEqual(opened.outer.blindedKey, blindPublicKey(identity, period));
    assert.equal(opened.outer.revision, 3_600_000);
  });

  it('shows a store nothing of the introduction points, and the same size whatever their number', () => {
    const d = seal();
    for (const p of introPoints) {
      for (const field of [p.relayId, p.authKey, p.encKey]) assert.equal(d.indexOf(field.subarray(0, 8)), -1);
    }
    assert.equal(seal({ introPoints: introPoints.slice(0, 1) }).length, d.length);
    // Two seals of the same contents share no ciphertext byte pattern: the salt is fresh.
    assert.notDeepEqual(seal().subarray(49, 113), d.subarray(49, 113));
  });

  it('is accepted by a store knowing only the blinded key, until it expires', () => {
    const d = seal();
    const outer = checkDescriptor(d, { now });
    assert.deepEqual(outer.blindedKey, blindPublicKey(identity, period));
    assert.throws(
      () => checkDescriptor(d, { now: now + MAX_DESCRIPTOR_LIFETIME_S }),
      isCode('ALLIUM_ONION_DESCRIPTOR_EXPIRED'),
    );
    assert.throws(
      () => checkDescriptor(seal({ expires: now + MAX_DESCRIPTOR_LIFETIME_S + 3600 }), { now }),
      isCode('ALLIUM_ONION_DESCRIPTOR_EXPIRED'),
    );
  });

  it('refuses a descriptor signed by another key, or for another blinded key than asked', () => {
    const otherSeed = Buffer.alloc(32, 0x56);
    const other = seal({ blindedSecret: blindSecret(otherSeed, period) });
    // Signed by another service's blinded key: a client of this address asked for this one's.
    assert.throws(
      () => openDescriptor(other, { identityKey: identity, period, now }),
      isCode('ALLIUM_ONION_DESCRIPTOR_KEY'),
    );
    // Names this blinded key but carries another key's signature.
    const forged = Buffer.from(seal());
    other.copy(forged, ONION_DESCRIPTOR_LEN - 64, ONION_DESCRIPTOR_LEN - 64);
    assert.throws(() => checkDescriptor(forged, { now }), isCode('ALLIUM_ONION_DESCRIPTOR_SIGNATURE'));
    // Another period's descriptor is another blinded key.
    assert.throws(
      () =>
        openDescriptor(seal(), {
          identityKey: identity,
          period: { ...period, number: period.number + 1 },
          now,
        }),
      isCode('ALLIUM_ONION_DESCRIPTOR_KEY'),
    );
  });

  it('refuses an inner layer sealed for another address, though the signature holds', () => {
    const wrongInner = seal({ identityKey: IdentityKey.fromSeed(Buffer.alloc(32, 0x57)).publicKey });
    checkDescriptor(wrongInner, { now });
    assert.throws(
      () => openDescriptor(wrongInner, { identityKey: identity, period, now }),
      isCode('ALLIUM_ONION_DESCRIPTOR_DECRYPT'),
    );
  });

  it('refuses any one changed byte', () => {
    const d = seal();
    fc.assert(
      fc.property(fc.nat({ max: ONION_DESCRIPTOR_LEN - 1 }), fc.integer({ min: 1, max: 255 }), (at, x) => {
        const t = Buffer.from(d);
        t[at] ^= x;
        assert.throws(
          () => openDescriptor(t, { identityKey: identity, period, now }),
          (e: unknown) => e instanceof OnionError || e instanceof WireError,
        );
      }),
      { numRuns },
    );
  });
});

const PINNED_SHA256 = '2a3ca5f8713b42770b74a446f3b8ba71906f3014264aaad9f850cc9c16320e64';
