import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import fc from 'fast-check';
import { CELL_BODY_LEN, CellCommand } from '../wire/constants.js';
import type { PaddingSource } from './backward-layer.js';
import {
  FORWARD_MARKER_LEN,
  FORWARD_TAG_LEN,
  FORWARD_X_LEN,
  ForwardLayer,
  forwardMessageCapacity,
  wrapForward,
  wrapForwardMany,
} from './forward-onion.js';

/** Deterministic padding for vectors and for comparing with the spec (the protocol's is random). */
const fixedPad: PaddingSource = (buf, offset, size) => {
  for (let i = 0; i < size; i++) buf[offset + i] = (i * 7 + 3) & 0xff;
};

const runs = Number(process.env.FUZZ_RUNS ?? 200);
const key = (b: number) => Buffer.alloc(32, b);

/** Client and relay views of an n-hop circuit's forward layers, with fixed keys. */
function circuit(n: number) {
  const client = Array.from({ length: n }, (_, i) => new ForwardLayer(key(0x10 + i), key(0x40 + i)));
  const relays = Array.from({ length: n }, (_, i) => new ForwardLayer(key(0x10 + i), key(0x40 + i)));
  return { client, relays };
}

/** Passes a body down the relays as the protocol says; returns the hop that read it and the payload. */
function travel(relays: ForwardLayer[], body: Buffer, tamper?: (hop: number, b: Buffer) => void) {
  let b = body;
  for (let i = 0; i < relays.length; i++) {
    tamper?.(i, b);
    const r = relays[i].open(b, CellCommand.RELAY);
    if (r.kind === 'tampered') return { hop: i, tampered: true as const };
    if (r.kind === 'mine') return { hop: i, payload: r.payload };
    b = r.body;
  }
  return { hop: -1 };
}

test('a cell for each hop of a 3-hop circuit reaches exactly that hop, intact, cell after cell', () => {
  const { client, relays } = circuit(3);
  for (let round = 0; round < 3; round++) {
    for (let h = 0; h < 3; h++) {
      const msg = Buffer.from(`message ${round} for hop ${h}`);
      const { body } = wrapForward(client.slice(0, h + 1), msg);
      assert.equal(body.length, CELL_BODY_LEN);
      const r = travel(relays, body);
      assert.equal(r.hop, h);
      assert.deepEqual(r.payload!.subarray(8, 8 + msg.length), msg);
    }
  }
});

test('fixed keys give fixed bytes (test vector), and the cell command is part of every tag', () => {
  for (const [command, want] of [
    [CellCommand.RELAY, VECTOR_RELAY],
    [CellCommand.RELAY_EARLY, VECTOR_RELAY_EARLY],
  ] as const) {
    const { client } = circuit(3);
    const { body, tag } = wrapForward(client, Buffer.from('allium forward vector'), command, fixedPad);
    assert.equal(tag.toString('hex'), want.exitTag);
    assert.equal(body.subarray(0, 32).toString('hex'), want.head);
    assert.equal(createHash('sha256').update(body).digest('hex'), want.sha256);
  }
});
const VECTOR_RELAY = {
  exitTag: '2a33a79737e7137d3c5c26c5097254d5',
  head: 'b15135c836b5000efe10df992bdc813f186a0b671f36abd41f4cee7d14879851',
  sha256: '0deec3ce81adb31f4b976b7d08ca91e7fa8e0bdfa5565679971801a00705ffe8',
};
const VECTOR_RELAY_EARLY = {
  exitTag: '7f255d5b52562b060774e69b7221be93',
  head: '2bf9120780c6e6203161940cb3dfe438e6f337af104b6943c9937231b8b245b5',
  sha256: 'd548f505c38cc1eec766b2ca86a8380db15b267a2bfce121bed1abb6f90eecf9',
};

test("a cell whose command a relay rewrote (RELAY <-> RELAY_EARLY) fails the next hop's tag", () => {
  for (const [sent, seen] of [
    [CellCommand.RELAY, CellCommand.RELAY_EARLY],
    [CellCommand.RELAY_EARLY, CellCommand.RELAY],
  ]) {
    const { client, relays } = circuit(3);
    const { body } = wrapForward(client, Buffer.from('to the exit'), sent);
    const atEntry = relays[0].open(Buffer.from(body), sent);
    assert.equal(atEntry.kind, 'forward');
    // The entry forwards the cell unchanged but under the other command: the middle stops it.
    const atMiddle = relays[1].open((atEntry as { body: Buffer }).body, seen);
    assert.equal(atMiddle.kind, 'tampered');
  }
});

test('the padding after a forward message is random: no run of zeros tells a hop where it sits', () => {
  const { client, relays } = circuit(3);
  const r = travel(relays, wrapForward(client, Buffer.from('short')).body);
  assert.equal(r.hop, 2);
  const tail = r.payload!.subarray(FORWARD_MARKER_LEN + 5);
  let zeros = 0;
  for (const b of tail) if (b === 0) zeros++;
  // Random bytes: about 1 in 256 is zero; zero padding would make nearly all of them zero.
  assert.ok(zeros < tail.length / 32, `${zeros} zero bytes of ${tail.length}`);
});

test('a byte changed by any relay is caught by the very next hop', () => {
  for (let bad = 0; bad < 2; bad++) {
    for (const pos of [0, 5, 16, 100, 4000, CELL_BODY_LEN - 1]) {
      const { client, relays } = circuit(3);
      const { body } = wrapForward(client, Buffer.from('to the exit'));
      // `bad` is the relay that tampers: it changes the cell it forwards to hop bad+1.
      const r = travel(relays, body, (hop, b) => {
        if (hop === bad + 1) b[pos] ^= 0x01;
      });
      assert.deepEqual(r, { hop: bad + 1, tampered: true }, `tamper by hop ${bad} at byte ${pos}`);
    }
  }
});

test('a replayed cell fails the next tag check', () => {
  const { client, relays } = circuit(3);
  const { body } = wrapForward(client, Buffer.from('once'));
  assert.equal(travel(relays, Buffer.from(body)).hop, 2);
  const { relays: fresh } = { relays };
  assert.deepEqual(travel(fresh, body), { hop: 0, tampered: true });
});

test('capacity shrinks by one tag per hop in front', () => {
  assert.equal(forwardMessageCapacity(0), FORWARD_X_LEN - 8);
  assert.equal(forwardMessageCapacity(2), FORWARD_X_LEN - 8 - 32);
  const { client, relays } = circuit(3);
  const full = Buffer.alloc(forwardMessageCapacity(2), 0xab);
  const r = travel(relays, wrapForward(client, full).body);
  assert.equal(r.hop, 2);
  assert.deepEqual(r.payload!.subarray(8, 8 + full.length), full);
  assert.throws(() => wrapForward(circuit(3).client, Buffer.alloc(forwardMessageCapacity(2) + 1)));
});

test('property: any message to any hop of circuits up to 8 hops arrives intact', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 8 }),
      fc.nat(),
      fc.uint8Array({ maxLength: 64 }),
      (n, pick, bytes) => {
        const { client, relays } = circuit(n);
        const h = pick % n;
        const r = travel(relays, wrapForward(client.slice(0, h + 1), Buffer.from(bytes)).body);
        assert.equal(r.hop, h);
        assert.deepEqual(r.payload!.subarray(8, 8 + bytes.length), Buffer.from(bytes));
      },
    ),
    { numRuns: Math.min(runs, 300) },
  );
});

/** Protocol §3.4 written out step by step, one cell at a time: the reference wrapForwardMany must match. */
function wrapBySpec(layers: ForwardLayer[], message: Buffer): { body: Buffer; tag: Buffer } {
  const xor = (a: Buffer, b: Buffer) => Buffer.from(a.map((v, i) => v ^ b[i]));
  const h = layers.length - 1;
  const ks = layers.map((l) => l.keystreamMany(1));
  let filler = Buffer.alloc(0);
  for (let j = 1; j <= h; j++) {
    const prev = filler.length;
    filler = Buffer.concat([
      xor(filler, ks[j - 1].subarray(FORWARD_X_LEN - prev)),
      Buffer.alloc(FORWARD_TAG_LEN),
    ]);
  }
  const p = Buffer.alloc(FORWARD_X_LEN);
  message.copy(p, FORWARD_MARKER_LEN);
  fixedPad(
    p,
    FORWARD_MARKER_LEN + message.length,
    FORWARD_X_LEN - filler.length - FORWARD_MARKER_LEN - message.length,
  );
  const tailAt = FORWARD_X_LEN - filler.length;
  xor(filler, ks[h].subarray(tailAt)).copy(p, tailAt);
  let x = xor(p, ks[h]);
  let t = layers[h].tag(x, CellCommand.RELAY);
  const tag = t;
  for (let j = h - 1; j >= 0; j--) {
    x = xor(Buffer.concat([t, x.subarray(0, FORWARD_X_LEN - FORWARD_TAG_LEN)]), ks[j]);
    t = layers[j].tag(x, CellCommand.RELAY);
  }
  return { body: Buffer.concat([t, x]), tag };
}

test('property: batches of messages give the bytes and tags of the spec, one cell at a time', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 6 }),
      fc.array(fc.tuple(fc.nat(), fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 5 })), {
        minLength: 1,
        maxLength: 4,
      }),
      (n, batches) => {
        const ours = circuit(n).client;
        const spec = circuit(n).client;
        for (const [pick, messages] of batches) {
          const h = pick % n;
          const got = wrapForwardMany(
            ours.slice(0, h + 1),
            messages.map((m) => Buffer.from(m)),
            CellCommand.RELAY,
            fixedPad,
          );
          assert.equal(got.bodies.length, messages.length);
          messages.forEach((m, i) => {
            const want = wrapBySpec(spec.slice(0, h + 1), Buffer.from(m));
            assert.deepEqual(got.bodies[i], want.body);
            assert.deepEqual(got.tags[i], want.tag);
          });
        }
      },
    ),
    { numRuns: Math.min(runs, 150) },
  );
});

test('a batch of full cells to the exit reaches it, in order, each intact', () => {
  const { client, relays } = circuit(3);
  const messages = [0x11, 0x22, 0x33, 0x44].map((b) => Buffer.alloc(forwardMessageCapacity(2), b));
  const { bodies } = wrapForwardMany(client, messages);
  for (let i = 0; i < messages.length; i++) {
    const r = travel(relays, bodies[i]);
    assert.equal(r.hop, 2);
    assert.deepEqual(r.payload!.subarray(8, 8 + messages[i].length), messages[i]);
  }
});

test('a relay opening cells together finds what it finds one by one, and stops at a changed cell', () => {
  const { client, relays } = circuit(3);
  const oneByOne = circuit(3).relays;
  const messages = ['a', 'b', 'c', 'd', 'e'].map((m) => Buffer.from(`to the middle ${m}`));
  const { bodies } = wrapForwardMany(client.slice(0, 2), messages);
  const relay3 = [CellCommand.RELAY, CellCommand.RELAY, CellCommand.RELAY];
  const together = relays[0].openMany(
    bodies.slice(0, 3).map((b) => Buffer.from(b)),
    relay3,
  );
  const single = bodies.slice(0, 3).map((b) => oneByOne[0].open(Buffer.from(b), CellCommand.RELAY));
  assert.deepEqual(together, single);
  assert.ok(together.every((r) => r.kind === 'forward'));
  // The fifth cell is changed on the way: the fourth is opened, the fifth is 'tampered', none after.
  const changed = bodies.slice(3).map((b) => Buffer.from(b));
  changed[1][200] ^= 1;
  const rest = relays[0].openMany([...changed, Buffer.from(bodies[0])], relay3);
  assert.deepEqual(
    rest.map((r) => r.kind),
    ['forward', 'tampered'],
  );
  // And the middle reads each forwarded cell as its own.
  const r = relays[1].open((together[0] as { body: Buffer }).body, CellCommand.RELAY);
  assert.equal(r.kind, 'mine');
});

/**
 * A hostile relay's best reading of its position from a cell it opens: the length of the zeros
 * between the message and the end, in 16-byte tags (zero padding stops where the filler of the
 * hops before it starts). Returns 0..maxHop.
 */
function guessPosition(payload: Buffer, maxHop: number): number {
  const length = payload.readUInt16BE(FORWARD_MARKER_LEN + 3);
  let end = payload.length;
  // Walk back over the 16-byte blocks that are not all zeros (the filler); stop at the padding.
  let blocks = 0;
  while (end - FORWARD_TAG_LEN >= FORWARD_MARKER_LEN + 5 + length) {
    const block = payload.subarray(end - FORWARD_TAG_LEN, end);
    if (block.every((b) => b === 0)) break;
    blocks++;
    end -= FORWARD_TAG_LEN;
  }
  return Math.min(blocks, maxHop);
}

test('a relay guesses its position from the cells it opens no better than chance (random padding)', () => {
  // 3 positions x 300 cells of the same message. Chance is 1/3; the bound below is chance plus
  // 0.08, over 5 standard deviations of the success rate of a blind guess over 900 trials
  // (sd = sqrt(1/3 * 2/3 / 900) = 0.0157), so an honest run fails it with probability < 1e-6.
  const TRIALS = 300;
  const zeroPad: PaddingSource = (buf, offset, size) => {
    buf.fill(0, offset, offset + size);
  };
  const rate = (pad?: PaddingSource) => {
    let right = 0;
    for (let pos = 0; pos < 3; pos++) {
      const { client, relays } = circuit(3);
      for (let t = 0; t < TRIALS; t++) {
        const msg = encodeMessageForTest(t);
        const { body } = wrapForward(client.slice(0, pos + 1), msg, CellCommand.RELAY, pad);
        const r = travel(relays, body);
        assert.equal(r.hop, pos);
        if (guessPosition(r.payload!, 2) === pos) right++;
      }
    }
    return right / (3 * TRIALS);
  };
  // The guesser works: with the zero padding of old, it reads every position.
  assert.ok(rate(zeroPad) > 0.95, 'the guesser reads positions from zero padding');
  const random = rate();
  assert.ok(random < 1 / 3 + 0.08, `guessed ${(random * 100).toFixed(1)}% right, chance is 33.3%`);
});

/** A short relay message whose length varies with t, as EXTEND, BEGIN or SENDME would. */
function encodeMessageForTest(t: number): Buffer {
  const data = Buffer.alloc(20 + (t % 90), 0x61);
  const m = Buffer.alloc(5 + data.length);
  m[0] = 2;
  m.writeUInt16BE(1, 1);
  m.writeUInt16BE(data.length, 3);
  data.copy(m, 5);
  return m;
}
