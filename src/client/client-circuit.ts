// Implements docs/protocol.md §3-§4 from the client's side: one circuit's driver. Its build is the
// step machine core/circuit-build.ts and its receive path core/circuit-receive.ts; here are the link,
// the timers and the promises around them, the forward cells (one layer per hop, wrapped for the hop
// they are for) and the streams to the exit. A circuit of an onion service's (onion-circuit.ts) is
// one of these whose streams, once joined, run to a hop past its last relay.

import {
  type BuildStep,
  CIRCUIT_STEP_TIMEOUT_MS,
  CircuitBuild,
  type CircuitHop,
} from '../core/circuit-build.js';
import { type CircuitReceiver, receiveRelayCells } from '../core/circuit-receive.js';
import type { ReceiveBudget } from '../core/receive-budget.js';
import { type CircuitStream, StreamError, StreamMux } from '../core/stream-mux.js';
import { type ForwardLayer, forwardMessageCapacity, wrapForwardMany } from '../crypto/forward-onion.js';
import type { Link } from '../net/link.js';
import type { Cell } from '../wire/cell.js';
import { decodeDestroy, encodeDestroy } from '../wire/cell-bodies.js';
import {
  CellCommand,
  CIRC_WINDOW_MAX,
  DestroyReason,
  destroyReasonName,
  EndReason,
  LEGACY_CIRC_WINDOW_MAX,
  RelayCommand,
  STREAM_WINDOW_MAX,
} from '../wire/constants.js';
import type { ConsensusRelay } from '../wire/directory-docs.js';
import { encodeRelayMessage, RELAY_MESSAGE_HEADER_LEN } from '../wire/relay-cell.js';
import { BeginFlag, decodeEnd, encodeBegin } from '../wire/relay-messages.js';
import { CircuitError } from './client-error.js';
import { refusalMessage } from './refusal-message.js';

export { CIRCUIT_STEP_TIMEOUT_MS } from '../core/circuit-build.js';
export { CircuitError } from './client-error.js';
export { refusalMessage } from './refusal-message.js';

interface Waiter<T> {
  resolve(v: T): void;
  reject(e: Error): void;
}

/** Forward cells wrapped together at most (wrapForwardMany): 32 cells are ~128 KiB a buffer. */
const WRAP_BATCH_CELLS = 32;
const NO_HOPS: readonly CircuitHop[] = [];

// Longer than the exit's own connect timeout, so a slow destination gets its END(TIMEOUT) first;
// no longer than the links take to declare a silent relay dead (15 s), after which the circuit is rebuilt.
export const STREAM_CONNECT_TIMEOUT_MS = 15_000;

/**
 * What a circuit's streams may hold of the peer's DATA before its circuit SENDMEs wait: only a
 * service's streams hold any (what their local server has not taken yet), as an exit's do (§5).
 */
const MAX_HELD_BYTES = 4 * 1024 * 1024;

let nextSerial = 1;

export class ClientCircuit implements CircuitReceiver {
  readonly serial = nextSerial++;
  readonly createdAt = Date.now();
  protected readonly mux: StreamMux;
  private nextStreamId = 1;
  /** The build (core/circuit-build.ts), its promise and the timer of its current step. */
  private builder: CircuitBuild | null = null;
  private buildWaiter: Waiter<void> | null = null;
  private stepTimer: NodeJS.Timeout | null = null;
  private readonly connecting = new Map<number, Waiter<CircuitStream> & { host: string; port: number }>();
  closed = false;
  closeReason = '';
  isolation = '';
  /** Streams of the pool may use it (an onion service circuit's last hop has a role, not an exit). */
  readonly general: boolean = true;
  /** The pool does not retire it when idle: its owner does (onion-circuit.ts). */
  keepOpen = false;
  streamsOpened = 0;
  lastUsed = Date.now();
  /** Told every change of what the streams hold (a service adds up all its circuits). */
  onHeld: ((delta: number) => void) | null = null;

  constructor(
    readonly link: Link,
    readonly circId: number,
    private readonly onClosed: (c: ClientCircuit) => void,
    /** Shared by the circuits of this link: the windows they name in their SENDMEs (protocol §5.1). */
    private readonly budget?: ReceiveBudget,
  ) {
    this.mux = new StreamMux(
      (command, streamId, datas) => this.sendRelayMany(this.streamHop(), command, streamId, datas),
      {
        maxData: () => forwardMessageCapacity(this.streamHop()) - RELAY_MESSAGE_HEADER_LEN,
        maxHeldBytes: MAX_HELD_BYTES,
        onHeld: (delta) => this.onHeld?.(delta),
        grant: budget
          ? (rtt) =>
              budget.grantShare(this, rtt, this.largeWindows ? CIRC_WINDOW_MAX : LEGACY_CIRC_WINDOW_MAX)
          : undefined,
        streamGrowth: () =>
          budget && this.largeWindows
            ? { largest: STREAM_WINDOW_MAX, baseRttMs: () => budget.baseRttMs }
            : null,
      },
    );
  }

  /** Whether the exit takes large windows (protocol §5): set by `build`. */
  protected largeWindows = false;

  /** The hop the streams run to: the exit (a joined onion circuit's is past its last relay). */
  protected streamHop(): number {
    return this.hops.length - 1;
  }

  /** The forward layers of hops 0..hop, whose tags a cell for `hop` carries. */
  protected forwardLayers(hop: number): ForwardLayer[] {
    return this.hops.slice(0, hop + 1).map((h) => h.crypto.forward);
  }

  /** The hops so far, entry first. */
  get hops(): readonly CircuitHop[] {
    return this.builder?.hops ?? NO_HOPS;
  }

  get exit(): ConsensusRelay {
    return this.hops[this.hops.length - 1].relay;
  }

  /** The largest circuit window this circuit has named and stream window it has granted, in cells (§5). */
  get largestWindows(): { circuit: number; stream: number } {
    return { circuit: this.mux.window.largestNamed, stream: this.mux.largestStreamWindow };
  }

  get openStreams(): number {
    return this.mux.streams.size;
  }

  /** A stream is open on it, or a BEGIN waits for its answer. */
  get inUse(): boolean {
    return this.mux.streams.size > 0 || this.connecting.size > 0;
  }

  streams(): CircuitStream[] {
    return [...this.mux.streams.values()];
  }

  /** Milliseconds each hop of the build took (CREATE/CREATED, then each EXTEND/EXTENDED), for the logs. */
  get buildStepsMs(): readonly number[] {
    return this.builder?.stepsMs ?? [];
  }

  /** Hops whose relay has answered: a link-bound first hop counts once its CREATED came back. */
  get confirmedHops(): number {
    return this.builder?.confirmedHops ?? 0;
  }

  /**
   * CREATE to the entry, then EXTEND to each further relay of `path`. With `linkBound` (and a path of
   * two or more) the entry's keys come from the link (§3.6): its CREATE needs no answer before the
   * first EXTEND, which goes out right behind it, one round trip to the entry sooner. With
   * `largeWindows` (an exit that takes them) its SENDMEs may name windows past 4 MiB (§5).
   */
  build(path: ConsensusRelay[], opts: { linkBound?: boolean; largeWindows?: boolean } = {}): Promise<void> {
    if (this.builder) {
      return Promise.reject(new CircuitError('ALLIUM_CIRCUIT_PROTOCOL', 'a circuit is built once'));
    }
    this.largeWindows = opts.largeWindows === true;
    this.builder = new CircuitBuild(path, { linkSecret: opts.linkBound ? this.link.linkSecret : null });
    const built = new Promise<void>((resolve, reject) => {
      this.buildWaiter = { resolve, reject };
    });
    this.onBuildStep(this.builder.start());
    return built;
  }

  /** Does what a step of the build asks: send its cells and time the answer, or settle the build. */
  private onBuildStep(step: BuildStep): void {
    switch (step.kind) {
      case 'waiting':
        return;
      case 'send': {
        for (const cell of step.cells) if (!this.closed) this.link.send(this.circId, cell.command, cell.body);
        this.lastUsed = Date.now();
        if (this.stepTimer) clearTimeout(this.stepTimer);
        const builder = this.builder!;
        this.stepTimer = setTimeout(() => this.onBuildStep(builder.timedOut()), CIRCUIT_STEP_TIMEOUT_MS);
        // After the link has flushed the onionskin (also a setImmediate, queued first): work that
        // would otherwise wait on this step's path, done while the answer travels.
        setImmediate(() => builder.precompute());
        return;
      }
      case 'built':
        this.settleBuild(null);
        return;
      case 'failed':
        if (step.code) this.settleBuild(new CircuitError(step.code, step.why));
        this.destroy(step.reason, step.why);
        return;
    }
  }

  /** Ends the build's wait: resolved, or failed with `err`. */
  private settleBuild(err: Error | null): void {
    if (this.stepTimer) clearTimeout(this.stepTimer);
    this.stepTimer = null;
    const waiter = this.buildWaiter;
    this.buildWaiter = null;
    if (!waiter) return;
    if (err) waiter.reject(err);
    else waiter.resolve();
  }

  /** An EXTENDED from the last hop (the receive path, core/circuit-receive.ts). */
  extended(hdata: Buffer): void {
    if (this.builder) this.onBuildStep(this.builder.extended(hdata));
    else this.destroy(DestroyReason.PROTOCOL, 'protocol error: unexpected CREATED/EXTENDED');
  }

  /** Seals a relay message for hop `hop`, adds the layers of hops hop..0, and sends it. Returns the mac. */
  protected sendRelay(
    hop: number,
    command: number,
    streamId: number,
    data: Buffer,
    cellCommand: number = CellCommand.RELAY,
  ): Buffer {
    return this.sendRelayMany(hop, command, streamId, [data], cellCommand)[0];
  }

  /** One cell per entry of `datas` for hop `hop`, each tagged for every hop on the way (protocol §3.4). */
  private sendRelayMany(
    hop: number,
    command: number,
    streamId: number,
    datas: Buffer[],
    cellCommand: number = CellCommand.RELAY,
  ): Buffer[] {
    const layers = this.forwardLayers(hop);
    const tags: Buffer[] = [];
    // A window's worth of DATA can be hundreds of cells: wrapped a bounded batch at a time, the
    // buffers of one batch stay small (the cipher calls are as few as it takes to amortise them).
    for (let first = 0; first < datas.length; first += WRAP_BATCH_CELLS) {
      const batch = datas.slice(first, first + WRAP_BATCH_CELLS);
      const wrapped = wrapForwardMany(
        layers,
        batch.map((data) => encodeRelayMessage(command, streamId, data)),
        cellCommand,
      );
      tags.push(...wrapped.tags);
      if (!this.closed) for (const body of wrapped.bodies) this.link.send(this.circId, cellCommand, body);
    }
    this.lastUsed = Date.now();
    return tags;
  }

  /**
   * Opens a stream to host:port at the exit; resolves once the exit says CONNECTED. With
   * `optimistic` (protocol §4.2) it resolves at once with a stream whose writes follow the BEGIN
   * without waiting a round trip; its `connected` promise settles with the exit's answer, and a
   * refusal fails the stream with that StreamError.
   */
  openStream(host: string, port: number, opts: { optimistic?: boolean } = {}): Promise<CircuitStream> {
    if (this.closed)
      return Promise.reject(new CircuitError('ALLIUM_CIRCUIT_CLOSED', `circuit closed: ${this.closeReason}`));
    const streamId = this.nextStreamId;
    this.nextStreamId = this.nextStreamId >= 0xffff ? 1 : this.nextStreamId + 1;
    this.streamsOpened++;
    const early = opts.optimistic ? this.mux.open(streamId, { pending: true }) : null;
    const answered = new Promise<CircuitStream>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.connecting.delete(streamId);
        reject(
          new StreamError(
            'ALLIUM_STREAM_TIMEOUT',
            `the exit did not connect to ${host}:${port} in time`,
            EndReason.TIMEOUT,
          ),
        );
      }, STREAM_CONNECT_TIMEOUT_MS);
      this.connecting.set(streamId, {
        host,
        port,
        resolve: (s) => {
          clearTimeout(timer);
          resolve(s);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.sendRelay(
        this.streamHop(),
        RelayCommand.BEGIN,
        streamId,
        encodeBegin(host, port, this.largeWindows ? BeginFlag.LARGE_WINDOWS : 0),
      );
    });
    if (!early) return answered;
    answered.then(
      () => early.markConnected(),
      (err: Error) => {
        // A refusal is the exit's END: nothing to answer. Silence or a lost circuit: say END, if we can.
        if (err instanceof StreamError && err.code === 'ALLIUM_STREAM_REFUSED') early.markRefused(err);
        else early.destroy(err);
      },
    );
    return Promise.resolve(early);
  }

  /**
   * Until the entry confirms a link-bound first hop, its CREATED (or a DESTROY) is the only cell it may
   * send on the circuit (§3.6): anything else destroys the circuit unread.
   */
  private unconfirmedEntrySent(cell: Cell): boolean {
    if (
      !this.builder?.awaitingEntryConfirmation ||
      cell.command === CellCommand.CREATED ||
      cell.command === CellCommand.DESTROY
    )
      return false;
    this.destroy(
      DestroyReason.PROTOCOL,
      'the entry sent a cell on the circuit before confirming the first hop',
    );
    return true;
  }

  /** A cell for this circuit arrived on the link. */
  onCell(cell: Cell): void {
    if (this.closed || this.unconfirmedEntrySent(cell)) return;
    switch (cell.command) {
      case CellCommand.CREATED:
        if (this.builder) this.onBuildStep(this.builder.created(cell.body));
        else this.destroy(DestroyReason.PROTOCOL, 'protocol error: unexpected CREATED/EXTENDED');
        return;
      case CellCommand.RELAY:
        receiveRelayCells(this, [cell.body]);
        return;
      case CellCommand.DESTROY: {
        let reason: number;
        try {
          reason = decodeDestroy(cell.body).reason;
        } catch (err) {
          this.destroy(DestroyReason.PROTOCOL, `protocol error: ${(err as Error).message}`);
          return;
        }
        this.close(reason, `the network destroyed the circuit (${destroyReasonName(reason)})`);
        return;
      }
      default:
        return;
    }
  }

  /** Cells for this circuit that arrived together: relay cells are peeled hop by hop in one cipher call per hop. */
  onCells(cells: Cell[]): void {
    let relayBodies: Buffer[] = [];
    for (const cell of cells) {
      if (this.closed || this.unconfirmedEntrySent(cell)) return;
      if (cell.command === CellCommand.RELAY) {
        relayBodies.push(cell.body);
        continue;
      }
      if (relayBodies.length > 0) receiveRelayCells(this, relayBodies);
      relayBodies = [];
      this.onCell(cell);
    }
    if (relayBodies.length > 0 && !this.closed) receiveRelayCells(this, relayBodies);
  }

  /** A stream message from the exit (protocol §4.2, §5). */
  streamMessage(command: number, streamId: number, data: Buffer, tag: Buffer): void {
    if (command === RelayCommand.CONNECTED) {
      const w = this.connecting.get(streamId);
      if (!w) return;
      this.connecting.delete(streamId);
      // An optimistic stream exists already; otherwise the stream begins now.
      w.resolve(this.mux.streams.get(streamId) ?? this.mux.open(streamId));
      return;
    }
    if (command === RelayCommand.END) {
      const w = this.connecting.get(streamId);
      if (w) {
        this.connecting.delete(streamId);
        const { reason } = decodeEnd(data);
        w.reject(new StreamError('ALLIUM_STREAM_REFUSED', refusalMessage(reason, w.host, w.port), reason));
        return;
      }
    }
    this.mux.handle(command, streamId, data, tag);
  }

  /** Tears the circuit down and tells the entry. */
  destroy(reason: number, why: string, remoteReason?: number): void {
    if (this.closed) return;
    this.link.send(this.circId, CellCommand.DESTROY, encodeDestroy(reason));
    this.close(remoteReason ?? reason, why);
  }

  /** Forgets the circuit: everything waiting on it fails with `why`. */
  close(reason: number, why: string): void {
    if (this.closed) return;
    this.closed = true;
    this.closeReason = why;
    const err = new CircuitError('ALLIUM_CIRCUIT_DESTROYED', why, reason);
    this.settleBuild(err);
    for (const w of this.connecting.values()) w.reject(err);
    this.connecting.clear();
    this.mux.closeAll(new StreamError('ALLIUM_CIRCUIT_DESTROYED', why, EndReason.DESTROY));
    this.budget?.forget(this);
    this.onClosed(this);
  }
}
