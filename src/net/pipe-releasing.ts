// Moves a circuit stream's data into a socket like `readable.pipe(socket)`, and releases each chunk's
// memory as soon as the socket has written it (buffers/release.ts): data a slow reader leaves queued
// is promoted out of V8's young generation, and would otherwise stay in RSS until a full collection.
import type { Readable, Writable } from 'node:stream';
import { releaseBuffer } from '../buffers/release.js';

/**
 * Pipes `from` into `to` with backpressure and end propagation, as pipe() does. `from` must emit
 * Buffers it owns alone (CircuitStream copies every chunk it delivers), since they are freed once written.
 * `hooks` hear the size of each chunk `to` has taken (for a socket: handed to the kernel), and when
 * `to` pushes back (its queue is full) and drains again.
 */
export function pipeReleasing(
  from: Readable,
  to: Writable,
  hooks: { written?: (bytes: number) => void; blocked?: () => void; drained?: () => void } = {},
): void {
  let waiting = false;
  const onDrain = () => {
    waiting = false;
    hooks.drained?.();
    from.resume();
  };
  const onData = (chunk: Buffer) => {
    if (to.destroyed) return;
    const bytes = chunk.length;
    const written = (err?: Error | null) => {
      releaseBuffer(chunk);
      if (!err) hooks.written?.(bytes);
    };
    if (!to.write(chunk, written) && !waiting) {
      waiting = true;
      from.pause();
      hooks.blocked?.();
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
