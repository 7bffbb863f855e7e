import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  base32Decode,
  base32Encode,
  isOnionHost,
  joinOnionAddress,
  ONION_LABEL_LEN,
  splitOnionAddress,
} from './onion-address.js';
import { OnionError } from './onion-errors.js';

const numRuns = Number(process.env.FUZZ_RUNS ?? 200);
const isCode = (code: string) => (e: unknown) => e instanceof OnionError && e.code === code;

describe('base32 (RFC 4648, §8.1)', () => {
  it('matches the RFC 4648 test vectors, unpadded and lowercase', () => {
    const vectors: [string, string][] = [
      ['', ''],
      ['f', 'my'],
      ['fo', 'mzxq'],
      ['foo', 'mzxw6'],
      ['foob', 'mzxw6yq'],
      ['fooba', 'mzxw6ytb'],
      ['foobar', 'mzxw6ytboi'],
    ];
    for (const [plain, encoded] of vectors) {
      assert.equal(base32Encode(Buffer.from(plain)), encoded);
      assert.deepEqual(base32Decode(encoded), Buffer.from(plain));
      assert.deepEqual(base32Decode(encoded.toUpperCase()), Buffer.from(plain));
    }
  });

  it('round-trips any bytes, and gives each one spelling per case', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (u) => {
        const text = base32Encode(u);
        assert.deepEqual(base32Decode(text), Buffer.from(u));
        assert.equal(base32Encode(base32Decode(text) ?? Buffer.alloc(0)), text);
      }),
      { numRuns },
    );
    // "mz" leaves two bits set past the last whole byte: another spelling of "f", refused.
    assert.equal(base32Decode('mz'), null);
    assert.equal(base32Decode('m1'), null);
  });
});

describe('onion address layout (§8.1)', () => {
  const parts = { publicKey: Buffer.alloc(32, 0xab), checksum: Buffer.from([1, 2]), version: 1 };

  it('joins 35 bytes into 56 characters and .allium, and takes them apart again', () => {
    const address = joinOnionAddress(parts);
    assert.match(address, /^[a-z2-7]{56}\.allium$/);
    assert.equal(address.length, ONION_LABEL_LEN + '.allium'.length);
    assert.deepEqual(splitOnionAddress(address), parts);
    assert.deepEqual(splitOnionAddress(address.toUpperCase()), parts);
    assert.deepEqual(splitOnionAddress(`www.shop.${address}`), parts);
    assert.deepEqual(splitOnionAddress(`${address}.`), parts);
    assert.ok(isOnionHost(address) && isOnionHost(`${address.toUpperCase()}.`));
    assert.ok(!isOnionHost('example.org') && !isOnionHost('allium') && !isOnionHost('x.allium.org'));
  });

  it('refuses every other shape with ALLIUM_ONION_ADDRESS', () => {
    const address = joinOnionAddress(parts);
    const label = address.slice(0, ONION_LABEL_LEN);
    for (const bad of [
      'example.org',
      '.allium',
      `${label.slice(1)}.allium`,
      `${label}a.allium`,
      `${label.slice(0, 55)}1.allium`,
      `${label.slice(0, 55)}=.allium`,
      `${label}.onion`,
      `${label}.allium.org`,
      `${'a'.repeat(250)}.${address}`,
    ]) {
      assert.throws(() => splitOnionAddress(bad), isCode('ALLIUM_ONION_ADDRESS'), bad);
    }
  });

  it('throws nothing but OnionError on any string', () => {
    const label = fc.string({
      unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz234567A1=. '),
      maxLength: 60,
    });
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 300 }),
          label.map((l) => `${l}.allium`),
        ),
        (s) => {
          try {
            const p = splitOnionAddress(s);
            assert.equal(p.publicKey.length, 32);
            assert.equal(p.checksum.length, 2);
          } catch (e) {
            assert.ok(e instanceof OnionError, String(e));
          }
        },
      ),
      { numRuns: numRuns * 5 },
    );
  });
});
