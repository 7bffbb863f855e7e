// Implements docs/protocol.md §7 from the client's side, and path choice: N distinct relays, the exit
// chosen first among those whose published policy may allow the target, each weighted by bandwidth.
import { AlliumError } from '../errors.js';
import type { ConsensusRelay } from '../wire/directory-docs.js';
import { ExitPolicy, parseIp } from './exit-policy.js';

export class PathError extends AlliumError {}

export interface PathOptions {
  length: number;
  /** Target of the first stream, to pick an exit that may allow it. */
  target?: { host: string; port: number };
  /** Relay ids (hex) not to use, e.g. ones that just failed. */
  exclude?: Set<string>;
  /** Randomness in [0, 1): injectable for tests. */
  random?: () => number;
}

const policyCache = new WeakMap<ConsensusRelay, ExitPolicy>();
export function relayPolicy(r: ConsensusRelay): ExitPolicy {
  let p = policyCache.get(r);
  if (!p) {
    // Published policies already spell out refused private ranges (see relay/private-ranges.ts).
    p = ExitPolicy.fromLines(r.exitPolicy, { allowPrivate: true });
    policyCache.set(r, p);
  }
  return p;
}

/** Whether this relay's published policy may let a stream to `target` out. */
export function exitMayAllow(r: ConsensusRelay, target: { host: string; port: number }): boolean {
  const policy = relayPolicy(r);
  return parseIp(target.host) ? policy.allows(target.host, target.port) : policy.mayAllowPort(target.port);
}

function weightedPick(candidates: ConsensusRelay[], random: () => number): ConsensusRelay {
  const total = candidates.reduce((s, r) => s + Math.max(1, r.bandwidth), 0);
  let x = random() * total;
  for (const r of candidates) {
    x -= Math.max(1, r.bandwidth);
    if (x < 0) return r;
  }
  return candidates[candidates.length - 1];
}

/** Picks [entry, ..., exit]. Throws PathError when the consensus cannot make such a path. */
export function choosePath(relays: ConsensusRelay[], opts: PathOptions): ConsensusRelay[] {
  const random = opts.random ?? Math.random;
  if (opts.length < 1) throw new PathError('ALLIUM_PATH_LENGTH', 'a path needs at least one relay');
  const usable = relays.filter((r) => r.flags.includes('Running') && !opts.exclude?.has(r.id));
  const exits = usable.filter(
    (r) => r.flags.includes('Exit') && (!opts.target || exitMayAllow(r, opts.target)),
  );
  if (exits.length === 0) {
    throw new PathError(
      'ALLIUM_PATH_NO_EXIT',
      opts.target
        ? `no relay in the consensus is an exit that allows ${opts.target.host}:${opts.target.port}`
        : 'no exit relay in the consensus',
    );
  }
  if (usable.length < opts.length) {
    throw new PathError(
      'ALLIUM_PATH_TOO_FEW',
      `a ${opts.length}-hop path needs ${opts.length} distinct running relays; the consensus has ${usable.length}`,
    );
  }
  const exit = weightedPick(exits, random);
  const path: ConsensusRelay[] = [];
  const used = new Set([exit.id]);
  for (let i = 0; i < opts.length - 1; i++) {
    // Prefer non-exits for entry and middle, so exit capacity is kept for exiting.
    const rest = usable.filter((r) => !used.has(r.id));
    const nonExit = rest.filter((r) => !r.flags.includes('Exit'));
    const r = weightedPick(nonExit.length > 0 ? nonExit : rest, random);
    used.add(r.id);
    path.push(r);
  }
  path.push(exit);
  return path;
}
