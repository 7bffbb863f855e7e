// Implements docs/protocol.md §5 and docs/threat-model.md ("Flooding and resource exhaustion") where
// streams end at a TCP connection: what all of them together hold for sockets that do not take their
// data (an exit's destinations, an onion service's local server) is bounded. No I/O: it is told what
// the streams hold and what the kernel holds for them, and closes streams.
import type { CircuitStream, StreamError } from './stream-mux.js';

/** A sixteenth of the machine's memory, at least 32 MiB and at most 256 MiB. */
export function defaultStreamBufferBytes(totalMemoryBytes: number): number {
  const MiB = 1024 * 1024;
  return Math.min(256 * MiB, Math.max(32 * MiB, Math.floor(totalMemoryBytes / 16 / MiB) * MiB));
}

/**
 * The bytes a set of streams hold for their sockets: received and not yet taken by the socket, plus,
 * for a connection whose peer stopped taking data, what the kernel holds in its send buffer
 * (estimated: what the socket took, at most the kernel's limit). Past `limit` in all, the stream
 * holding the most is closed with `shedError` (END with its reason goes to the client), then the next.
 */
export class StreamBuffers {
  total = 0;
  /** The most `total` has been (for the tests' figures and metrics). */
  peak = 0;
  /** Streams closed to bring the total under the limit. */
  closedStreams = 0;
  readonly streams = new Set<CircuitStream>();
  private readonly inKernel = new Map<CircuitStream, number>();

  constructor(
    readonly limit: number,
    private readonly shedError: (limit: number) => StreamError,
  ) {}

  /** A stream's held bytes changed by `delta` (StreamMux's onHeld). */
  note(delta: number): void {
    this.total += delta;
    if (this.total > this.peak) this.peak = this.total;
    if (delta > 0 && this.total > this.limit) this.shed();
  }

  /** What `stream`'s connection holds in the kernel now, by estimate (0: nothing waiting). */
  setKernel(stream: CircuitStream, bytes: number): void {
    const before = this.inKernel.get(stream) ?? 0;
    if (bytes > 0) this.inKernel.set(stream, bytes);
    else this.inKernel.delete(stream);
    this.note(bytes - before);
  }

  private footprint(s: CircuitStream): number {
    return s.heldBytes + (this.inKernel.get(s) ?? 0);
  }

  private shed(): void {
    while (this.total > this.limit) {
      let worst: CircuitStream | null = null;
      for (const s of this.streams) {
        if (!s.destroyed && (!worst || this.footprint(s) > this.footprint(worst))) worst = s;
      }
      if (!worst || this.footprint(worst) === 0) return;
      this.closedStreams++;
      this.streams.delete(worst);
      // Destroying it releases what it held (note(-held)) and resets its connection.
      worst.destroy(this.shedError(this.limit));
      this.setKernel(worst, 0);
    }
  }
}
