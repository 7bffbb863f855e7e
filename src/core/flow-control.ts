// Implements docs/protocol.md §5 (flow control): package and deliver windows for circuits and streams.
import { AlliumError } from '../errors.js';
import {
  CIRC_SENDME_INCREMENT,
  CIRC_WINDOW_MAX,
  CIRC_WINDOW_MIN,
  CIRC_WINDOW_START,
  LEGACY_CIRC_WINDOW_MAX,
  STREAM_SENDME_INCREMENT,
  STREAM_WINDOW_MAX,
  STREAM_WINDOW_START,
} from '../wire/constants.js';
import type { CircuitSendme } from '../wire/relay-messages.js';
import { DeliveryRate } from './delivery-rate.js';

export class FlowControlError extends AlliumError {}

/**
 * Names the window of each circuit SENDME: how many DATA cells the peer may send past the
 * acknowledged one. `rttMs` is the latest round trip measured on this circuit since the last SENDME
 * (from a SENDME that raised the window to the first cell only that raise allowed), or null.
 * A `WindowShare` names `window` but lets only `inFlight` cells be outstanding (protocol §5.1).
 */
export type WindowGrant = (rttMs: number | null) => number | WindowShare;

/**
 * A window to name and, if fewer, the cells the receiver lets be in flight toward it. The receiver
 * holds each SENDME until no more than `inFlight` cells would be outstanding once the peer reads it,
 * so the named window carries nothing of what decided `inFlight` (how many circuits share the link).
 * The named window grows by at most CIRC_SENDME_INCREMENT a SENDME, so a SENDME that must go out
 * early (the peer has used its whole window) lets at most two increments be in flight.
 */
export interface WindowShare {
  window: number;
  inFlight: number;
}

/** A circuit SENDME due, held until the peer may have at most its share outstanding. */
interface HeldSendme {
  tag: Buffer;
  window: number;
  /** The DATA cell it acknowledges. */
  acked: number;
  /** It goes out once this many cells have arrived. */
  releaseAt: number;
}

/**
 * One endpoint's view of a circuit's windows (only DATA cells count). The receiver acknowledges
 * every CIRC_SENDME_INCREMENT-th cell and names, in that SENDME, how far past it the sender may go;
 * so the receiver, not a fixed constant, sets how much of the circuit is in flight.
 */
export class CircuitWindow {
  private sent = 0;
  /** DATA cells the peer has acknowledged, and how many it lets us send past them. */
  private acked = 0;
  private peerWindow = CIRC_WINDOW_START;
  /** Macs of every INCREMENT-th DATA cell we sent, that the peer's SENDMEs must echo, in order. */
  private readonly expectedTags: Buffer[] = [];
  private received = 0;
  /** The most DATA cells the peer may have sent, by the largest window we have named. */
  private receiveLimit = CIRC_WINDOW_START;
  /** SENDMEs that raised receiveLimit: the first cell each allowed, and when it was sent. */
  private readonly raises: { firstCell: number; at: number }[] = [];
  private lastRttMs: number | null = null;
  /** The largest window this endpoint has named in a SENDME (for metrics). */
  largestNamed = 0;
  /** SENDMEs due but held back (WindowShare), oldest first. */
  private readonly held: HeldSendme[] = [];
  /** The most DATA cells the peer may send in all, by the last SENDME sent. */
  private peerLimit = CIRC_WINDOW_START;
  /** The window named in the last SENDME of a WindowShare (the next grows by one increment at most). */
  private lastShareWindow = CIRC_WINDOW_START;

  constructor(
    private readonly grant: WindowGrant = () => LEGACY_CIRC_WINDOW_MAX,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** DATA cells we sent that the peer has not acknowledged yet. */
  get inFlight(): number {
    return this.sent - this.acked;
  }

  /** DATA cells we may send now (negative after the peer shrank the window). */
  get packageWindow(): number {
    return this.acked + this.peerWindow - this.sent;
  }

  /**
   * Whether the DATA cell `ahead` cells after the next one to be sent (0: the next) is one a circuit
   * SENDME will acknowledge: the sender leaves room in it for unpredictable padding (§5).
   */
  isAcknowledged(ahead: number): boolean {
    return (this.sent + ahead + 1) % CIRC_SENDME_INCREMENT === 0;
  }

  /** Call after sealing a DATA cell whose mac is `tag`. */
  onDataSent(tag: Buffer): void {
    this.sent++;
    if (this.sent % CIRC_SENDME_INCREMENT === 0) this.expectedTags.push(Buffer.from(tag));
  }

  /**
   * Call on every DATA cell received. Returns the circuit SENDME to send when one is due, else null.
   * Throws when the peer sent past the window we named.
   */
  onDataReceived(tag: Buffer): CircuitSendme | null {
    if (this.received >= this.receiveLimit) {
      throw new FlowControlError(
        'ALLIUM_FLOW_WINDOW',
        'peer sent more DATA cells than the circuit window allows',
      );
    }
    this.received++;
    if (this.raises.length > 0 && this.raises[0].firstCell <= this.received) {
      const raise = this.raises.shift()!;
      if (raise.firstCell === this.received) this.lastRttMs = this.now() - raise.at;
    }
    if (this.received % CIRC_SENDME_INCREMENT !== 0) {
      return this.held.length > 0 ? this.nextSendme() : null;
    }
    const granted = this.grant(this.lastRttMs);
    this.lastRttMs = null;
    if (typeof granted === 'number') {
      return this.release(tag, this.received, clampWindow(granted));
    }
    const window = clampWindow(Math.min(granted.window, this.lastShareWindow + CIRC_SENDME_INCREMENT));
    this.lastShareWindow = window;
    const inFlight = Math.min(window, Math.max(CIRC_WINDOW_MIN, Math.floor(granted.inFlight)));
    if (this.held.length === 0 && inFlight === window) return this.release(tag, this.received, window);
    // Held: `tag` is a view into a cell that will be reused.
    this.held.push({
      tag: Buffer.from(tag),
      window,
      acked: this.received,
      releaseAt: this.received + window - inFlight,
    });
    return this.nextSendme();
  }

  /**
   * The oldest held SENDME if it is due now, else null: call after onDataReceived returned one, until
   * null. One is due once its share is all that would be outstanding, or the peer has used its window
   * (so a circuit never stalls on a held SENDME).
   */
  nextSendme(): CircuitSendme | null {
    const h = this.held[0];
    if (!h || (this.received < h.releaseAt && this.received < this.peerLimit)) return null;
    this.held.shift();
    return this.release(h.tag, h.acked, h.window);
  }

  private release(tag: Buffer, acked: number, window: number): CircuitSendme {
    if (window > this.largestNamed) this.largestNamed = window;
    const limit = acked + window;
    if (limit > this.receiveLimit) {
      this.raises.push({ firstCell: this.receiveLimit + 1, at: this.now() });
      this.receiveLimit = limit;
    }
    this.peerLimit = limit;
    return { tag, window };
  }

  /** A circuit SENDME arrived. Throws if its tag is not the one we expect (an unearned SENDME). */
  onSendme(sendme: CircuitSendme): void {
    const expected = this.expectedTags.shift();
    if (!expected?.equals(sendme.tag)) {
      throw new FlowControlError('ALLIUM_FLOW_SENDME', 'circuit SENDME with an unexpected tag');
    }
    this.acked += CIRC_SENDME_INCREMENT;
    this.peerWindow = sendme.window;
  }
}

function clampWindow(w: number): number {
  return Math.min(CIRC_WINDOW_MAX, Math.max(CIRC_WINDOW_MIN, Math.floor(w)));
}

/**
 * How a stream's receiver lets its window grow past STREAM_WINDOW_START (protocol §5): to
 * STREAM_WINDOW_GAIN times what the application consumed per base round trip, so a reader that
 * keeps up with a long path is not held to 4 MiB per round trip, and a slow reader keeps the
 * window (and what waits for it at the receiver) where it started.
 */
export interface StreamWindowGrowth {
  /** The most the peer accepts: STREAM_WINDOW_MAX from an exit that takes large windows (§5). */
  largest: number;
  /** The base round trip of the circuit's path in ms (Infinity while unknown: no growth). */
  baseRttMs: () => number;
  now?: () => number;
}

/** As the receive budget sizes a link (§5.1): one round trip more than the reader consumed lets the rate grow. */
export const STREAM_WINDOW_GAIN = 2;

/** One endpoint's view of a stream's windows. */
export class StreamWindow {
  packageWindow = STREAM_WINDOW_START;
  private deliverWindow = STREAM_WINDOW_START;
  /** The window this receiver has granted the peer so far: it only grows (with `growth`). */
  private granted = STREAM_WINDOW_START;
  private consumedSinceSendme = 0;
  /** How fast the application consumed DATA cells (cells per ms, the most of recent samples). */
  private readonly consumedRate: DeliveryRate | null;

  constructor(private readonly growth: StreamWindowGrowth | null = null) {
    this.consumedRate = growth ? new DeliveryRate(growth.now) : null;
  }

  /** The window this receiver lets its peer have in flight (STREAM_WINDOW_START until it grows). */
  get grantedWindow(): number {
    return this.granted;
  }

  onDataSent(): void {
    this.packageWindow--;
  }

  onDataReceived(): void {
    this.deliverWindow--;
    if (this.deliverWindow < 0) {
      throw new FlowControlError(
        'ALLIUM_FLOW_WINDOW',
        'peer sent more DATA cells than the stream window allows',
      );
    }
  }

  /**
   * The application consumed `cells` DATA cells; returns how many stream SENDMEs to send now. Each
   * SENDME adds STREAM_SENDME_INCREMENT: one per increment consumed, and one more per increment
   * the window grows by.
   */
  onConsumed(cells: number): number {
    this.consumedSinceSendme += cells;
    let due = 0;
    while (this.consumedSinceSendme >= STREAM_SENDME_INCREMENT) {
      this.consumedSinceSendme -= STREAM_SENDME_INCREMENT;
      this.deliverWindow += STREAM_SENDME_INCREMENT;
      due++;
    }
    // The window only grows, and only a new rate sample can raise what it should be: most calls
    // (one per batch of cells the application takes) stop at the sample.
    if (this.growth && this.consumedRate && this.granted < this.growth.largest) {
      const rtt = this.growth.baseRttMs();
      if (!Number.isFinite(rtt) || !this.consumedRate.record(cells, rtt)) return due;
      const wanted = Math.min(
        this.growth.largest,
        STREAM_WINDOW_MAX,
        STREAM_WINDOW_GAIN * this.consumedRate.maxPerMs * rtt,
      );
      while (this.granted + STREAM_SENDME_INCREMENT <= wanted) {
        this.granted += STREAM_SENDME_INCREMENT;
        this.deliverWindow += STREAM_SENDME_INCREMENT;
        due++;
      }
    }
    return due;
  }

  onSendme(): void {
    this.packageWindow += STREAM_SENDME_INCREMENT;
    if (this.packageWindow > STREAM_WINDOW_MAX) {
      throw new FlowControlError('ALLIUM_FLOW_SENDME', 'stream SENDME beyond the window');
    }
  }
}
