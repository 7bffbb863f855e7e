// Implements docs/protocol.md §6.8 (computing the consensus from votes): a deterministic function of
// the configured authorities and the votes, so every authority holding the same votes signs the same
// bytes, whatever order the votes arrived in.
import type { AuthorityConsensus, Vote } from '../wire/authority-docs.js';
import { type ConsensusRelay, descriptorFields } from '../wire/directory-docs.js';
import { majorityOf } from './authority-set.js';
import { combineListedSince, consensusOnion } from './consensus-onion.js';
import { DocumentError } from './documents.js';

/** Flags in the order a consensus lists them; any other flag follows, alphabetically. */
export const KNOWN_FLAGS: readonly string[] = ['Running', 'Exit'];

/** A vote left out of a consensus, and why. */
export interface IgnoredVote {
  authority: string;
  reason: string;
}

export interface ConsensusInputs {
  /** Ids of every configured authority (the majority is of these, not of the votes at hand). */
  authorities: readonly string[];
  /** Verified votes, at most one per authority. */
  votes: readonly Vote[];
  /** The period to compute: votes for another period are left out. */
  validAfter: number;
}

export interface ConsensusOutcome {
  consensus: AuthorityConsensus;
  ignored: IgnoredVote[];
}

/** The lower of the two middle values (the middle one for an odd count): Tor's low-median. */
export function lowMedian(values: readonly number[]): number {
  if (values.length === 0) throw new RangeError('lowMedian of no values');
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)];
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function flagOrder(a: string, b: string): number {
  const ia = KNOWN_FLAGS.indexOf(a);
  const ib = KNOWN_FLAGS.indexOf(b);
  if (ia !== -1 || ib !== -1)
    return (ia === -1 ? KNOWN_FLAGS.length : ia) - (ib === -1 ? KNOWN_FLAGS.length : ib);
  return compareStrings(a, b);
}

/**
 * Everything an entry says of a relay except its bandwidth and flags, as text: entries with equal
 * keys describe the same descriptor, and the consensus takes one descriptor whole (its address,
 * port and onion key belong together).
 */
function descriptorKey(r: ConsensusRelay): string {
  const { bandwidth: _bandwidth, ...rest } = descriptorFields(r);
  return JSON.stringify(rest);
}

/**
 * The consensus entry of one relay from the entries of the votes that list it: the descriptor most
 * votes carry (ties: the later `published`, then the greater text), the low-median bandwidth, and
 * each flag that more than half of these votes give it.
 */
function combineEntries(entries: readonly ConsensusRelay[]): ConsensusRelay {
  const variants = new Map<string, { entry: ConsensusRelay; count: number }>();
  for (const e of entries) {
    const key = descriptorKey(e);
    const held = variants.get(key);
    if (held) held.count++;
    else variants.set(key, { entry: e, count: 1 });
  }
  let best: { key: string; entry: ConsensusRelay; count: number } | null = null;
  for (const [key, v] of variants) {
    if (
      best === null ||
      v.count > best.count ||
      (v.count === best.count &&
        (v.entry.published > best.entry.published ||
          (v.entry.published === best.entry.published && key > best.key)))
    ) {
      best = { key, ...v };
    }
  }
  const chosen = (best as { entry: ConsensusRelay }).entry;
  const flagCounts = new Map<string, number>();
  for (const e of entries) for (const f of new Set(e.flags)) flagCounts.set(f, (flagCounts.get(f) ?? 0) + 1);
  const flags = [...flagCounts]
    .filter(([, n]) => 2 * n > entries.length)
    .map(([f]) => f)
    .sort(flagOrder);
  const listedSince = combineListedSince(entries.map((e) => e.listedSince));
  return {
    ...descriptorFields(chosen),
    bandwidth: lowMedian(entries.map((e) => e.bandwidth)),
    flags,
    ...(listedSince !== undefined ? { listedSince } : {}),
  };
}

/**
 * The consensus of one period (§6.8). Throws ALLIUM_CONSENSUS_TOO_FEW_VOTES when fewer than a strict
 * majority of the configured authorities voted for the period, ALLIUM_VOTE_INVALID on two votes from
 * one authority (the caller keeps one).
 */
export function computeConsensus(inputs: ConsensusInputs): ConsensusOutcome {
  const configured = new Set(inputs.authorities);
  const n = configured.size;
  const needed = majorityOf(n);
  const ignored: IgnoredVote[] = [];
  const used = new Map<string, Vote>();
  for (const vote of inputs.votes) {
    if (!configured.has(vote.authority)) {
      ignored.push({ authority: vote.authority, reason: 'not a configured authority' });
    } else if (vote.validAfter !== inputs.validAfter) {
      ignored.push({
        authority: vote.authority,
        reason: `a vote for the period from ${new Date(vote.validAfter).toISOString()}, not ${new Date(inputs.validAfter).toISOString()}`,
      });
    } else if (used.has(vote.authority)) {
      throw new DocumentError(
        'ALLIUM_VOTE_INVALID',
        `two votes from authority ${vote.authority} for one period: keep one`,
      );
    } else {
      used.set(vote.authority, vote);
    }
  }
  ignored.sort((a, b) => compareStrings(a.authority, b.authority) || compareStrings(a.reason, b.reason));
  if (used.size < needed) {
    throw new DocumentError(
      'ALLIUM_CONSENSUS_TOO_FEW_VOTES',
      `${used.size} of ${n} votes for the period from ${new Date(inputs.validAfter).toISOString()}; need ${needed}`,
    );
  }
  const votes = [...used.values()].sort((a, b) => compareStrings(a.authority, b.authority));
  const byRelay = new Map<string, ConsensusRelay[]>();
  for (const vote of votes) {
    for (const r of vote.relays) {
      const list = byRelay.get(r.id);
      if (list) list.push(r);
      else byRelay.set(r.id, [r]);
    }
  }
  const relays: ConsensusRelay[] = [];
  for (const id of [...byRelay.keys()].sort(compareStrings)) {
    const entries = byRelay.get(id) as ConsensusRelay[];
    // A strict majority of all configured authorities, not of those that voted: a minority of
    // authorities, however many others are down, never lists a relay on its own.
    if (2 * entries.length > n) relays.push(combineEntries(entries));
  }
  const consensus: AuthorityConsensus = {
    network: 'allium',
    serial: inputs.validAfter,
    validAfter: inputs.validAfter,
    freshUntil: Math.max(inputs.validAfter, lowMedian(votes.map((v) => v.freshUntil))),
    validUntil: Math.max(inputs.validAfter, lowMedian(votes.map((v) => v.validUntil))),
    authorities: votes.map((v) => v.authority),
    relays,
  };
  const onion = consensusOnion(votes, inputs.validAfter);
  if (onion) consensus.onion = onion;
  return { consensus, ignored };
}
