// One voting period as an authority holds it (docs/protocol.md §6.7-§6.9): the votes and signatures
// gathered, why any is missing, and the consensus computed from them.
import type { AuthorityConsensus, ConsensusSignature, Vote, VoteDocument } from '../wire/authority-docs.js';

export interface ComputedConsensus {
  consensus: AuthorityConsensus;
  body: string;
  digest: string;
}

/** Everything one authority holds about one period. */
export interface Period {
  validAfter: number;
  votes: Map<string, { doc: VoteDocument; vote: Vote }>;
  voteProblems: Map<string, string>;
  /** Why an authority could not be asked directly this period (its vote may still come through others). */
  unreachable: Map<string, string>;
  computed: ComputedConsensus | null;
  /** Why no consensus was computed (too few votes), when so. */
  computeProblem: string | null;
  signatures: Map<string, ConsensusSignature>;
  signatureProblems: Map<string, string>;
  /** The served JSON, remade when a signature arrives. */
  json: string | null;
  reported: boolean;
  /** VotingOptions.onSigned was called for its consensus. */
  signedNoted: boolean;
}
