// Implements docs/protocol.md §4.2 and §5 at an exit: the streams of each circuit (a StreamMux per
// circuit, made at its first BEGIN), and what the exit lets be in flight toward each link (§5.1).
// BEGIN itself is exit-streams.ts.

import type { ExitPolicy } from '../core/exit-policy.js';
import { DEFAULT_RECEIVE_BUDGET_CELLS, ReceiveBudgets } from '../core/receive-budget.js';
import type { RelayCells } from '../core/relay-cells.js';
import type { CellLink, CircuitEntry, RelayCircuit } from '../core/relay-circuit.js';
import { StreamError, StreamMux } from '../core/stream-mux.js';
import type { Logger } from '../log.js';
import { ExitResolver } from '../net/exit-resolver.js';
import {
  CIRC_WINDOW_MAX,
  DestroyReason,
  EndReason,
  LEGACY_CIRC_WINDOW_MAX,
  STREAM_WINDOW_MAX,
} from '../wire/constants.js';
import { beginExitStream, ExitBuffers, type ExitContext } from './exit-streams.js';
import type { RelayLimits } from './limits.js';

export interface ExitSideOptions {
  policy: ExitPolicy;
  limits: RelayLimits;
  dnsServers?: string[];
  logSensitive: boolean;
  log: Logger;
  stats: { streams: number; limitRejections: number };
  /** The relay's cell handling: where the exit's cells go, and how it ends a circuit. */
  cells: RelayCells;
}

/** The exit's part of a relay. */
export class ExitSide {
  readonly context: ExitContext;
  /** Per link toward a middle: what this exit lets be in flight toward it (protocol §5.1). */
  readonly receiveBudgets = new ReceiveBudgets<CellLink>(DEFAULT_RECEIVE_BUDGET_CELLS);
  private readonly cells: RelayCells;
  private readonly limits: RelayLimits;

  constructor(opts: ExitSideOptions) {
    this.cells = opts.cells;
    this.limits = opts.limits;
    this.context = {
      policy: opts.policy,
      resolver: new ExitResolver({
        servers: opts.dnsServers,
        timeoutMs: opts.limits.dnsTimeoutMs,
        maxLookups: opts.limits.dnsLookups,
        maxLookupsPerCircuit: opts.limits.dnsLookupsPerCircuit,
      }),
      buffers: new ExitBuffers(opts.limits.exitBufferBytes),
      maxStreamsPerCircuit: opts.limits.streamsPerCircuit,
      logSensitive: opts.logSensitive,
      log: opts.log,
      stats: opts.stats,
      sendBackward: (circ, command, streamId, data) =>
        this.cells.table.sendBackward(circ, command, streamId, data),
      protocolError: (circ) => this.cells.table.teardown(circ, DestroyReason.PROTOCOL, null),
      noteRoundTrip: (circ, ms) => this.receiveBudgets.of(circ.prev.link).noteBaseRtt(ms),
    };
  }

  /** A BEGIN on `circ`. */
  begin(circ: RelayCircuit, streamId: number, data: Buffer): void {
    beginExitStream(this.context, circ, this.muxOf(circ), streamId, data);
  }

  /** DATA, END or SENDME for one of `circ`'s streams. */
  streamMessage(circ: RelayCircuit, command: number, streamId: number, data: Buffer, tag: Buffer): void {
    this.muxOf(circ).handle(command, streamId, data, tag);
  }

  /** `circ` is being torn down: its streams end, and its share of the link's budget goes. */
  closing(circ: RelayCircuit): void {
    circ.mux?.closeAll(new StreamError('ALLIUM_CIRCUIT_DESTROYED', 'circuit destroyed', EndReason.DESTROY));
    if (circ.mux) this.receiveBudgets.of(circ.prev.link).forget(circ);
  }

  /** The queue toward a link fell back: the streams of its circuits (`circuits`) send again. */
  resumeHeld(circuits: Map<number, CircuitEntry>): void {
    for (const { circ, side } of circuits.values()) {
      if (side === 'prev' && circ.mux && !circ.closed) circ.mux.resume();
    }
  }

  /** What the exit holds for destinations now and at most so far, and its DNS lookups in progress. */
  load(): { bufferedBytes: number; bufferedPeakBytes: number; streamsShed: number; dnsLookups: number } {
    const { buffers, resolver } = this.context;
    return {
      bufferedBytes: buffers.total,
      bufferedPeakBytes: buffers.peak,
      streamsShed: buffers.closedStreams,
      dnsLookups: resolver.pending,
    };
  }

  /** The largest receive budget among `links`, in cells (§5.1): the least budget, more on long round trips. */
  largestReceiveBudget(links: Iterable<CellLink>): number {
    let most = this.receiveBudgets.totalCells;
    for (const link of links) most = Math.max(most, this.receiveBudgets.peek(link)?.currentCells ?? 0);
    return most;
  }

  private muxOf(circ: RelayCircuit): StreamMux {
    if (!circ.mux) {
      const budget = this.receiveBudgets.of(circ.prev.link);
      circ.mux = new StreamMux(
        (command, streamId, datas) => this.cells.table.sendBackwardMany(circ, command, streamId, datas),
        {
          // Past 1024 cells only for a client that said it takes them (its BEGIN's flags, §4.2).
          grant: (rtt) =>
            budget.grant(circ, rtt, circ.largeWindows ? CIRC_WINDOW_MAX : LEGACY_CIRC_WINDOW_MAX),
          streamGrowth: () =>
            circ.largeWindows ? { largest: STREAM_WINDOW_MAX, baseRttMs: () => budget.baseRttMs } : null,
          maxHeldBytes: this.limits.exitCircuitBufferBytes,
          onHeld: (delta) => this.context.buffers.note(delta),
          // Under pressure the link toward the client takes no more from a circuit that has cells
          // waiting on it: its streams stop reading their destinations (resumeHeld lets them go).
          held: () => circ.prev.link.pressured && circ.prev.link.queuedCellsOf(circ.prev.circId) > 0,
        },
      );
    }
    return circ.mux;
  }
}
