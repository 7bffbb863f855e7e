// Moves a circuit stream's data into a socket like `readable.pipe(socket)`, and releases each chunk's
// memory as soon as the socket has written it (wire/release.ts): data a slow reader leaves queued
// is promoted out of V8's young generation, and would otherwise stay in RSS until a full collection.
import type { Readable, Writable } from 'node:stream';
import { releaseBuffer } from '../wire/release.js';

/**
 * Pipes `from` into `to` with backpressure and end propagation, as pipe() does. `from` must emit
 * Buffers it owns alone (CircuitStream copies every chunk it delivers), since they are freed once written.
 */
export function pipeReleasing(from: Readable, to: Writable): void {
  let waiting = false;
  const onDrain = () => {
    waiting = false;
    from.resume();
  };
  const onData = (chunk: Buffer) => {
    if (to.destroyed) return;
    if (!to.write(chunk, () => releaseBuffer(chunk)) && !waiting) {
      waiting = true;
      from.pause();
      to.once('drain', onDrain);
    }
  };
  const onEnd = () => to.end();
  const stop = () => {
    from.off('data', onData);
    from.off('end', onEnd);
    to.off('drain', onDrain);
  };
  from.on('data', onData);
  from.once('end', onEnd);
  to.once('close', stop);
  from.once('close', () => from.off('data', onData));
}
