// Implements docs/protocol.md §6.11 (caches): which relays of a consensus serve it, and at what URL.
import type { ConsensusView } from '../wire/directory-docs.js';

/** The cache URL of every running relay of `c` that names a cache port, in consensus order. */
export function cacheUrlsOf(c: ConsensusView | null): string[] {
  if (!c) return [];
  const out: string[] = [];
  for (const r of c.relays) {
    if (r.cachePort === undefined || !r.flags.includes('Running')) continue;
    const host = r.address.includes(':') ? `[${r.address}]` : r.address;
    out.push(`http://${host}:${r.cachePort}`);
  }
  return out;
}
