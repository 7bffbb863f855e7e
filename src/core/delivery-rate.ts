// Implements docs/protocol.md §5.1 (the receive budget's delivery rate): how fast DATA cells have
// arrived on one link lately, so the budget can cover what is in flight on a long round trip.

/** A rate sample counts for this long: across a pause between downloads, not for ever. */
export const RATE_SAMPLE_LIFETIME_MS = 20_000;

/**
 * Samples are taken over at least this long: over a few event-loop turns, the cells a busy client
 * handled in one burst read as many times what the link carried.
 */
export const RATE_MIN_INTERVAL_MS = 100;

/** Cells per millisecond arriving on one link: the most of the samples of the last 20 s. */
export class DeliveryRate {
  private since: number;
  private cells = 0;
  private samples: { at: number; perMs: number }[] = [];

  constructor(private readonly now: () => number = () => performance.now()) {
    this.since = now();
  }

  /**
   * `cells` more arrived. A sample is taken once at least `intervalMs` (raised to
   * RATE_MIN_INTERVAL_MS) has passed since the last one: the caller passes its round trip.
   * Returns whether a sample was taken (only then can `maxPerMs` have grown).
   */
  record(cells: number, intervalMs: number): boolean {
    const t = this.now();
    this.cells += cells;
    const elapsed = t - this.since;
    if (elapsed < Math.max(RATE_MIN_INTERVAL_MS, intervalMs)) return false;
    this.samples.push({ at: t, perMs: this.cells / elapsed });
    this.since = t;
    this.cells = 0;
    return true;
  }

  /** The most cells per millisecond among the samples still current (0 before the first). */
  get maxPerMs(): number {
    const t = this.now();
    while (this.samples.length > 0 && t - this.samples[0].at > RATE_SAMPLE_LIFETIME_MS) this.samples.shift();
    let most = 0;
    for (const s of this.samples) most = Math.max(most, s.perMs);
    return most;
  }
}
