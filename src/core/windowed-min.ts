// The least of recent values, for the round trips of §5.1 (delay control's least round trip, the
// receive budget's base round trip): the least of this period and the one before, so it can rise
// again when the path changes, and never forgets the last period's least all at once.
export class WindowedMin {
  private current = Number.POSITIVE_INFINITY;
  private previous = Number.POSITIVE_INFINITY;
  private since: number;

  constructor(
    private readonly periodMs: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.since = now();
  }

  note(value: number): void {
    const t = this.now();
    if (t - this.since > this.periodMs) {
      this.previous = this.current;
      this.current = Number.POSITIVE_INFINITY;
      this.since = t;
    }
    this.current = Math.min(this.current, value);
  }

  /** The least value of this period and the last (Infinity before the first). */
  get value(): number {
    return Math.min(this.current, this.previous);
  }
}
