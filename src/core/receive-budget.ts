// Implements docs/protocol.md §5.1 (receive budget): the windows an endpoint (client or exit) names
// in its circuit SENDMEs share one budget per link, so the bytes in flight toward it, and queued in
// the relays and kernel buffers in front of it, stay near the budget however many circuits send.
import { CIRC_SENDME_INCREMENT, CIRC_WINDOW_MIN, LEGACY_CIRC_WINDOW_MAX } from '../wire/constants.js';
import { DelayControl } from './delay-control.js';
import { DeliveryRate } from './delivery-rate.js';
import { FlowControlError, type WindowShare } from './flow-control.js';
import { WindowedMin } from './windowed-min.js';

/**
 * 2 MiB per link, a client's and an exit's: one download kept its full speed on a loopback testnet,
 * with short queues beside it (docs/performance.md). It is the least budget: see RECEIVE_BUDGET_GAIN.
 */
export const DEFAULT_RECEIVE_BUDGET_CELLS = 512;

/**
 * On a long round trip a fixed budget caps the link at budget / round trip (2 MiB per 120 ms is
 * ~17 MiB/s, however many circuits). So the budget grows to this many times what arrived per base
 * round trip lately (the bandwidth-delay product), as BBR sizes its window: one round trip more
 * than the link carries lets the rate grow, and delay control keeps the queue that would make short.
 */
export const RECEIVE_BUDGET_GAIN = 2;

/** The budget grows to at most 32 MiB per link. */
export const MAX_RECEIVE_BUDGET_CELLS = 8192;

/** The base round trip is the least noted in this period and the one before (so it can rise again). */
const BASE_RTT_PERIOD_MS = 60_000;

/** A circuit that has acknowledged cells this long ago no longer counts as receiving. */
export const RECEIVE_ACTIVE_MS = 200;

/**
 * Splits `totalCells` evenly among the circuits that are receiving now. A circuit counts from its
 * last SENDME for RECEIVE_ACTIVE_MS; one alone gets the whole budget (up to the largest window its
 * peer accepts).
 */
export class ReceiveBudget {
  private readonly lastActive = new Map<object, number>();
  private readonly delay: DelayControl;
  private readonly rate: DeliveryRate;
  private readonly baseRtt: WindowedMin;

  /** `totalCells` is the least budget; it grows with the link's bandwidth-delay product. */
  constructor(
    readonly totalCells: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    if (!Number.isInteger(totalCells) || totalCells < CIRC_WINDOW_MIN) {
      throw new FlowControlError(
        'ALLIUM_FLOW_BUDGET',
        `a receive budget is at least ${CIRC_WINDOW_MIN} cells, got ${totalCells}`,
      );
    }
    this.delay = new DelayControl(now);
    this.rate = new DeliveryRate(now);
    this.baseRtt = new WindowedMin(BASE_RTT_PERIOD_MS, now);
  }

  /**
   * A round trip over a whole circuit on this link that no data of ours queued behind: the client
   * notes the last step of each build (EXTEND to the exit and back). Round trips timed from
   * SENDMEs would not do: circuits that start together queue their first windows behind each other,
   * so even the least of those holds a queue.
   */
  noteBaseRtt(ms: number): void {
    if (ms > 0 && Number.isFinite(ms)) this.baseRtt.note(ms);
  }

  /** The least base round trip noted in the last 60-120 s (Infinity before the first). */
  get baseRttMs(): number {
    return this.baseRtt.value;
  }

  /**
   * The budget now: `totalCells`, or RECEIVE_BUDGET_GAIN times the cells that arrived per base
   * round trip lately if that is more (at most MAX_RECEIVE_BUDGET_CELLS). Without a base round trip
   * (an exit's budget for uploads), `totalCells`.
   */
  get currentCells(): number {
    const rtt = this.baseRttMs;
    if (!Number.isFinite(rtt)) return this.totalCells;
    const wanted = Math.ceil(RECEIVE_BUDGET_GAIN * this.rate.maxPerMs * rtt);
    return Math.max(this.totalCells, Math.min(MAX_RECEIVE_BUDGET_CELLS, wanted));
  }

  /**
   * The window `circuit` names in the SENDME it sends now: its share of the budget, at most
   * `largest` (what its peer accepts), less if its round trip (`rttMs`, from CircuitWindow) shows a
   * queue (src/core/delay-control.ts).
   */
  grant(circuit: object, rttMs: number | null = null, largest: number = LEGACY_CIRC_WINDOW_MAX): number {
    const t = this.now();
    this.lastActive.set(circuit, t);
    // A circuit SENDME goes out for every CIRC_SENDME_INCREMENT DATA cells received.
    this.rate.record(CIRC_SENDME_INCREMENT, this.baseRttMs);
    const receiving = this.countReceiving(t);
    const share = Math.min(largest, Math.max(CIRC_WINDOW_MIN, Math.floor(this.currentCells / receiving)));
    return this.delay.limit(circuit, share, rttMs, this.baseRttMs);
  }

  /**
   * What `circuit` names in the SENDME it sends now without telling how many circuits share the link:
   * the window of a circuit alone on it (the budget, at most `largest`), with what `grant` would have
   * named as the cells it lets be in flight; the circuit holds its SENDMEs to keep to that
   * (CircuitWindow). The peer learns the budget, not the count of circuits receiving.
   */
  grantShare(
    circuit: object,
    rttMs: number | null = null,
    largest: number = LEGACY_CIRC_WINDOW_MAX,
  ): WindowShare {
    const inFlight = this.grant(circuit, rttMs, largest);
    return { window: Math.min(largest, this.currentCells), inFlight };
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

  /** `totalCells`: each link's least budget. */
  constructor(readonly totalCells: number) {}

  /** The budget of `link` if it has one (without making one). */
  peek(link: Link): ReceiveBudget | undefined {
    return this.byLink.get(link);
  }

  of(link: Link): ReceiveBudget {
    let b = this.byLink.get(link);
    if (!b) {
      b = new ReceiveBudget(this.totalCells);
      this.byLink.set(link, b);
    }
    return b;
  }
}
