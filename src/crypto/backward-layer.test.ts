import assert from 'node:assert/strict';
import { createCipheriv, createDecipheriv, createHash } from 'node:crypto';
import { test } from 'node:test';
import fc from 'fast-check';
import { CELL_BODY_LEN, RelayCommand } from '../wire/constants.js';
import { readRelayHeader, relayData, writeRelayBody } from '../wire/relay-cell.js';
import {
  BACKWARD_R_LEN,
  BACKWARD_TAG_LEN,
  type BackwardCellLayer,
  BackwardLayer,
  EntryBackwardLayer,
  isOrigin,
  type PaddingSource,
} from './backward-layer.js';

const runs = Number(process.env.FUZZ_RUNS ?? 200);
const key = (b: number) => Buffer.alloc(32, b);

/** Deterministic padding for the vectors (the protocol's is random): byte i is (7i + 3) mod 256. */
const fixedPad: PaddingSource = (buf, offset, size) => {
  for (let i = 0; i < size; i++) buf[offset + i] = (i * 7 + 3) & 0xff;
};

/**
 * An n-hop circuit's backward layers as circuits have them: hop 0 plain, the others wide. Hop i's
 * keys: Kb = 0x20+i, Mb = 0x50+i, Kt = 0x80+i (each repeated 32 times).
 */
function layers(n: number): BackwardCellLayer[] {
  return Array.from({ length: n }, (_, i) =>
    i === 0
      ? new EntryBackwardLayer(key(0x20))
      : new BackwardLayer(key(0x20 + i), key(0x50 + i), key(0x80 + i)),
  );
}

/** One wide layer with hop 1's keys. */
function wide(): BackwardLayer {
  return new BackwardLayer(key(0x21), key(0x51), key(0x81));
}

function plain(command: number, streamId: number, data: Buffer): Buffer {
  const body = Buffer.alloc(CELL_BODY_LEN);
  writeRelayBody(body, command, streamId, data);
  return body;
}

/** Hop `from` of an n-hop circuit sends `body`; every hop nearer the client adds its layer. */
function send(relays: BackwardCellLayer[], from: number, body: Buffer, pad?: PaddingSource) {
  const { out, tags } = relays[from].originate(body, pad);
  let b = out;
  for (let j = from - 1; j >= 0; j--) b = relays[j].add(b);
  return { wire: b, tag: tags[0] };
}

/** The client peels hop 0, 1, ... and stops at the hop that sent the cell; -1 when none did. */
function receive(client: BackwardCellLayer[], wire: Buffer): { hop: number; body?: Buffer; tag?: Buffer } {
  let b = wire;
  for (let i = 0; i < client.length; i++) {
    const tag = Buffer.from(b.subarray(0, BACKWARD_TAG_LEN));
    b = client[i].peel(b);
    if (isOrigin(b)) return { hop: i, body: b, tag };
  }
  return { hop: -1 };
}

/** The 4091 keystream bytes of cell `ksIndex` under `kb`. */
function keystream(kb: Buffer, ksIndex: number): Buffer {
  return createCipheriv('aes-256-ctr', kb, Buffer.alloc(16))
    .update(Buffer.alloc((ksIndex + 1) * CELL_BODY_LEN))
    .subarray(ksIndex * CELL_BODY_LEN);
}

/** The entry's layer straight from docs/protocol.md §3.4: the whole body XOR the keystream. */
function entryLayerBySpec(kb: Buffer, ksIndex: number, body: Buffer): Buffer {
  const ks = keystream(kb, ksIndex);
  return Buffer.from(body.map((b, i) => b ^ ks[i]));
}

/** A wide layer (hops 1 on) straight from docs/protocol.md §3.4, for comparison. */
function layerBySpec(kb: Buffer, mb: Buffer, kt: Buffer, seq: number, ksIndex: number, body: Buffer): Buffer {
  const ks = keystream(kb, ksIndex);
  const r = Buffer.alloc(BACKWARD_R_LEN);
  for (let i = 0; i < BACKWARD_R_LEN; i++) r[i] = body[BACKWARD_TAG_LEN + i] ^ ks[BACKWARD_TAG_LEN + i];
  const s = Buffer.alloc(8);
  s.writeBigUInt64BE(BigInt(seq));
  const h = createHash('sha256').update(mb).update(s).update(r).digest().subarray(0, 16);
  const x = Buffer.alloc(16);
  for (let i = 0; i < 16; i++) x[i] = body[i] ^ h[i];
  const e = createCipheriv('aes-256-ecb', kt, null).setAutoPadding(false).update(x);
  const t = Buffer.alloc(16);
  for (let i = 0; i < 16; i++) t[i] = e[i] ^ h[i];
  return Buffer.concat([t, r]);
}

test('test vector: a DATA cell from the exit of a 3-hop circuit, as the client receives it', () => {
  const relays = layers(3);
  const body = plain(RelayCommand.DATA, 7, Buffer.from('allium backward vector'));
  const { wire, tag } = send(relays, 2, body, fixedPad);
  assert.equal(tag.toString('hex'), VECTOR.exitTag);
  assert.equal(wire.subarray(0, 32).toString('hex'), VECTOR.head);
  assert.equal(createHash('sha256').update(wire).digest('hex'), VECTOR.sha256);
  const got = receive(layers(3), wire);
  assert.equal(got.hop, 2);
  assert.deepEqual(got.tag, tag);
  assert.equal(relayData(got.body!).toString(), 'allium backward vector');
});
const VECTOR = {
  exitTag: '971a16b7b000652ca9f1c557042c47f0',
  head: '40238e7860c520ea2503a4082e8c2224ebdfe8973136428753e53c1f466269ed',
  sha256: 'd2ee235a00ae123f64d43b04d341ee8e48fd93d7fe02e5a9eba5d2220eb5b2bc',
};

test('each layer is the construction of protocol §3.4 (recomputed from the spec, seq and keystream running on)', () => {
  // Hops 1 and 2 (wide): hop 1 handles its own cell (seq 0), then one from hop 2 (seq 1).
  const [, hop1, hop2] = layers(3);
  const own = plain(RelayCommand.SENDME, 0, Buffer.alloc(3, 1));
  fixedPad(own, 21 + 3, CELL_BODY_LEN - 24);
  const a = hop1.originate(plain(RelayCommand.SENDME, 0, Buffer.alloc(3, 1)), fixedPad).out;
  assert.deepEqual(a, layerBySpec(key(0x21), key(0x51), key(0x81), 0, 0, own));
  const far = plain(RelayCommand.DATA, 1, Buffer.from('far'));
  fixedPad(far, 21 + 3, CELL_BODY_LEN - 24);
  const b2 = hop2.originate(plain(RelayCommand.DATA, 1, Buffer.from('far')), fixedPad).out;
  const s2 = layerBySpec(key(0x22), key(0x52), key(0x82), 0, 0, far);
  assert.deepEqual(b2, s2);
  const b1 = hop1.add(b2);
  assert.deepEqual(b1, layerBySpec(key(0x21), key(0x51), key(0x81), 1, 1, s2));
  // Hop 0 (the entry): the keystream over the whole body, its own cell and then hop 1's.
  const [hop0] = layers(1);
  const first = hop0.originate(plain(RelayCommand.EXTENDED, 0, Buffer.from('x')), fixedPad).out;
  const firstPlain = plain(RelayCommand.EXTENDED, 0, Buffer.from('x'));
  fixedPad(firstPlain, 21 + 1, CELL_BODY_LEN - 22);
  assert.deepEqual(first, entryLayerBySpec(key(0x20), 0, firstPlain));
  assert.deepEqual(hop0.add(b1), entryLayerBySpec(key(0x20), 1, b1));
  assert.equal(hop0.seq, 2);
});

test('the client finds the hop that sent each cell, with the tag that hop made, cell after cell', () => {
  const relays = layers(3);
  const client = layers(3);
  for (let round = 0; round < 4; round++) {
    for (let h = 0; h < 3; h++) {
      const msg = Buffer.from(`round ${round} from hop ${h}`);
      const { wire, tag } = send(relays, h, plain(RelayCommand.DATA, 1, msg));
      const got = receive(client, wire);
      assert.equal(got.hop, h);
      assert.deepEqual(got.tag, tag);
      assert.equal(relayData(got.body!).toString(), msg.toString());
    }
  }
});

test('peeling and adding in batches gives the bytes of one cell at a time', () => {
  const one = wide();
  const many = wide();
  const cells = [0, 1, 2, 3].map((i) => Buffer.alloc(CELL_BODY_LEN, i * 31 + 1));
  const single = Buffer.concat(cells.map((c) => one.add(c)));
  assert.deepEqual(many.add(Buffer.concat(cells)), single);
  const peelOne = wide();
  const peelMany = wide();
  const back = Buffer.concat(
    [0, 1, 2, 3].map((i) => peelOne.peel(single.subarray(i * CELL_BODY_LEN, (i + 1) * CELL_BODY_LEN))),
  );
  assert.deepEqual(peelMany.peel(single), back);
  assert.deepEqual(back, Buffer.concat(cells));
});

test('the padding after the message is random, and the tag of a cell differs each time', () => {
  const a = send(layers(3), 2, plain(RelayCommand.SENDME, 0, Buffer.alloc(0)));
  const b = send(layers(3), 2, plain(RelayCommand.SENDME, 0, Buffer.alloc(0)));
  assert.notDeepEqual(a.tag, b.tag);
  const got = receive(layers(3), a.wire);
  const pad = got.body!.subarray(21);
  assert.ok(pad.some((x) => x !== 0));
  assert.equal(readRelayHeader(got.body!).command, RelayCommand.SENDME);
});

test('property: any change by any relay, even one a colluding relay nearer the client XORs back, kills the cell', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 3 }), // the marking relay of 4 hops: 0 the entry, 3 the last
      fc.integer({ min: 0, max: CELL_BODY_LEN - 1 }),
      fc.integer({ min: 1, max: 255 }),
      fc.boolean(),
      (marker, pos, bit, undo) => {
        const n = 4;
        const relays = layers(n);
        const from = n - 1;
        const { out } = relays[from].originate(plain(RelayCommand.DATA, 1, Buffer.from('payload')));
        let b = out;
        for (let j = from - 1; j >= -1; j--) {
          // Relay j+1 passed b down to relay j (or the client): the marker marks what it passes on.
          if (j + 1 === marker) b[pos] ^= bit;
          // A colluder right before the client XORs the same mark back, after honest hops in between.
          if (j === -1 && undo && marker > 1) b[pos] ^= bit;
          if (j >= 0) b = relays[j].add(b);
        }
        assert.equal(receive(layers(n), b).hop, -1);
      },
    ),
    { numRuns: Math.min(runs, 200) },
  );
});

test('a replayed or reordered backward cell is not recognised', () => {
  const relays = layers(2);
  const first = send(relays, 1, plain(RelayCommand.DATA, 1, Buffer.from('one'))).wire;
  const second = send(relays, 1, plain(RelayCommand.DATA, 1, Buffer.from('two'))).wire;
  const client = layers(2);
  assert.equal(receive(client, second).hop, -1);
  const again = layers(2);
  assert.equal(receive(again, first).hop, 1);
  assert.equal(receive(again, first).hop, -1);
});

test('refuses bodies that are not whole cells, and keys of the wrong size', () => {
  for (const layer of [wide(), new EntryBackwardLayer(key(1))]) {
    assert.throws(() => layer.add(Buffer.alloc(CELL_BODY_LEN + 1)));
    assert.throws(() => layer.peel(Buffer.alloc(0)));
  }
  assert.throws(() => new EntryBackwardLayer(Buffer.alloc(16)));
  assert.throws(() => new BackwardLayer(key(1), key(2), Buffer.alloc(16)));
});

// Sanity for the spec function itself: the ECB step inverts.
test('the tag step is a permutation of T for a given h', () => {
  const e = createCipheriv('aes-256-ecb', key(9), null).setAutoPadding(false).update(Buffer.alloc(16, 5));
  const d = createDecipheriv('aes-256-ecb', key(9), null).setAutoPadding(false).update(e);
  assert.deepEqual(d, Buffer.alloc(16, 5));
});
