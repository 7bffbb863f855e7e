// Implements docs/protocol.md §3-§4 from the client's side: builds a circuit by telescoping (CREATE to
// the entry, then EXTEND through the circuit), wraps every cell in one layer per hop, peels and checks
// every cell coming back, and multiplexes streams to the exit.

import type { ReceiveBudget } from '../core/receive-budget.js';
import { type CircuitStream, StreamError, StreamMux } from '../core/stream-mux.js';
import { BACKWARD_TAG_LEN, isOrigin } from '../crypto/backward-layer.js';
import {
  type CircuitHopCrypto,
  circuitHopCrypto,
  forwardMessageCapacity,
  wrapForwardMany,
} from '../crypto/forward-onion.js';
import { SpareEphemeralKey } from '../crypto/keys.js';
import { type LinkBoundHop, linkBoundConfirmed, linkBoundHopStart } from '../crypto/link-bound-hop.js';
import {
  type NtorClientState,
  ntorClientFinish,
  ntorClientPrecompute,
  ntorClientStart,
} from '../crypto/ntor.js';
import { type AlliumCode, AlliumError } from '../errors.js';
import type { Link } from '../net/link.js';
import type { Cell } from '../wire/cell.js';
import { decodeCreated, decodeDestroy, encodeCreate, encodeDestroy } from '../wire/cell-bodies.js';
import {
  CELL_BODY_LEN,
  CellCommand,
  CIRC_WINDOW_MAX,
  DestroyReason,
  destroyReasonName,
  EndReason,
  endReasonName,
  HandshakeType,
  LEGACY_CIRC_WINDOW_MAX,
  RelayCommand,
  STREAM_WINDOW_MAX,
} from '../wire/constants.js';
import type { ConsensusRelay } from '../wire/directory-docs.js';
import {
  encodeRelayMessage,
  RELAY_MESSAGE_HEADER_LEN,
  readRelayHeader,
  relayData,
} from '../wire/relay-cell.js';
import {
  BeginFlag,
  decodeEnd,
  decodeExtended,
  decodeTruncated,
  encodeBegin,
  encodeExtend,
} from '../wire/relay-messages.js';
import { Scratch } from '../wire/scratch.js';

export class CircuitError extends AlliumError {
  constructor(
    code: AlliumCode,
    message: string,
    readonly destroyReason: number = DestroyReason.NONE,
  ) {
    super(code, message);
  }
}

interface Hop {
  relay: ConsensusRelay;
  crypto: CircuitHopCrypto;
}

interface Waiter<T> {
  resolve(v: T): void;
  reject(e: Error): void;
}

/** The next handshake's x, made while the last one's answer is on its way. */
const spareKey = new SpareEphemeralKey();

/** Forward cells wrapped together at most (wrapForwardMany): 32 cells are ~128 KiB a buffer. */
const WRAP_BATCH_CELLS = 32;

/** Where the client joins cells of one frame for one cipher call per hop (reused, never kept). */
const peelBatch = new Scratch();

export const CIRCUIT_STEP_TIMEOUT_MS = 15_000;
// Longer than the exit's own connect timeout, so a slow destination gets its END(TIMEOUT) first;
// no longer than the links take to declare a silent relay dead (15 s), after which the circuit is rebuilt.
export const STREAM_CONNECT_TIMEOUT_MS = 15_000;

let nextSerial = 1;

export class ClientCircuit {
  readonly serial = nextSerial++;
  readonly hops: Hop[] = [];
  readonly createdAt = Date.now();
  private readonly mux: StreamMux;
  private nextStreamId = 1;
  private handshake: { state: NtorClientState; relay: ConsensusRelay; waiter: Waiter<void> } | null = null;
  /** A link-bound first hop whose CREATED has not come back yet: what that CREATED must confirm (§3.6). */
  private linkBound: LinkBoundHop | null = null;
  private readonly connecting = new Map<number, Waiter<CircuitStream> & { host: string; port: number }>();
  closed = false;
  closeReason = '';
  isolation = '';
  streamsOpened = 0;
  lastUsed = Date.now();

  constructor(
    readonly link: Link,
    readonly circId: number,
    private readonly onClosed: (c: ClientCircuit) => void,
    /** Shared by the circuits of this link: the windows they name in their SENDMEs (protocol §5.1). */
    private readonly budget?: ReceiveBudget,
  ) {
    this.mux = new StreamMux(
      (command, streamId, datas) => this.sendRelayMany(this.hops.length - 1, command, streamId, datas),
      {
        maxData: () => forwardMessageCapacity(this.hops.length - 1) - RELAY_MESSAGE_HEADER_LEN,
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
  private largeWindows = false;

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
  readonly buildStepsMs: number[] = [];

  /** Hops whose relay has answered: a link-bound first hop counts once its CREATED came back. */
  get confirmedHops(): number {
    return this.hops.length - (this.linkBound ? 1 : 0);
  }

  /**
   * CREATE to the entry, then EXTEND to each further relay of `path`. With `linkBound` (and a path of
   * two or more) the entry's keys come from the link (§3.6): its CREATE needs no answer before the
   * first EXTEND, which goes out right behind it, one round trip to the entry sooner. With
   * `largeWindows` (an exit that takes them) its SENDMEs may name windows past 4 MiB (§5).
   */
  async build(
    path: ConsensusRelay[],
    opts: { linkBound?: boolean; largeWindows?: boolean } = {},
  ): Promise<void> {
    this.largeWindows = opts.largeWindows === true;
    for (let i = 0; i < path.length; i++) {
      const stepStart = performance.now();
      const relay = path[i];
      if (i === 0 && opts.linkBound && path.length > 1) {
        const { hdata, hop } = linkBoundHopStart(this.link.linkSecret);
        this.linkBound = hop;
        this.link.send(this.circId, CellCommand.CREATE, encodeCreate(HandshakeType.LINK_BOUND, hdata));
        this.hops.push({ relay, crypto: circuitHopCrypto(hop.keys, { firstHop: this.hops.length === 0 }) });
        this.buildStepsMs.push(Math.round((performance.now() - stepStart) * 100) / 100);
        continue;
      }
      const { onionskin, state } = ntorClientStart(
        Buffer.from(relay.id, 'hex'),
        Buffer.from(relay.onionKey, 'base64'),
        spareKey.take(),
      );
      const done = this.awaitHandshake(state, relay);
      if (i === 0) {
        this.link.send(
          this.circId,
          CellCommand.CREATE,
          encodeCreate(HandshakeType.NTOR_X25519_SHA256, onionskin),
        );
      } else {
        const extend = encodeExtend({
          address: relay.address,
          port: relay.port,
          relayId: Buffer.from(relay.id, 'hex'),
          htype: HandshakeType.NTOR_X25519_SHA256,
          hdata: onionskin,
        });
        this.sendRelay(this.hops.length - 1, RelayCommand.EXTEND, 0, extend, CellCommand.RELAY_EARLY);
      }
      // After the link has flushed the onionskin (also a setImmediate, queued first): work that
      // would otherwise wait on this step's path, done while the answer travels.
      setImmediate(() => {
        ntorClientPrecompute(state);
        spareKey.refill();
      });
      await done;
      this.buildStepsMs.push(Math.round((performance.now() - stepStart) * 100) / 100);
    }
    // The entry's CREATED comes before anything it forwards on the circuit: still missing, it never came.
    if (this.linkBound) {
      this.destroy(DestroyReason.PROTOCOL, `${path[0].nickname} never confirmed the first hop`);
      throw new CircuitError('ALLIUM_CIRCUIT_PROTOCOL', `${path[0].nickname} never confirmed the first hop`);
    }
  }

  private awaitHandshake(state: NtorClientState, relay: ConsensusRelay): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.destroy(
          DestroyReason.TIMEOUT,
          `no answer from ${relay.nickname} within ${CIRCUIT_STEP_TIMEOUT_MS} ms`,
        );
      }, CIRCUIT_STEP_TIMEOUT_MS);
      this.handshake = {
        state,
        relay,
        waiter: {
          resolve: () => {
            clearTimeout(timer);
            resolve();
          },
          reject: (e) => {
            clearTimeout(timer);
            reject(e);
          },
        },
      };
    });
  }

  private completeHandshake(hdata: Buffer): void {
    const hs = this.handshake;
    if (!hs) throw new CircuitError('ALLIUM_CIRCUIT_PROTOCOL', 'unexpected CREATED/EXTENDED');
    this.handshake = null;
    const keys = ntorClientFinish(hs.state, hdata);
    this.hops.push({ relay: hs.relay, crypto: circuitHopCrypto(keys, { firstHop: this.hops.length === 0 }) });
    hs.waiter.resolve();
  }

  /** Seals a relay message for hop `hop`, adds the layers of hops hop..0, and sends it. Returns the mac. */
  private sendRelay(
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
    const layers = this.hops.slice(0, hop + 1).map((h) => h.crypto.forward);
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
        this.hops.length - 1,
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
    if (!this.linkBound || cell.command === CellCommand.CREATED || cell.command === CellCommand.DESTROY)
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
    try {
      switch (cell.command) {
        case CellCommand.CREATED: {
          const { hdata } = decodeCreated(cell.body);
          const linkBound = this.linkBound;
          if (linkBound) {
            // Still unconfirmed when this throws: the entry is the relay that failed the build.
            if (!linkBoundConfirmed(linkBound, hdata)) {
              throw new CircuitError(
                'ALLIUM_HANDSHAKE_AUTH',
                'the entry did not confirm the link-bound first hop',
              );
            }
            this.linkBound = null;
            return;
          }
          if (this.hops.length !== 0)
            throw new CircuitError('ALLIUM_CIRCUIT_PROTOCOL', 'CREATED after the first hop');
          this.completeHandshake(hdata);
          return;
        }
        case CellCommand.RELAY:
          this.onRelay(cell.body);
          return;
        case CellCommand.DESTROY: {
          const { reason } = decodeDestroy(cell.body);
          this.close(reason, `the network destroyed the circuit (${destroyReasonName(reason)})`);
          return;
        }
        default:
          return;
      }
    } catch (err) {
      this.destroy(DestroyReason.PROTOCOL, `protocol error: ${(err as Error).message}`);
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
      if (relayBodies.length > 0) this.onRelayBatch(relayBodies);
      relayBodies = [];
      this.onCell(cell);
    }
    if (relayBodies.length > 0 && !this.closed) this.onRelayBatch(relayBodies);
  }

  private onRelay(cellBody: Buffer): void {
    this.onRelayBatch([cellBody]);
  }

  /**
   * Peels hop 1's layer off every body, hands on the ones hop 1 sent, peels hop 2's off the rest, and so
   * on: the same keystream positions as one cell at a time, in one cipher call per hop.
   */
  private onRelayBatch(bodies: Buffer[]): void {
    try {
      let pending = bodies;
      // When no cell stopped at the previous hop, its output is already one contiguous buffer.
      let joined: Buffer | null = null;
      for (let i = 0; i < this.hops.length && pending.length > 0; i++) {
        const cipher = this.hops[i].crypto.backward;
        let input: Buffer;
        if (joined) input = joined;
        else if (pending.length === 1) input = pending[0];
        else {
          input = peelBatch.take(pending.length * CELL_BODY_LEN);
          for (let k = 0; k < pending.length; k++) pending[k].copy(input, k * CELL_BODY_LEN);
        }
        // The tag each cell arrived at this hop with: what a circuit SENDME for it echoes (§5). Kept
        // apart, since `input` may be shared scratch space.
        const tagsIn = Buffer.allocUnsafe(pending.length * BACKWARD_TAG_LEN);
        for (let k = 0; k < pending.length; k++) {
          input.copy(tagsIn, k * BACKWARD_TAG_LEN, k * CELL_BODY_LEN, k * CELL_BODY_LEN + BACKWARD_TAG_LEN);
        }
        const peeled: Buffer = cipher.peel(input);
        const rest: Buffer[] = [];
        for (let k = 0; k < pending.length; k++) {
          if (this.closed) return;
          const body = peeled.subarray(k * CELL_BODY_LEN, (k + 1) * CELL_BODY_LEN);
          if (isOrigin(body)) {
            this.onRelayMessage(i, body, tagsIn.subarray(k * BACKWARD_TAG_LEN, (k + 1) * BACKWARD_TAG_LEN));
          } else rest.push(body);
        }
        joined = rest.length === pending.length ? peeled : null;
        pending = rest;
      }
      if (pending.length > 0 && !this.closed) {
        this.destroy(
          DestroyReason.INTEGRITY,
          'a cell from the network failed its integrity check (tampered or corrupt)',
        );
      }
    } catch (err) {
      this.destroy(DestroyReason.PROTOCOL, `protocol error: ${(err as Error).message}`);
    }
  }

  private onRelayMessage(hop: number, body: Buffer, tag: Buffer): void {
    const { command, streamId } = readRelayHeader(body);
    const data = relayData(body);
    const last = hop === this.hops.length - 1;
    switch (command) {
      case RelayCommand.EXTENDED:
        if (!last)
          throw new CircuitError('ALLIUM_CIRCUIT_PROTOCOL', 'EXTENDED from a hop that is not the last');
        this.completeHandshake(decodeExtended(data).hdata);
        return;
      case RelayCommand.TRUNCATED: {
        const { reason } = decodeTruncated(data);
        const relay = this.hops[hop].relay.nickname;
        this.destroy(
          DestroyReason.DESTROYED,
          `${relay} could not extend the circuit (${destroyReasonName(reason)})`,
          reason,
        );
        return;
      }
      case RelayCommand.CONNECTED:
      case RelayCommand.END:
      case RelayCommand.DATA:
      case RelayCommand.SENDME:
        // Streams are attached to the exit, and only the exit's layer may speak for them: an entry or
        // middle sealing one of these with its own keys could cut a download short (an END read as a
        // clean end of file) or fake a refusal, so it is a protocol violation that takes the circuit.
        if (!last) {
          throw new CircuitError(
            'ALLIUM_CIRCUIT_PROTOCOL',
            `stream message ${command} from hop ${hop + 1}, not the exit: ${this.hops[hop].relay.nickname}`,
          );
        }
        this.onStreamMessage(command, streamId, data, tag);
        return;
      default:
        return;
    }
  }

  /** A stream message from the exit (protocol §4.2, §5). */
  private onStreamMessage(command: number, streamId: number, data: Buffer, tag: Buffer): void {
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
    if (this.handshake) {
      this.handshake.waiter.reject(err);
      this.handshake = null;
    }
    for (const w of this.connecting.values()) w.reject(err);
    this.connecting.clear();
    this.mux.closeAll(new StreamError('ALLIUM_CIRCUIT_DESTROYED', why, EndReason.DESTROY));
    this.budget?.forget(this);
    this.onClosed(this);
  }
}

/** The exit's END reason for a stream it did not open, in words a user can act on. */
export function refusalMessage(reason: number, host: string, port: number): string {
  const target = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  const couldNot = (why: string) => `the exit could not connect to ${target} (${why})`;
  switch (reason) {
    case EndReason.CONNECTREFUSED:
      return couldNot('connection refused: nothing listens on that port');
    case EndReason.RESOLVEFAILED:
      return `the exit could not resolve ${host} (no such host, or its DNS failed)`;
    case EndReason.TIMEOUT:
      return couldNot('timed out');
    case EndReason.NOROUTE:
      return couldNot('no route to the host');
    case EndReason.CONNRESET:
      return couldNot('connection reset');
    case EndReason.EXITPOLICY:
      return `the exit's policy does not allow ${target}`;
    case EndReason.RESOURCELIMIT:
      return `the exit refused a stream to ${target}: it is at its limit of streams`;
    default:
      return `the exit refused the stream to ${target}: ${endReasonName(reason)}`;
  }
}
