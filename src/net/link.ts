// Implements docs/protocol.md §1 (links): a Noise XX handshake over TCP, then cells in AEAD frames.
// The only code that reads and writes relay sockets. Cells queued in one turn of the event loop go
// out together: up to 15 per frame, every frame of the turn in one socket write. When the socket is
// backed up, cells wait in one queue per circuit and leave round-robin (protocol §1.3).
import net from 'node:net';
import { CellScheduler } from '../core/cell-scheduler.js';
import { type IdentityKey, X25519Key } from '../crypto/keys.js';
import { linkCertExpiry, makeLinkCert, verifyLinkCert } from '../crypto/link-cert.js';
import { type NoiseCipher, NoiseHandshake } from '../crypto/noise.js';
import { AlliumError } from '../errors.js';
import { type Cell, decodeFrameCells, writeCell } from '../wire/cell.js';
import { CELL_LEN, CellCommand, MAX_CELLS_PER_FRAME } from '../wire/constants.js';

const EMPTY = Buffer.alloc(0);
/** Frame plaintexts are assembled here: encryption copies them out at once. */
const framePlain = new Scratch();

import { CellSlabs } from '../wire/cell-slabs.js';
import { encodeFrameLength, FrameDecoder } from '../wire/frame-decoder.js';
import { releaseBuffer } from '../wire/release.js';
import { Scratch } from '../wire/scratch.js';

/**
 * Every this many bytes read from one socket, the link pauses it until the event loop has turned
 * once (other links' reads, timers, writes). libuv reads up to 32 x 64 KiB
 * from a readable socket in one go; a relay busy with 2 MiB of one link's cells leaves the SENDMEs
 * on its other links waiting, and a sender waiting for SENDMEs needs a larger window to stay busy.
 */
export const READ_BURST_BYTES = 128 * 1024;

export class LinkError extends AlliumError {}

const PROLOGUE = Buffer.from('allium-link-v2');
/**
 * The link protocol this release speaks (§1.2), sent as message 1's payload: 2 since release 0.5.0,
 * whose cells older releases cannot read. Releases before it sent an empty payload (protocol 1).
 */
export const LINK_PROTOCOL_VERSION = 2;
const LINK_VERSION_PAYLOAD = Buffer.from([0, LINK_PROTOCOL_VERSION]);
/** Message 1 of a release before 0.5.0: the bare 32-byte key. */
const OLD_FIRST_MESSAGE_LEN = 32;
const versionRefusal = (theirs: string) =>
  `the peer speaks link protocol ${theirs} and this node ${LINK_PROTOCOL_VERSION} (release 0.5.0 and later): ` +
  'the older side must upgrade';
/** A link with more than this queued tells its owner after each write (onBacklog). */
export const BACKLOG_NOTICE_BYTES = 1024 * 1024;
/**
 * Bytes a link lets its socket hold before new frames wait for 'drain'; the kernel's socket buffers
 * (megabytes on loopback) keep the connection busy meanwhile.
 */
const SOCKET_WATERMARK = 512 * 1024;
/** Cells one flush takes at most when there is a backlog (1 MiB). */
const FLUSH_BUDGET_CELLS = 256;

/** Closing for one of these frees the queue at once: the peer is not reading it. */
function isQueueOverflow(err: Error | undefined): boolean {
  const code = (err as { code?: string } | undefined)?.code;
  return code === 'ALLIUM_LINK_QUEUE' || code === 'ALLIUM_LINK_STALLED' || code === 'ALLIUM_RELAY_QUEUE_FULL';
}

/**
 * How much a link lets queue toward its peer (bytes; set by its owner, a relay: docs/relay.md). A
 * burst toward a peer that reads is told from a peer that stopped by time, not by size alone.
 */
export interface LinkQueueLimits {
  /**
   * Past this the link is under pressure (`pressured`) until its queue falls to half of it again: the
   * owner stops adding to it where it can (an exit stops reading its destinations).
   */
  pressureBytes: number;
  /**
   * Past this the owner is told (onOverLimit), to close the circuits with the most queued: at once
   * when the socket has taken nothing for STOPPED_READING_MS, else (a peer that reads, slower than a
   * burst comes) past twice this.
   */
  limitBytes: number;
  /** Past this the link itself is closed at once: a last resort, far above the limit. */
  hardBytes: number;
  /** A link whose socket has taken nothing for this long while cells wait is closed: the peer stopped. */
  stallMs: number;
}

/** A socket that took nothing for this long while cells wait counts as not being read. */
export const STOPPED_READING_MS = 1000;

const NO_QUEUE_LIMITS: LinkQueueLimits = {
  pressureBytes: Number.POSITIVE_INFINITY,
  limitBytes: Number.POSITIVE_INFINITY,
  hardBytes: Number.POSITIVE_INFINITY,
  stallMs: Number.POSITIVE_INFINITY,
};
/** Noise XX message 1 is `e`, a 32-byte X25519 public key, and the 2-byte link protocol version. */
const FIRST_MESSAGE_LEN = 32 + LINK_VERSION_PAYLOAD.length;
export const LINK_HANDSHAKE_TIMEOUT_MS = 10_000;
/** A link that sent nothing for this long sends a PADDING cell, so its peer knows it is alive. */
export const LINK_KEEPALIVE_MS = Number(process.env.ALLIUM_LINK_KEEPALIVE_MS ?? 5_000);
/** A link that received nothing (not even PADDING) for this long is dead: a cut cable, a frozen peer. */
export const LINK_DEAD_AFTER_MS = Number(process.env.ALLIUM_LINK_DEAD_AFTER_MS ?? 15_000);
/** A link takes no new circuits this close to its expiry (or in its last quarter, if shorter): §1.1. */
export const LINK_RETIRE_BEFORE_EXPIRY_MS = 3600_000;

/** What a link needs to know about its own side. */
export interface LinkIdentity {
  /** The relay's identity, or null for an anonymous client (a fresh link key per link). */
  identity: IdentityKey | null;
  /** The relay's link key (ignored for clients, who use a fresh one each time). */
  linkKey?: X25519Key;
  /** Cached link certificate for linkKey. */
  linkCert?: Buffer;
}

export interface LinkEvents {
  cells(cells: Cell[]): void;
  close(err?: Error): void;
}

/** One authenticated, encrypted connection carrying cells of many circuits. */
export class Link {
  /** The peer's relay id when it proved one (always for links we initiated), else null: a client. */
  readonly peerRelayId: Buffer | null;
  readonly initiator: boolean;
  /**
   * The secret this link's Noise handshake gave both ends (§1.2), known to nobody else: what a client's
   * link-bound first hop derives its keys from (§3.6).
   */
  readonly linkSecret: Buffer;
  /** The Noise static key the peer proved: a relay's link key (§1.1), or a client's one-link key. */
  readonly peerStaticKey: Buffer;
  /**
   * When the first of this link's certificates expires, ours or the peer's (ms since the epoch); the
   * link closes then (ALLIUM_LINK_EXPIRED), so no link outlives the link key it was made with (§1.1).
   */
  readonly expiresAt: number;
  private readonly openedAt = Date.now();
  private handlers: LinkEvents = { cells: () => {}, close: () => {} };
  /** Cells waiting to be framed, per circuit (they leave round-robin). */
  private readonly scheduler = new CellScheduler();
  private flushScheduled = false;
  /** The socket holds SOCKET_WATERMARK or more: the next flush waits for its 'drain'. */
  private waitingDrain = false;
  private readonly picked: (number | Buffer)[] = [];
  private readonly slabs = new CellSlabs();
  private closed = false;
  cellsIn = 0;
  cellsOut = 0;
  private queueLimits: LinkQueueLimits = NO_QUEUE_LIMITS;
  /** The least of the queue limits: below it send() checks nothing more. */
  private firstQueueMark = Number.POSITIVE_INFINITY;
  private pressure = false;
  private overLimitDue = false;
  /** The most bytes this link has had queued toward its peer. */
  queuePeak = 0;
  /** When the socket last took bytes (a write completed, or it drained). */
  private lastProgress = Date.now();
  /** Called after a write that leaves more than BACKLOG_NOTICE_BYTES queued (the owner's total check). */
  onBacklog: ((link: Link) => void) | null = null;
  /** Called, once per crossing, when the queue passed limitBytes: the owner sheds circuits. */
  onOverLimit: ((link: Link) => void) | null = null;
  /** Called when the queue fell back to half of pressureBytes: the owner lets what it held go again. */
  onRelief: ((link: Link) => void) | null = null;
  /** Frames received before the owner attached its handlers, in order. */
  private early: Buffer[] | null = null;
  /** Received chunks not yet released: the decoder's partial frame lies in the last of them. */
  private received: Buffer[] = [];
  private receivedBytes = 0;
  private lastReceived = Date.now();
  private lastSent = Date.now();
  /** Bytes read since reading last paused (see READ_BURST_BYTES), and whether it is paused now. */
  private readBurst = 0;
  private readPaused = false;
  private readonly liveness: NodeJS.Timeout;

  constructor(
    private readonly socket: net.Socket,
    private readonly sendCipher: NoiseCipher,
    private readonly recvCipher: NoiseCipher,
    private readonly decoder: FrameDecoder,
    peerRelayId: Buffer | null,
    initiator: boolean,
    pendingFrames: Buffer[],
    linkSecret: Buffer,
    certs: { peerStaticKey: Buffer; expiresAt: number },
  ) {
    this.peerRelayId = peerRelayId;
    this.initiator = initiator;
    this.linkSecret = linkSecret;
    this.peerStaticKey = certs.peerStaticKey;
    this.expiresAt = certs.expiresAt;
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.close(err));
    socket.on('close', () => this.close());
    // TCP alone notices a dead peer only when data is in flight; keepalives make silence mean death.
    this.liveness = setInterval(
      () => this.checkLiveness(),
      Math.max(250, Math.min(LINK_KEEPALIVE_MS, LINK_DEAD_AFTER_MS) / 2),
    );
    this.liveness.unref();
    // Frames that arrived in the same chunk as the end of the handshake.
    // They wait one turn, so the owner can attach its handlers; later frames queue behind them.
    if (pendingFrames.length > 0) {
      this.early = pendingFrames;
      setImmediate(() => {
        const early = this.early ?? [];
        this.early = null;
        this.onFrames(early);
        this.releaseConsumed();
      });
    }
  }

  on(handlers: Partial<LinkEvents>): void {
    this.handlers = { ...this.handlers, ...handlers };
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Open, and not so near its expiry that a circuit started now would soon end with it. */
  get takesNewCircuits(): boolean {
    const margin = Math.min(LINK_RETIRE_BEFORE_EXPIRY_MS, (this.expiresAt - this.openedAt) / 4);
    return !this.closed && Date.now() < this.expiresAt - margin;
  }

  setQueueLimits(limits: LinkQueueLimits): void {
    this.queueLimits = { ...limits };
    this.firstQueueMark = Math.min(limits.pressureBytes, limits.limitBytes, limits.hardBytes);
  }

  /** The queue passed pressureBytes and has not fallen to half of it since. */
  get pressured(): boolean {
    return this.pressure;
  }

  /** Cells of circuit `circId` waiting in this link's queue. */
  queuedCellsOf(circId: number): number {
    return this.scheduler.queuedOf(circId);
  }

  /** The circuit with the most cells waiting here, or null when none waits. */
  largestQueue(): { circId: number; cells: number } | null {
    return this.scheduler.largest();
  }

  /**
   * Gives back memory a past backlog left: the empty slabs this link kept, and the frame scratch
   * shared by all links. Only while nothing waits (the owner calls it between turns, after a load).
   */
  trimMemory(): void {
    if (this.closed || this.scheduler.size > 0) return;
    this.slabs.trim();
    framePlain.release();
  }

  /** Forgets the cells of `circId` waiting here (the owner is closing that circuit); returns how many. */
  dropQueued(circId: number): number {
    return this.scheduler.drop(circId, (body) => this.slabs.done(body));
  }

  /** Bytes queued toward the peer and not yet in the kernel: cells waiting, and frames in the socket. */
  get writableLength(): number {
    return this.socket.writableLength + this.scheduler.size * CELL_LEN;
  }

  get remoteAddress(): string | undefined {
    return this.socket.remoteAddress;
  }

  private checkLiveness(): void {
    const now = Date.now();
    if (now >= this.expiresAt) {
      this.close(
        new LinkError(
          'ALLIUM_LINK_EXPIRED',
          'a certificate of this link expired: the relay uses a newer link key',
        ),
      );
      return;
    }
    if (now - this.lastReceived > LINK_DEAD_AFTER_MS) {
      this.close(
        new LinkError('ALLIUM_LINK_DEAD', `nothing received from the peer for ${LINK_DEAD_AFTER_MS} ms`),
      );
      return;
    }
    if (this.waitingDrain && now - this.lastProgress > this.queueLimits.stallMs) {
      this.close(
        new LinkError(
          'ALLIUM_LINK_STALLED',
          `the peer stopped reading: its socket took nothing for ${this.queueLimits.stallMs} ms`,
        ),
      );
      return;
    }
    // A queue over the limit that no new cell re-checks: shed now if the peer has stopped reading.
    const queued = this.writableLength;
    if (queued > this.queueLimits.limitBytes) this.queueAboveMark(queued);
    if (now - this.lastSent >= LINK_KEEPALIVE_MS) this.send(0, CellCommand.PADDING, EMPTY);
  }

  /**
   * Queues one cell; it goes out with the other cells queued in this turn of the event loop, unless
   * the socket is backed up: then cells wait in their circuit's queue and leave round-robin.
   */
  send(circId: number, command: number, body: Buffer): void {
    if (this.closed) return;
    // A cell that will wait for the socket is copied out of its parent buffer (buffers/cell-slabs.ts).
    const waits = this.waitingDrain || this.scheduler.size >= FLUSH_BUDGET_CELLS;
    this.scheduler.push(circId, command, waits ? this.slabs.copy(body) : body);
    this.cellsOut++;
    // Checked on every cell queued, so no limit is passed unseen while the socket waits to drain.
    const queued = this.scheduler.size * CELL_LEN + this.socket.writableLength;
    if (queued > this.queuePeak) this.queuePeak = queued;
    if (queued > this.firstQueueMark) this.queueAboveMark(queued);
    this.scheduleFlush();
  }

  private queueAboveMark(queued: number): void {
    const limits = this.queueLimits;
    if (queued > limits.pressureBytes) this.pressure = true;
    if (queued > limits.hardBytes) {
      // Closed after the caller's turn: it may be in the middle of sending on this link.
      this.overLimitDue = true;
      queueMicrotask(() =>
        this.close(
          new LinkError(
            'ALLIUM_LINK_QUEUE',
            `the peer stopped reading: more than ${limits.hardBytes} bytes queued`,
          ),
        ),
      );
      return;
    }
    if (
      queued > limits.limitBytes &&
      !this.overLimitDue &&
      (queued > 2 * limits.limitBytes || this.notReading())
    ) {
      this.overLimitDue = true;
      queueMicrotask(() => {
        this.overLimitDue = false;
        if (this.closed) return;
        if (this.onOverLimit) this.onOverLimit(this);
        else if (this.writableLength > limits.limitBytes) {
          this.close(
            new LinkError(
              'ALLIUM_LINK_QUEUE',
              `the peer stopped reading: more than ${limits.limitBytes} bytes queued`,
            ),
          );
        }
      });
    }
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || this.waitingDrain) return;
    this.flushScheduled = true;
    setImmediate(() => this.flush());
  }

  /**
   * Takes up to FLUSH_BUDGET_CELLS cells round-robin over the circuits, writes them straight into
   * frame buffers (one copy each), seals them and writes them at once. The socket is kept at about
   * SOCKET_WATERMARK bytes, so a backlog waits in the per-circuit queues, where a quiet circuit's
   * cell can pass it, and not in the socket's first-in first-out buffer.
   */
  private flush(all = false): void {
    this.flushScheduled = false;
    if (this.closed) return;
    if (this.scheduler.size === 0) {
      this.relieve();
      return;
    }
    if (!all && this.socket.writableLength >= SOCKET_WATERMARK) {
      this.waitForDrain();
      return;
    }
    const q = this.picked;
    q.length = 0;
    this.scheduler.take(all ? Number.POSITIVE_INFINITY : FLUSH_BUDGET_CELLS, MAX_CELLS_PER_FRAME, q);
    this.lastSent = Date.now();
    const cells = q.length / 3;
    const sealedFrames: Buffer[] = [];
    this.socket.cork();
    for (let first = 0; first < cells; first += MAX_CELLS_PER_FRAME) {
      const n = Math.min(MAX_CELLS_PER_FRAME, cells - first);
      const plain = framePlain.take(n * CELL_LEN);
      for (let i = 0; i < n; i++) {
        const at = (first + i) * 3;
        const body = q[at + 2] as Buffer;
        writeCell(plain, i * CELL_LEN, q[at] as number, q[at + 1] as number, body);
        this.slabs.done(body);
      }
      const [sealed, tag] = this.sendCipher.encryptParts(plain);
      this.socket.write(encodeFrameLength(sealed.length + tag.length));
      this.socket.write(sealed);
      sealedFrames.push(sealed);
      if (first + MAX_CELLS_PER_FRAME >= cells) {
        // Writes complete in order: when the last is written, every frame of this flush is.
        this.socket.write(tag, () => {
          this.lastProgress = Date.now();
          for (const f of sealedFrames) releaseBuffer(f);
          // The last flush may leave nothing waiting but the socket's own bytes: they count too.
          if (this.pressure && !this.closed) this.relieve();
        });
      } else this.socket.write(tag);
    }
    this.socket.uncork();
    q.length = 0;
    const queued = this.writableLength;
    if (queued > this.queueLimits.hardBytes) {
      this.close(
        new LinkError(
          'ALLIUM_LINK_QUEUE',
          `the peer stopped reading: more than ${this.queueLimits.hardBytes} bytes queued`,
        ),
      );
      return;
    }
    this.relieve();
    if (this.closed) return;
    if (queued > BACKLOG_NOTICE_BYTES) this.onBacklog?.(this);
    if (this.scheduler.size > 0) {
      if (this.socket.writableLength >= SOCKET_WATERMARK) this.waitForDrain();
      else this.scheduleFlush();
    }
  }

  /** The socket waits to drain and has taken nothing for STOPPED_READING_MS. */
  private notReading(): boolean {
    return this.waitingDrain && Date.now() - this.lastProgress > STOPPED_READING_MS;
  }

  /** Ends the pressure once the queue fell to half of pressureBytes. */
  private relieve(): void {
    if (!this.pressure || this.writableLength > this.queueLimits.pressureBytes / 2) return;
    this.pressure = false;
    this.onRelief?.(this);
  }

  private waitForDrain(): void {
    if (this.waitingDrain) return;
    this.waitingDrain = true;
    // The stall clock runs from here: a link idle for an hour has made no progress, and needed none.
    this.lastProgress = Date.now();
    this.socket.once('drain', () => {
      this.waitingDrain = false;
      this.lastProgress = Date.now();
      this.flush();
    });
  }

  private onData(chunk: Buffer): void {
    if (this.closed) return;
    this.lastReceived = Date.now();
    this.readBurst += chunk.length;
    if (this.readBurst >= READ_BURST_BYTES && !this.readPaused) this.yieldReading();
    let frames: Buffer[];
    try {
      frames = this.decoder.push(chunk);
    } catch (err) {
      this.close(err as Error);
      return;
    }
    this.received.push(chunk);
    this.receivedBytes += chunk.length;
    if (this.early) this.early.push(...frames);
    else {
      this.onFrames(frames);
      this.releaseConsumed();
    }
  }

  /** Stops reading until the event loop has turned once (the chunk in hand is still handled). */
  private yieldReading(): void {
    this.readPaused = true;
    this.socket.pause();
    setImmediate(() => {
      this.readBurst = 0;
      this.readPaused = false;
      if (!this.closed) this.socket.resume();
    });
  }

  /**
   * Frees the received chunks every frame of which has been decrypted (decryption copies): all but
   * those holding the decoder's partial frame, which is always the tail of what was received.
   */
  private releaseConsumed(): void {
    const keep = this.decoder.buffered;
    const r = this.received;
    let i = 0;
    while (i < r.length && this.receivedBytes - r[i].length >= keep) {
      this.receivedBytes -= r[i].length;
      releaseBuffer(r[i]);
      i++;
    }
    if (i > 0) this.received = i === r.length ? [] : r.slice(i);
  }

  private onFrames(frames: Buffer[]): void {
    for (const frame of frames) {
      if (this.closed) return;
      let cells: Cell[];
      try {
        cells = decodeFrameCells(this.recvCipher.decrypt(frame));
      } catch (err) {
        this.close(new LinkError('ALLIUM_LINK_FRAME', `bad frame from peer: ${(err as Error).message}`));
        return;
      }
      this.cellsIn += cells.length;
      this.handlers.cells(cells);
    }
  }

  close(err?: Error): void {
    if (this.closed) return;
    if (this.scheduler.size > 0 && !err) {
      this.flush(true);
      // That last write may have found the queue over its limit and closed the link itself.
      if (this.closed) return;
    }
    this.closed = true;
    clearInterval(this.liveness);
    this.scheduler.clear();
    this.slabs.clear();
    if (isQueueOverflow(err)) {
      // The peer is not reading: a graceful end would keep the queue (the memory) until the timer.
      this.socket.destroy();
    } else {
      this.socket.end();
      this.socket.destroySoon?.();
      setTimeout(() => this.socket.destroy(), 2000).unref();
    }
    this.handlers.close(err);
  }
}

/** Runs the handshake on a connected socket. Resolves with a ready Link. */
function handshake(
  socket: net.Socket,
  initiator: boolean,
  me: LinkIdentity,
  expectedRelayId: Buffer | null,
  timeoutMs: number,
): Promise<Link> {
  socket.setNoDelay(true);
  const staticKey = me.identity && me.linkKey ? me.linkKey : undefined;
  {
    const key = staticKey ?? X25519Key.generate();
    const cert = me.identity ? (me.linkCert ?? makeLinkCert(me.identity, key.publicKey)) : Buffer.alloc(0);
    // A relay's link lives no longer than its own certificate; the peer's may end it sooner.
    let expiresAt = me.identity ? linkCertExpiry(cert) : Number.POSITIVE_INFINITY;
    const hs = new NoiseHandshake({ initiator, staticKey: key, prologue: PROLOGUE });
    const decoder = new FrameDecoder();
    const sendMsg = (payload: Buffer) => {
      const m = hs.writeMessage(payload);
      socket.write(Buffer.concat([encodeFrameLength(m.length), m]));
    };
    return new Promise<Link>((resolve, reject) => {
      let step = 0;
      let peerId: Buffer | null = null;
      const fail = (err: Error) => {
        cleanup();
        socket.destroy();
        reject(err);
      };
      const timer = setTimeout(
        () =>
          fail(new LinkError('ALLIUM_LINK_TIMEOUT', `link handshake not finished within ${timeoutMs} ms`)),
        timeoutMs,
      );
      const onError = (err: Error) => fail(new LinkError('ALLIUM_LINK_IO', `link failed: ${err.message}`));
      const onClose = () =>
        fail(
          new LinkError(
            'ALLIUM_LINK_CLOSED',
            initiator && step === 0
              ? 'peer closed the link at our first handshake message: it may run a release before 0.5.0, ' +
                  `whose link protocol (1) this node does not speak (${LINK_PROTOCOL_VERSION})`
              : 'peer closed the link during the handshake',
          ),
        );
      const cleanup = () => {
        clearTimeout(timer);
        socket.off('data', onData);
        socket.off('error', onError);
        socket.off('close', onClose);
      };
      const finish = (rest: Buffer[]) => {
        cleanup();
        const { send, recv, linkSecret } = hs.split();
        resolve(
          new Link(socket, send, recv, decoder, peerId, initiator, rest, linkSecret, {
            peerStaticKey: Buffer.from(hs.remoteStatic!),
            expiresAt,
          }),
        );
      };
      const onData = (chunk: Buffer) => {
        let frames: Buffer[];
        // The first message of XX is one public key and the version: anything else is not an Allium
        // peer of this link protocol, so stop now rather than wait for a 64 KiB "frame" that will never come.
        if (
          !initiator &&
          step === 0 &&
          decoder.buffered === 0 &&
          chunk.length >= 2 &&
          chunk.readUInt16BE(0) !== FIRST_MESSAGE_LEN
        ) {
          fail(
            chunk.readUInt16BE(0) === OLD_FIRST_MESSAGE_LEN
              ? new LinkError('ALLIUM_LINK_VERSION', versionRefusal('1 (a release before 0.5.0)'))
              : new LinkError('ALLIUM_LINK_HANDSHAKE', 'the peer does not speak the Allium link protocol'),
          );
          return;
        }
        try {
          frames = decoder.push(chunk);
          for (let i = 0; i < frames.length; i++) {
            const payload = hs.readMessage(frames[i]);
            step++;
            if (initiator) {
              // message 2: the responder's certificate, which must prove the relay we meant.
              const id = verifyLinkCert(payload, hs.remoteStatic!);
              expiresAt = Math.min(expiresAt, linkCertExpiry(payload));
              if (expectedRelayId && !id.equals(expectedRelayId)) {
                throw new LinkError(
                  'ALLIUM_LINK_IDENTITY',
                  `reached a relay with id ${id.toString('hex')} instead of ${expectedRelayId.toString('hex')}`,
                );
              }
              peerId = id;
              sendMsg(cert);
              finish(frames.slice(i + 1));
              return;
            }
            if (step === 1) {
              // The first message's payload is the link protocol version (authenticated by the
              // transcript hash once the handshake completes).
              if (!payload.equals(LINK_VERSION_PAYLOAD)) {
                const theirs = payload.length === 2 ? String(payload.readUInt16BE(0)) : 'unknown';
                throw new LinkError('ALLIUM_LINK_VERSION', versionRefusal(theirs));
              }
              sendMsg(cert);
            } else {
              peerId = payload.length === 0 ? null : verifyLinkCert(payload, hs.remoteStatic!);
              if (peerId) expiresAt = Math.min(expiresAt, linkCertExpiry(payload));
              finish(frames.slice(i + 1));
              return;
            }
          }
        } catch (err) {
          fail(err instanceof AlliumError ? err : new LinkError('ALLIUM_LINK_HANDSHAKE', String(err)));
        }
      };
      socket.on('data', onData);
      socket.on('error', onError);
      socket.on('close', onClose);
      if (initiator) sendMsg(LINK_VERSION_PAYLOAD);
    });
  }
}

export interface ConnectLinkOptions {
  host: string;
  port: number;
  /** The relay id the peer must prove (protocol §1.2). */
  relayId: Buffer;
  me: LinkIdentity;
  timeoutMs?: number;
}

/** Opens a link to a relay and checks it is the relay we meant. */
export function connectLink(opts: ConnectLinkOptions): Promise<Link> {
  const timeoutMs = opts.timeoutMs ?? LINK_HANDSHAKE_TIMEOUT_MS;
  return new Promise<net.Socket>((resolve, reject) => {
    const socket = net.connect({ host: opts.host, port: opts.port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new LinkError('ALLIUM_LINK_TIMEOUT', `connecting to ${opts.host}:${opts.port} timed out`));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(
        new LinkError(
          'ALLIUM_LINK_CONNECT',
          `cannot reach relay at ${opts.host}:${opts.port}: ${err.message}`,
        ),
      );
    });
  }).then((socket) => handshake(socket, true, opts.me, opts.relayId, timeoutMs));
}

export interface LinkListenerOptions {
  host: string;
  port: number;
  /** Who this side is; a function is asked at each handshake (a relay's link key rotates). */
  me: LinkIdentity | (() => LinkIdentity);
  onLink(link: Link): void;
  onHandshakeError?(err: Error): void;
  timeoutMs?: number;
  /** Handshakes in progress at once; connections beyond it are closed at once (default 256). */
  maxPendingHandshakes?: number;
}

/** Accepts links on a TCP port. */
export class LinkListener {
  private constructor(
    private readonly server: net.Server,
    /** Connections still in their handshake: a closing listener drops them rather than wait. */
    private readonly handshaking: Set<net.Socket>,
  ) {}

  static listen(opts: LinkListenerOptions): Promise<LinkListener> {
    let pending = 0;
    const max = opts.maxPendingHandshakes ?? 256;
    const handshaking = new Set<net.Socket>();
    const server = net.createServer((socket) => {
      socket.on('error', () => {});
      if (pending >= max) {
        socket.destroy();
        opts.onHandshakeError?.(
          new LinkError('ALLIUM_LINK_BUSY', `more than ${max} link handshakes in progress`),
        );
        return;
      }
      pending++;
      handshaking.add(socket);
      const me = typeof opts.me === 'function' ? opts.me() : opts.me;
      handshake(socket, false, me, null, opts.timeoutMs ?? LINK_HANDSHAKE_TIMEOUT_MS).then(
        (link) => {
          pending--;
          handshaking.delete(socket);
          opts.onLink(link);
        },
        (err) => {
          pending--;
          handshaking.delete(socket);
          opts.onHandshakeError?.(err);
        },
      );
    });
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: opts.host, port: opts.port, backlog: 1024 }, () => {
        server.off('error', reject);
        resolve(new LinkListener(server, handshaking));
      });
    });
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  /** Stops accepting; resolves once every accepted connection has ended (links are their owner's to close). */
  close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const socket of this.handshaking) socket.destroy();
    this.handshaking.clear();
    return closed;
  }
}
