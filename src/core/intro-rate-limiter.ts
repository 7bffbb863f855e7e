// Implements docs/protocol.md §8.8 (introduction rate limits): a token bucket on the clock the
// caller passes in. An introduction point keeps one per introduction circuit, at the rate the service
// asked for within the relay's bounds; a service keeps one for all the INTRODUCE2s it answers.

/** Tor's defaults for an introduction point (HiddenServiceEnableIntroDoSRatePerSec, ...BurstPerSec). */
export const DEFAULT_INTRO_RATE = 25;
export const DEFAULT_INTRO_BURST = 200;

export interface IntroLimits {
  /** Introductions per second. */
  rate: number;
  /** The most at once after a quiet spell. */
  burst: number;
}

/**
 * The limits an introduction point applies: what the service asked for in ESTABLISH_INTRO (0 for
 * "your default"), never above the relay's own bound, and a burst of at least one.
 */
export function introLimits(asked: IntroLimits, relayMax: IntroLimits): IntroLimits {
  const rate = Math.min(asked.rate === 0 ? DEFAULT_INTRO_RATE : asked.rate, relayMax.rate);
  const burst = Math.min(asked.burst === 0 ? DEFAULT_INTRO_BURST : asked.burst, relayMax.burst);
  return { rate: Math.max(1, rate), burst: Math.max(1, burst) };
}

export class IntroRateLimiter {
  private tokens: number;
  private last: number;
  private refusedCount = 0;

  constructor(
    private readonly limits: IntroLimits,
    nowMs: number,
  ) {
    this.tokens = limits.burst;
    this.last = nowMs;
  }

  /** Introductions refused so far (for the metrics). */
  get refused(): number {
    return this.refusedCount;
  }

  /** Whether one more introduction may pass at `nowMs`; a clock that steps back adds nothing. */
  admit(nowMs: number): boolean {
    const elapsed = Math.max(0, nowMs - this.last);
    this.last = Math.max(this.last, nowMs);
    this.tokens = Math.min(this.limits.burst, this.tokens + (elapsed / 1000) * this.limits.rate);
    if (this.tokens < 1) {
      this.refusedCount++;
      return false;
    }
    this.tokens -= 1;
    return true;
  }
}
