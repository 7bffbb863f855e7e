// Implements docs/protocol.md §5.1 (delay control): a receiver shrinks the window it names for a
// circuit whose round trip has grown by more than QUEUE_DELAY_TARGET_MS over the least seen on its
// link, and lets it grow back while it has not. It keeps queues short where the receive budget
// cannot: at a relay shared with other clients' circuits, each under a budget of its own.
import { CIRC_WINDOW_MAX, CIRC_WINDOW_MIN, LEGACY_CIRC_WINDOW_MAX } from '../wire/constants.js';
import { WindowedMin } from './windowed-min.js';

/**
 * Queueing delay a circuit may add before its receiver shrinks its window: less cost one download
 * its speed on one machine, more let the wait beside other clients' downloads drift
 * (docs/performance.md, "Delay control").
 */
export const QUEUE_DELAY_TARGET_MS = 20;

/** A circuit's window shrinks to this share of itself when its round trip shows a queue. */
export const WINDOW_DECREASE = 0.85;

/** The least round trip is the least of this period and the one before (so it can rise again). */
const MIN_RTT_PERIOD_MS = 10_000;

/** Round trips kept per circuit: its round trip now is the least of the latest of them. */
const RECENT_RTTS = 16;

/** The least of fewer than this many round trips does not stand for the circuit's round trip now. */
const RECENT_RTTS_NEEDED = 3;

/**
 * A circuit with a small window sends one SENDME a round trip or fewer: then its latest three round
 * trips count if they ended within this many least round trips.
 */
const RECENT_RTTS_SPAN = 4;

interface CircuitDelay {
  /** The most this circuit may name now. */
  cap: number;
  /** Its smoothed round trip, ms (0 before the first). */
  srtt: number;
  /** No further decrease before this time: the last one shows only a round trip later. */
  holdUntil: number;
  /** The latest round trips (ms) and when each was measured, a ring written at `next`. */
  recentRtt: Float64Array;
  recentAt: Float64Array;
  next: number;
}

export class DelayControl {
  private readonly circuits = new WeakMap<object, CircuitDelay>();
  private readonly minRtt: WindowedMin;

  constructor(private readonly now: () => number = () => performance.now()) {
    this.minRtt = new WindowedMin(MIN_RTT_PERIOD_MS, now);
  }

  /**
   * The window `circuit` may name, given the one it would name otherwise (`window`, its share of the
   * budget) and its latest round trip (`rttMs`, null when none was measured since its last SENDME).
   *
   * A circuit starts capped at 1024 cells, the most every release allows, and its cap grows by one
   * SENDME increment per SENDME (so it can double per round trip) while it shows no queue: a new
   * circuit given its whole share at once sends a burst that queues for several round trips.
   * A queue cuts the cap by 15%, at most once per least round trip: cut at every SENDME, a 4096-cell
   * window (64 SENDMEs a round trip) fell to the least before the first cut could show.
   *
   * `baseRttMs` is the link's base round trip timed another way (the last step of circuit builds, or
   * an exit's CONNECTED to first DATA), when known. Where it is shorter than the least round trip of
   * the SENDMEs, which happens when every circuit started under load and never saw the link quiet, a
   * round trip's worth of samples spans only it: with the longer span, samples taken far apart
   * under load read as one round trip, and a request beside other clients' downloads waited longer
   * (docs/performance.md, "Links whose delay varies").
   */
  limit(
    circuit: object,
    window: number,
    rttMs: number | null,
    baseRttMs: number = Number.POSITIVE_INFINITY,
  ): number {
    let st = this.circuits.get(circuit);
    if (!st) {
      st = {
        cap: LEGACY_CIRC_WINDOW_MAX,
        srtt: 0,
        holdUntil: 0,
        recentRtt: new Float64Array(RECENT_RTTS),
        recentAt: new Float64Array(RECENT_RTTS).fill(Number.NEGATIVE_INFINITY),
        next: 0,
      };
      this.circuits.set(circuit, st);
    }
    if (rttMs !== null) {
      this.minRtt.note(rttMs);
      st.srtt = st.srtt === 0 ? rttMs : 0.75 * st.srtt + 0.25 * rttMs;
      const least = this.minRtt.value;
      const t = this.now();
      st.recentRtt[st.next] = rttMs;
      st.recentAt[st.next] = t;
      st.next = (st.next + 1) % RECENT_RTTS;
      if (this.roundTripNow(st, t, Math.min(least, baseRttMs)) - least <= QUEUE_DELAY_TARGET_MS) {
        st.cap = Math.min(CIRC_WINDOW_MAX, st.cap + CIRC_WINDOW_MIN);
      } else if (t >= st.holdUntil) {
        st.cap = Math.max(CIRC_WINDOW_MIN, Math.floor(Math.min(st.cap, window) * WINDOW_DECREASE));
        st.holdUntil = t + least;
      }
    }
    return Math.min(window, st.cap);
  }

  /**
   * The circuit's round trip now: the least of those that ended within the last round trip `rtt`,
   * or of its latest three if fewer did and those ended within four; else, with too few samples,
   * the smoothed one. Linux's TCP Vegas judges a round trip's worth of samples by their least in the
   * same way. A queue raises every sample, but a link whose delay varies raises some more than
   * others, and the smoothed round trip took that for queue: with jitter of the order of the delay
   * target per link it cut every circuit to the smallest window.
   */
  private roundTripNow(st: CircuitDelay, t: number, rtt: number): number {
    let n = 0;
    let low = Number.POSITIVE_INFINITY;
    for (let k = 0; k < RECENT_RTTS; k++) {
      const i = (st.next - 1 - k + RECENT_RTTS) % RECENT_RTTS;
      const age = t - st.recentAt[i];
      if (age > rtt && (k >= RECENT_RTTS_NEEDED || age > RECENT_RTTS_SPAN * rtt)) break;
      n++;
      if (st.recentRtt[i] < low) low = st.recentRtt[i];
    }
    return n >= RECENT_RTTS_NEEDED ? low : st.srtt;
  }
}
