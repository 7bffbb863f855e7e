// Implements docs/protocol.md §6.6-§6.9 (signing-key certificates, votes, detached consensus
// signatures) and §6.10 (the client's acceptance rule: a strict majority of the configured
// authorities signed exactly this consensus).
import { type IdentityKey, relayIdOf, verifySignature } from '../crypto/keys.js';
import {
  AUTHORITY_DOMAINS,
  type AuthorityConsensus,
  type AuthorityEntry,
  type AuthoritySet,
  type ConsensusSignature,
  parseAuthorityConsensusBody,
  parseCertificateBody,
  parseCertificateEnvelope,
  parseSignedConsensus,
  parseVoteBody,
  parseVoteDocument,
  type SignedConsensus,
  type SigningKeyCertificate,
  serializeAuthorityConsensus,
  serializeCertificate,
  serializeVote,
  type Vote,
  type VoteDocument,
} from '../wire/authority-docs.js';
import {
  DirectoryDocError,
  isBase64OfLength,
  MAX_CONSENSUS_BYTES,
  type SignedEnvelope,
} from '../wire/directory-docs.js';
import { authorityById, authorityLabel, majorityOf } from './authority-set.js';
import { DEFAULT_CONSENSUS_SKEW_MS, DocumentError } from './documents.js';

function rethrow(err: unknown): never {
  if (err instanceof DirectoryDocError) throw new DocumentError(err.code, err.message, { cause: err });
  throw err;
}

function signText(key: IdentityKey, domain: string, text: string): string {
  return key.sign(domain, Buffer.from(text, 'utf8')).toString('base64');
}

function verifiesText(publicKey: Buffer, domain: string, text: string, signature: string): boolean {
  if (!isBase64OfLength(signature, 64)) return false;
  return verifySignature(publicKey, domain, Buffer.from(text, 'utf8'), Buffer.from(signature, 'base64'));
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

// ---- certificates (§6.6) ----------------------------------------------------------------------

/** The identity key vouches for `signingKey` from `published` until `expires`. */
export function certifySigningKey(
  identity: IdentityKey,
  signingKey: Buffer,
  times: { published: number; expires: number },
): SignedEnvelope {
  const body = serializeCertificate({
    identityKey: identity.publicKey.toString('base64'),
    signingKey: signingKey.toString('base64'),
    published: times.published,
    expires: times.expires,
  });
  try {
    parseCertificateBody(body);
  } catch (err) {
    rethrow(err);
  }
  return { body, signature: signText(identity, AUTHORITY_DOMAINS.certificate, body) };
}

export interface TimeCheck {
  /** Default Date.now(). */
  now?: number;
  /** Clock tolerance (ms), default 60 s. */
  skewMs?: number;
}

/**
 * Opens a certificate of `authority`: signed by its identity key, naming that key, valid at `now`.
 * Returns the certified signing key's body.
 */
export function openCertificate(
  json: unknown,
  authority: AuthorityEntry,
  opts: TimeCheck = {},
): SigningKeyCertificate {
  let env: SignedEnvelope;
  let cert: SigningKeyCertificate;
  try {
    env = parseCertificateEnvelope(json);
    cert = parseCertificateBody(env.body);
  } catch (err) {
    rethrow(err);
  }
  const who = authorityLabel(authority);
  if (cert.identityKey !== authority.identityKey) {
    throw new DocumentError(
      'ALLIUM_CERTIFICATE_INVALID',
      `the certificate of ${who} is for another identity key`,
    );
  }
  if (
    !verifiesText(
      Buffer.from(authority.identityKey, 'base64'),
      AUTHORITY_DOMAINS.certificate,
      env.body,
      env.signature,
    )
  ) {
    throw new DocumentError(
      'ALLIUM_CERTIFICATE_INVALID',
      `the certificate of ${who} is not signed by its identity key`,
    );
  }
  const now = opts.now ?? Date.now();
  const skew = opts.skewMs ?? DEFAULT_CONSENSUS_SKEW_MS;
  if (now + skew < cert.published) {
    throw new DocumentError(
      'ALLIUM_CERTIFICATE_INVALID',
      `the certificate of ${who} is not valid until ${iso(cert.published)}: check the clocks`,
    );
  }
  if (now - skew > cert.expires) {
    throw new DocumentError(
      'ALLIUM_CERTIFICATE_INVALID',
      `the certificate of ${who} expired at ${iso(cert.expires)}: its operator must certify a new signing key`,
    );
  }
  return cert;
}

/** An authority's signing key and the certificate its identity key gave it. */
export interface AuthoritySigner {
  /** The authority's id (hex SHA-256 of its identity key). */
  authority: string;
  signingKey: IdentityKey;
  certificate: SignedEnvelope;
}

function checkSigner(s: AuthoritySigner): void {
  let cert: SigningKeyCertificate;
  try {
    cert = parseCertificateBody(s.certificate.body);
  } catch (err) {
    rethrow(err);
  }
  if (cert.signingKey !== s.signingKey.publicKey.toString('base64')) {
    throw new DocumentError('ALLIUM_CERTIFICATE_INVALID', 'the certificate is for another signing key');
  }
  if (relayIdOf(Buffer.from(cert.identityKey, 'base64')).toString('hex') !== s.authority) {
    throw new DocumentError('ALLIUM_CERTIFICATE_INVALID', "the certificate is not this authority's");
  }
}

// ---- votes (§6.7) -----------------------------------------------------------------------------

export function signVote(signer: AuthoritySigner, vote: Vote): VoteDocument {
  checkSigner(signer);
  if (vote.authority !== signer.authority) {
    throw new DocumentError('ALLIUM_VOTE_INVALID', 'vote: field "authority" is not the signing authority');
  }
  const body = serializeVote(vote);
  try {
    parseVoteBody(body);
  } catch (err) {
    rethrow(err);
  }
  return {
    body,
    signature: signText(signer.signingKey, AUTHORITY_DOMAINS.vote, body),
    certificate: { ...signer.certificate },
  };
}

/**
 * Opens a vote from an authority of `set`: its certificate (identity key, validity), its signature
 * with the certified key, its body, and that the body names the authority that signed it.
 */
export function openVote(json: unknown, set: AuthoritySet, opts: TimeCheck = {}): Vote {
  let doc: VoteDocument;
  let certBody: SigningKeyCertificate;
  try {
    doc = parseVoteDocument(json);
    certBody = parseCertificateBody(parseCertificateEnvelope(doc.certificate).body);
  } catch (err) {
    rethrow(err);
  }
  const id = relayIdOf(Buffer.from(certBody.identityKey, 'base64')).toString('hex');
  const authority = authorityById(set, id);
  if (!authority) {
    throw new DocumentError('ALLIUM_VOTE_INVALID', `vote from ${id}, which is not a configured authority`);
  }
  const cert = openCertificate(doc.certificate, authority, opts);
  if (
    !verifiesText(Buffer.from(cert.signingKey, 'base64'), AUTHORITY_DOMAINS.vote, doc.body, doc.signature)
  ) {
    throw new DocumentError(
      'ALLIUM_VOTE_SIGNATURE',
      `the vote of ${authorityLabel(authority)} does not verify with its certified signing key`,
    );
  }
  let vote: Vote;
  try {
    vote = parseVoteBody(doc.body);
  } catch (err) {
    rethrow(err);
  }
  if (vote.authority !== id) {
    throw new DocumentError(
      'ALLIUM_VOTE_INVALID',
      `the vote signed by ${authorityLabel(authority)} names authority ${vote.authority}`,
    );
  }
  return vote;
}

// ---- consensus signatures (§6.9) --------------------------------------------------------------

/** The canonical body of a computed consensus; throws when it passes the consensus size cap. */
export function consensusBodyText(c: AuthorityConsensus): string {
  const body = serializeAuthorityConsensus(c);
  if (Buffer.byteLength(body, 'utf8') > MAX_CONSENSUS_BYTES) {
    throw new DocumentError(
      'ALLIUM_CONSENSUS_INVALID',
      `consensus of ${c.relays.length} relays exceeds the ${MAX_CONSENSUS_BYTES}-byte limit`,
    );
  }
  return body;
}

/** One authority's detached signature over exactly `body`. */
export function signConsensusBody(signer: AuthoritySigner, body: string): ConsensusSignature {
  checkSigner(signer);
  return {
    authority: signer.authority,
    certificate: { ...signer.certificate },
    signature: signText(signer.signingKey, AUTHORITY_DOMAINS.consensus, body),
  };
}

/** Why `sig` does not count for `authority` over `body`, or null when it does. */
export function consensusSignatureProblem(
  sig: ConsensusSignature,
  body: string,
  authority: AuthorityEntry,
  opts: TimeCheck = {},
): string | null {
  if (sig.authority !== authority.id) return 'signature names another authority';
  let cert: SigningKeyCertificate;
  try {
    cert = openCertificate(sig.certificate, authority, opts);
  } catch (err) {
    return (err as Error).message;
  }
  if (
    !verifiesText(Buffer.from(cert.signingKey, 'base64'), AUTHORITY_DOMAINS.consensus, body, sig.signature)
  ) {
    return 'signature does not verify';
  }
  return null;
}

export interface OpenSignedConsensusOptions extends TimeCheck {
  /** The serial of the consensus the caller already has: anything lower is a rollback. */
  minSerial?: number;
}

export interface OpenedConsensus {
  consensus: AuthorityConsensus;
  /** Ids of the configured authorities whose signatures verified, in set order. */
  signers: string[];
}

/**
 * The client's acceptance rule (§6.10): a strict majority of the authorities in `set` signed exactly
 * this body (ALLIUM_CONSENSUS_SIGNATURE, "2 of 5 signatures; need 3 (...)" otherwise), then the body
 * parses (ALLIUM_CONSENSUS_INVALID), is within its validity window (ALLIUM_CONSENSUS_EXPIRED) and is
 * not older than `minSerial` (ALLIUM_CONSENSUS_ROLLBACK). Signatures of unknown authorities are
 * ignored; each configured authority counts once.
 */
export function openSignedConsensus(
  json: unknown,
  set: AuthoritySet,
  opts: OpenSignedConsensusOptions = {},
): OpenedConsensus {
  if (json !== null && typeof json === 'object' && typeof (json as { body?: unknown }).body === 'string') {
    const sigs = (json as { signatures?: unknown }).signatures;
    if (!Array.isArray(sigs) || sigs.length === 0) {
      throw new DocumentError('ALLIUM_CONSENSUS_SIGNATURE', 'consensus is unsigned: refusing it');
    }
  }
  let doc: SignedConsensus;
  try {
    doc = parseSignedConsensus(json);
  } catch (err) {
    rethrow(err);
  }
  if (doc.body.length > MAX_CONSENSUS_BYTES || Buffer.byteLength(doc.body, 'utf8') > MAX_CONSENSUS_BYTES) {
    throw new DocumentError(
      'ALLIUM_CONSENSUS_INVALID',
      `consensus exceeds the ${MAX_CONSENSUS_BYTES}-byte limit`,
    );
  }
  const n = set.authorities.length;
  const needed = majorityOf(n);
  const signers: string[] = [];
  const problems: string[] = [];
  for (const authority of set.authorities) {
    const candidates = doc.signatures.filter((s) => s.authority === authority.id);
    if (candidates.length === 0) {
      problems.push(`${authorityLabel(authority)}: no signature`);
      continue;
    }
    let why: string | null = 'no signature';
    for (const sig of candidates) {
      why = consensusSignatureProblem(sig, doc.body, authority, opts);
      if (why === null) break;
    }
    if (why === null) signers.push(authority.id);
    else problems.push(`${authorityLabel(authority)}: ${why}`);
  }
  if (signers.length < needed) {
    throw new DocumentError(
      'ALLIUM_CONSENSUS_SIGNATURE',
      `consensus refused: ${signers.length} of ${n} signatures; need ${needed} (${problems.join('; ')})`,
    );
  }
  let c: AuthorityConsensus;
  try {
    c = parseAuthorityConsensusBody(doc.body);
  } catch (err) {
    rethrow(err);
  }
  const now = opts.now ?? Date.now();
  const skew = opts.skewMs ?? DEFAULT_CONSENSUS_SKEW_MS;
  if (now + skew < c.validAfter) {
    throw new DocumentError(
      'ALLIUM_CONSENSUS_EXPIRED',
      `consensus ${c.serial} is not valid until ${iso(c.validAfter)}: check this machine's clock`,
    );
  }
  if (now - skew > c.validUntil) {
    throw new DocumentError(
      'ALLIUM_CONSENSUS_EXPIRED',
      `consensus ${c.serial} expired at ${iso(c.validUntil)}: fetch a fresh one from the directory`,
    );
  }
  if (opts.minSerial !== undefined && c.serial < opts.minSerial) {
    throw new DocumentError(
      'ALLIUM_CONSENSUS_ROLLBACK',
      `consensus serial ${c.serial} is older than the ${opts.minSerial} already held: refusing a rollback`,
    );
  }
  return { consensus: c, signers };
}
