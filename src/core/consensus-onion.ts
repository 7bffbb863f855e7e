// Implements docs/protocol.md §6.8 rule 7 (the onion-service fields of a consensus computed from votes,
// §8.3): a deterministic function of the votes counted, so every authority signs the same ring values.
import { type Period, periodBytes } from '../crypto/key-blinding.js';
import { sha256 } from '../crypto/keys.js';
import type { Vote, VoteOnion } from '../wire/authority-docs.js';
import type { ConsensusOnion, RingValue } from '../wire/directory-docs.js';
import { publishedRingPeriods } from './onion-period.js';

const RING_VALUE = Buffer.from('allium-hs-ring-value-v1', 'ascii');

/**
 * SHA-256("allium-hs-ring-value-v1" | p | contributions, sorted bytewise): no single contribution
 * decides it, and the order the votes arrived in does not matter.
 */
export function combineRingValue(p: Period, contributions: readonly Buffer[]): Buffer {
  const sorted = [...contributions].sort(Buffer.compare);
  return sha256(RING_VALUE, periodBytes(p), ...sorted);
}

/** The value a strict majority of `lists` carry for `period`, or null. */
function majorityValue(lists: readonly RingValue[][], period: number): string | null {
  const counts = new Map<string, number>();
  for (const list of lists) {
    const v = list.find((r) => r.period === period)?.value;
    if (v !== undefined) counts.set(v, (counts.get(v) ?? 0) + 1);
  }
  for (const [value, n] of counts) if (2 * n > lists.length) return value;
  return null;
}

/**
 * The onion fields of the consensus of `validAfter` from the votes counted (§6.8 rule 7), or undefined:
 * 1. the settings (period length, onlyListedBeforeReveal) more than half of the counted votes carry;
 *    the votes with those settings are the group (none: no onion fields);
 * 2. for each period the consensus publishes (its own, and the next from its reveal on): the value
 *    more than half of the group already saw in a consensus a majority signed, so a value once
 *    published stays; else the combination of the group's contributions for it; else none.
 */
export function consensusOnion(votes: readonly Vote[], validAfter: number): ConsensusOnion | undefined {
  const bySettings = new Map<string, VoteOnion[]>();
  for (const v of votes) {
    if (!v.onion) continue;
    const key = `${v.onion.periodSeconds}:${v.onion.onlyListedBeforeReveal}`;
    const list = bySettings.get(key);
    if (list) list.push(v.onion);
    else bySettings.set(key, [v.onion]);
  }
  const group = [...bySettings.values()].find((g) => 2 * g.length > votes.length);
  if (!group) return undefined;
  const { periodSeconds, onlyListedBeforeReveal } = group[0];
  const ringValues: RingValue[] = [];
  for (const p of publishedRingPeriods(validAfter, periodSeconds)) {
    const agreed = majorityValue(
      group.map((o) => o.ringValues),
      p.number,
    );
    if (agreed !== null) {
      ringValues.push({ period: p.number, value: agreed });
      continue;
    }
    const contributions = group
      .map((o) => o.contributions.find((c) => c.period === p.number)?.value)
      .filter((c): c is string => c !== undefined)
      .map((c) => Buffer.from(c, 'base64'));
    if (contributions.length > 0) {
      ringValues.push({ period: p.number, value: combineRingValue(p, contributions).toString('base64') });
    }
  }
  return { periodSeconds, ringValues, onlyListedBeforeReveal };
}

/**
 * A relay's listedSince from the entries of the votes listing it: the high-median of those that carry
 * one (the later of the two middle values), so authorities wanting a relay on the ring sooner than
 * the others say need more than half of the entries; undefined when none carries one.
 */
export function combineListedSince(values: readonly (number | undefined)[]): number | undefined {
  const known = values.filter((v): v is number => v !== undefined).sort((a, b) => a - b);
  return known.length === 0 ? undefined : known[Math.floor(known.length / 2)];
}
