// Implements docs/protocol.md §5.1 (delay control): a receiver shrinks the window it names for a
// circuit whose round trip has grown by more than QUEUE_DELAY_TARGET_MS over the least seen on its
// link, and lets it grow back while it has not. It keeps queues short where the receive budget
// cannot: at a relay shared with other clients' circuits, each under a budget of its own.
import { CIRC_WINDOW_MAX, CIRC_WINDOW_MIN } from '../wire/constants.js';
import { WindowedMin } from './windowed-min.js';

/**
 * Queueing delay a circuit may add before its receiver shrinks its window. 10 ms cost one download
 * ~10% here; 20 ms kept it, and held the wait beside eight other clients' downloads to ~60-100 ms.
 */
export const QUEUE_DELAY_TARGET_MS = 20;

/** The least round trip is the least of this period and the one before (so it can rise again). */
const MIN_RTT_PERIOD_MS = 10_000;

export class DelayControl {
  private readonly circuits = new WeakMap<object, { cap: number; srtt: number }>();
  private readonly minRtt: WindowedMin;

  constructor(now: () => number = () => performance.now()) {
    this.minRtt = new WindowedMin(MIN_RTT_PERIOD_MS, now);
  }

  /**
   * The window `circuit` may name, given the one it would name otherwise (`window`, its share of the
   * budget) and its latest round trip (`rttMs`, null when none was measured since its last SENDME).
   */
  limit(circuit: object, window: number, rttMs: number | null): number {
    let st = this.circuits.get(circuit);
    if (!st) {
      st = { cap: CIRC_WINDOW_MAX, srtt: 0 };
      this.circuits.set(circuit, st);
    }
    if (rttMs !== null) {
      this.minRtt.note(rttMs);
      st.srtt = st.srtt === 0 ? rttMs : 0.75 * st.srtt + 0.25 * rttMs;
      const queued = st.srtt - this.minRtt.value;
      st.cap =
        queued > QUEUE_DELAY_TARGET_MS
          ? Math.max(CIRC_WINDOW_MIN, Math.floor(Math.min(st.cap, window) * 0.85))
          : Math.min(CIRC_WINDOW_MAX, st.cap + CIRC_WINDOW_MIN);
    }
    return Math.min(window, st.cap);
  }
}
