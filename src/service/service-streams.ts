// Implements docs/protocol.md §8.7 (the service is the exit of its streams) and §4.2, §5 at the
// service: a BEGIN from a client on a joined circuit opens a TCP connection to the local server
// (BEGIN's host is ignored; its port must be the one published), CONNECTED or END goes back, and the
// two are piped with an exit's flow control (net/stream-socket.ts).

import type { OnionCircuit } from '../client/onion-circuit.js';
import { StreamBuffers } from '../core/stream-buffers.js';
import { StreamError } from '../core/stream-mux.js';
import type { Logger } from '../log.js';
import { connectTcp, EXIT_CONNECT_TIMEOUT_MS } from '../net/exit-connector.js';
import { pipeStreamSocket } from '../net/stream-socket.js';
import { DestroyReason, EndReason, RelayCommand } from '../wire/constants.js';
import { decodeBegin, encodeEnd } from '../wire/relay-messages.js';
import type { ServiceTarget } from './service-options.js';

/** Streams one client's circuit may have open at the service (an exit's default bound). */
export const MAX_STREAMS_PER_CIRCUIT = 512;

/** Empty: where the service connected is its own business (protocol §4.2 allows an empty CONNECTED). */
const CONNECTED_EMPTY = Buffer.alloc(0);

export interface ServiceStreamStats {
  streams: number;
  /** BEGINs refused: a port not published, too many streams, or the local server not answering. */
  streamsRefused: number;
}

export class ServiceStreams {
  readonly stats: ServiceStreamStats = { streams: 0, streamsRefused: 0 };
  /**
   * What all circuits' streams hold for the local server, with the kernel's send buffers: each
   * circuit holds at most its own bound (client-circuit.ts), this bounds them together, as an exit's
   * --max-exit-buffer does.
   */
  readonly buffers: StreamBuffers;

  constructor(
    private readonly target: ServiceTarget,
    private readonly virtualPort: number,
    private readonly log: Logger,
    maxBufferBytes: number,
  ) {
    this.buffers = new StreamBuffers(
      maxBufferBytes,
      (max) =>
        new StreamError(
          'ALLIUM_SERVICE_BUFFER_FULL',
          `the service holds more than ${max} bytes for a local server that does not read (--max-buffer)`,
          EndReason.RESOURCELIMIT,
        ),
    );
  }

  /** From now on `circuit`'s far end (a client) may open streams to the local server. */
  serve(circuit: OnionCircuit): void {
    circuit.onBeginStream = (streamId, data) => this.begin(circuit, streamId, data);
    circuit.onHeld = (delta) => this.buffers.note(delta);
  }

  private refuse(circuit: OnionCircuit, streamId: number, reason: number): void {
    this.stats.streamsRefused++;
    circuit.answerStream(RelayCommand.END, streamId, encodeEnd(reason));
  }

  private begin(circuit: OnionCircuit, streamId: number, data: Buffer): void {
    let port: number;
    try {
      port = decodeBegin(data).port;
    } catch {
      circuit.destroy(DestroyReason.PROTOCOL, 'protocol error: a BEGIN that does not parse');
      return;
    }
    // A port the service does not publish is refused as an exit's policy refuses one: the client
    // learns the port is closed, and the local server sees nothing.
    if (port !== this.virtualPort) {
      this.refuse(circuit, streamId, EndReason.EXITPOLICY);
      return;
    }
    if (circuit.openStreams >= MAX_STREAMS_PER_CIRCUIT) {
      this.refuse(circuit, streamId, EndReason.RESOURCELIMIT);
      return;
    }
    const stream = circuit.acceptStream(streamId);
    if (!stream) {
      circuit.destroy(DestroyReason.PROTOCOL, 'protocol error: BEGIN on stream 0 or a stream in use');
      return;
    }
    stream.on('error', () => {});
    this.buffers.streams.add(stream);
    stream.once('close', () => this.buffers.streams.delete(stream));
    connectTcp(this.target.host, this.target.port, EXIT_CONNECT_TIMEOUT_MS, 'the local server').then(
      (socket) => {
        if (circuit.closed || stream.destroyed) {
          socket.destroy();
          return;
        }
        this.stats.streams++;
        circuit.answerStream(RelayCommand.CONNECTED, streamId, CONNECTED_EMPTY);
        pipeStreamSocket(stream, socket, { inKernel: (bytes) => this.buffers.setKernel(stream, bytes) });
      },
      (err: Error) => {
        this.stats.streamsRefused++;
        this.log.warn({ err: err.message }, 'the onion service cannot reach its local server');
        const reason = err instanceof StreamError ? err.endReason : EndReason.MISC;
        if (!stream.destroyed) stream.destroy(new StreamError('ALLIUM_EXIT_FAILED', err.message, reason));
      },
    );
  }
}
