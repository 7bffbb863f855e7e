// Implements docs/directory-api.md "Authorities" (client side): how one authority asks another for
// the votes it holds and for its consensus signature, over the HTTP API.
import { ErrorCode } from '../errors.js';
import { DirectoryClient, type DirectoryClientError } from '../net/directory-client.js';
import { type AuthorityEntry, MAX_AUTHORITIES, MAX_VOTE_BYTES } from '../wire/authority-docs.js';
import type { PeerApi } from './voting.js';

/** Every authority's vote, JSON-escaped once more inside the answer, bounds an answer's size. */
export const MAX_VOTES_ANSWER = MAX_AUTHORITIES * (2 * MAX_VOTE_BYTES + 8192);

export function httpPeerApi(timeoutMs: number): PeerApi {
  const clients = new Map<string, DirectoryClient>();
  const client = (peer: AuthorityEntry) => {
    let c = clients.get(peer.id);
    if (!c) {
      c = new DirectoryClient({ url: peer.url, timeoutMs });
      clients.set(peer.id, c);
    }
    return c;
  };
  return {
    votes: (peer, validAfter) => client(peer).authorityVotes(validAfter, MAX_VOTES_ANSWER),
    signature: async (peer, validAfter) => {
      try {
        return await client(peer).authoritySignature(validAfter);
      } catch (err) {
        if ((err as DirectoryClientError).code === ErrorCode.DIRECTORY_NOT_FOUND) return null;
        throw err;
      }
    },
  };
}
