// Implements docs/protocol.md §4.2 at the exit: a BEGIN opens a TCP connection to the destination
// (after the exit policy and the stream limit), CONNECTED or END goes back, and the two are piped.

import type { ExitPolicy } from '../core/exit-policy.js';
import type { RelayCircuit } from '../core/relay-circuit.js';
import { StreamBuffers } from '../core/stream-buffers.js';
import { StreamError, type StreamMux } from '../core/stream-mux.js';
import type { Logger } from '../log.js';
import { exitConnect } from '../net/exit-connector.js';
import type { ExitResolver } from '../net/exit-resolver.js';
import { pipeStreamSocket } from '../net/stream-socket.js';
import { EndReason, RelayCommand } from '../wire/constants.js';
import { BeginFlag, decodeBegin, encodeConnected, encodeEnd } from '../wire/relay-messages.js';

export { EXIT_DRAIN_STALL_MS } from '../net/stream-socket.js';

/**
 * The bytes all exit streams hold for their destinations (core/stream-buffers.ts): past `limit` in
 * all, the stream holding the most is closed with ALLIUM_EXIT_BUFFER_FULL, then the next.
 */
export class ExitBuffers extends StreamBuffers {
  constructor(limit: number) {
    super(
      limit,
      (max) =>
        new StreamError(
          'ALLIUM_EXIT_BUFFER_FULL',
          `the exit holds more than ${max} bytes for destinations that do not read (--max-exit-buffer)`,
          EndReason.RESOURCELIMIT,
        ),
    );
  }
}

/** What the exit side needs from its relay. */
export interface ExitContext {
  policy: ExitPolicy;
  /** Resolves destination names (bounded per circuit and in total). */
  resolver: ExitResolver;
  /** What the exit holds for destinations, all streams together. */
  buffers: ExitBuffers;
  maxStreamsPerCircuit: number;
  /** Log destinations (off by default: relays do not log where clients go). */
  logSensitive: boolean;
  log: Logger;
  stats: { streams: number; limitRejections: number };
  sendBackward(circ: RelayCircuit, command: number, streamId: number, data: Buffer): void;
  /** The client broke the protocol on this circuit: destroy it. */
  protocolError(circ: RelayCircuit): void;
  /** A round trip to the client and back on `circ`, ms: for the receive budget of its link (§5.1). */
  noteRoundTrip(circ: RelayCircuit, ms: number): void;
}

/** Handles one BEGIN on `circ` (whose streams are `mux`). */
export function beginExitStream(
  ctx: ExitContext,
  circ: RelayCircuit,
  mux: StreamMux,
  streamId: number,
  data: Buffer,
): void {
  if (streamId === 0 || mux.streams.has(streamId)) {
    ctx.protocolError(circ);
    return;
  }
  const { host, port, flags } = decodeBegin(data);
  // Before the stream is opened: its window grows as a receiver only on such a circuit.
  if (flags & BeginFlag.LARGE_WINDOWS) circ.largeWindows = true;
  if (mux.streams.size >= ctx.maxStreamsPerCircuit) {
    ctx.stats.limitRejections++;
    ctx.sendBackward(circ, RelayCommand.END, streamId, encodeEnd(EndReason.RESOURCELIMIT));
    return;
  }
  if (!ctx.policy.isExit()) {
    ctx.sendBackward(circ, RelayCommand.END, streamId, encodeEnd(EndReason.EXITPOLICY));
    return;
  }
  // Reserve the id while connecting, so a duplicate BEGIN is a protocol error. Its DATA counts as
  // consumed only once the destination's socket has taken it (socket backpressure, protocol §5).
  const stream = mux.open(streamId, { consumeOnWrite: true });
  stream.on('error', () => {});
  ctx.buffers.streams.add(stream);
  stream.once('close', () => ctx.buffers.streams.delete(stream));
  if (ctx.logSensitive) ctx.log.info({ host, port }, 'exit stream requested');
  exitConnect(host, port, ctx.policy, (name) => ctx.resolver.lookup(name, circ)).then(
    ({ socket, address }) => {
      if (circ.closed || stream.destroyed) {
        socket.destroy();
        return;
      }
      ctx.stats.streams++;
      ctx.sendBackward(circ, RelayCommand.CONNECTED, streamId, encodeConnected(address));
      // A client that waited for CONNECTED sends its first DATA a circuit round trip later (plus
      // its application's turn): the exit's only way to time its path to the client (§5.1).
      if (stream.bytesIn === 0) {
        const sentAt = performance.now();
        stream.onFirstData = () => ctx.noteRoundTrip(circ, performance.now() - sentAt);
      }
      pipeStreamSocket(stream, socket, { inKernel: (bytes) => ctx.buffers.setKernel(stream, bytes) });
    },
    (err) => {
      const reason = err instanceof StreamError ? err.endReason : EndReason.MISC;
      if (reason === EndReason.RESOURCELIMIT) ctx.stats.limitRejections++;
      if (ctx.logSensitive) ctx.log.info({ host, port, err: err.message }, 'exit stream failed');
      if (!stream.destroyed) stream.destroy(new StreamError('ALLIUM_EXIT_FAILED', err.message, reason));
    },
  );
}
