import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { linkBoundConfirmed, linkBoundHop, linkBoundHopStart } from './link-bound-hop.js';

describe('link-bound first hop (§3.6)', () => {
  it('gives the client and the relay the same keys and confirmation from the link secret and X', () => {
    const secret = randomBytes(32);
    const { hdata, hop } = linkBoundHopStart(secret);
    const relaySide = linkBoundHop(secret, hdata);
    assert.deepEqual(relaySide, hop);
    assert.ok(linkBoundConfirmed(hop, relaySide.confirm));
    const all = [hop.keys.kf, hop.keys.kb, hop.keys.mf, hop.keys.mb, hop.keys.kt, hop.confirm];
    assert.equal(new Set(all.map((k) => k.toString('hex'))).size, 6, 'six distinct values');
    for (const k of all) assert.equal(k.length, 32);
  });

  it('gives other keys on another link or with another X', () => {
    const secret = randomBytes(32);
    const X = randomBytes(32);
    const base = linkBoundHop(secret, X);
    assert.notDeepEqual(linkBoundHop(randomBytes(32), X).keys.kf, base.keys.kf);
    assert.notDeepEqual(linkBoundHop(secret, randomBytes(32)).keys.kf, base.keys.kf);
    // A relay on another link cannot confirm.
    assert.equal(linkBoundConfirmed(base, linkBoundHop(randomBytes(32), X).confirm), false);
  });

  it('pins the key schedule (HKDF-SHA256 over the link secret, salt t_key, info m_expand | X)', () => {
    const hop = linkBoundHop(Buffer.alloc(32, 1), Buffer.alloc(32, 2));
    // Recomputed by hand with the spec's labels, so a change to the schedule cannot pass unnoticed.
    const okm = hkdfByHand(
      Buffer.alloc(32, 1),
      Buffer.from('allium-link-bound-hop-1:key_extract'),
      Buffer.concat([Buffer.from('allium-link-bound-hop-1:key_expand'), Buffer.alloc(32, 2)]),
    );
    assert.deepEqual(hop.keys.kf, okm.subarray(0, 32));
    assert.deepEqual(hop.keys.mb, okm.subarray(96, 128));
    assert.deepEqual(hop.confirm, okm.subarray(128, 160));
    assert.deepEqual(hop.keys.kt, okm.subarray(160, 192));
  });

  it('refuses an X of any other length, and answers false to a confirmation of any other length', () => {
    const secret = randomBytes(32);
    const hop = linkBoundHop(secret, randomBytes(32));
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), (bytes) => {
        const b = Buffer.from(bytes);
        if (b.length !== 32) {
          assert.throws(() => linkBoundHop(secret, b), { code: 'ALLIUM_HANDSHAKE_MALFORMED' });
        }
        assert.equal(linkBoundConfirmed(hop, b), b.equals(hop.confirm));
      }),
    );
  });
});

/** RFC 5869 with HMAC-SHA256, written out: extract, then expand to 160 bytes. */
function hkdfByHand(ikm: Buffer, salt: Buffer, info: Buffer): Buffer {
  const prk = createHmac('sha256', salt).update(ikm).digest();
  const blocks: Buffer[] = [];
  let prev = Buffer.alloc(0);
  for (let i = 1; blocks.length * 32 < 192; i++) {
    prev = createHmac('sha256', prk)
      .update(Buffer.concat([prev, info, Buffer.from([i])]))
      .digest();
    blocks.push(prev);
  }
  return Buffer.concat(blocks).subarray(0, 192);
}
