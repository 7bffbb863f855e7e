#!/usr/bin/env node
// Per-cell cost of the backward cell crypto (docs/protocol.md §3.4) against the layer it replaced
// (plain AES-CTR at relays; recognized + HMAC at the client), on one core, after `npm run build`.
// Usage: node scripts/bench-cell-crypto.mjs [cells-per-batch]. Bounded: a fixed number of cells.
import { createCipheriv, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { BackwardLayer, isOrigin } from '../dist/src/crypto/backward-layer.js';
import { writeRelayBody } from '../dist/src/wire/relay-cell.js';

const BODY = 4091;
const BATCH = Number(process.argv[2] ?? 16);
const CELLS = 40_000;
const ROUNDS = 5;
const key = () => randomBytes(32);

/** The old backward layer: AES-256-CTR over the whole body; HMAC(M, seq | body with mac zeroed). */
class OldLayer {
  constructor(k, m) {
    this.ctr = createCipheriv('aes-256-ctr', k, Buffer.alloc(16));
    this.m = m;
    this.seq = 0;
    this.seqBuf = Buffer.alloc(8);
  }
  crypt(b) {
    return this.ctr.update(b);
  }
  mac(body) {
    this.seqBuf.writeUInt32BE(0, 0);
    this.seqBuf.writeUInt32BE(this.seq, 4);
    return createHmac('sha256', this.m)
      .update(this.seqBuf)
      .update(body.subarray(0, 2))
      .update(ZERO16)
      .update(body.subarray(18))
      .digest()
      .subarray(0, 16);
  }
  seal(body) {
    ZERO16.copy(body, 2);
    const t = this.mac(body);
    t.copy(body, 2);
    this.seq++;
    return t;
  }
  recognize(body) {
    if (body[0] !== 0 || body[1] !== 0) return null;
    const t = this.mac(body);
    if (!timingSafeEqual(t, body.subarray(2, 18))) return null;
    this.seq++;
    return t;
  }
}
const ZERO16 = Buffer.alloc(16);

/** Microseconds per cell of `fn(batchBuffer)` over CELLS cells, best of ROUNDS. */
function measure(fn) {
  const batch = randomBytes(BATCH * BODY);
  let best = Number.POSITIVE_INFINITY;
  for (let r = 0; r < ROUNDS; r++) {
    const start = process.hrtime.bigint();
    for (let done = 0; done < CELLS; done += BATCH) fn(batch);
    const us = Number(process.hrtime.bigint() - start) / 1000 / CELLS;
    if (us < best) best = us;
  }
  return best;
}

/** Full DATA cells as an exit writes them (the padding-free common case). */
function dataCells(buf, dataLen) {
  const d = Buffer.alloc(dataLen, 0x61);
  for (let i = 0; i < BATCH; i++) writeRelayBody(buf.subarray(i * BODY, (i + 1) * BODY), 2, 1, d);
}

const rows = [];
const row = (name, oldUs, newUs) =>
  rows.push({ name, old: oldUs.toFixed(2), new: newUs.toFixed(2), delta: (newUs - oldUs).toFixed(2) });

// A relay passing on cells from further down (the middle and the entry of a download).
{
  const o = new OldLayer(key(), key());
  const n = new BackwardLayer(key(), key(), key());
  row(
    'relay: add layer to a forwarded cell',
    measure((b) => o.crypt(b)),
    measure((b) => n.add(b)),
  );
}
// The exit sending full DATA cells, and cells with 16 bytes of random padding (the SENDME-acknowledged ones).
for (const [label, len] of [
  ['exit: seal a full DATA cell', 4068],
  ['exit: seal a DATA cell with 16+ B padding', 4052],
  ['exit: seal a short cell (SENDME, END)', 20],
]) {
  const o = new OldLayer(key(), key());
  const n = new BackwardLayer(key(), key(), key());
  const oldUs = measure((b) => {
    dataCells(b, len);
    for (let i = 0; i < BATCH; i++) o.seal(b.subarray(i * BODY, (i + 1) * BODY));
    o.crypt(b);
  });
  const newUs = measure((b) => {
    dataCells(b, Math.min(len + 2, 4070));
    n.originate(b);
  });
  row(label, oldUs, newUs);
}
// The client receiving a DATA cell from the exit of a 3-hop circuit: peel three layers, find the sender.
{
  const k = [0, 1, 2].map(() => [key(), key(), key()]);
  const relaysOld = k.map(([kb, mb]) => new OldLayer(kb, mb));
  const clientOld = k.map(([kb, mb]) => new OldLayer(kb, mb));
  const relaysNew = k.map(([kb, mb, kt]) => new BackwardLayer(kb, mb, kt));
  const clientNew = k.map(([kb, mb, kt]) => new BackwardLayer(kb, mb, kt));
  // Cells made by the real layers once per batch, outside the timed part, would desynchronise the
  // keystreams: so each timed step makes and then receives its batch, and the making is timed apart.
  const makeOld = (b) => {
    dataCells(b, 4068);
    for (let i = 0; i < BATCH; i++) relaysOld[2].seal(b.subarray(i * BODY, (i + 1) * BODY));
    return relaysOld[0].crypt(relaysOld[1].crypt(relaysOld[2].crypt(b)));
  };
  const makeNew = (b) => {
    dataCells(b, 4070);
    return relaysNew[0].add(relaysNew[1].add(relaysNew[2].originate(b).out));
  };
  const receiveOld = (wire) => {
    let x = wire;
    for (let h = 0; h < 3; h++) {
      x = clientOld[h].crypt(x);
      for (let i = 0; i < BATCH; i++) clientOld[h].recognize(x.subarray(i * BODY, (i + 1) * BODY));
    }
  };
  const receiveNew = (wire) => {
    let x = wire;
    for (let h = 0; h < 3; h++) {
      x = clientNew[h].peel(x);
      for (let i = 0; i < BATCH; i++) isOrigin(x.subarray(i * BODY, (i + 1) * BODY));
    }
  };
  const both = (make, receive) => measure((b) => receive(make(b)));
  const oldMake = measure(makeOld);
  const newMake = measure(makeNew);
  // Fresh objects for the combined run, so the keystreams of maker and receiver stay in step.
  const fresh = (C) => k.map((ks) => new C(...ks));
  relaysOld.splice(0, 3, ...fresh(OldLayer));
  clientOld.splice(0, 3, ...fresh(OldLayer));
  relaysNew.splice(0, 3, ...fresh(BackwardLayer));
  clientNew.splice(0, 3, ...fresh(BackwardLayer));
  row(
    'client: peel 3 layers of a DATA cell',
    both(makeOld, receiveOld) - oldMake,
    both(makeNew, receiveNew) - newMake,
  );
}

console.log(`cells per batch: ${BATCH}; microseconds per cell, best of ${ROUNDS} runs of ${CELLS} cells`);
console.table(rows);
