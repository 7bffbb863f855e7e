import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { ed25519 } from '@noble/curves/ed25519.js';
import fc from 'fast-check';
import { base32Encode, joinOnionAddress, splitOnionAddress } from '../wire/onion-address.js';
import { OnionError } from '../wire/onion-errors.js';
import { IdentityKey } from './keys.js';
import { onionAddressOf, onionChecksum, parseOnionAddress } from './onion-address.js';

const numRuns = Number(process.env.FUZZ_RUNS ?? 50);
const isCode = (code: string) => (e: unknown) => e instanceof OnionError && e.code === code;
const ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567';

describe('onion addresses (§8.1)', () => {
  const key = IdentityKey.fromSeed(Buffer.alloc(32, 0x55)).publicKey;

  it('gives the pinned address of a fixed key, as §8.1 computes it', () => {
    assert.equal(key.toString('hex'), 'c6822637c7d310ec57627be00ba259d253749f4aaf644470cffbe53a35f73242');
    const checksum = createHash('sha256')
      .update('.allium checksum')
      .update(key)
      .update(Buffer.from([1]))
      .digest()
      .subarray(0, 2);
    assert.equal(checksum.toString('hex'), 'be01');
    assert.deepEqual(onionChecksum(key, 1), checksum);
    const address = 'y2bcmn6h2mioyv3cppqaxisz2jjxjh2kv5sei4gp7pstunpxgjbl4aib.allium';
    assert.equal(onionAddressOf(key), address);
    assert.equal(address, `${base32Encode(Buffer.concat([key, checksum, Buffer.from([1])]))}.allium`);
    assert.deepEqual(parseOnionAddress(address), key);
  });

  it('round-trips every service key, in any case and under subdomains', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (seed) => {
        const pub = IdentityKey.fromSeed(seed).publicKey;
        const address = onionAddressOf(pub);
        assert.deepEqual(parseOnionAddress(address), pub);
        assert.deepEqual(parseOnionAddress(`www.${address.toUpperCase()}`), pub);
      }),
      { numRuns },
    );
  });

  it('reads any one changed character as a checksum error', () => {
    const address = onionAddressOf(key);
    let tried = 0;
    for (let i = 0; i < 56; i++) {
      for (const c of ALPHABET) {
        if (c === address[i]) continue;
        const typo = address.slice(0, i) + c + address.slice(i + 1);
        // The last character carries only version bits and zero padding bits: some spellings do not
        // decode at all, which is a malformed address rather than a typo that decodes.
        try {
          parseOnionAddress(typo);
          assert.fail(`${typo} was accepted`);
        } catch (e) {
          assert.ok(
            isCode('ALLIUM_ONION_ADDRESS_CHECKSUM')(e) || (i === 55 && isCode('ALLIUM_ONION_ADDRESS')(e)),
            `${i}: ${String(e)}`,
          );
        }
        tried++;
      }
    }
    assert.equal(tried, 56 * 31);
  });

  it('refuses another version with a valid checksum as a version error', () => {
    const address = joinOnionAddress({ publicKey: key, checksum: onionChecksum(key, 2), version: 2 });
    assert.throws(() => parseOnionAddress(address), isCode('ALLIUM_ONION_ADDRESS_VERSION'));
  });

  it('refuses keys that are not prime-order points, though their checksum is right', () => {
    const identity = Buffer.concat([Buffer.from([1]), Buffer.alloc(31)]); // the neutral point
    const torsion = ed25519.Point.fromBytes(key).add(
      ed25519.Point.fromHex('26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05'),
    );
    const notOnCurve = Buffer.alloc(32, 0xff); // y >= p: not canonical
    for (const bad of [identity, Buffer.from(torsion.toBytes()), notOnCurve]) {
      const address = joinOnionAddress({ publicKey: bad, checksum: onionChecksum(bad, 1), version: 1 });
      assert.throws(() => parseOnionAddress(address), isCode('ALLIUM_ONION_ADDRESS_KEY'));
      assert.throws(() => onionAddressOf(bad), isCode('ALLIUM_ONION_ADDRESS_KEY'));
    }
  });

  it('throws nothing but OnionError on random 56-character labels', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 35, maxLength: 35 }), (bytes) => {
        try {
          parseOnionAddress(`${base32Encode(bytes)}.allium`);
        } catch (e) {
          assert.ok(e instanceof OnionError, String(e));
        }
      }),
      { numRuns: numRuns * 4 },
    );
    assert.ok(splitOnionAddress(onionAddressOf(key)));
  });
});
