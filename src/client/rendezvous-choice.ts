// Implements docs/protocol.md §8.10 (the client's choice of a rendezvous point): which relays may
// be chosen. Pure: the caller draws one of them with the CSPRNG.
import { MIN_RELAY_VERSION, versionAtLeast } from '../version.js';
import type { ConsensusRelay } from '../wire/directory-docs.js';

/**
 * The relays a rendezvous point is drawn from: running relays of a release that serves as one,
 * never a guard (it would see both the client and the rendezvous), not an introduction point of the
 * descriptor, and not one in `avoid` (relays that just failed, or were tried for this connection),
 * each rule given up only when nothing else is left (a small network). Empty: no relay will do.
 */
export function rendezvousCandidates(
  relays: readonly ConsensusRelay[],
  o: { guards: Set<string>; points: Set<string>; avoid: Set<string> },
): ConsensusRelay[] {
  let usable = relays.filter(
    (r) => r.flags.includes('Running') && versionAtLeast(r.version, MIN_RELAY_VERSION) && !o.guards.has(r.id),
  );
  const live = usable.filter((r) => !o.avoid.has(r.id));
  if (live.length > 0) usable = live;
  const apart = usable.filter((r) => !o.points.has(r.id));
  return apart.length > 0 ? apart : usable;
}
