// Implements docs/protocol.md §6.7-§6.10 for anyone holding the published votes: recompute the
// consensus of a period by the rule of §6.8 and compare it byte for byte with the one the authorities
// signed (`allium directory verify`). No I/O: the caller fetches or reads the documents.

import {
  type AuthorityConsensus,
  type AuthoritySet,
  parseAuthorityConsensusBody,
  parseSignedConsensus,
  type Vote,
} from '../wire/authority-docs.js';
import type { ConsensusRelay } from '../wire/directory-docs.js';
import { consensusBodyText, consensusSignatureProblem, openVote } from './authority-documents.js';
import { authorityLabel, majorityOf } from './authority-set.js';
import { computeConsensus } from './consensus-rule.js';
import { DocumentError } from './documents.js';

export interface ConsensusCheck {
  /** True when the recomputed body is the signed body, byte for byte. */
  match: boolean;
  serial: number;
  /** Configured authorities whose signature of the body counts (checked at the period's start). */
  signers: number;
  needed: number;
  /** One line per finding, for people: the signatures, each vote, the comparison. */
  lines: string[];
}

/** At most this many relays are named one by one in a difference; the rest are counted. */
const NAMED = 10;

function names(relays: readonly ConsensusRelay[]): string {
  const shown = relays.slice(0, NAMED).map((r) => `${r.nickname} (${r.id.slice(0, 8)})`);
  const more = relays.length > NAMED ? `, and ${relays.length - NAMED} more` : '';
  return `${shown.join(', ')}${more}`;
}

/** Where two consensuses of one period differ, in words. */
function differences(signed: AuthorityConsensus, ours: AuthorityConsensus): string[] {
  const out: string[] = [];
  if (signed.authorities.join(',') !== ours.authorities.join(',')) {
    out.push(
      `computed from the votes of ${signed.authorities.map((a) => a.slice(0, 8)).join(', ') || 'none'}; the votes at hand are of ${ours.authorities.map((a) => a.slice(0, 8)).join(', ') || 'none'}`,
    );
  }
  for (const k of ['validAfter', 'freshUntil', 'validUntil', 'serial'] as const) {
    if (signed[k] !== ours[k]) out.push(`${k} is ${signed[k]}; the votes give ${ours[k]}`);
  }
  const mine = new Map(ours.relays.map((r) => [r.id, r]));
  const theirs = new Map(signed.relays.map((r) => [r.id, r]));
  const extra = signed.relays.filter((r) => !mine.has(r.id));
  const lacking = ours.relays.filter((r) => !theirs.has(r.id));
  const changed = signed.relays.filter((r) => {
    const o = mine.get(r.id);
    return o !== undefined && JSON.stringify(o) !== JSON.stringify(r);
  });
  if (extra.length) out.push(`lists ${extra.length} relays the votes do not: ${names(extra)}`);
  if (lacking.length) out.push(`lacks ${lacking.length} relays the votes list: ${names(lacking)}`);
  if (changed.length) out.push(`${changed.length} relays differ in their fields: ${names(changed)}`);
  if (JSON.stringify(signed.onion) !== JSON.stringify(ours.onion)) {
    out.push(
      `the onion fields (§8.3) are ${JSON.stringify(signed.onion)}; the votes give ${JSON.stringify(ours.onion)}`,
    );
  }
  if (out.length === 0) out.push('the same fields, in other bytes');
  return out;
}

/**
 * Checks a signed consensus (`{ body, signatures }`) against votes (each a §6.7 vote document) under
 * `set`: counts the signatures, opens each vote (refused ones are named, not used), recomputes the
 * consensus of the body's period by §6.8 and compares. Times are checked as at the period's start, so
 * an old consensus checks as it did then.
 */
export function checkConsensusAgainstVotes(
  set: AuthoritySet,
  consensusJson: unknown,
  votes: readonly unknown[],
): ConsensusCheck {
  let signed: AuthorityConsensus;
  let doc: ReturnType<typeof parseSignedConsensus>;
  try {
    doc = parseSignedConsensus(consensusJson);
    signed = parseAuthorityConsensusBody(doc.body);
  } catch (err) {
    throw new DocumentError(
      'ALLIUM_CONSENSUS_INVALID',
      `not a consensus of an authority set: ${(err as Error).message}`,
    );
  }
  const at = { now: signed.validAfter };
  const n = set.authorities.length;
  const needed = majorityOf(n);
  const lines: string[] = [];
  let signers = 0;
  const sigProblems: string[] = [];
  for (const a of set.authorities) {
    const mine = doc.signatures.filter((s) => s.authority === a.id);
    const problems = mine.map((s) => consensusSignatureProblem(s, doc.body, a, at));
    if (problems.includes(null)) signers++;
    else sigProblems.push(`${authorityLabel(a)}: ${problems[0] ?? 'no signature'}`);
  }
  lines.push(
    `consensus serial ${signed.serial} (period from ${new Date(signed.validAfter).toISOString()}): ${signed.relays.length} relays, ${signers} of ${n} signatures; need ${needed}${sigProblems.length ? ` (${sigProblems.join('; ')})` : ''}`,
  );

  const opened = new Map<string, Vote>();
  for (const [i, json] of votes.entries()) {
    let vote: Vote;
    try {
      vote = openVote(json, set, at);
    } catch (err) {
      lines.push(`vote ${i + 1}: refused: ${(err as Error).message}`);
      continue;
    }
    const who = set.authorities.find((a) => a.id === vote.authority);
    const label = who ? authorityLabel(who) : vote.authority.slice(0, 8);
    if (vote.validAfter !== signed.validAfter) {
      lines.push(
        `vote of ${label}: for another period (from ${new Date(vote.validAfter).toISOString()}): left out`,
      );
      continue;
    }
    if (opened.has(vote.authority)) {
      lines.push(`vote of ${label}: a second one for this period: left out`);
      continue;
    }
    opened.set(vote.authority, vote);
    lines.push(`vote of ${label}: ${vote.relays.length} relays`);
  }

  let ours: AuthorityConsensus;
  try {
    ours = computeConsensus({
      authorities: set.authorities.map((a) => a.id),
      votes: [...opened.values()],
      validAfter: signed.validAfter,
    }).consensus;
  } catch (err) {
    lines.push(`mismatch: the votes give no consensus: ${(err as Error).message}`);
    return { match: false, serial: signed.serial, signers, needed, lines };
  }
  const text = consensusBodyText(ours);
  if (text === doc.body) {
    lines.push(
      `match: the consensus is what these ${opened.size} votes give by the rule of protocol.md §6.8, byte for byte`,
    );
    return { match: true, serial: signed.serial, signers, needed, lines };
  }
  lines.push(`mismatch: the consensus is not what these votes give: ${differences(signed, ours).join('; ')}`);
  return { match: false, serial: signed.serial, signers, needed, lines };
}
