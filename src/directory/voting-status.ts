// What an authority's status page and log show of one voting period (docs/directory.md "Several
// authorities"): per authority, whether its vote and signature are held, why not, and where its vote
// differs from the consensus computed.
import type { AuthoritySet, Vote } from '../wire/authority-docs.js';
import type { Period } from './voting-period.js';

/** One authority's view of one period, for the status page. */
export interface AuthorityRow {
  nickname: string;
  id: string;
  url: string;
  self: boolean;
  vote: {
    held: boolean;
    relays?: number;
    problem?: string;
    /**
     * Where the vote differs from the consensus computed: relays it lists that fewer than a majority
     * voted for (left out), and listed relays it lacks (it dropped or never checked them).
     */
    leftOut?: number;
    lacking?: number;
    /** Why it could not be asked directly, when its vote came through another authority. */
    indirect?: string;
  };
  signature: { held: boolean; problem?: string };
}

export interface VotingStatus {
  validAfter: number;
  majority: number;
  configured: number;
  computed: { serial: number; relays: number; digest: string; votes: number } | null;
  computeProblem: string | null;
  signatures: number;
  /** The period of the consensus served now, if any. */
  servedValidAfter: number | null;
  authorities: AuthorityRow[];
}

/** Relays `vote` lists that the consensus left out, and listed relays it lacks. */
export function voteDifference(
  vote: Vote,
  listed: ReadonlySet<string>,
): { leftOut: number; lacking: number } {
  const voted = new Set(vote.relays.map((r) => r.id));
  let leftOut = 0;
  for (const id of voted) if (!listed.has(id)) leftOut++;
  let lacking = 0;
  for (const id of listed) if (!voted.has(id)) lacking++;
  return { leftOut, lacking };
}

/** Where the status is taken: the set, this authority, and the periods computed and served. */
export interface StatusContext {
  set: AuthoritySet;
  self: string;
  majority: number;
  validAfter: number;
  servedValidAfter: number | null;
}

/** The status of period `p` (undefined: none held yet). */
export function votingStatus(p: Period | undefined, at: StatusContext): VotingStatus {
  const listed = p?.computed ? new Set(p.computed.consensus.relays.map((r) => r.id)) : null;
  return {
    validAfter: at.validAfter,
    majority: at.majority,
    configured: at.set.authorities.length,
    computed: p?.computed
      ? {
          serial: p.computed.consensus.serial,
          relays: p.computed.consensus.relays.length,
          digest: p.computed.digest,
          votes: p.computed.consensus.authorities.length,
        }
      : null,
    computeProblem: p?.computeProblem ?? null,
    signatures: p?.signatures.size ?? 0,
    servedValidAfter: at.servedValidAfter,
    authorities: at.set.authorities.map((a) => {
      const vote = p?.votes.get(a.id);
      const differs = vote && listed ? voteDifference(vote.vote, listed) : {};
      return {
        nickname: a.nickname,
        id: a.id,
        url: a.url,
        self: a.id === at.self,
        vote: {
          held: vote !== undefined,
          relays: vote?.vote.relays.length,
          problem: p?.voteProblems.get(a.id),
          indirect: vote ? p?.unreachable.get(a.id) : undefined,
          ...differs,
        },
        signature: { held: p?.signatures.has(a.id) ?? false, problem: p?.signatureProblems.get(a.id) },
      };
    }),
  };
}
