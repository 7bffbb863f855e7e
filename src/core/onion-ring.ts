// Implements docs/protocol.md §8.3 from a consensus: the period a consensus falls in, that period's
// ring value, and the relays that store one blinded key's descriptors. Pure.
import type { Period } from '../crypto/key-blinding.js';
import type { ConsensusRelay, ConsensusView } from '../wire/directory-docs.js';
import { periodAt } from './onion-period.js';
import { descriptorStores } from './onion-stores.js';

/** The period of the consensus (its validAfter), or null when it carries no onion fields. */
export function consensusPeriod(consensus: ConsensusView): Period | null {
  if (!consensus.onion) return null;
  return periodAt(consensus.validAfter, consensus.onion.periodSeconds);
}

/** The period after `p`, of the same length. */
export function nextPeriod(p: Period): Period {
  return { number: p.number + 1, length: p.length };
}

/** Period `p`'s ring value (32 bytes), or null when the consensus does not (yet) publish it. */
export function ringValueFor(consensus: ConsensusView, p: Period): Buffer | null {
  const onion = consensus.onion;
  if (!onion || onion.periodSeconds !== p.length) return null;
  const found = onion.ringValues.find((v) => v.period === p.number);
  if (!found) return null;
  const value = Buffer.from(found.value, 'base64');
  return value.length === 32 ? value : null;
}

/**
 * The relays that store `blindedKey`'s descriptors in period `p`, replica by replica (§8.3), at
 * `spread` (STORE_SPREAD for a service, FETCH_SPREAD for a client); null without the ring value.
 * Relays the consensus does not mark Running, or without `listedSince`, are not on the ring.
 */
export function storesFor(
  consensus: ConsensusView,
  blindedKey: Buffer,
  p: Period,
  spread: number,
): ConsensusRelay[][] | null {
  const ringValue = ringValueFor(consensus, p);
  if (!ringValue || !consensus.onion) return null;
  const byId = new Map<string, ConsensusRelay>();
  for (const r of consensus.relays) {
    if (r.flags.includes('Running') && r.listedSince !== undefined) byId.set(r.id.toLowerCase(), r);
  }
  const ids = descriptorStores(
    [...byId.entries()].map(([id, r]) => ({ id: Buffer.from(id, 'hex'), listedSince: r.listedSince! })),
    { blindedKey, period: p, ringValue, onlyListedBeforeReveal: consensus.onion.onlyListedBeforeReveal },
    spread,
  );
  return ids.map((replica) => replica.map((id) => byId.get(id)!));
}
