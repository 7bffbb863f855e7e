// Implements docs/protocol.md §8.3 at the directory (and §6.7's onion part of a vote): the random
// value it draws for each period, kept on disk so a value once published never changes, and, at an
// authority, the values it saw in a consensus a majority signed.

import { periodAt, publishedRingPeriods } from '../core/onion-period.js';
import { consensusPeriod } from '../core/onion-ring.js';
import type { Period } from '../crypto/key-blinding.js';
import { randomBytes } from '../crypto/keys.js';
import type { VoteOnion } from '../wire/authority-docs.js';
import type { ConsensusOnion, ConsensusView, RingValue } from '../wire/directory-docs.js';

export interface OnionSettings {
  /** Length of a period (s): 86400 on a real network, shorter on test networks. */
  periodSeconds: number;
  /** Leave relays listed after a value's publication off that period's ring (off on test networks). */
  onlyListedBeforeReveal: boolean;
}

/** A real network's: a day (Tor's), and new relays off the ring until they were listed before a reveal. */
export const DEFAULT_ONION_SETTINGS: OnionSettings = { periodSeconds: 86_400, onlyListedBeforeReveal: true };

/**
 * Test networks' (`allium testnet`, the test helpers): ten-minute periods, so a run sees a reveal and a
 * new period, and every relay on the ring, since they are all new.
 */
export const TEST_NETWORK_ONION_SETTINGS: OnionSettings = {
  periodSeconds: 600,
  onlyListedBeforeReveal: false,
};

/** One kept value, as the data directory stores it. */
export interface StoredRingValue {
  periodSeconds: number;
  period: number;
  value: string;
}

export interface StoredRingValues {
  /** What this directory drew (a single directory publishes these; an authority contributes them). */
  drawn: StoredRingValue[];
  /** An authority's: the values of consensuses a majority signed. */
  signed: StoredRingValue[];
}

const key = (p: Period) => `${p.length}:${p.number}`;

export class RingValues {
  private readonly drawn = new Map<string, StoredRingValue>();
  private readonly signed = new Map<string, StoredRingValue>();

  constructor(
    readonly settings: OnionSettings,
    /** The CSPRNG (tests count its calls). */
    readonly random: (n: number) => Buffer = randomBytes,
  ) {}

  load(stored: StoredRingValues | undefined): void {
    for (const v of stored?.drawn ?? [])
      this.drawn.set(key({ number: v.period, length: v.periodSeconds }), v);
    for (const v of stored?.signed ?? [])
      this.signed.set(key({ number: v.period, length: v.periodSeconds }), v);
  }

  snapshot(): StoredRingValues {
    return { drawn: [...this.drawn.values()], signed: [...this.signed.values()] };
  }

  /**
   * Draws the values of the period of `now` and the next one that are not drawn yet, a quarter period
   * and more before the next one's is published, so the caller saves them before anyone sees them;
   * forgets those of past periods. True when it drew or forgot something (the caller saves).
   */
  prepare(now: number): boolean {
    const current = periodAt(now, this.settings.periodSeconds);
    let changed = false;
    for (const map of [this.drawn, this.signed]) {
      for (const [k, v] of map) {
        if (v.periodSeconds !== current.length || v.period < current.number - 1) {
          map.delete(k);
          changed = true;
        }
      }
    }
    for (const p of [current, { number: current.number + 1, length: current.length }]) {
      if (!this.drawn.has(key(p))) {
        this.draw(p);
        changed = true;
      }
    }
    return changed;
  }

  private draw(p: Period): string {
    const value = this.random(32).toString('base64');
    this.drawn.set(key(p), { periodSeconds: p.length, period: p.number, value });
    return value;
  }

  /** Period p's drawn value, drawing it now if prepare() did not (a clock that jumped). */
  private drawnValue(p: Period): { value: string; drew: boolean } {
    const held = this.drawn.get(key(p));
    return held ? { value: held.value, drew: false } : { value: this.draw(p), drew: true };
  }

  /** A single directory's onion fields at `now` (§8.3); `drew`: a value was drawn now (save it). */
  consensusOnion(now: number): { onion: ConsensusOnion; drew: boolean } {
    let drew = false;
    const ringValues: RingValue[] = publishedRingPeriods(now, this.settings.periodSeconds).map((p) => {
      const v = this.drawnValue(p);
      drew ||= v.drew;
      return { period: p.number, value: v.value };
    });
    return { onion: { ...this.settings, ringValues }, drew };
  }

  /** True when a consensus built at `now` would publish the ring values of the same periods as `c`. */
  publishesSame(c: ConsensusView, now: number): boolean {
    const held = (c.onion?.ringValues ?? []).map((r) => r.period).join(',');
    return (
      held ===
      publishedRingPeriods(now, this.settings.periodSeconds)
        .map((p) => p.number)
        .join(',')
    );
  }

  /** An authority's onion part of its vote for the period from `validAfter` (§6.7). */
  voteOnion(validAfter: number): { onion: VoteOnion; drew: boolean } {
    let drew = false;
    const periods = publishedRingPeriods(validAfter, this.settings.periodSeconds);
    const contributions = periods.map((p) => {
      const v = this.drawnValue(p);
      drew ||= v.drew;
      return { period: p.number, value: v.value };
    });
    const ringValues = periods
      .map((p) => this.signed.get(key(p)))
      .filter((v): v is StoredRingValue => v !== undefined)
      .map((v) => ({ period: v.period, value: v.value }));
    return { onion: { ...this.settings, contributions, ringValues }, drew };
  }

  /**
   * Keeps the ring values of a consensus a majority signed, so later votes carry them and later
   * consensuses of those periods publish the same values. True when something new was kept (save).
   */
  keepSigned(consensus: ConsensusView): boolean {
    const onion = consensus.onion;
    if (!onion || consensusPeriod(consensus) === null || onion.periodSeconds !== this.settings.periodSeconds)
      return false;
    let changed = false;
    for (const r of onion.ringValues) {
      const p = { number: r.period, length: onion.periodSeconds };
      if (this.signed.get(key(p))?.value !== r.value) {
        this.signed.set(key(p), { periodSeconds: p.length, period: p.number, value: r.value });
        changed = true;
      }
    }
    return changed;
  }
}
