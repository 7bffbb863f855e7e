// Implements docs/protocol.md §6.5-§6.9 and §8.3's vote and consensus fields (the authority set, signing-key certificates, votes and the
// multi-signed consensus: shapes, size caps, canonical serialisation). Pure: no I/O, no crypto;
// signatures and the id = SHA-256(identityKey) checks are in src/core/authority-documents.ts.
import * as v from 'valibot';
import {
  type ConsensusOnion,
  type ConsensusRelay,
  consensusOnionFields,
  consensusOnionSchema,
  consensusRelayFields,
  consensusRelaySchema,
  DirectoryDocError,
  HEX64_RE,
  issuePath,
  key32,
  MAX_CONSENSUS_BYTES,
  MAX_SIGNATURE_CHARS,
  NICKNAME_RE,
  onionPeriodSecondsSchema,
  parseJsonBody,
  type RingValue,
  ringValuesSchema,
  type SignedEnvelope,
  timestamp,
  validate,
} from './directory-docs.js';

/** Tor runs nine; a set this large already costs a client fifteen signature checks per consensus. */
export const MAX_AUTHORITIES = 15;
export const MAX_AUTHORITY_SET_BYTES = 64 * 1024;
export const MAX_CERTIFICATE_BYTES = 1024;
/** A vote lists at most what a consensus may. */
export const MAX_VOTE_BYTES = MAX_CONSENSUS_BYTES;
/** Signature entries a consensus document may carry: every authority twice (a cache may append). */
export const MAX_CONSENSUS_SIGNATURES = 2 * MAX_AUTHORITIES;
export const MAX_AUTHORITY_URL_CHARS = 256;

/** The domain each authority document is signed under (§6.1). */
export const AUTHORITY_DOMAINS = {
  certificate: 'allium-authority-certificate-v1\n',
  vote: 'allium-vote-v1\n',
  consensus: 'allium-consensus-v2\n',
} as const;

export const AUTHORITY_SET_FORMAT = 'allium-authorities';
export const AUTHORITY_SET_VERSION = 1;

/** One directory authority as clients, relays and the other authorities are configured with it. */
export interface AuthorityEntry {
  nickname: string;
  /** 64 hex = SHA-256(identityKey). */
  id: string;
  /** base64 Ed25519 public key: certifies the authority's signing keys. */
  identityKey: string;
  /** Where its HTTP API answers, e.g. http://127.0.0.1:7000 (no path). */
  url: string;
}

export interface AuthoritySet {
  authorities: AuthorityEntry[];
}

/** Body of a certificate: `identityKey` vouches for `signingKey` from `published` until `expires`. */
export interface SigningKeyCertificate {
  identityKey: string;
  signingKey: string;
  published: number;
  expires: number;
}

/** What one authority saw in one voting period: the relays it checked itself, with their flags. */
export interface Vote {
  network: 'allium';
  /** The voting authority's id. */
  authority: string;
  /** The period this vote is for; only votes for the same validAfter are combined. */
  validAfter: number;
  freshUntil: number;
  validUntil: number;
  /** Sorted by id, no duplicates. */
  relays: ConsensusRelay[];
  /** Its part in the consensus's onion-service fields (§6.7, §8.3); absent from older authorities. */
  onion?: VoteOnion;
}

/**
 * What an authority proposes for the onion fields: its settings, its own random contribution to each
 * ring value the consensus publishes, and the values it already saw in a consensus a majority signed.
 */
export interface VoteOnion {
  periodSeconds: number;
  onlyListedBeforeReveal: boolean;
  /** 32 bytes it drew for each period, the same in every vote of that period. */
  contributions: RingValue[];
  /** Ring values of those periods in the newest consensus a majority signed that it holds. */
  ringValues: RingValue[];
}

/** A vote as it travels: the body, its signature by the signing key, and that key's certificate. */
export interface VoteDocument {
  body: string;
  signature: string;
  certificate: SignedEnvelope;
}

/** The consensus body computed from votes (§6.8). */
export interface AuthorityConsensus {
  network: 'allium';
  /** = validAfter: increases with every period, and is the same at every authority. */
  serial: number;
  validAfter: number;
  freshUntil: number;
  validUntil: number;
  /** Ids of the authorities whose votes it was computed from, sorted. */
  authorities: string[];
  relays: ConsensusRelay[];
  onion?: ConsensusOnion;
}

/** One authority's detached signature over a consensus body, with the certificate of its signing key. */
export interface ConsensusSignature {
  authority: string;
  certificate: SignedEnvelope;
  signature: string;
}

/** A consensus as served: its body and every signature collected for exactly that body. */
export interface SignedConsensus {
  body: string;
  signatures: ConsensusSignature[];
}

// ---- schemas ----------------------------------------------------------------------------------

const hex64 = (what: string) =>
  v.pipe(v.string(), v.regex(HEX64_RE, `must be ${what} (64 lowercase hex digits)`));

/** http(s)://host[:port] with nothing after it but an optional slash. */
export function isAuthorityUrl(s: string): boolean {
  if (s.length > MAX_AUTHORITY_URL_CHARS) return false;
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    return false;
  }
  return (
    (u.protocol === 'http:' || u.protocol === 'https:') &&
    u.hostname !== '' &&
    u.username === '' &&
    u.password === '' &&
    (u.pathname === '/' || u.pathname === '') &&
    u.search === '' &&
    u.hash === ''
  );
}

const authorityEntrySchema = v.object({
  nickname: v.pipe(v.string(), v.regex(NICKNAME_RE, 'must be 1-32 characters of A-Z a-z 0-9 _ -')),
  id: hex64('the authority id'),
  identityKey: key32('Ed25519 public key'),
  url: v.pipe(
    v.string(),
    v.check(
      isAuthorityUrl,
      'must be an http:// or https:// URL with a host and no path, e.g. http://127.0.0.1:7000',
    ),
  ),
});

const authoritySetSchema = v.pipe(
  v.object({
    format: v.literal(AUTHORITY_SET_FORMAT, `must be "${AUTHORITY_SET_FORMAT}"`),
    version: v.literal(AUTHORITY_SET_VERSION, `must be ${AUTHORITY_SET_VERSION}`),
    authorities: v.pipe(
      v.array(authorityEntrySchema),
      v.minLength(1, 'must name at least one authority'),
      v.maxLength(MAX_AUTHORITIES, `must name at most ${MAX_AUTHORITIES} authorities`),
    ),
  }),
  v.rawCheck(({ dataset, addIssue }) => {
    if (!dataset.typed) return;
    const list = dataset.value.authorities;
    for (const field of ['id', 'identityKey', 'url', 'nickname'] as const) {
      const seen = new Set<string>();
      list.forEach((a, i) => {
        const value = field === 'url' ? normalizeUrl(a.url) : a[field];
        if (seen.has(value)) {
          addIssue({
            message: `names the same ${field} twice`,
            path: [issuePath(dataset.value, 'authorities'), issuePath(list, i), issuePath(a, field)],
          });
        }
        seen.add(value);
      });
    }
  }),
);

const envelopeSchema = v.object({
  body: v.string(),
  signature: v.pipe(v.string(), v.maxLength(MAX_SIGNATURE_CHARS)),
});

const certificateSchema = v.pipe(
  v.object({
    identityKey: key32('Ed25519 public key'),
    signingKey: key32('Ed25519 public key'),
    published: timestamp,
    expires: timestamp,
  }),
  v.check((c) => c.published < c.expires, 'must have published before expires'),
);

function checkTimes(
  c: { validAfter: number; freshUntil: number; validUntil: number },
  addIssue: (i: { message: string; path: [v.IssuePathItem] }) => void,
): void {
  if (!(c.validAfter <= c.freshUntil && c.freshUntil <= c.validUntil)) {
    addIssue({
      message: 'times must satisfy validAfter <= freshUntil <= validUntil',
      path: [issuePath(c, 'validUntil')],
    });
  }
}

/** Relays in strictly increasing id order: one entry per relay, and one canonical order. */
function checkRelayOrder(
  doc: { relays: ConsensusRelay[] },
  addIssue: (i: { message: string; path: [v.IssuePathItem, ...v.IssuePathItem[]] }) => void,
): void {
  for (let i = 1; i < doc.relays.length; i++) {
    if (!(doc.relays[i - 1].id < doc.relays[i].id)) {
      addIssue({
        message: 'relays must be in increasing id order, each once',
        path: [issuePath(doc, 'relays'), issuePath(doc.relays, i), issuePath(doc.relays[i], 'id')],
      });
      return;
    }
  }
}

const voteSchema = v.pipe(
  v.object({
    network: v.literal('allium', 'must be "allium"'),
    authority: hex64('the voting authority id'),
    validAfter: timestamp,
    freshUntil: timestamp,
    validUntil: timestamp,
    relays: v.array(consensusRelaySchema),
    onion: v.optional(
      v.object({
        periodSeconds: onionPeriodSecondsSchema,
        onlyListedBeforeReveal: v.boolean(),
        contributions: ringValuesSchema,
        ringValues: ringValuesSchema,
      }),
    ),
  }),
  v.rawCheck(({ dataset, addIssue }) => {
    if (!dataset.typed) return;
    checkTimes(dataset.value, addIssue);
    checkRelayOrder(dataset.value, addIssue);
  }),
);

const voteDocumentSchema = v.object({
  body: v.string(),
  signature: v.pipe(v.string(), v.maxLength(MAX_SIGNATURE_CHARS)),
  certificate: envelopeSchema,
});

const authorityConsensusSchema = v.pipe(
  v.object({
    network: v.literal('allium', 'must be "allium"'),
    serial: timestamp,
    validAfter: timestamp,
    freshUntil: timestamp,
    validUntil: timestamp,
    authorities: v.pipe(
      v.array(hex64('authority ids')),
      v.minLength(1, 'must name at least one authority'),
      v.maxLength(MAX_AUTHORITIES),
    ),
    relays: v.array(consensusRelaySchema),
    onion: v.optional(consensusOnionSchema),
  }),
  v.rawCheck(({ dataset, addIssue }) => {
    if (!dataset.typed) return;
    checkTimes(dataset.value, addIssue);
    checkRelayOrder(dataset.value, addIssue);
    const ids = dataset.value.authorities;
    for (let i = 1; i < ids.length; i++) {
      if (!(ids[i - 1] < ids[i])) {
        addIssue({
          message: 'must be in increasing order, each once',
          path: [issuePath(dataset.value, 'authorities'), issuePath(ids, i)],
        });
        return;
      }
    }
  }),
);

const consensusSignatureSchema = v.object({
  authority: hex64('the signing authority id'),
  certificate: envelopeSchema,
  signature: v.pipe(v.string(), v.maxLength(MAX_SIGNATURE_CHARS)),
});

const signedConsensusSchema = v.object({
  body: v.string(),
  signatures: v.pipe(
    v.array(consensusSignatureSchema),
    v.maxLength(MAX_CONSENSUS_SIGNATURES, `must carry at most ${MAX_CONSENSUS_SIGNATURES} signatures`),
  ),
});

// ---- parsers ----------------------------------------------------------------------------------

/** The URL as it is compared and dialled: no trailing slash. */
export function normalizeUrl(url: string): string {
  return url.replace(/\/+$/, '');
}

/** An authority set file's text (§6.5). The id = SHA-256(identityKey) check is core's. */
export function parseAuthoritySetText(text: string): AuthoritySet {
  const json = parseJsonBody(text, MAX_AUTHORITY_SET_BYTES, 'ALLIUM_AUTHORITY_SET_INVALID', 'authority set');
  const s = validate(authoritySetSchema, json, 'ALLIUM_AUTHORITY_SET_INVALID', 'authority set');
  return { authorities: s.authorities.map((a) => ({ ...a, url: normalizeUrl(a.url) })) };
}

export function serializeAuthoritySet(s: AuthoritySet): string {
  const doc = {
    format: AUTHORITY_SET_FORMAT,
    version: AUTHORITY_SET_VERSION,
    authorities: s.authorities.map((a) => ({
      nickname: a.nickname,
      id: a.id,
      identityKey: a.identityKey,
      url: a.url,
    })),
  };
  return `${JSON.stringify(doc, null, 2)}\n`;
}

export function parseCertificateEnvelope(json: unknown): SignedEnvelope {
  return validate(envelopeSchema, json, 'ALLIUM_CERTIFICATE_INVALID', 'signing-key certificate');
}

export function parseCertificateBody(body: string): SigningKeyCertificate {
  const json = parseJsonBody(
    body,
    MAX_CERTIFICATE_BYTES,
    'ALLIUM_CERTIFICATE_INVALID',
    'signing-key certificate',
  );
  return validate(certificateSchema, json, 'ALLIUM_CERTIFICATE_INVALID', 'signing-key certificate');
}

export function serializeCertificate(c: SigningKeyCertificate): string {
  return JSON.stringify({
    identityKey: c.identityKey,
    signingKey: c.signingKey,
    published: c.published,
    expires: c.expires,
  });
}

export function parseVoteDocument(json: unknown): VoteDocument {
  return validate(voteDocumentSchema, json, 'ALLIUM_VOTE_INVALID', 'vote');
}

export function parseVoteBody(body: string): Vote {
  const json = parseJsonBody(body, MAX_VOTE_BYTES, 'ALLIUM_VOTE_INVALID', 'vote');
  return validate(voteSchema, json, 'ALLIUM_VOTE_INVALID', 'vote');
}

export function serializeVote(vote: Vote): string {
  return JSON.stringify({
    network: vote.network,
    authority: vote.authority,
    validAfter: vote.validAfter,
    freshUntil: vote.freshUntil,
    validUntil: vote.validUntil,
    relays: vote.relays.map(consensusRelayFields),
    ...(vote.onion ? { onion: voteOnionFields(vote.onion) } : {}),
  });
}

export function parseAuthorityConsensusBody(body: string): AuthorityConsensus {
  const json = parseJsonBody(body, MAX_CONSENSUS_BYTES, 'ALLIUM_CONSENSUS_INVALID', 'consensus');
  return validate(authorityConsensusSchema, json, 'ALLIUM_CONSENSUS_INVALID', 'consensus');
}

/** The canonical body: fixed field order, so every authority that computes it signs the same bytes. */
export function serializeAuthorityConsensus(c: AuthorityConsensus): string {
  return JSON.stringify({
    network: c.network,
    serial: c.serial,
    validAfter: c.validAfter,
    freshUntil: c.freshUntil,
    validUntil: c.validUntil,
    authorities: [...c.authorities],
    relays: c.relays.map(consensusRelayFields),
    ...(c.onion ? { onion: consensusOnionFields(c.onion) } : {}),
  });
}

export function parseSignedConsensus(json: unknown): SignedConsensus {
  return validate(signedConsensusSchema, json, 'ALLIUM_CONSENSUS_INVALID', 'signed consensus');
}

export function parseConsensusSignature(json: unknown): ConsensusSignature {
  return validate(consensusSignatureSchema, json, 'ALLIUM_CONSENSUS_INVALID', 'consensus signature');
}

function voteOnionFields(o: VoteOnion): VoteOnion {
  const sorted = (list: RingValue[]) =>
    [...list].sort((a, b) => a.period - b.period).map((r) => ({ period: r.period, value: r.value }));
  return {
    periodSeconds: o.periodSeconds,
    onlyListedBeforeReveal: o.onlyListedBeforeReveal,
    contributions: sorted(o.contributions),
    ringValues: sorted(o.ringValues),
  };
}

export { DirectoryDocError };
