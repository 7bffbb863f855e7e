// Implements docs/protocol.md §4.2 (streams) and §5 (flow control) for one circuit endpoint: the
// client's end at its exit hop, or the exit's end. Streams are node Duplexes; the circuit below
// is reached only through the `CircuitSender` it is given, so this file does no I/O.
// Longer than 400 lines for a reason: a stream's Duplex, its two windows and the circuit window meet
// in every read and write, so split apart they would share their state through setters; the window
// arithmetic itself is in flow-control.ts.
import { Duplex } from 'node:stream';
import { type AlliumCode, AlliumError } from '../errors.js';
import { EndReason, RELAY_DATA_MAX, RelayCommand, SENDME_CELL_MIN_PADDING } from '../wire/constants.js';
import { decodeCircuitSendme, decodeEnd, encodeCircuitSendme, encodeEnd } from '../wire/relay-messages.js';
import { CircuitWindow, StreamWindow, type StreamWindowGrowth, type WindowGrant } from './flow-control.js';

export class StreamError extends AlliumError {
  constructor(
    code: AlliumCode,
    message: string,
    readonly endReason: number,
  ) {
    super(code, message);
  }
}

/** How the mux sends relay messages on its circuit: one cell per entry of `datas`; returns the macs sealed on them. */
export type CircuitSender = (command: number, streamId: number, datas: Buffer[]) => Buffer[];

/** A byte stream carried over a circuit. Writing sends DATA cells; reading yields the peer's DATA. */
export class CircuitStream extends Duplex {
  readonly window: StreamWindow;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private pendingCallback: ((err?: Error | null) => void) | null = null;
  private unconsumed = 0;
  private inbox: Buffer[] = [];
  private inboxScheduled = false;
  private sentEnd = false;
  /**
   * Set for the exit's streams (protocol §5): DATA counts as consumed, and earns stream SENDMEs,
   * only when the destination's socket has taken it (`written`), not when it is queued for it.
   */
  private readonly consumeOnWrite: boolean;
  /** consumeOnWrite: bytes delivered and not yet taken by the socket, per pushed chunk, with their cells. */
  private readonly unwritten: { bytes: number; cells: number }[] = [];
  /** Bytes of the peer's DATA this endpoint holds (consumeOnWrite: until written; else 0). */
  heldBytes = 0;
  /** The peer ended the stream (END DONE); called once. */
  onRemoteEnd: (() => void) | null = null;
  bytesIn = 0;
  bytesOut = 0;
  /** Called once, when the peer's first DATA arrives (the exit times a round trip with it). */
  onFirstData: (() => void) | null = null;
  /**
   * Settles when the exit has connected (CONNECTED) or refused (rejects with the StreamError). A
   * stream opened the usual way exists only once connected; an optimistic one (protocol §4.2) is
   * handed out at once, so what is written goes right behind the BEGIN.
   */
  readonly connected: Promise<void>;
  private settleConnected: ((err?: StreamError) => void) | null = null;

  constructor(
    readonly streamId: number,
    private readonly mux: StreamMux,
    opts: { pending?: boolean; consumeOnWrite?: boolean } = {},
  ) {
    super({ allowHalfOpen: true, readableHighWaterMark: 256 * 1024, writableHighWaterMark: 64 * 1024 });
    this.consumeOnWrite = opts.consumeOnWrite ?? false;
    this.window = new StreamWindow(mux.streamGrowth?.() ?? null);
    if (!opts.pending) this.connected = Promise.resolve();
    else {
      this.connected = new Promise<void>((resolve, reject) => {
        this.settleConnected = (err) => (err ? reject(err) : resolve());
      });
      this.connected.catch(() => {}); // a caller that never asks must not see an unhandled rejection
    }
  }

  /** The exit connected this (optimistic) stream. */
  markConnected(): void {
    this.settleConnected?.();
    this.settleConnected = null;
  }

  /** The exit refused this (optimistic) stream with its END: fail it without answering END. */
  markRefused(err: StreamError): void {
    this.settleConnected?.(err);
    this.settleConnected = null;
    this.sentEnd = true;
    this.destroy(err);
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    this.pendingCallback = cb;
    this.pump();
  }

  override _writev(chunks: { chunk: Buffer }[], cb: (err?: Error | null) => void): void {
    for (const c of chunks) {
      this.pending.push(c.chunk);
      this.pendingBytes += c.chunk.length;
    }
    this.pendingCallback = cb;
    this.pump();
  }

  /** Sends as much pending data as the stream and circuit windows allow, as one batch of cells. */
  pump(): void {
    const pieces: Buffer[] = [];
    let streamWindow = this.window.packageWindow;
    let circuitWindow = this.mux.held() ? 0 : this.mux.window.packageWindow;
    const maxData = this.mux.maxData();
    while (this.pendingBytes > 0 && streamWindow > 0 && circuitWindow > 0) {
      // A cell a circuit SENDME will acknowledge keeps room for random padding, so its receiver
      // cannot compute the tag of that cell (and so the SENDME) without having received it.
      const room = this.mux.window.isAcknowledged(pieces.length)
        ? maxData - SENDME_CELL_MIN_PADDING
        : maxData;
      const size = Math.min(room, this.pendingBytes);
      let piece: Buffer;
      if (this.pending[0].length === size) piece = this.pending.shift()!;
      else if (this.pending[0].length > size) {
        piece = this.pending[0].subarray(0, size);
        this.pending[0] = this.pending[0].subarray(size);
      } else {
        piece = Buffer.allocUnsafe(size);
        let off = 0;
        while (off < size) {
          const head = this.pending[0];
          const take = Math.min(head.length, size - off);
          head.copy(piece, off, 0, take);
          off += take;
          if (take === head.length) this.pending.shift();
          else this.pending[0] = head.subarray(take);
        }
      }
      this.pendingBytes -= size;
      this.bytesOut += size;
      streamWindow--;
      circuitWindow--;
      pieces.push(piece);
    }
    if (pieces.length > 0) {
      for (let i = 0; i < pieces.length; i++) this.window.onDataSent();
      this.mux.sendData(this.streamId, pieces);
    }
    if (this.pendingBytes === 0 && this.pendingCallback) {
      const cb = this.pendingCallback;
      this.pendingCallback = null;
      cb();
    }
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.sendEnd(EndReason.DONE);
    cb();
  }

  override _read(): void {
    if (this.unconsumed > 0) {
      const n = this.unconsumed;
      this.unconsumed = 0;
      this.mux.consumed(this, n);
    }
  }

  override _destroy(err: Error | null, cb: (err: Error | null) => void): void {
    if (this.settleConnected) {
      this.settleConnected(
        err instanceof StreamError
          ? err
          : new StreamError(
              'ALLIUM_STREAM_CLOSED',
              'the stream closed before the exit connected',
              EndReason.MISC,
            ),
      );
      this.settleConnected = null;
    }
    if (!this.sentEnd) {
      this.sendEnd(err instanceof StreamError ? err.endReason : err ? EndReason.MISC : EndReason.DONE);
    }
    this.mux.forget(this.streamId);
    this.release(this.heldBytes);
    this.unwritten.length = 0;
    cb(err);
  }

  /**
   * consumeOnWrite: the destination's socket took `bytes` of what this stream delivered: they are
   * consumed now (stream SENDMEs as they fall due) and no longer held.
   */
  written(bytes: number): void {
    if (!this.consumeOnWrite || this.destroyed) return;
    let cells = 0;
    let left = bytes;
    while (left > 0 && this.unwritten.length > 0) {
      const head = this.unwritten[0];
      const take = Math.min(left, head.bytes);
      head.bytes -= take;
      left -= take;
      if (head.bytes === 0) {
        cells += head.cells;
        this.unwritten.shift();
      }
    }
    this.release(bytes - left);
    if (cells > 0) this.mux.consumed(this, cells);
  }

  private release(bytes: number): void {
    if (bytes <= 0) return;
    this.heldBytes -= bytes;
    this.mux.noteHeld(-bytes);
  }

  /** Peer DATA arrived. Cells that arrive together are pushed as one chunk (one write to the app's socket). */
  deliver(data: Buffer): void {
    this.window.onDataReceived();
    if (this.bytesIn === 0 && this.onFirstData) {
      this.onFirstData();
      this.onFirstData = null;
    }
    this.bytesIn += data.length;
    if (this.consumeOnWrite) {
      this.heldBytes += data.length;
      this.mux.noteHeld(data.length);
    }
    this.inbox.push(data);
    if (!this.inboxScheduled) {
      this.inboxScheduled = true;
      queueMicrotask(() => this.flushInbox());
    }
  }

  private flushInbox(): void {
    this.inboxScheduled = false;
    const inbox = this.inbox;
    if (inbox.length === 0 || this.destroyed) return;
    this.inbox = [];
    // Always a copy: a cell's data is a view into a batch of many cells (of other streams too), and
    // a view queued in a slow socket would keep the whole batch alive.
    const chunk = Buffer.concat(inbox);
    if (this.consumeOnWrite) {
      this.unwritten.push({ bytes: chunk.length, cells: inbox.length });
      this.push(chunk);
    } else if (this.push(chunk)) this.mux.consumed(this, inbox.length);
    else this.unconsumed += inbox.length;
  }

  /** Peer END arrived. */
  remoteEnd(reason: number): void {
    this.flushInbox();
    if (reason === EndReason.DONE) {
      // A half-close: the reader still gets everything before it; the stream closes itself
      // (autoDestroy) once it has been read to the end and our side has ended too.
      this.push(null);
      const onEnd = this.onRemoteEnd;
      this.onRemoteEnd = null;
      onEnd?.();
    } else {
      this.sentEnd = true; // the peer is gone; nothing to tell it
      this.destroy(
        new StreamError(
          'ALLIUM_STREAM_END',
          `the stream was closed by the other end (reason ${reason})`,
          reason,
        ),
      );
    }
  }

  private sendEnd(reason: number): void {
    if (this.sentEnd) return;
    this.sentEnd = true;
    this.mux.sendOne(RelayCommand.END, this.streamId, encodeEnd(reason));
  }
}

const notHeld = () => false;

/** The streams of one circuit endpoint and the circuit-level window they share. */
export class StreamMux {
  readonly window: CircuitWindow;
  readonly streams = new Map<number, CircuitStream>();

  /** The most DATA bytes one cell carries this way (forward cells lose a tag per hop in front). */
  readonly maxData: () => number;
  /** Whether the streams must wait although the windows are open (see the constructor). */
  readonly held: () => boolean;
  /** How the streams opened now may grow their windows as receivers (none: they keep the first). */
  readonly streamGrowth: (() => StreamWindowGrowth | null) | undefined;

  /** Bytes of the peer's DATA the streams hold (the exit's: not yet taken by their sockets). */
  heldBytes = 0;
  /** Past this many held bytes, circuit SENDMEs wait (the peer's circuit window closes). */
  private readonly maxHeldBytes: number;
  private readonly onHeld: ((delta: number) => void) | undefined;
  /** Circuit SENDMEs that fell due while over maxHeldBytes, in order. */
  private readonly heldSendmes: Buffer[] = [];
  private closed = false;

  constructor(
    readonly send: CircuitSender,
    opts: {
      maxData?: () => number;
      /** The window this endpoint names in its circuit SENDMEs (default: what every release accepts). */
      grant?: WindowGrant;
      streamGrowth?: () => StreamWindowGrowth | null;
      /**
       * The most bytes the streams may hold before circuit SENDMEs wait for them to fall under it
       * again (default: no limit). With consumeOnWrite streams, what the circuit holds is at most
       * this plus one circuit window.
       */
      maxHeldBytes?: number;
      /** Told every change of heldBytes (the relay adds up all circuits). */
      onHeld?: (delta: number) => void;
      /**
       * While this says true the streams send no DATA, and their writers wait (an exit then stops
       * reading its destinations): the link below is backed up. Call resume() when it may be false.
       */
      held?: () => boolean;
    } = {},
  ) {
    this.maxData = opts.maxData ?? (() => RELAY_DATA_MAX);
    this.streamGrowth = opts.streamGrowth;
    this.held = opts.held ?? notHeld;
    this.window = new CircuitWindow(opts.grant);
    this.maxHeldBytes = opts.maxHeldBytes ?? Number.POSITIVE_INFINITY;
    this.onHeld = opts.onHeld;
  }

  /** Circuit SENDMEs waiting for the streams to hold less (for tests and metrics). */
  get waitingSendmes(): number {
    return this.heldSendmes.length;
  }

  /** A stream's held bytes changed by `delta`; releases waiting circuit SENDMEs once under the limit. */
  noteHeld(delta: number): void {
    this.heldBytes += delta;
    this.onHeld?.(delta);
    if (delta < 0 && this.heldSendmes.length > 0 && this.heldBytes <= this.maxHeldBytes && !this.closed) {
      const due = this.heldSendmes.splice(0);
      for (const body of due) this.sendOne(RelayCommand.SENDME, 0, body);
    }
  }

  /** A stream that exists now; `pending` for one whose CONNECTED has not come yet (optimistic). */
  open(streamId: number, opts: { pending?: boolean; consumeOnWrite?: boolean } = {}): CircuitStream {
    const s = new CircuitStream(streamId, this, opts);
    this.streams.set(streamId, s);
    return s;
  }

  sendData(streamId: number, pieces: Buffer[]): void {
    for (const tag of this.send(RelayCommand.DATA, streamId, pieces)) this.window.onDataSent(tag);
  }

  /** Sends one relay message of this endpoint (not DATA). */
  sendOne(command: number, streamId: number, data: Buffer): void {
    this.send(command, streamId, [data]);
  }

  /** The largest window a stream of this endpoint has granted as a receiver (for metrics). */
  largestStreamWindow = 0;

  consumed(stream: CircuitStream, cells: number): void {
    const due = stream.window.onConsumed(cells);
    if (stream.window.grantedWindow > this.largestStreamWindow)
      this.largestStreamWindow = stream.window.grantedWindow;
    for (let i = 0; i < due; i++) this.sendOne(RelayCommand.SENDME, stream.streamId, Buffer.alloc(0));
  }

  forget(streamId: number): void {
    this.streams.delete(streamId);
  }

  /**
   * Handles DATA, END and SENDME for this endpoint. `tag` is the mac of the received cell.
   * Throws (FlowControlError, WireError) on a protocol violation: the caller destroys the circuit.
   */
  handle(command: number, streamId: number, data: Buffer, tag: Buffer): void {
    switch (command) {
      case RelayCommand.DATA: {
        for (let sendme = this.window.onDataReceived(tag); sendme; sendme = this.window.nextSendme()) {
          // Held back while the streams hold too much: the peer's circuit window closes behind it.
          if (this.heldBytes > this.maxHeldBytes || this.heldSendmes.length > 0) {
            this.heldSendmes.push(encodeCircuitSendme(sendme));
          } else this.sendOne(RelayCommand.SENDME, 0, encodeCircuitSendme(sendme));
        }
        // DATA for a stream we already closed is normal (cells in flight); it still counted above.
        this.streams.get(streamId)?.deliver(data);
        return;
      }
      case RelayCommand.END:
        this.streams.get(streamId)?.remoteEnd(decodeEnd(data).reason);
        return;
      case RelayCommand.SENDME:
        if (streamId === 0) {
          this.window.onSendme(decodeCircuitSendme(data));
          for (const s of this.streams.values()) s.pump();
        } else {
          const s = this.streams.get(streamId);
          if (s) {
            s.window.onSendme();
            s.pump();
          }
        }
        return;
    }
  }

  /** What held() held may go now: every stream sends what its windows allow. */
  resume(): void {
    for (const s of this.streams.values()) s.pump();
  }

  /** The circuit is gone: every stream fails with this error. */
  closeAll(err: StreamError): void {
    this.closed = true;
    this.heldSendmes.length = 0;
    for (const s of [...this.streams.values()]) s.destroy(err);
    this.streams.clear();
  }
}
