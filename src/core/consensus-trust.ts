// Implements docs/protocol.md §6.3 and §6.10 for whoever checks a consensus: one rule for a
// consensus signed by a single directory key and for one signed by a majority of authorities.
import {
  type AuthoritySet,
  parseAuthorityConsensusBody,
  parseSignedConsensus,
} from '../wire/authority-docs.js';
import { type ConsensusView, parseConsensusBody, type SignedEnvelope } from '../wire/directory-docs.js';
import { openSignedConsensus } from './authority-documents.js';
import { authorityLabel, singleAuthoritySet } from './authority-set.js';
import { DocumentError, type OpenConsensusOptions, openConsensusJson } from './documents.js';

/** What a client or relay trusts: one directory's key, or a set of authorities. */
export type ConsensusTrust =
  | { kind: 'directory'; url: string; key: Buffer }
  | { kind: 'authorities'; set: AuthoritySet };

/** A consensus that passed the checks, and the document (as served) to cache or pass on. */
export interface TrustedConsensus {
  consensus: ConsensusView;
  /** `{ body, signature }` or `{ body, signatures }`, exactly the fields that were checked. */
  document: SignedEnvelope | { body: string; signatures: unknown[] };
}

/** Where the consensus is fetched from before any cache is known: the directory or every authority. */
export function trustUrls(trust: ConsensusTrust): string[] {
  return trust.kind === 'directory' ? [trust.url] : trust.set.authorities.map((a) => a.url);
}

/** How the trusted party is named in messages. */
export function describeTrust(trust: ConsensusTrust): string {
  if (trust.kind === 'directory') return `the directory at ${trust.url}`;
  const names = trust.set.authorities.map(authorityLabel).join(', ');
  return `the ${trust.set.authorities.length} authorities (${names})`;
}

/** A document of detached signatures (§6.9) rather than one directory's envelope (§6.3). */
function hasSignatureList(json: unknown): boolean {
  return (
    json !== null &&
    typeof json === 'object' &&
    Array.isArray((json as { signatures?: unknown }).signatures) &&
    (json as { signature?: unknown }).signature === undefined
  );
}

/**
 * Opens a consensus as it came off the network: signatures first (the configured key, or a strict
 * majority of the authorities over exactly the body), then the body, its validity window and the
 * rollback floor. Throws DocumentError (ALLIUM_CONSENSUS_*).
 */
export function openTrustedConsensus(
  json: unknown,
  trust: ConsensusTrust,
  opts: OpenConsensusOptions = {},
): TrustedConsensus {
  if (trust.kind === 'directory' && hasSignatureList(json)) {
    // An authority named as a single directory is the set of one (§6.5): its own signature counts.
    return openTrustedConsensus(
      json,
      { kind: 'authorities', set: singleAuthoritySet(trust.url, trust.key) },
      opts,
    );
  }
  if (trust.kind === 'directory') {
    const consensus = openConsensusJson(json, trust.key, opts);
    const env = json as SignedEnvelope;
    return { consensus, document: { body: env.body, signature: env.signature } };
  }
  const { consensus } = openSignedConsensus(json, trust.set, opts);
  const doc = parseSignedConsensus(json);
  return { consensus, document: { body: doc.body, signatures: doc.signatures } };
}

/**
 * The serial and end of validity of a document that openTrustedConsensus refused only as expired
 * (its signatures held, so its body is trusted): an expired cache still sets the rollback floor.
 */
export function expiredConsensusTimes(
  json: unknown,
  trust: ConsensusTrust,
): { serial: number; validUntil: number } {
  const body = (json as { body?: unknown }).body;
  if (typeof body !== 'string') throw new DocumentError('ALLIUM_CONSENSUS_INVALID', 'consensus has no body');
  const c =
    trust.kind === 'directory' && !hasSignatureList(json)
      ? parseConsensusBody(body)
      : parseAuthorityConsensusBody(body);
  return { serial: c.serial, validUntil: c.validUntil };
}
