// The exit's side of flow control (protocol §5) when its destination does not read: DATA counts as
// consumed only once the socket has taken it, and circuit SENDMEs wait while the circuit holds too much.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CIRC_SENDME_INCREMENT, RelayCommand, STREAM_SENDME_INCREMENT } from '../wire/constants.js';
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
