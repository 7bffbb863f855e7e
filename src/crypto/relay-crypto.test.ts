import assert from 'node:assert/strict';
import { createCipheriv, createHash, createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { CELL_BODY_LEN, RELAY_MAC_OFFSET } from '../wire/constants.js';
import { CryptoError } from './errors.js';
import { randomBytes } from './keys.js';
import type { HopKeys } from './ntor.js';
import { type HopCrypto, hopCrypto, LayerCipher } from './relay-crypto.js';

const numRuns = Number(process.env.FUZZ_RUNS ?? 200);
const fill = (b: number) => Buffer.alloc(32, b);
const sha256hex = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function countingBody(): Buffer {
  const b = Buffer.alloc(CELL_BODY_LEN);
  for (let i = 0; i < b.length; i++) b[i] = i & 0xff;
  return b;
}

/** A plaintext relay cell body: recognized 0, mac 0, DATA on stream 1 carrying `data`. */
function relayBody(data: Buffer | string): Buffer {
  const d = Buffer.from(data);
  const b = Buffer.alloc(CELL_BODY_LEN);
  b[18] = 2;
  b.writeUInt16BE(1, 19);
  b.writeUInt16BE(d.length, 21);
  d.copy(b, 23);
  return b;
}

function randomKeys(): HopKeys {
  return { kf: randomBytes(32), kb: randomBytes(32), mf: randomBytes(32), mb: randomBytes(32) };
}

/** The two ends of one hop: the client's copy and the relay's copy of the same keys. */
function hopPair(keys: HopKeys = randomKeys()): { client: HopCrypto; relay: HopCrypto } {
  return { client: hopCrypto(keys), relay: hopCrypto(keys) };
}

describe('LayerCipher keystream', () => {
  it('encrypts the first two cells to pinned bytes, the keystream running on across cells', () => {
    const lc = new LayerCipher(fill(0x55), fill(0x66));
    const body = countingBody();
    const c0 = lc.crypt(body);
    const c1 = lc.crypt(body);
    assert.equal(
      c0.subarray(0, 32).toString('hex'),
      '5981daa3f98d2fba288fa9ab3589099bd8974b20da3dff68b27a827e39324d35',
    );
    assert.equal(c0.subarray(CELL_BODY_LEN - 16).toString('hex'), '2aa34855db60e0cba7ca21054c8f107f');
    assert.equal(sha256hex(c0), '9837af400e4c5cfa8c45a7e5398b626b49e07c9107d6db282c2feb227cefd047');
    assert.equal(
      c1.subarray(0, 32).toString('hex'),
      '15feb302c75cf26b71bd567d8e9aa4eed16768a82f325cd4b24c3779b3f99af4',
    );
    assert.equal(c1.subarray(CELL_BODY_LEN - 16).toString('hex'), 'c7be4ef5471e869fea44c64c703eecf7');
    assert.equal(sha256hex(c1), 'abccde8c51a91f02db9ea20cca8b84bf7187a413ea94f62b1ddc93ecc5b1a45b');
    assert.deepEqual(body, countingBody(), 'crypt must not modify its input');
  });

  it('is AES-256-CTR with an all-zero initial counter block (checked against AES-ECB)', () => {
    const key = fill(0x55);
    const blocks = Math.ceil((2 * CELL_BODY_LEN) / 16);
    const counters = Buffer.alloc(blocks * 16);
    for (let i = 0; i < blocks; i++) counters.writeUInt32BE(i, i * 16 + 12);
    const ecb = createCipheriv('aes-256-ecb', key, null).setAutoPadding(false);
    const keystream = Buffer.concat([ecb.update(counters), ecb.final()]);
    const lc = new LayerCipher(key, fill(0x66));
    const zero = Buffer.alloc(CELL_BODY_LEN);
    assert.deepEqual(lc.crypt(zero), keystream.subarray(0, CELL_BODY_LEN));
    assert.deepEqual(lc.crypt(zero), keystream.subarray(CELL_BODY_LEN, 2 * CELL_BODY_LEN));
  });

  it('decrypts with a second instance (CTR is its own inverse), and cryptMany equals crypt per cell', () => {
    const a = new LayerCipher(fill(1), fill(2));
    const b = new LayerCipher(fill(1), fill(2));
    const c = new LayerCipher(fill(1), fill(2));
    const bodies = [relayBody('one'), relayBody('two'), relayBody('three')];
    const cts = bodies.map((p) => a.crypt(p));
    assert.deepEqual(c.cryptMany(Buffer.concat(cts)), Buffer.concat(bodies));
    for (let i = 0; i < bodies.length; i++) assert.deepEqual(b.crypt(cts[i]), bodies[i]);
  });

  it('rejects bodies of the wrong size and bad keys', () => {
    const lc = new LayerCipher(fill(1), fill(2));
    const isArg = (e: unknown) => e instanceof CryptoError && e.code === 'ALLIUM_CRYPTO_ARGUMENT';
    assert.throws(() => lc.crypt(Buffer.alloc(CELL_BODY_LEN - 1)), isArg);
    assert.throws(() => lc.seal(Buffer.alloc(CELL_BODY_LEN + 1)), isArg);
    assert.throws(() => lc.recognize(Buffer.alloc(10)), isArg);
    assert.throws(() => lc.cryptMany(Buffer.alloc(CELL_BODY_LEN + 1)), isArg);
    assert.throws(() => new LayerCipher(Buffer.alloc(16), fill(2)), isArg);
  });
});

describe('LayerCipher MAC', () => {
  it('seals with HMAC-SHA256(M, seq | body with mac zeroed)[0:16] and pinned tags', () => {
    const lc = new LayerCipher(fill(0x55), fill(0x66));
    const p = Buffer.alloc(CELL_BODY_LEN);
    p[18] = 2;
    p.write('hello', 23);
    const p1 = Buffer.from(p);
    p.fill(0xee, RELAY_MAC_OFFSET, RELAY_MAC_OFFSET + 16); // whatever is there is ignored
    const t0 = lc.seal(p);
    assert.equal(t0.toString('hex'), 'f479ec494b4b1414938bdad80e233e77');
    const seq0 = Buffer.alloc(8);
    const ref = createHmac('sha256', fill(0x66)).update(seq0).update(p1).digest().subarray(0, 16);
    assert.deepEqual(t0, ref);
    assert.deepEqual(p.subarray(RELAY_MAC_OFFSET, RELAY_MAC_OFFSET + 16), t0);
    assert.equal(lc.seq, 1);
    assert.equal(lc.seal(p1).toString('hex'), 'f78b92e456b9fb3bf566170c80d6597b');
    assert.equal(lc.seq, 2);
  });

  it('round-trips seal -> crypt -> crypt -> recognize, returning the same tag', () => {
    const { client, relay } = hopPair();
    for (let i = 0; i < 5; i++) {
      const p = relayBody(`cell ${i}`);
      const tag = client.forward.seal(p);
      const received = relay.forward.crypt(client.forward.crypt(p));
      assert.deepEqual(relay.forward.recognize(received), tag);
      assert.deepEqual(received, p);
    }
    assert.equal(relay.forward.seq, 5);
  });

  it('does not recognize a body with any single bit flipped, and leaves it untouched', () => {
    const { client, relay } = hopPair();
    const p = relayBody('flip me');
    client.forward.seal(p);
    const received = relay.forward.crypt(client.forward.crypt(p));
    for (let bit = 0; bit < CELL_BODY_LEN * 8; bit++) {
      const bad = Buffer.from(received);
      bad[bit >> 3] ^= 1 << (bit & 7);
      const copy = Buffer.from(bad);
      assert.equal(relay.forward.recognize(bad), null, `bit ${bit}`);
      assert.deepEqual(bad, copy);
    }
    assert.equal(relay.forward.seq, 0);
    assert.notEqual(relay.forward.recognize(received), null);
  });

  it('does not recognize a replayed cell (same seq used twice) nor a reordered one', () => {
    const { client, relay } = hopPair();
    const a = relayBody('a');
    const b = relayBody('b');
    client.forward.seal(a);
    client.forward.seal(b);
    assert.notEqual(relay.forward.recognize(a), null);
    assert.equal(relay.forward.recognize(a), null, 'replay of seq 0 at seq 1');
    assert.notEqual(relay.forward.recognize(b), null);

    const { client: c2, relay: r2 } = hopPair();
    const x = relayBody('x');
    const y = relayBody('y');
    c2.forward.seal(x);
    c2.forward.seal(y);
    assert.equal(r2.forward.recognize(y), null, 'seq 1 cell arriving first');
    assert.notEqual(r2.forward.recognize(x), null);
  });

  it('does not recognize a cell sealed with the other direction key', () => {
    const { client, relay } = hopPair();
    const p = relayBody('wrong way');
    client.forward.seal(p);
    assert.equal(relay.backward.recognize(p), null);
  });
});

describe('three-hop onion', () => {
  const hops = () => [hopPair(), hopPair(), hopPair()];

  it('forward: only the target hop recognizes, and gets the plaintext', () => {
    const h = hops();
    for (let target = 0; target < 3; target++) {
      const plain = relayBody(`for hop ${target + 1}`);
      const tag = h[target].client.forward.seal(plain);
      let body: Buffer = Buffer.from(plain);
      for (let i = target; i >= 0; i--) body = h[i].client.forward.crypt(body);
      // Relays peel one layer each until one recognizes the cell.
      for (let i = 0; i <= target; i++) {
        body = h[i].relay.forward.crypt(body);
        const got = h[i].relay.forward.recognize(body);
        if (i < target) {
          assert.equal(got, null, `hop ${i + 1} must not recognize a cell for hop ${target + 1}`);
        } else {
          assert.deepEqual(got, tag);
          assert.deepEqual(body, plain);
        }
      }
    }
    // Each hop has recognized exactly one cell; all keystreams stayed in step.
    assert.deepEqual(
      h.map((x) => x.relay.forward.seq),
      [1, 1, 1],
    );
  });

  it('backward: the client finds which hop sent each cell', () => {
    const h = hops();
    for (const sender of [2, 0, 1, 2]) {
      const plain = relayBody(`from hop ${sender + 1}`);
      const tag = h[sender].relay.backward.seal(plain);
      let body: Buffer = h[sender].relay.backward.crypt(plain);
      for (let i = sender - 1; i >= 0; i--) body = h[i].relay.backward.crypt(body);
      // The client peels hop 1, 2, ... and checks after each (§3.4).
      let found = -1;
      for (let i = 0; i < 3 && found < 0; i++) {
        body = h[i].client.backward.crypt(body);
        const got = h[i].client.backward.recognize(body);
        if (got) {
          assert.deepEqual(got, tag);
          found = i;
        }
      }
      assert.equal(found, sender);
      assert.deepEqual(body, plain);
      // Hops past the sender never saw this cell and the client stopped before them: all in step.
    }
  });

  it('a cell tampered on the way to hop 3 is caught at hop 3', () => {
    const h = hops();
    const plain = relayBody('GET / HTTP/1.0');
    h[2].client.forward.seal(plain);
    let body: Buffer = Buffer.from(plain);
    for (let i = 2; i >= 0; i--) body = h[i].client.forward.crypt(body);
    body = h[0].relay.forward.crypt(body);
    assert.equal(h[0].relay.forward.recognize(body), null);
    body[100] ^= 0x20; // a malicious hop 1 flips a bit before forwarding
    body = h[1].relay.forward.crypt(body);
    assert.equal(h[1].relay.forward.recognize(body), null);
    body = h[2].relay.forward.crypt(body);
    assert.equal(h[2].relay.forward.recognize(body), null);
  });
});

describe('LayerCipher under random input', () => {
  it('never recognizes random bodies and never throws on them', () => {
    const { relay } = hopPair();
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: CELL_BODY_LEN, maxLength: CELL_BODY_LEN }),
        fc.boolean(),
        (bytes, zero) => {
          const b = Buffer.from(bytes);
          if (zero) b.writeUInt16BE(0, 0);
          assert.equal(relay.forward.recognize(b), null);
        },
      ),
      { numRuns },
    );
    assert.equal(relay.forward.seq, 0);
  });

  it('round-trips any relay payload', () => {
    const { client, relay } = hopPair();
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 4068 }), (data) => {
        const p = relayBody(Buffer.from(data));
        const tag = client.forward.seal(p);
        const got = relay.forward.crypt(client.forward.crypt(p));
        assert.deepEqual(relay.forward.recognize(got), tag);
        assert.deepEqual(got, p);
      }),
      { numRuns },
    );
  });
});

describe('LayerCipher throughput (informational, no assertion on speed)', () => {
  it('measures crypt+recognize and seal+crypt per cell', () => {
    const n = Number(process.env.BENCH_CELLS ?? 20000);
    const { client, relay } = hopPair();
    const plain = relayBody(Buffer.alloc(4068, 0x61));
    const cells: Buffer[] = [];
    let t = process.hrtime.bigint();
    for (let i = 0; i < n; i++) {
      const p = Buffer.from(plain);
      client.forward.seal(p);
      cells.push(client.forward.crypt(p));
    }
    const sealNs = Number(process.hrtime.bigint() - t);
    t = process.hrtime.bigint();
    let ok = 0;
    for (const c of cells) if (relay.forward.recognize(relay.forward.crypt(c))) ok++;
    const recvNs = Number(process.hrtime.bigint() - t);
    assert.equal(ok, n);
    const relayOnly = new LayerCipher(randomBytes(32), randomBytes(32));
    t = process.hrtime.bigint();
    for (const c of cells) relayOnly.crypt(c);
    const cryptNs = Number(process.hrtime.bigint() - t);
    const batch = Buffer.concat(cells.slice(0, 16));
    t = process.hrtime.bigint();
    for (let i = 0; i < n / 16; i++) relayOnly.cryptMany(batch);
    const batchNs = Number(process.hrtime.bigint() - t);
    const fmt = (ns: number) =>
      `${(ns / n / 1000).toFixed(2)} us/cell, ${((n * CELL_BODY_LEN) / (ns / 1e9) / 1e6).toFixed(0)} MB/s`;
    console.log(`LayerCipher over ${n} cells:`);
    console.log(`  seal + crypt (origin):        ${fmt(sealNs)}`);
    console.log(`  crypt + recognize (endpoint): ${fmt(recvNs)}`);
    console.log(`  crypt only (middle relay):    ${fmt(cryptNs)}`);
    console.log(`  cryptMany, 16 cells a call:   ${fmt(batchNs)}`);
  });
});
