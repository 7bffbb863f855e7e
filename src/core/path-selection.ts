// Implements docs/protocol.md §7 from the client's side, and path choice: N distinct relays, no two in
// one /16 (IPv4) or /32 (IPv6) or one declared family, the exit chosen first among those whose
// published policy may allow the target, the entry from the client's guards when it has them, each
// weighted by a bandwidth clamped so that no relay's self-reported figure can take every circuit.
import { AlliumError } from '../errors.js';
import { MIN_EXIT_VERSION, MIN_RELAY_VERSION, versionAtLeast } from '../version.js';
import type { ConsensusRelay } from '../wire/directory-docs.js';
import { ExitPolicy, isPrivateAddress, parseIp } from './exit-policy.js';

export class PathError extends AlliumError {}

/** A relay's self-reported bandwidth counts for at most this many times the median of the consensus. */
export const BANDWIDTH_CLAMP_FACTOR = 10;

export interface PathOptions {
  length: number;
  /** Target of the first stream, to pick an exit that may allow it. */
  target?: { host: string; port: number };
  /** Relay ids (hex) not to use, e.g. ones that just failed. */
  exclude?: Set<string>;
  /**
   * Randomness in [0, 1). Core is pure, so the caller brings it: the client passes the CSPRNG's
   * (src/crypto/random.ts), since a predictable choice would tell relays which paths come next.
   */
  random: () => number;
  /**
   * No two relays of a path in one /16 (IPv4) or /32 (IPv6). `true` enforces it always; `false`
   * never (a test network on one host); unset ('auto') enforces it unless every running relay sits
   * in one such subnet, where no path could be built anyway: that is a test network on one host
   * (all on 127.0.0.1) or a network run by one operator, and a path through it hides nothing more
   * by refusing to run.
   */
  enforceSubnets?: boolean;
  /**
   * Entry guards (relay ids, in order of preference; see src/client/guards.ts). When given, the entry
   * is the first of them that is running, not excluded and compatible with the chosen exit; when
   * none is, the path fails (ALLIUM_PATH_NO_GUARD) rather than falling back to a random entry.
   */
  guards?: string[];
  /**
   * The last relay, chosen by the caller instead of an exit (an onion service's introduction point,
   * rendezvous point or store, protocol §8): it needs no Exit flag and is taken even if `exclude`
   * names it, as long as the consensus lists it running. `target` is not used then.
   */
  lastHop?: ConsensusRelay;
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

/**
 * The subnet a relay's address falls in for path diversity: the first 2 bytes of an IPv4 address
 * (IPv4-mapped IPv6 included) or the first 4 of an IPv6 one, as a string key. Null for an address
 * that does not parse (the consensus validates addresses, so only hand-made relays have one).
 */
export function subnetKey(address: string): string | null {
  const ip = parseIp(address);
  if (!ip) return null;
  if (ip.length === 4) return `4:${ip[0]}.${ip[1]}`;
  const mapped = ip.subarray(0, 10).every((b) => b === 0) && ip[10] === 0xff && ip[11] === 0xff;
  if (mapped) return `4:${ip[12]}.${ip[13]}`;
  return `6:${ip.subarray(0, 4).toString('hex')}`;
}

/** Relays declaring each other in `family` (both ways, as in Tor) are run by one operator. */
export function sameFamily(a: ConsensusRelay, b: ConsensusRelay): boolean {
  const fa = (a as { family?: string[] }).family;
  const fb = (b as { family?: string[] }).family;
  return !!fa && !!fb && fa.includes(b.id) && fb.includes(a.id);
}

/** May `a` and `b` be on one path? */
export function compatible(a: ConsensusRelay, b: ConsensusRelay, enforceSubnets: boolean): boolean {
  if (a.id === b.id) return false;
  if (sameFamily(a, b)) return false;
  if (enforceSubnets) {
    const sa = subnetKey(a.address);
    if (sa !== null && sa === subnetKey(b.address)) return false;
  }
  return true;
}

/** Whether the subnet rule applies to this set of relays under `opt` (see PathOptions.enforceSubnets). */
export function subnetsEnforced(relays: ConsensusRelay[], opt: boolean | undefined): boolean {
  if (opt !== undefined) return opt;
  const keys = new Set(relays.map((r) => subnetKey(r.address)));
  return keys.size > 1;
}

function median(values: number[]): number {
  if (values.length === 0) return 1;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/**
 * Path-selection weight of each relay: its bandwidth (at least 1), clamped to BANDWIDTH_CLAMP_FACTOR
 * times the median over `relays`. Bandwidth is self-reported, so without the clamp one relay
 * claiming 10^15 bytes/s would be on nearly every circuit.
 */
export function bandwidthWeights(relays: ConsensusRelay[]): Map<string, number> {
  const bws = relays.map((r) => Math.max(1, Number.isFinite(r.bandwidth) ? r.bandwidth : 1));
  const cap = Math.max(1, median(bws) * BANDWIDTH_CLAMP_FACTOR);
  return new Map(relays.map((r, i) => [r.id, Math.min(bws[i], cap)]));
}

function weightedPick(
  candidates: ConsensusRelay[],
  weights: Map<string, number>,
  random: () => number,
): ConsensusRelay {
  const w = (r: ConsensusRelay) => weights.get(r.id) ?? 1;
  const total = candidates.reduce((s, r) => s + w(r), 0);
  let x = random() * total;
  for (const r of candidates) {
    x -= w(r);
    if (x < 0) return r;
  }
  return candidates[candidates.length - 1];
}

/** Picks [entry, ..., exit]. Throws PathError when the consensus cannot make such a path. */
export function choosePath(relays: ConsensusRelay[], opts: PathOptions): ConsensusRelay[] {
  const random = opts.random;
  if (opts.length < 1) throw new PathError('ALLIUM_PATH_LENGTH', 'a path needs at least one relay');
  const running = relays.filter((r) => r.flags.includes('Running') && !opts.exclude?.has(r.id));
  // A relay of an older release cannot read this release's cells (protocol §3.4): never on a path.
  const usable = running.filter((r) => versionAtLeast(r.version, MIN_RELAY_VERSION));
  const tooOld = running.length - usable.length;
  const subnets = subnetsEnforced(usable, opts.enforceSubnets);
  const weights = bandwidthWeights(usable);
  const ok = (r: ConsensusRelay, path: ConsensusRelay[]) => path.every((p) => compatible(r, p, subnets));

  let guards: ConsensusRelay[] | null = null;
  if (opts.guards) {
    const byId = new Map(usable.map((r) => [r.id, r]));
    guards = opts.guards.map((id) => byId.get(id)).filter((r): r is ConsensusRelay => r !== undefined);
    if (guards.length === 0) {
      throw new PathError(
        'ALLIUM_PATH_NO_GUARD',
        "none of this client's entry guards is running in the consensus: wait for them to return, or delete guards.json in the data directory to choose new ones",
      );
    }
  }

  const last = opts.lastHop;
  const allowing = last
    ? relays.filter((r) => r.id === last.id && r.flags.includes('Running'))
    : usable.filter((r) => r.flags.includes('Exit') && (!opts.target || exitMayAllow(r, opts.target)));
  let exits = allowing.filter((r) => versionAtLeast(r.version, last ? MIN_RELAY_VERSION : MIN_EXIT_VERSION));
  if (last && exits.length === 0) {
    throw new PathError(
      'ALLIUM_PATH_TOO_FEW',
      `relay ${last.nickname} is not running in the consensus, or runs a release older than ${MIN_RELAY_VERSION.join('.')}`,
    );
  }
  if (exits.length === 0) {
    throw new PathError(
      'ALLIUM_PATH_NO_EXIT',
      allowing.length > 0
        ? `every exit that may carry this stream runs a release older than ${MIN_EXIT_VERSION.join('.')}, whose flow control this client does not speak: upgrade the exits`
        : tooOld > 0 && running.some((r) => r.flags.includes('Exit') && !usable.includes(r))
          ? `every exit in the consensus that may carry this stream runs a release older than ${MIN_RELAY_VERSION.join('.')}, whose cell crypto this client does not speak: upgrade the exits`
          : opts.target
            ? `no relay in the consensus is an exit that allows ${opts.target.host}:${opts.target.port}${noExitHint(opts.target.host)}`
            : 'no exit relay in the consensus',
    );
  }
  if (usable.length < opts.length) {
    throw new PathError(
      'ALLIUM_PATH_TOO_FEW',
      `a ${opts.length}-hop path needs ${opts.length} distinct running relays; the consensus has ${usable.length}` +
        (tooOld > 0
          ? ` of release ${MIN_RELAY_VERSION.join('.')} or later (${tooOld} more run an older release, whose cell crypto this client does not speak)`
          : ''),
    );
  }
  if (guards && opts.length > 1) {
    const g = guards;
    exits = exits.filter((e) => g.some((x) => compatible(x, e, subnets)));
    if (exits.length === 0) {
      throw new PathError(
        'ALLIUM_PATH_NO_GUARD',
        "every usable exit shares a subnet or family with all of this client's entry guards",
      );
    }
  }

  // A few tries: an unlucky early pick (say, a middle in the only other subnet) can leave no room.
  for (let attempt = 0; attempt < 8; attempt++) {
    const exit = weightedPick(exits, weights, random);
    const path: ConsensusRelay[] = [];
    if (opts.length > 1 && guards) {
      const entry = guards.find((g) => ok(g, [exit]));
      if (!entry) continue;
      path.push(entry);
    }
    let stuck = false;
    while (path.length < opts.length - 1) {
      const chosen = [...path, exit];
      const rest = usable.filter((r) => ok(r, chosen));
      if (rest.length === 0) {
        stuck = true;
        break;
      }
      // Prefer non-exits for entry and middle, so exit capacity is kept for exiting.
      const nonExit = rest.filter((r) => !r.flags.includes('Exit'));
      path.push(weightedPick(nonExit.length > 0 ? nonExit : rest, weights, random));
    }
    if (stuck) continue;
    path.push(exit);
    return path;
  }
  throw new PathError(
    'ALLIUM_PATH_DIVERSITY',
    `cannot find ${opts.length} running relays in distinct /16 (IPv4) or /32 (IPv6) subnets and families` +
      (opts.target ? ` with an exit that allows ${opts.target.host}:${opts.target.port}` : '') +
      (guards ? " starting at one of this client's entry guards" : ''),
  );
}

/** What to do when no exit allows a destination: loopback and private ones need --allow-private. */
function noExitHint(host: string): string {
  return isPrivateAddress(host) || host === 'localhost'
    ? ': exits refuse loopback and private addresses unless started with --allow-private (`allium relay --exit --allow-private`; `allium testnet` does this)'
    : ': start an exit whose --exit-policy allows it, or wait for one to register';
}
