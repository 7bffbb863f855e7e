// Implements docs/protocol.md §8.3 (where descriptors are stored): a hash ring over the relays of the
// consensus, as Tor's HSDirs. Relays sit on the ring at hashes of their id and the period's ring
// value, which nobody knew before it was published, and a relay listed after that is left off, so no
// relay can place itself next to a service it targets. Pure: the caller brings the relays and value.
import type { Period } from '../crypto/key-blinding.js';
import { periodBytes } from '../crypto/key-blinding.js';
import { sha256 } from '../crypto/keys.js';
import { ringValueRevealMs } from './onion-period.js';

/** Each descriptor goes to this many places on the ring (Tor's hsdir_n_replicas). */
export const STORE_REPLICAS = 2;
/** Relays after each place that the service stores at (Tor's hsdir_spread_store). */
export const STORE_SPREAD = 4;
/** Of those, the relays a client asks (Tor's hsdir_spread_fetch): fewer, so churn between the two consensuses is absorbed. */
export const FETCH_SPREAD = 3;

const NODE_INDEX = Buffer.from('allium-hs-node-index-v1', 'ascii');
const STORE_INDEX = Buffer.from('allium-hs-store-index-v1', 'ascii');

/** A relay as the ring needs it. */
export interface RingRelay {
  /** The relay id (32 bytes). */
  id: Buffer;
  /** When the directory first listed it (ms): relays listed after the ring value was out stay off. */
  listedSince: number;
}

export interface RingParams {
  blindedKey: Buffer;
  period: Period;
  /** The period's 32 random bytes from the consensus (§8.3). */
  ringValue: Buffer;
  /** Leave off relays listed after the value was published: always, except on test networks. */
  onlyListedBeforeReveal: boolean;
}

/** SHA-256("allium-hs-node-index-v1" | relay id | ring value | period). */
export function nodeIndex(relayId: Buffer, ringValue: Buffer, period: Period): Buffer {
  return sha256(NODE_INDEX, relayId, ringValue, periodBytes(period));
}

/** SHA-256("allium-hs-store-index-v1" | A'_p | replica(u8) | period), replica 1..STORE_REPLICAS. */
export function storeIndex(blindedKey: Buffer, replica: number, period: Period): Buffer {
  return sha256(STORE_INDEX, blindedKey, Buffer.from([replica]), periodBytes(period));
}

/**
 * The stores of one descriptor, replica by replica: for each, the `spread` relays whose node index
 * follows the replica's store index on the ring (wrapping), skipping relays an earlier replica took.
 * A service stores at every one (spread STORE_SPREAD); a client asks, in random order, those of
 * spread FETCH_SPREAD. Fewer relays than asked for give every relay once. Ids as 64 hex digits.
 */
export function descriptorStores(relays: RingRelay[], p: RingParams, spread: number): string[][] {
  const reveal = ringValueRevealMs(p.period);
  const ring = relays
    .filter((r) => !p.onlyListedBeforeReveal || r.listedSince < reveal)
    .map((r) => ({ id: r.id.toString('hex'), index: nodeIndex(r.id, p.ringValue, p.period) }))
    .sort((a, b) => Buffer.compare(a.index, b.index) || a.id.localeCompare(b.id));
  const taken = new Set<string>();
  const out: string[][] = [];
  for (let replica = 1; replica <= STORE_REPLICAS; replica++) {
    const at = storeIndex(p.blindedKey, replica, p.period);
    let start = ring.findIndex((n) => Buffer.compare(n.index, at) > 0);
    if (start < 0) start = 0;
    const chosen: string[] = [];
    for (let k = 0; k < ring.length && chosen.length < spread; k++) {
      const id = ring[(start + k) % ring.length].id;
      if (taken.has(id)) continue;
      taken.add(id);
      chosen.push(id);
    }
    out.push(chosen);
  }
  return out;
}
