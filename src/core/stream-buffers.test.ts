import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EndReason } from '../wire/constants.js';
import { StreamBuffers } from './stream-buffers.js';
import { type CircuitStream, StreamError } from './stream-mux.js';

/** What StreamBuffers reads of a stream: what it holds, and whether it is closed. */
function fakeStream(buffers: StreamBuffers): CircuitStream & { closedWith: StreamError | null } {
  const s = {
    heldBytes: 0,
    destroyed: false,
    closedWith: null as StreamError | null,
    destroy(err: StreamError) {
      s.destroyed = true;
      s.closedWith = err;
      buffers.note(-s.heldBytes);
      s.heldBytes = 0;
    },
  };
  buffers.streams.add(s as unknown as CircuitStream);
  return s as unknown as CircuitStream & { closedWith: StreamError | null };
}

function hold(buffers: StreamBuffers, s: CircuitStream, bytes: number): void {
  (s as { heldBytes: number }).heldBytes += bytes;
  buffers.note(bytes);
}

describe('StreamBuffers', () => {
  it('past the limit closes the stream holding the most (with the kernel share), then the next', () => {
    const buffers = new StreamBuffers(
      1000,
      (max) => new StreamError('ALLIUM_SERVICE_BUFFER_FULL', `${max}`, EndReason.RESOURCELIMIT),
    );
    const a = fakeStream(buffers);
    const b = fakeStream(buffers);
    const c = fakeStream(buffers);
    hold(buffers, a, 300);
    hold(buffers, b, 200);
    buffers.setKernel(b, 250);
    assert.equal(buffers.total, 750);
    hold(buffers, c, 400);
    // b holds 450 with its kernel share: it goes, and 700 is within the limit.
    assert.equal(b.closedWith?.code, 'ALLIUM_SERVICE_BUFFER_FULL');
    assert.equal(b.closedWith?.endReason, EndReason.RESOURCELIMIT);
    assert.equal(a.destroyed || c.destroyed, false);
    assert.equal(buffers.total, 700);
    assert.equal(buffers.closedStreams, 1);
    hold(buffers, a, 900);
    assert.equal(a.destroyed, true);
    assert.equal(c.destroyed, false);
    assert.equal(buffers.total, 400);
    assert.equal(buffers.closedStreams, 2);
  });
});
