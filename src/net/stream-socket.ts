// Implements docs/protocol.md §4.2 and §5 where a circuit stream meets a TCP connection: an exit's to
// its destination, an onion service's to its local server (§8.7). Both ways with backpressure, the
// stream's DATA counted as consumed once the socket took it, and a peer that ended the stream
// dropping a connection that neither takes what is left nor answers.
import type net from 'node:net';
import { type CircuitStream, StreamError } from '../core/stream-mux.js';
import { EndReason } from '../wire/constants.js';
import { kernelSendBufferMax } from './exit-connector.js';
import { pipeReleasing } from './pipe-releasing.js';

/**
 * After the client ended a stream, a destination that for this long neither takes what is left nor
 * sends anything is dropped: its buffers (and the socket's, in the kernel) are freed.
 */
export const EXIT_DRAIN_STALL_MS = 15_000;

const KERNEL_SEND_BUFFER_MAX = kernelSendBufferMax();

export interface StreamSocketHooks {
  /**
   * What the connection holds in the kernel's send buffer for `stream` now, by estimate: what the
   * socket took while its peer stopped reading, at most the kernel's limit (0: nothing waits).
   */
  inKernel?(bytes: number): void;
}

/** Pipes `stream` and `socket` into each other until either closes. */
export function pipeStreamSocket(
  stream: CircuitStream,
  socket: net.Socket,
  hooks: StreamSocketHooks = {},
): void {
  socket.on('error', () =>
    stream.destroy(new StreamError('ALLIUM_EXIT_RESET', 'connection reset', EndReason.CONNRESET)),
  );
  // A stream closed while its destination was not taking data resets the connection: a plain
  // close would leave what the kernel holds to a peer that does not read.
  let stalled = false;
  stream.on('close', () => {
    if (stalled || socket.writableLength > 0) socket.resetAndDestroy();
    else socket.destroy();
  });
  socket.pipe(stream);
  let lastActive = performance.now();
  let taken = 0;
  socket.on('data', () => (lastActive = performance.now()));
  stream.once('close', () => hooks.inKernel?.(0));
  pipeReleasing(stream, socket, {
    written: (bytes) => {
      lastActive = performance.now();
      taken += bytes;
      stream.written(bytes);
    },
    // Still waiting a turn later: the kernel's send buffer is full, and counts as held.
    blocked: () =>
      setImmediate(() => {
        if (!socket.destroyed && !stream.destroyed && socket.writableLength > 0) {
          stalled = true;
          hooks.inKernel?.(Math.min(taken, KERNEL_SEND_BUFFER_MAX));
        }
      }),
    drained: () => {
      stalled = false;
      hooks.inKernel?.(0);
    },
  });
  watchDrain(stream, () => lastActive);
}

/**
 * Once the client has ended `stream`, the destination must keep taking what is left or keep answering:
 * after EXIT_DRAIN_STALL_MS with neither, the stream is closed (and the connection reset), so a client
 * that leaves frees what it sent, in the exit's buffers and in the kernel's.
 */
function watchDrain(stream: CircuitStream, lastActive: () => number): void {
  stream.onRemoteEnd = () => {
    const timer = setInterval(() => {
      if (stream.destroyed) {
        clearInterval(timer);
        return;
      }
      if (performance.now() - lastActive() < EXIT_DRAIN_STALL_MS) return;
      clearInterval(timer);
      stream.destroy(
        new StreamError(
          'ALLIUM_EXIT_DRAIN_STALLED',
          'the destination neither read nor answered after the client ended the stream',
          EndReason.TIMEOUT,
        ),
      );
    }, EXIT_DRAIN_STALL_MS / 3);
    timer.unref();
    stream.once('close', () => clearInterval(timer));
  };
}
