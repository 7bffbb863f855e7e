import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { RELAY_DATA_MAX } from './constants.js';
import { WireError } from './errors.js';
import {
  DESCRIPTOR_CIPHERTEXT_LEN,
  DESCRIPTOR_INNER_LEN,
  decodeInnerDescriptor,
  decodeOuterDescriptor,
  descriptorSignedPart,
  encodeInnerDescriptor,
  encodeOuterDescriptor,
  MAX_INTRO_POINTS,
  ONION_DESCRIPTOR_LEN,
} from './onion-descriptor.js';

const numRuns = Number(process.env.FUZZ_RUNS ?? 200);
const bytes = (n: number) => fc.uint8Array({ minLength: n, maxLength: n }).map((u) => Buffer.from(u));
const isWire = (e: unknown) => e instanceof WireError;

const outer = fc.record({
  blindedKey: bytes(32),
  revision: fc.maxSafeNat(),
  expires: fc.maxSafeNat(),
  salt: bytes(16),
  ciphertext: bytes(DESCRIPTOR_CIPHERTEXT_LEN),
  signature: bytes(64),
});
const entry = fc.record({ relayId: bytes(32), authKey: bytes(32), encKey: bytes(32) });
const entries = fc.array(entry, { minLength: 1, maxLength: MAX_INTRO_POINTS });

describe('onion descriptor layout (§8.4)', () => {
  it('round-trips the outer layer at one fixed size that fits a relay message', () => {
    fc.assert(
      fc.property(outer, (d) => {
        const b = encodeOuterDescriptor(d);
        assert.equal(b.length, ONION_DESCRIPTOR_LEN);
        assert.deepEqual(decodeOuterDescriptor(b), { ...d });
        assert.deepEqual(b.subarray(0, ONION_DESCRIPTOR_LEN - 64), descriptorSignedPart(d));
      }),
      { numRuns },
    );
    assert.ok(ONION_DESCRIPTOR_LEN + 1 <= RELAY_DATA_MAX - 16 * 3);
  });

  it('round-trips 1-10 introduction points in an inner layer of one size', () => {
    fc.assert(
      fc.property(entries, (points) => {
        const b = encodeInnerDescriptor(points);
        assert.equal(b.length, DESCRIPTOR_INNER_LEN);
        assert.deepEqual(
          decodeInnerDescriptor(b),
          points.map((p) => ({ ...p })),
        );
      }),
      { numRuns },
    );
    const one = { relayId: Buffer.alloc(32), authKey: Buffer.alloc(32), encKey: Buffer.alloc(32) };
    assert.throws(() => encodeInnerDescriptor([]), isWire);
    assert.throws(() => encodeInnerDescriptor(Array(MAX_INTRO_POINTS + 1).fill(one)), isWire);
  });

  it('refuses another version, count or length with WireError', () => {
    const inner = encodeInnerDescriptor([
      { relayId: Buffer.alloc(32), authKey: Buffer.alloc(32), encKey: Buffer.alloc(32) },
    ]);
    for (const [at, value] of [
      [0, 2],
      [1, 0],
      [1, 11],
    ]) {
      const b = Buffer.from(inner);
      b[at] = value;
      assert.throws(() => decodeInnerDescriptor(b), isWire);
    }
    const d = Buffer.alloc(ONION_DESCRIPTOR_LEN);
    d[0] = 1;
    assert.ok(decodeOuterDescriptor(d));
    d[0] = 2;
    assert.throws(() => decodeOuterDescriptor(d), isWire);
    d[0] = 1;
    d[33] = 0xff; // revision past 2^53
    assert.throws(() => decodeOuterDescriptor(d), isWire);
    assert.throws(() => decodeOuterDescriptor(d.subarray(1)), isWire);
  });

  it('throws nothing but WireError on garbage and on changed descriptors', () => {
    const valid = encodeOuterDescriptor({
      blindedKey: Buffer.alloc(32, 1),
      revision: 5,
      expires: 1_900_000_000,
      salt: Buffer.alloc(16, 2),
      ciphertext: Buffer.alloc(DESCRIPTOR_CIPHERTEXT_LEN, 3),
      signature: Buffer.alloc(64, 4),
    });
    const garbage = fc.oneof(
      fc.uint8Array({ maxLength: 1300 }).map((u) => Buffer.from(u)),
      fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 }), fc.nat({ max: 2 })).map(([at, v, cut]) => {
        const b = Buffer.from(valid);
        b[at % b.length] = v;
        return b.subarray(0, b.length - cut);
      }),
    );
    fc.assert(
      fc.property(garbage, (d) => {
        for (const decode of [decodeOuterDescriptor, decodeInnerDescriptor]) {
          try {
            decode(d);
          } catch (e) {
            assert.ok(isWire(e), String(e));
          }
        }
      }),
      { numRuns: numRuns * 2 },
    );
  });
});
