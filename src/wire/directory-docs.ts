// Implements docs/protocol.md §6.1-§6.3 and §8.3's consensus fields (directory document shapes and size caps). Pure: no I/O, no crypto;
// signatures are checked in src/core/documents.ts.
import * as v from 'valibot';
import { type AlliumCode, AlliumError } from '../errors.js';

export const MAX_DESCRIPTOR_BYTES = 16 * 1024;
export const MAX_CONSENSUS_BYTES = 32 * 1024 * 1024;
/** A withdraw body is two fields; anything near this is not one. */
export const MAX_WITHDRAW_BYTES = 1024;
/** An Ed25519 signature is 88 base64 characters; the cap only keeps garbage small. */
export const MAX_SIGNATURE_CHARS = 256;
export const MAX_EXIT_POLICY_RULES = 256;
export const MAX_EXIT_POLICY_RULE_CHARS = 128;
export const MAX_FAMILY_MEMBERS = 64;
/**
 * Onion-service period lengths a consensus may name (§8.3): a minute is the shortest a test network
 * uses (a period must outlast a few consensus refreshes, or services and clients holding consensuses
 * a minute apart would disagree on it), a week the longest any network should.
 */
export const MIN_ONION_PERIOD_SECONDS = 60;
export const MAX_ONION_PERIOD_SECONDS = 7 * 86_400;
/** The current period's ring value and, from its reveal on, the next one's. */
export const MAX_RING_VALUES = 2;

/** The domain string a document of `kind` is signed under (§6.1). */
export type DocumentKind = 'descriptor' | 'consensus' | 'withdraw';
export function signingDomain(kind: DocumentKind): string {
  return `allium-${kind}-v1\n`;
}

/**
 * A directory document failed to parse. Codes: ALLIUM_ENVELOPE_INVALID, ALLIUM_DESCRIPTOR_INVALID,
 * ALLIUM_CONSENSUS_INVALID, ALLIUM_WITHDRAW_INVALID. `field` names the offending field when known.
 */
export class DirectoryDocError extends AlliumError {
  readonly field: string | undefined;
  constructor(code: AlliumCode, message: string, field?: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.field = field;
  }
}

export interface SignedEnvelope {
  body: string;
  signature: string /* base64 */;
}

export interface RelayDescriptor {
  nickname: string;
  id: string /* 64 hex */;
  identityKey: string /* b64 */;
  onionKey: string /* b64 */;
  address: string;
  port: number;
  exitPolicy: string[];
  bandwidth: number;
  version: string;
  published: number;
  /** Relay ids (hex) of relays run by the same operator; paths avoid two relays that list each other. */
  family?: string[];
  /** The port at `address` where this relay serves the consensus over HTTP (a cache, §6.11). */
  cachePort?: number;
}

export interface ConsensusRelay extends RelayDescriptor {
  flags: string[] /* 'Running', 'Exit' */;
  /** When the directory first listed the relay (ms): the onion-service ring leaves new relays off (§8.3). */
  listedSince?: number;
}

/** One period's ring value (§8.3): 32 random bytes the directory drew, base64. */
export interface RingValue {
  period: number;
  value: string;
}

/** The consensus's onion-service fields (§8.3). */
export interface ConsensusOnion {
  periodSeconds: number;
  /** The current period's value, and from a quarter period before it starts, the next one's. */
  ringValues: RingValue[];
  /** Leave relays listed after a value's publication off that period's ring (off on test networks). */
  onlyListedBeforeReveal: boolean;
}

export interface Consensus {
  network: 'allium';
  serial: number;
  validAfter: number;
  freshUntil: number;
  validUntil: number;
  directoryKey: string;
  relays: ConsensusRelay[];
  /** Absent in a consensus from a directory older than onion services. */
  onion?: ConsensusOnion;
}

/**
 * What a client builds circuits from, however it was signed: by one directory key (§6.3) or by a
 * majority of the authorities (§6.8-§6.10).
 */
export type ConsensusView = Omit<Consensus, 'directoryKey'>;

export interface WithdrawBody {
  id: string;
  published: number;
}

// ---- field validators -------------------------------------------------------------------------

const IPV4_OCTET = '(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';
const IPV4_RE = new RegExp(`^${IPV4_OCTET}(\\.${IPV4_OCTET}){3}$`);
const HEX_GROUP_RE = /^[0-9a-fA-F]{1,4}$/;

export function isIPv4(s: string): boolean {
  return IPV4_RE.test(s);
}

/** RFC 4291 text forms, including `::` and an embedded IPv4 tail; no zone id, no brackets. */
export function isIPv6(s: string): boolean {
  if (s.length < 2 || s.length > 45) return false;
  let text = s;
  const lastColon = text.lastIndexOf(':');
  if (lastColon === -1) return false;
  const tail = text.slice(lastColon + 1);
  if (tail.includes('.')) {
    if (!isIPv4(tail)) return false;
    // An IPv4 tail stands for two 16-bit groups.
    text = `${text.slice(0, lastColon + 1)}0:0`;
  }
  const halves = text.split('::');
  if (halves.length > 2) return false;
  const groups = (part: string) => (part === '' ? [] : part.split(':'));
  if (halves.length === 1) {
    const g = groups(text);
    return g.length === 8 && g.every((x) => HEX_GROUP_RE.test(x));
  }
  const left = groups(halves[0]);
  const right = groups(halves[1]);
  return left.length + right.length <= 7 && [...left, ...right].every((x) => HEX_GROUP_RE.test(x));
}

export function isIPAddress(s: string): boolean {
  return isIPv4(s) || isIPv6(s);
}

/** True when `s` is canonical base64 of exactly `len` bytes. */
export function isBase64OfLength(s: string, len: number): boolean {
  if (s.length !== Math.ceil(len / 3) * 4) return false;
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(s)) return false;
  const b = Buffer.from(s, 'base64');
  return b.length === len && b.toString('base64') === s;
}

export const HEX64_RE = /^[0-9a-f]{64}$/;
export const NICKNAME_RE = /^[A-Za-z0-9_-]{1,32}$/;
// Printable ASCII only: version strings end up in logs and the status page.
const VERSION_RE = /^[\x21-\x7e]{1,64}$/;
const FLAG_RE = /^[A-Za-z][A-Za-z0-9]{0,31}$/;
// ms timestamps: non-negative integers a double holds exactly.
export const timestamp = v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(Number.MAX_SAFE_INTEGER));

export const key32 = (what: string) =>
  v.pipe(
    v.string(),
    v.check((s) => isBase64OfLength(s, 32), `must be base64 of a 32-byte ${what}`),
  );

const descriptorShape = {
  nickname: v.pipe(v.string(), v.regex(NICKNAME_RE, 'must be 1-32 characters of A-Z a-z 0-9 _ -')),
  id: v.pipe(v.string(), v.regex(HEX64_RE, 'must be 64 lowercase hex digits (SHA-256 of identityKey)')),
  identityKey: key32('Ed25519 public key'),
  onionKey: key32('X25519 public key'),
  address: v.pipe(v.string(), v.check(isIPAddress, 'must be an IPv4 or IPv6 address (no brackets, no zone)')),
  port: v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(65535)),
  exitPolicy: v.pipe(
    v.array(v.pipe(v.string(), v.minLength(1), v.maxLength(MAX_EXIT_POLICY_RULE_CHARS))),
    v.maxLength(MAX_EXIT_POLICY_RULES, `must have at most ${MAX_EXIT_POLICY_RULES} rules`),
  ),
  bandwidth: v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(Number.MAX_SAFE_INTEGER)),
  version: v.pipe(v.string(), v.regex(VERSION_RE, 'must be 1-64 printable ASCII characters')),
  published: timestamp,
  family: v.optional(
    v.pipe(
      v.array(v.pipe(v.string(), v.regex(HEX64_RE, 'must be relay ids (64 lowercase hex digits)'))),
      v.maxLength(MAX_FAMILY_MEMBERS, `must list at most ${MAX_FAMILY_MEMBERS} relays`),
    ),
  ),
  cachePort: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(65535))),
};

// Unknown fields are dropped rather than refused, so a later protocol minor version can add fields
// without old directories rejecting its descriptors (the signature covers the body text anyway).
const descriptorSchema = v.object(descriptorShape);

export const consensusRelaySchema = v.object({
  ...descriptorShape,
  flags: v.pipe(
    v.array(v.pipe(v.string(), v.regex(FLAG_RE, 'must be a short alphanumeric flag'))),
    v.maxLength(16),
  ),
  listedSince: v.optional(timestamp),
});

/** `{ period, value }` entries, at most MAX_RING_VALUES, each period once (§8.3). */
export const ringValuesSchema = v.pipe(
  v.array(
    v.object({
      period: v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(Number.MAX_SAFE_INTEGER)),
      value: v.pipe(
        v.string(),
        v.check((s) => isBase64OfLength(s, 32), 'must be base64 of 32 bytes'),
      ),
    }),
  ),
  v.maxLength(MAX_RING_VALUES, `must have at most ${MAX_RING_VALUES} entries`),
  v.check((list) => new Set(list.map((r) => r.period)).size === list.length, 'must name each period once'),
);

export const onionPeriodSecondsSchema = v.pipe(
  v.number(),
  v.integer(),
  v.minValue(MIN_ONION_PERIOD_SECONDS, `must be at least ${MIN_ONION_PERIOD_SECONDS} seconds`),
  v.maxValue(MAX_ONION_PERIOD_SECONDS, `must be at most ${MAX_ONION_PERIOD_SECONDS} seconds`),
);

export const consensusOnionSchema = v.object({
  periodSeconds: onionPeriodSecondsSchema,
  ringValues: ringValuesSchema,
  onlyListedBeforeReveal: v.boolean(),
});

const consensusSchema = v.pipe(
  v.object({
    network: v.literal('allium', 'must be "allium"'),
    serial: timestamp,
    validAfter: timestamp,
    freshUntil: timestamp,
    validUntil: timestamp,
    directoryKey: key32('Ed25519 public key'),
    relays: v.array(consensusRelaySchema),
    onion: v.optional(consensusOnionSchema),
  }),
  v.rawCheck(({ dataset, addIssue }) => {
    if (!dataset.typed) return;
    const c = dataset.value;
    if (!(c.validAfter <= c.freshUntil && c.freshUntil <= c.validUntil)) {
      addIssue({
        message: 'times must satisfy validAfter <= freshUntil <= validUntil',
        path: [issuePath(c, 'validUntil')],
      });
    }
    const seen = new Set<string>();
    c.relays.forEach((r, i) => {
      if (seen.has(r.id)) {
        addIssue({
          message: 'duplicate relay id',
          path: [issuePath(c, 'relays'), issuePath(c.relays, i), issuePath(r, 'id')],
        });
      }
      seen.add(r.id);
    });
  }),
);

/** One step of an issue path, in the shape valibot reports its own. */
export function issuePath(input: unknown, key: string | number): v.IssuePathItem {
  const container = input as Record<string | number, unknown>;
  return Array.isArray(input)
    ? { type: 'array', origin: 'value', input: input as unknown[], key: key as number, value: container[key] }
    : {
        type: 'object',
        origin: 'value',
        input: container as Record<string, unknown>,
        key: String(key),
        value: container[key],
      };
}

const envelopeSchema = v.object({
  body: v.string(),
  signature: v.pipe(v.string(), v.maxLength(MAX_SIGNATURE_CHARS)),
});

const withdrawSchema = v.object({
  id: descriptorShape.id,
  published: timestamp,
});

// ---- parsers ----------------------------------------------------------------------------------

/** The first issue as a dotted field path ('(document)' for the whole value) and its message. */
export function describeIssues(issues: readonly v.BaseIssue<unknown>[] | undefined): {
  field: string;
  text: string;
} {
  const issue = issues?.[0];
  const path = issue?.path?.map((p) => String(p.key)) ?? [];
  return { field: path.length > 0 ? path.join('.') : '(document)', text: issue ? issue.message : 'invalid' };
}

export function validate<const S extends v.GenericSchema>(
  schema: S,
  value: unknown,
  code: AlliumCode,
  what: string,
): v.InferOutput<S> {
  const r = v.safeParse(schema, value);
  if (r.success) return r.output;
  const { field, text } = describeIssues(r.issues);
  throw new DirectoryDocError(code, `${what}: field "${field}" ${text}`, field);
}

export function parseJsonBody(body: string, maxBytes: number, code: AlliumCode, what: string): unknown {
  if (typeof body !== 'string') throw new DirectoryDocError(code, `${what}: the body must be a JSON string`);
  // Every UTF-16 code unit takes at least one UTF-8 byte, so the length test alone rejects huge
  // inputs without Buffer.byteLength walking them.
  if (body.length > maxBytes || Buffer.byteLength(body, 'utf8') > maxBytes) {
    throw new DirectoryDocError(code, `${what}: body exceeds the ${maxBytes}-byte limit`);
  }
  try {
    return JSON.parse(body);
  } catch (err) {
    throw new DirectoryDocError(code, `${what}: body is not valid JSON`, undefined, { cause: err });
  }
}

/** Checks the `{ body, signature }` shape of a signed envelope (§6.1). Does not verify anything. */
export function parseEnvelope(json: unknown): SignedEnvelope {
  return validate(envelopeSchema, json, 'ALLIUM_ENVELOPE_INVALID', 'signed envelope');
}

export function parseDescriptorBody(body: string): RelayDescriptor {
  const json = parseJsonBody(body, MAX_DESCRIPTOR_BYTES, 'ALLIUM_DESCRIPTOR_INVALID', 'relay descriptor');
  return validate(descriptorSchema, json, 'ALLIUM_DESCRIPTOR_INVALID', 'relay descriptor');
}

export function parseConsensusBody(body: string): Consensus {
  const json = parseJsonBody(body, MAX_CONSENSUS_BYTES, 'ALLIUM_CONSENSUS_INVALID', 'consensus');
  return validate(consensusSchema, json, 'ALLIUM_CONSENSUS_INVALID', 'consensus');
}

export function parseWithdrawBody(body: string): WithdrawBody {
  const json = parseJsonBody(body, MAX_WITHDRAW_BYTES, 'ALLIUM_WITHDRAW_INVALID', 'withdraw');
  return validate(withdrawSchema, json, 'ALLIUM_WITHDRAW_INVALID', 'withdraw');
}

/** The canonical body text of a descriptor: fixed field order, so equal descriptors sign equal bytes. */
export function serializeDescriptor(d: RelayDescriptor): string {
  return JSON.stringify(descriptorFields(d));
}

export function serializeConsensus(c: Consensus): string {
  return JSON.stringify({
    network: c.network,
    serial: c.serial,
    validAfter: c.validAfter,
    freshUntil: c.freshUntil,
    validUntil: c.validUntil,
    directoryKey: c.directoryKey,
    relays: c.relays.map(consensusRelayFields),
    // Only when present, so a consensus without onion fields serialises (and signs) as before.
    ...(c.onion ? { onion: consensusOnionFields(c.onion) } : {}),
  });
}

/** A consensus entry's fields in canonical order: the descriptor's, its flags, then listedSince. */
export function consensusRelayFields(r: ConsensusRelay): ConsensusRelay {
  return {
    ...descriptorFields(r),
    flags: [...r.flags],
    ...(r.listedSince !== undefined ? { listedSince: r.listedSince } : {}),
  };
}

/** The onion fields in canonical order, ring values by increasing period. */
export function consensusOnionFields(o: ConsensusOnion): ConsensusOnion {
  return {
    periodSeconds: o.periodSeconds,
    ringValues: [...o.ringValues]
      .sort((a, b) => a.period - b.period)
      .map((r) => ({ period: r.period, value: r.value })),
    onlyListedBeforeReveal: o.onlyListedBeforeReveal,
  };
}

export function serializeWithdraw(w: WithdrawBody): string {
  return JSON.stringify({ id: w.id, published: w.published });
}

/** Copies exactly the descriptor fields (drops `flags` and anything else a caller hung on the object). */
export function descriptorFields(d: RelayDescriptor): RelayDescriptor {
  return {
    nickname: d.nickname,
    id: d.id,
    identityKey: d.identityKey,
    onionKey: d.onionKey,
    address: d.address,
    port: d.port,
    exitPolicy: [...d.exitPolicy],
    bandwidth: d.bandwidth,
    version: d.version,
    published: d.published,
    // Only when present, so descriptors without a family serialise (and sign) as before.
    ...(d.family ? { family: [...d.family] } : {}),
    ...(d.cachePort !== undefined ? { cachePort: d.cachePort } : {}),
  };
}
