// Flow control at one circuit endpoint (protocol §5): the stream window and the circuit window a
// sender keeps, the SENDMEs a receiver sends as its data is consumed, and the exit's side when its
// destination does not read (DATA counts as consumed only once the socket has taken it, and circuit
// SENDMEs wait while the circuit holds too much).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  CIRC_SENDME_INCREMENT,
  CIRC_WINDOW_MAX,
  CIRC_WINDOW_START,
  RELAY_DATA_MAX,
  RelayCommand,
  SENDME_CELL_MIN_PADDING,
  STREAM_SENDME_INCREMENT,
  STREAM_WINDOW_MAX,
  STREAM_WINDOW_START,
} from '../wire/constants.js';
import { decodeCircuitSendme, encodeCircuitSendme } from '../wire/relay-messages.js';
import { StreamMux } from './stream-mux.js';

const CELL = 1000;

/** A mux that records what it sends: circuit SENDMEs (stream 0) and stream SENDMEs apart. */
function recordingMux(maxHeldBytes?: number) {
  const sent = { circuitSendmes: 0, streamSendmes: 0, held: [] as number[] };
  const mux = new StreamMux(
    (command, streamId, datas) => {
      if (command === RelayCommand.SENDME) {
        if (streamId === 0) sent.circuitSendmes += datas.length;
        else sent.streamSendmes += datas.length;
      }
      return datas.map(() => Buffer.alloc(16));
    },
    { maxHeldBytes, onHeld: (d) => sent.held.push(d) },
  );
  let n = 0;
  const deliver = (streamId: number, cells: number) => {
    for (let i = 0; i < cells; i++) {
      const tag = Buffer.alloc(16);
      tag.writeUInt32BE(++n);
      mux.handle(RelayCommand.DATA, streamId, Buffer.alloc(CELL, 1), tag);
    }
  };
  return { mux, sent, deliver };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('StreamMux at an exit (consumeOnWrite)', () => {
  it('sends stream SENDMEs only for what the socket took', async () => {
    const { mux, sent, deliver } = recordingMux();
    const s = mux.open(1, { consumeOnWrite: true });
    s.on('data', () => {}); // flowing, as when piped into the socket
    deliver(1, STREAM_SENDME_INCREMENT);
    await tick();
    assert.equal(sent.streamSendmes, 0, 'queued for the socket is not consumed');
    assert.equal(s.heldBytes, STREAM_SENDME_INCREMENT * CELL);
    s.written(STREAM_SENDME_INCREMENT * CELL - 1);
    assert.equal(sent.streamSendmes, 0);
    s.written(1);
    assert.equal(sent.streamSendmes, 1);
    assert.equal(s.heldBytes, 0);
    assert.equal(mux.heldBytes, 0);
  });

  it('withholds circuit SENDMEs while the circuit holds more than its limit, and sends them in order after', async () => {
    const limit = 10 * CELL;
    const { mux, sent, deliver } = recordingMux(limit);
    const s = mux.open(1, { consumeOnWrite: true });
    s.on('data', () => {});
    deliver(1, CIRC_SENDME_INCREMENT * 2);
    await tick();
    assert.equal(sent.circuitSendmes, 0, 'over the limit: no circuit SENDME');
    assert.equal(mux.waitingSendmes, 2);
    s.written(CIRC_SENDME_INCREMENT * 2 * CELL - limit - CELL);
    assert.equal(sent.circuitSendmes, 0, 'still over the limit');
    s.written(CELL);
    assert.equal(sent.circuitSendmes, 2, 'both released once at the limit');
    assert.equal(mux.waitingSendmes, 0);
  });

  it('a destroyed stream gives back everything it held', async () => {
    const { mux, sent, deliver } = recordingMux(CELL);
    const s = mux.open(1, { consumeOnWrite: true });
    deliver(1, 100);
    await tick();
    assert.equal(mux.heldBytes, 100 * CELL);
    s.destroy();
    assert.equal(mux.heldBytes, 0);
    assert.equal(
      sent.held.reduce((a, b) => a + b, 0),
      0,
    );
    s.written(5 * CELL);
    assert.equal(mux.heldBytes, 0, 'a late write callback changes nothing');
  });

  it('streams without consumeOnWrite consume on delivery, as before', async () => {
    const { mux, sent, deliver } = recordingMux(CELL);
    const s = mux.open(1);
    s.on('data', () => {});
    deliver(1, STREAM_SENDME_INCREMENT);
    await tick();
    assert.equal(sent.streamSendmes, 1);
    assert.equal(mux.heldBytes, 0);
  });
});

/**
 * Both ends' view of one circuit endpoint's sending side: every DATA cell sent gets a distinct tag
 * (what the peer's circuit SENDME must echo), and `ackCircuit` answers as a peer would.
 */
function sendingMux(opts: { held?: () => boolean } = {}) {
  const sent = { data: new Map<number, number>(), bytes: 0, tags: [] as Buffer[], other: [] as number[] };
  let serial = 0;
  const mux = new StreamMux(
    (command, streamId, datas) =>
      datas.map((d) => {
        const tag = Buffer.alloc(16);
        tag.writeUInt32BE(++serial);
        if (command === RelayCommand.DATA) {
          sent.data.set(streamId, (sent.data.get(streamId) ?? 0) + 1);
          sent.bytes += d.length;
          sent.tags.push(tag);
        } else sent.other.push(command);
        return tag;
      }),
    { held: opts.held },
  );
  const dataCells = () => [...sent.data.values()].reduce((a, b) => a + b, 0);
  /** The peer's circuit SENDME for the n-th increment of DATA cells (1-based), naming `window`. */
  const ackCircuit = (n: number, window: number) =>
    mux.handle(
      RelayCommand.SENDME,
      0,
      encodeCircuitSendme({ tag: sent.tags[n * CIRC_SENDME_INCREMENT - 1], window }),
      Buffer.alloc(16),
    );
  return { mux, sent, dataCells, ackCircuit };
}

/** `cells` full DATA cells' worth of bytes. */
const cellsOf = (cells: number) => Buffer.alloc(cells * RELAY_DATA_MAX, 7);

describe('StreamMux sending: the stream window and the circuit window', () => {
  it('a stream sends at most its window (1024 cells) until the peer SENDMEs it, 128 cells a SENDME', () => {
    const { mux, sent, ackCircuit } = sendingMux();
    const s = mux.open(1);
    s.write(cellsOf(STREAM_WINDOW_START + 500));
    // Keep the circuit window wide open, as a peer that acknowledges at once would.
    for (let n = 1; n * CIRC_SENDME_INCREMENT <= sent.tags.length; n++) ackCircuit(n, CIRC_WINDOW_MAX);
    assert.equal(sent.data.get(1), STREAM_WINDOW_START, 'the stream window stops the stream');
    assert.equal(s.window.packageWindow, 0);
    mux.handle(RelayCommand.SENDME, 1, Buffer.alloc(0), Buffer.alloc(16));
    assert.equal(sent.data.get(1), STREAM_WINDOW_START + STREAM_SENDME_INCREMENT);
    // A stream SENDME for a stream that has its whole window is a protocol violation.
    const t = mux.open(3);
    assert.throws(
      () => {
        for (let i = 0; i < STREAM_WINDOW_MAX; i++)
          mux.handle(RelayCommand.SENDME, 3, Buffer.alloc(0), Buffer.alloc(16));
      },
      (e: Error & { code?: string }) => e.code === 'ALLIUM_FLOW_SENDME',
    );
    t.destroy();
  });

  it('all streams of a circuit share its window: 128 cells before the first circuit SENDME', () => {
    const { mux, sent, dataCells, ackCircuit } = sendingMux();
    const a = mux.open(1);
    const b = mux.open(3);
    a.write(cellsOf(300));
    b.write(cellsOf(300));
    assert.equal(dataCells(), CIRC_WINDOW_START, 'the circuit window stops both streams');
    assert.equal(mux.window.inFlight, CIRC_WINDOW_START);
    // The peer acknowledges the first 64 and names a window of 64 past them: nothing more may go.
    ackCircuit(1, CIRC_SENDME_INCREMENT);
    assert.equal(dataCells(), CIRC_WINDOW_START);
    // The second increment acknowledged, with 256 past it: up to 128 + 256 cells in all.
    ackCircuit(2, 256);
    assert.equal(dataCells(), 2 * CIRC_SENDME_INCREMENT + 256);
    assert.ok((sent.data.get(1) ?? 0) > 0 && (sent.data.get(3) ?? 0) > 0, 'both streams sent');
  });

  it('refuses a circuit SENDME that does not echo the tag of the cell it acknowledges', () => {
    const { mux, sent } = sendingMux();
    mux.open(1).write(cellsOf(CIRC_WINDOW_START));
    const wrong = Buffer.from(sent.tags[CIRC_SENDME_INCREMENT - 2]); // the 63rd cell's, not the 64th's
    assert.throws(
      () =>
        mux.handle(
          RelayCommand.SENDME,
          0,
          encodeCircuitSendme({ tag: wrong, window: CIRC_WINDOW_MAX }),
          Buffer.alloc(16),
        ),
      (e: Error & { code?: string }) => e.code === 'ALLIUM_FLOW_SENDME',
    );
  });

  it('leaves room for padding in every cell a circuit SENDME will acknowledge', () => {
    const sizes: number[] = [];
    const mux = new StreamMux((command, _id, datas) => {
      if (command === RelayCommand.DATA) for (const d of datas) sizes.push(d.length);
      return datas.map(() => Buffer.alloc(16));
    });
    mux.open(1).write(cellsOf(CIRC_WINDOW_START));
    assert.equal(sizes.length, CIRC_WINDOW_START);
    sizes.forEach((n, i) => {
      const acked = (i + 1) % CIRC_SENDME_INCREMENT === 0;
      assert.equal(n, acked ? RELAY_DATA_MAX - SENDME_CELL_MIN_PADDING : RELAY_DATA_MAX, `cell ${i + 1}`);
    });
  });

  it('sends nothing while held, and what the windows allow once resumed', () => {
    let held = true;
    const { mux, dataCells } = sendingMux({ held: () => held });
    const s = mux.open(1);
    let written = false;
    s.write(cellsOf(10), () => {
      written = true;
    });
    assert.equal(dataCells(), 0);
    held = false;
    mux.resume();
    assert.equal(dataCells(), 10);
    return tick().then(() => assert.ok(written, 'the writer is told once all is sent'));
  });
});

describe('StreamMux receiving: SENDMEs as the data is consumed', () => {
  it('answers every 64th DATA cell with a circuit SENDME echoing the tag of that cell', () => {
    const sendmes: Buffer[] = [];
    const mux = new StreamMux((command, streamId, datas) => {
      if (command === RelayCommand.SENDME && streamId === 0) sendmes.push(...datas);
      return datas.map(() => Buffer.alloc(16));
    });
    const s = mux.open(1);
    s.on('data', () => {});
    const tags: Buffer[] = [];
    for (let i = 0; i < 2 * CIRC_SENDME_INCREMENT + 10; i++) {
      const tag = Buffer.alloc(16, 0);
      tag.writeUInt32BE(i + 1);
      tags.push(tag);
      mux.handle(RelayCommand.DATA, 1, Buffer.alloc(100), tag);
    }
    assert.equal(sendmes.length, 2);
    assert.deepEqual(decodeCircuitSendme(sendmes[0]).tag, tags[CIRC_SENDME_INCREMENT - 1]);
    assert.deepEqual(decodeCircuitSendme(sendmes[1]).tag, tags[2 * CIRC_SENDME_INCREMENT - 1]);
  });

  it('sends a stream SENDME per 128 cells the reader consumed, none for cells it has not read', async () => {
    const { mux, sent } = recordingMux();
    const s = mux.open(1); // paused: nobody reads yet
    // 128 cells of 4000 bytes: more than the stream's read buffer, so they wait unconsumed.
    for (let i = 0; i < STREAM_SENDME_INCREMENT; i++)
      mux.handle(RelayCommand.DATA, 1, Buffer.alloc(4000, 1), Buffer.alloc(16, i));
    await tick();
    assert.equal(sent.streamSendmes, 0, 'nothing was read');
    s.read();
    await tick();
    assert.equal(sent.streamSendmes, 1, 'read: one SENDME for the 128 cells');
  });

  it('refuses a peer that sends more than the stream window', () => {
    const mux = new StreamMux((_c, _s, datas) => datas.map(() => Buffer.alloc(16)));
    mux.open(1); // never read, so no stream SENDME reopens the window
    // Circuit SENDMEs go out as cells arrive, so only the stream window can stop these.
    assert.throws(
      () => {
        for (let i = 0; i <= STREAM_WINDOW_START; i++)
          mux.handle(RelayCommand.DATA, 1, Buffer.alloc(4000), Buffer.alloc(16, i & 0xff));
      },
      (e: Error & { code?: string }) => e.code === 'ALLIUM_FLOW_WINDOW',
    );
  });
});
