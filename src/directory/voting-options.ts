// What an authority's voting is given (docs/protocol.md §6.7-§6.9): the set, its signer, the period
// lengths, the relays it checked, and how it asks its peers.
import type { AuthoritySigner } from '../core/authority-documents.js';
import type { Logger } from '../log.js';
import type { AuthorityConsensus, AuthorityEntry, AuthoritySet, VoteOnion } from '../wire/authority-docs.js';
import type { ConsensusRelay } from '../wire/directory-docs.js';

/** How an authority asks another for votes and signatures (DirectoryClient over HTTP). */
export interface PeerApi {
  votes(peer: AuthorityEntry, validAfter: number): Promise<{ votes: unknown[]; current?: number }>;
  /** Null when the peer has computed no consensus for that period. */
  signature(peer: AuthorityEntry, validAfter: number): Promise<{ digest: string; signature: unknown } | null>;
}

export interface VotingOptions {
  set: AuthoritySet;
  /** This authority's id. */
  self: string;
  signer: AuthoritySigner;
  /** Length of a voting period (ms); periods start at multiples of it since the epoch. */
  intervalMs: number;
  /** What this authority proposes for freshUntil - validAfter and validUntil - validAfter (ms). */
  freshMs: number;
  validMs: number;
  /** The relays this authority checked itself, with their flags, in id order. */
  relays: (now: number) => ConsensusRelay[];
  /** Its onion part of the vote for the period from validAfter (§6.7, §8.3); none: votes carry none. */
  onion?: (validAfter: number) => VoteOnion;
  /** Told of each consensus once a majority signed it (it keeps the ring values, §6.8 rule 7). */
  onSigned?: (consensus: AuthorityConsensus) => void;
  peers: PeerApi;
  logger: Logger;
  now?: () => number;
}
