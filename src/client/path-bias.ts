// Path bias, after Tor's path-spec ("Path bias"): a guard sees every circuit a client builds through it
// and can kill (TRUNCATED, DESTROY) each one that does not reach relays it likes, steering the client to
// colluding middles and exits for free, since a failed build blames the relay being added. So the client
// counts, per guard, the builds that got past the guard and those that completed; a guard whose
// circuits fail far more than a network's normally do is reported and, past a threshold, dropped.

/** How a guard's builds look: fine, worth a note, worth a warning, or bad enough to drop it. */
export type PathBiasVerdict = 'ok' | 'notice' | 'warn' | 'drop';

export interface PathBiasOptions {
  /** Builds through a guard before it is judged at all (Tor: 150). */
  minCircuits?: number;
  /** Success rates under which a guard is noted, warned about, and dropped (Tor: 70%, 50%, 30%). */
  noticeRate?: number;
  warnRate?: number;
  dropRate?: number;
  /** Counts are halved once a guard has this many attempts, so its recent builds weigh most (Tor: 300). */
  scaleAt?: number;
}

/** 20 builds: an honest guard whose builds fail 10% of the time falls under 70% success in 0.2% of them. */
export const DEFAULT_PATH_BIAS_MIN_CIRCUITS = 20;

export interface GuardBias {
  guard: string;
  /** Builds that got past the guard (it answered the first hop). */
  attempts: number;
  /** Of those, the builds that completed. */
  successes: number;
  verdict: PathBiasVerdict;
}

interface Counts {
  attempts: number;
  successes: number;
  verdict: PathBiasVerdict;
}

export class PathBias {
  private readonly counts = new Map<string, Counts>();
  readonly minCircuits: number;
  private readonly noticeRate: number;
  private readonly warnRate: number;
  private readonly dropRate: number;
  private readonly scaleAt: number;
  /** Guards dropped for path bias so far. */
  dropped = 0;

  constructor(opts: PathBiasOptions = {}) {
    this.minCircuits = opts.minCircuits ?? DEFAULT_PATH_BIAS_MIN_CIRCUITS;
    this.noticeRate = opts.noticeRate ?? 0.7;
    this.warnRate = opts.warnRate ?? 0.5;
    this.dropRate = opts.dropRate ?? 0.3;
    this.scaleAt = Math.max(2 * this.minCircuits, opts.scaleAt ?? 300);
  }

  /**
   * A build through `guard` that got past it ended, completed or not. Returns the guard's verdict when
   * this build changed it (to report it), else null.
   */
  record(guard: string, built: boolean): PathBiasVerdict | null {
    let c = this.counts.get(guard);
    if (!c) {
      c = { attempts: 0, successes: 0, verdict: 'ok' };
      this.counts.set(guard, c);
    }
    c.attempts++;
    if (built) c.successes++;
    if (c.attempts >= this.scaleAt) {
      c.attempts = Math.floor(c.attempts / 2);
      c.successes = Math.floor(c.successes / 2);
    }
    let verdict = this.judge(c);
    // Failing as badly through another guard as well says the network (or this client's view of it)
    // fails, not the guard: dropping would only rotate through guards, each a new chance of a bad one.
    if (verdict === 'drop' && c.verdict !== 'drop' && this.failingElsewhere(guard)) verdict = 'warn';
    if (verdict === c.verdict) return null;
    c.verdict = verdict;
    if (verdict === 'drop') this.dropped++;
    return verdict;
  }

  private judge(c: Counts): PathBiasVerdict {
    if (c.attempts < this.minCircuits) return c.verdict === 'drop' ? 'drop' : 'ok';
    const rate = c.successes / c.attempts;
    if (rate < this.dropRate) return 'drop';
    if (c.verdict === 'drop') return 'drop'; // once dropped, a guard stays dropped
    if (rate < this.warnRate) return 'warn';
    if (rate < this.noticeRate) return 'notice';
    return 'ok';
  }

  /** Whether another guard has been judged, and falls under the drop rate too. */
  private failingElsewhere(guard: string): boolean {
    for (const [other, c] of this.counts) {
      if (other !== guard && c.attempts >= this.minCircuits && c.successes / c.attempts < this.dropRate)
        return true;
    }
    return false;
  }

  verdict(guard: string): PathBiasVerdict {
    return this.counts.get(guard)?.verdict ?? 'ok';
  }

  /**
   * Whether failures through `guard` say nothing about the other relays: it is under suspicion, so the
   * relays it failed to reach are not avoided on its word (that is how it would steer).
   */
  suspect(guard: string): boolean {
    return this.verdict(guard) !== 'ok';
  }

  /** Every guard's counts, for metrics and the dashboard. */
  guards(): GuardBias[] {
    return [...this.counts].map(([guard, c]) => ({ guard, ...c }));
  }
}
