// Implements docs/protocol.md §5.1 (receive budget): the windows an endpoint (client or exit) names
// in its circuit SENDMEs share one budget per link, so the bytes in flight toward it, and queued in
// the relays and kernel buffers in front of it, stay near the budget however many circuits send.
import { CIRC_WINDOW_MAX, CIRC_WINDOW_MIN } from '../wire/constants.js';
import { DelayControl } from './delay-control.js';

/**
 * 2 MiB per link, a client's and an exit's: one download kept its full speed on a loopback testnet,
 * with short queues beside it (docs/performance.md).
 */
export const DEFAULT_RECEIVE_BUDGET_CELLS = 512;

/** A circuit that has acknowledged cells this long ago no longer counts as receiving. */
export const RECEIVE_ACTIVE_MS = 200;

/**
 * Splits `totalCells` evenly among the circuits that are receiving now. A circuit counts from its
 * last SENDME for RECEIVE_ACTIVE_MS; one alone gets the whole budget (up to the largest window).
 */
export class ReceiveBudget {
  private readonly lastActive = new Map<object, number>();
  private readonly delay: DelayControl;

  constructor(
    readonly totalCells: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    if (!Number.isInteger(totalCells) || totalCells < CIRC_WINDOW_MIN) {
      throw new RangeError(`a receive budget is at least ${CIRC_WINDOW_MIN} cells, got ${totalCells}`);
    }
    this.delay = new DelayControl(now);
  }

  /**
   * The window `circuit` names in the SENDME it sends now: its share of the budget, less if its
   * round trip (`rttMs`, from CircuitWindow) shows a queue (src/core/delay-control.ts).
   */
  grant(circuit: object, rttMs: number | null = null): number {
    const t = this.now();
    this.lastActive.set(circuit, t);
    const receiving = this.countReceiving(t);
    const share = Math.min(
      CIRC_WINDOW_MAX,
      Math.max(CIRC_WINDOW_MIN, Math.floor(this.totalCells / receiving)),
    );
    return this.delay.limit(circuit, share, rttMs);
  }

  /** The circuit closed. */
  forget(circuit: object): void {
    this.lastActive.delete(circuit);
  }

  /** Circuits that count as receiving now. */
  get receiving(): number {
    return this.countReceiving(this.now());
  }

  /** Forgets circuits quiet for longer than RECEIVE_ACTIVE_MS and counts the rest. */
  private countReceiving(t: number): number {
    let n = 0;
    for (const [c, at] of this.lastActive) {
      if (t - at > RECEIVE_ACTIVE_MS) this.lastActive.delete(c);
      else n++;
    }
    return n;
  }
}

/** One budget per link, made on first use (a client's entry links, an exit's links toward middles). */
export class ReceiveBudgets<Link extends object> {
  private readonly byLink = new WeakMap<Link, ReceiveBudget>();

  constructor(private readonly totalCells: number) {}

  of(link: Link): ReceiveBudget {
    let b = this.byLink.get(link);
    if (!b) {
      b = new ReceiveBudget(this.totalCells);
      this.byLink.set(link, b);
    }
    return b;
  }
}
