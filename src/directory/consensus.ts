// Implements docs/protocol.md §6.3 (building the consensus the directory signs) and the listing limits of
// docs/directory-api.md (what a relay's entry carries, and which relays fit under the size cap).
import { ExitPolicy, formatExitRule, parseExitPolicy } from '../core/exit-policy.js';
import {
  type Consensus,
  type ConsensusOnion,
  type ConsensusRelay,
  descriptorFields,
  MAX_CONSENSUS_BYTES,
  type RelayDescriptor,
} from '../wire/directory-docs.js';

export interface ConsensusTiming {
  /** The consensus is rebuilt after this long even when nothing changed (ms). */
  freshMs: number;
  /** Clients accept it for this long (ms); longer than freshMs so they ride out a directory outage. */
  validMs: number;
}

/**
 * Bytes of the consensus body reserved for everything but the relay entries (network, serial, times,
 * key: about 200 bytes; the onion fields, about 200 more), so the entries may use the rest and the
 * whole body still fits its cap.
 */
export const CONSENSUS_HEADER_RESERVE = 1024;

/** What the relay entries of one consensus may add up to (bytes of the serialised body). */
export const CONSENSUS_RELAYS_BUDGET = MAX_CONSENSUS_BYTES - CONSENSUS_HEADER_RESERVE;

/**
 * The next serial: one more than the last, and never below the build time in ms, so serials keep
 * increasing across restarts even if the last one was not yet saved when the directory died.
 */
export function nextSerial(previous: number, now: number): number {
  return Math.max(previous + 1, Math.floor(now));
}

/**
 * A relay is an exit when its policy accepts something (§6.2: empty or reject-all is a non-exit). The
 * rules are read literally (allowPrivate): a descriptor does not say whether its relay refuses private
 * destinations, and a test network's exits accept only loopback.
 */
export function isExitDescriptor(d: RelayDescriptor): boolean {
  try {
    return ExitPolicy.fromLines(d.exitPolicy, { allowPrivate: true }).isExit();
  } catch {
    // Policies were checked at registration; a parser change since then demotes rather than crashes.
    return false;
  }
}

export function relayFlags(d: RelayDescriptor): string[] {
  return isExitDescriptor(d) ? ['Running', 'Exit'] : ['Running'];
}

/**
 * The descriptor as the consensus lists it: the exit policy as its rules in canonical form (comments,
 * blank lines and spacing dropped, which a client never reads), the family without duplicates or the
 * relay itself, in sorted order. Only the directory's copy changes; the relay's signed envelope is kept.
 */
export function normalizeDescriptor(d: RelayDescriptor): RelayDescriptor {
  const out = descriptorFields(d);
  out.exitPolicy = parseExitPolicy(d.exitPolicy).map(formatExitRule);
  if (d.family) {
    const family = [...new Set(d.family)].filter((id) => id !== d.id).sort();
    if (family.length > 0) out.family = family;
    else delete out.family;
  }
  return out;
}

/**
 * The descriptor's entry in the consensus (`flags`: relayFlags(d), when the caller has them already;
 * `listedSince`: when the directory first listed it, §8.3).
 */
export function consensusEntry(
  d: RelayDescriptor,
  flags = relayFlags(d),
  listedSince?: number,
): ConsensusRelay {
  return { ...descriptorFields(d), flags: [...flags], ...(listedSince !== undefined ? { listedSince } : {}) };
}

/** The most `,"listedSince":N` adds to an entry (N a safe integer: 16 digits). */
export const LISTED_SINCE_BYTES = ',"listedSince":'.length + 16;

/** Bytes the relay's entry adds to the consensus body, its separating comma and listedSince included. */
export function consensusEntryBytes(d: RelayDescriptor, flags = relayFlags(d)): number {
  return Buffer.byteLength(JSON.stringify(consensusEntry(d, flags)), 'utf8') + 1 + LISTED_SINCE_BYTES;
}

export interface ListedCandidate {
  descriptor: RelayDescriptor;
  /** Bytes of its entry, when known (consensusEntryBytes). */
  entryBytes?: number;
  /** When the relay was first listed: older relays keep their place when the consensus is full. */
  firstSeen: number;
}

/**
 * The relays a consensus lists, in id order: all of them while their entries fit in `budget` bytes;
 * otherwise the longest-listed first (earliest firstSeen, then lowest id) until the next would not fit,
 * so a flood of new relays can never push the relays already listed (or the consensus) out.
 */
export function selectWithinBudget<T extends ListedCandidate>(
  relays: readonly T[],
  budget = CONSENSUS_RELAYS_BUDGET,
): { listed: T[]; dropped: T[] } {
  const sized = relays.map((r) => ({ r, bytes: r.entryBytes ?? consensusEntryBytes(r.descriptor) }));
  const total = sized.reduce((sum, s) => sum + s.bytes, 0);
  if (total <= budget) return { listed: [...relays], dropped: [] };
  const byAge = [...sized].sort(
    (a, b) => a.r.firstSeen - b.r.firstSeen || compareIds(a.r.descriptor.id, b.r.descriptor.id),
  );
  const listed: T[] = [];
  const dropped: T[] = [];
  let used = 0;
  for (const s of byAge) {
    // Stop at the first relay that does not fit: a younger, smaller one never jumps an older one.
    if (dropped.length === 0 && used + s.bytes <= budget) {
      listed.push(s.r);
      used += s.bytes;
    } else {
      dropped.push(s.r);
    }
  }
  listed.sort((a, b) => compareIds(a.descriptor.id, b.descriptor.id));
  return { listed, dropped };
}

function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The consensus listing `relays`. `flagsOf` gives a relay's flags when they were worked out already:
 * deciding whether a long policy lets anything out takes milliseconds, too long to repeat per build.
 */
export function buildConsensus(
  relays: readonly RelayDescriptor[],
  opts: ConsensusTiming & {
    serial: number;
    now: number;
    directoryKey: string;
    flagsOf?: (d: RelayDescriptor) => string[] | undefined;
    listedSinceOf?: (d: RelayDescriptor) => number | undefined;
    onion?: ConsensusOnion;
  },
): Consensus {
  const listed: ConsensusRelay[] = relays.map((d) =>
    consensusEntry(d, opts.flagsOf?.(d) ?? relayFlags(d), opts.listedSinceOf?.(d)),
  );
  return {
    network: 'allium',
    serial: opts.serial,
    validAfter: opts.now,
    freshUntil: opts.now + opts.freshMs,
    validUntil: opts.now + opts.validMs,
    directoryKey: opts.directoryKey,
    relays: listed,
    ...(opts.onion ? { onion: opts.onion } : {}),
  };
}
