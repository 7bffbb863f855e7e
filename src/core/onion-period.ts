// Implements docs/protocol.md §8.3 (time periods): which period a moment falls in, when it starts,
// and when its ring value may first be known. Pure arithmetic on the times it is given.
import { CryptoError, CryptoErrorCode } from '../crypto/errors.js';
import type { Period } from '../crypto/key-blinding.js';

/** A period lasts a day by default (Tor's): a new blinded key, and new stores, once a day. */
export const DEFAULT_PERIOD_SECONDS = 86_400;

/** The period of `timeMs` (the consensus's validAfter, so every party with that consensus agrees). */
export function periodAt(timeMs: number, lengthSeconds: number): Period {
  if (!Number.isInteger(lengthSeconds) || lengthSeconds < 1) {
    throw new CryptoError(
      CryptoErrorCode.ARGUMENT,
      `a period lasts a whole number of seconds, got ${lengthSeconds}`,
    );
  }
  return { number: Math.floor(timeMs / 1000 / lengthSeconds), length: lengthSeconds };
}

export function periodStartMs(p: Period): number {
  return p.number * p.length * 1000;
}

/**
 * The last quarter of a period: when the directory publishes the next period's ring value and
 * services store their next descriptors, so the stores hold them before any client asks.
 */
export function revealLeadMs(p: Period): number {
  return Math.floor((p.length * 1000) / 4);
}

/** When period p's ring value is first published (§8.3): its start less the lead. */
export function ringValueRevealMs(p: Period): number {
  return periodStartMs(p) - revealLeadMs(p);
}

/**
 * The periods whose ring values a consensus of `timeMs` publishes (§8.3): its own period and, from
 * the next one's reveal on, the next one.
 */
export function publishedRingPeriods(timeMs: number, lengthSeconds: number): Period[] {
  const current = periodAt(timeMs, lengthSeconds);
  const next = { number: current.number + 1, length: lengthSeconds };
  return timeMs >= ringValueRevealMs(next) ? [current, next] : [current];
}
