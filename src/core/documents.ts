// Implements docs/protocol.md §6.1-§6.3 (signing and opening directory documents, the client's consensus checks).
import { type IdentityKey, relayIdOf, verifySignature } from '../crypto/keys.js';
import { type AlliumCode, AlliumError } from '../errors.js';
import {
  type Consensus,
  DirectoryDocError,
  type DocumentKind,
  isBase64OfLength,
  MAX_CONSENSUS_BYTES,
  parseConsensusBody,
  parseDescriptorBody,
  parseEnvelope,
  parseWithdrawBody,
  type RelayDescriptor,
  type SignedEnvelope,
  serializeConsensus,
  serializeDescriptor,
  serializeWithdraw,
  signingDomain,
  type WithdrawBody,
} from '../wire/directory-docs.js';
import { parseExitPolicy } from './exit-policy.js';

/**
 * A directory document was refused. Codes: ALLIUM_DESCRIPTOR_INVALID, ALLIUM_DESCRIPTOR_SIGNATURE,
 * ALLIUM_CONSENSUS_SIGNATURE, ALLIUM_CONSENSUS_EXPIRED, ALLIUM_CONSENSUS_ROLLBACK, ALLIUM_CONSENSUS_INVALID,
 * ALLIUM_WITHDRAW_INVALID, ALLIUM_WITHDRAW_SIGNATURE.
 */
export class DocumentError extends AlliumError {}

/** How far a consensus's validity window is stretched for clock differences, unless told otherwise. */
export const DEFAULT_CONSENSUS_SKEW_MS = 60_000;

function sign(identity: IdentityKey, kind: DocumentKind, body: string): SignedEnvelope {
  const sig = identity.sign(signingDomain(kind), Buffer.from(body, 'utf8'));
  return { body, signature: sig.toString('base64') };
}

function verifies(env: SignedEnvelope, kind: DocumentKind, publicKey: Uint8Array): boolean {
  if (typeof env.signature !== 'string' || !isBase64OfLength(env.signature, 64)) return false;
  return verifySignature(
    publicKey,
    signingDomain(kind),
    Buffer.from(env.body, 'utf8'),
    Buffer.from(env.signature, 'base64'),
  );
}

/** Re-raises a wire-layer parse error as a DocumentError with the same code, so callers catch one class. */
function asDocumentError(err: unknown): never {
  if (err instanceof DirectoryDocError) throw new DocumentError(err.code, err.message, { cause: err });
  throw err;
}

function checkEnvelopeShape(env: SignedEnvelope, invalidCode: AlliumCode): SignedEnvelope {
  try {
    return parseEnvelope(env);
  } catch (err) {
    throw new DocumentError(invalidCode, (err as Error).message, { cause: err });
  }
}

// ---- descriptors ------------------------------------------------------------------------------

/** Checks what the schema cannot: the id is the key's hash and the exit policy parses. */
function checkDescriptorSemantics(d: RelayDescriptor): void {
  const expectedId = relayIdOf(Buffer.from(d.identityKey, 'base64')).toString('hex');
  if (d.id !== expectedId) {
    throw new DocumentError(
      'ALLIUM_DESCRIPTOR_INVALID',
      `relay descriptor: field "id" is ${d.id} but SHA-256(identityKey) is ${expectedId}`,
    );
  }
  try {
    parseExitPolicy(d.exitPolicy);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new DocumentError('ALLIUM_DESCRIPTOR_INVALID', `relay descriptor: field "exitPolicy" ${why}`, {
      cause: err,
    });
  }
}

/** Signs a descriptor with the relay's identity key. Throws if the descriptor is not one the directory would accept. */
export function signDescriptor(identity: IdentityKey, d: RelayDescriptor): SignedEnvelope {
  const body = serializeDescriptor(d);
  let parsed: RelayDescriptor;
  try {
    parsed = parseDescriptorBody(body);
  } catch (err) {
    asDocumentError(err);
  }
  if (parsed.identityKey !== identity.publicKey.toString('base64')) {
    throw new DocumentError(
      'ALLIUM_DESCRIPTOR_INVALID',
      'relay descriptor: field "identityKey" is not the public key of the signing identity',
    );
  }
  checkDescriptorSemantics(parsed);
  return sign(identity, 'descriptor', body);
}

/**
 * Opens a descriptor envelope. The verifying key is inside the body, so the body is parsed (under the
 * size cap) before the signature is checked; nothing from it is trusted until both pass.
 */
export function openDescriptor(env: SignedEnvelope): RelayDescriptor {
  const e = checkEnvelopeShape(env, 'ALLIUM_DESCRIPTOR_INVALID');
  let d: RelayDescriptor;
  try {
    d = parseDescriptorBody(e.body);
  } catch (err) {
    asDocumentError(err);
  }
  if (!verifies(e, 'descriptor', Buffer.from(d.identityKey, 'base64'))) {
    throw new DocumentError(
      'ALLIUM_DESCRIPTOR_SIGNATURE',
      "relay descriptor: the signature does not verify with the descriptor's identityKey",
    );
  }
  checkDescriptorSemantics(d);
  return d;
}

// ---- consensus --------------------------------------------------------------------------------

export function signConsensus(directoryKey: IdentityKey, c: Consensus): SignedEnvelope {
  const body = serializeConsensus(c);
  if (Buffer.byteLength(body, 'utf8') > MAX_CONSENSUS_BYTES) {
    throw new DocumentError(
      'ALLIUM_CONSENSUS_INVALID',
      `consensus of ${c.relays.length} relays exceeds the ${MAX_CONSENSUS_BYTES}-byte limit`,
    );
  }
  if (c.directoryKey !== directoryKey.publicKey.toString('base64')) {
    throw new DocumentError(
      'ALLIUM_CONSENSUS_INVALID',
      'consensus: field "directoryKey" is not the signing key',
    );
  }
  return sign(directoryKey, 'consensus', body);
}

export interface OpenConsensusOptions {
  /** The time to judge validity at (ms); default Date.now(). */
  now?: number;
  /** The serial of the consensus the caller already has: anything lower is a rollback. */
  minSerial?: number;
  /** Clock tolerance on both ends of the validity window (ms); default 60 s. */
  skewMs?: number;
}

/** The three client checks of §6.3: signature by the configured key, validity window, no rollback. */
export function openConsensus(
  env: SignedEnvelope,
  directoryPublicKey: Buffer,
  opts: OpenConsensusOptions = {},
): Consensus {
  if (env === null || typeof env !== 'object' || typeof env.body !== 'string') {
    throw new DocumentError(
      'ALLIUM_CONSENSUS_INVALID',
      'consensus: not a signed envelope { body, signature }',
    );
  }
  if (typeof env.signature !== 'string' || env.signature === '') {
    throw new DocumentError('ALLIUM_CONSENSUS_SIGNATURE', 'consensus is unsigned: refusing it');
  }
  if (Buffer.byteLength(env.body, 'utf8') > MAX_CONSENSUS_BYTES) {
    throw new DocumentError(
      'ALLIUM_CONSENSUS_INVALID',
      `consensus exceeds the ${MAX_CONSENSUS_BYTES}-byte limit`,
    );
  }
  if (!verifies(env, 'consensus', directoryPublicKey)) {
    throw new DocumentError(
      'ALLIUM_CONSENSUS_SIGNATURE',
      'consensus signature does not verify with the configured directory key (forged, or the wrong --directory-key)',
    );
  }
  let c: Consensus;
  try {
    c = parseConsensusBody(env.body);
  } catch (err) {
    asDocumentError(err);
  }
  if (c.directoryKey !== directoryPublicKey.toString('base64')) {
    throw new DocumentError(
      'ALLIUM_CONSENSUS_INVALID',
      'consensus names a directory key other than the one that signed it',
    );
  }
  const now = opts.now ?? Date.now();
  const skew = opts.skewMs ?? DEFAULT_CONSENSUS_SKEW_MS;
  if (now + skew < c.validAfter) {
    throw new DocumentError(
      'ALLIUM_CONSENSUS_EXPIRED',
      `consensus ${c.serial} is not valid until ${new Date(c.validAfter).toISOString()}: check this machine's clock`,
    );
  }
  if (now - skew > c.validUntil) {
    throw new DocumentError(
      'ALLIUM_CONSENSUS_EXPIRED',
      `consensus ${c.serial} expired at ${new Date(c.validUntil).toISOString()}: fetch a fresh one from the directory`,
    );
  }
  if (opts.minSerial !== undefined && c.serial < opts.minSerial) {
    throw new DocumentError(
      'ALLIUM_CONSENSUS_ROLLBACK',
      `consensus serial ${c.serial} is older than the ${opts.minSerial} already held: refusing a rollback`,
    );
  }
  return c;
}

/**
 * openConsensus for JSON straight off the network: a document that has a body but no signature is
 * reported as unsigned (ALLIUM_CONSENSUS_SIGNATURE), anything else malformed as ALLIUM_CONSENSUS_INVALID.
 */
export function openConsensusJson(
  json: unknown,
  directoryPublicKey: Buffer,
  opts?: OpenConsensusOptions,
): Consensus {
  if (json !== null && typeof json === 'object' && typeof (json as { body?: unknown }).body === 'string') {
    const sig = (json as { signature?: unknown }).signature;
    if (typeof sig !== 'string' || sig === '') {
      throw new DocumentError('ALLIUM_CONSENSUS_SIGNATURE', 'consensus is unsigned: refusing it');
    }
  }
  const env = checkEnvelopeShape(json as SignedEnvelope, 'ALLIUM_CONSENSUS_INVALID');
  return openConsensus(env, directoryPublicKey, opts);
}

// ---- withdraw ---------------------------------------------------------------------------------

export function signWithdraw(identity: IdentityKey, body: { id: string; published: number }): SignedEnvelope {
  const text = serializeWithdraw(body);
  try {
    parseWithdrawBody(text);
  } catch (err) {
    asDocumentError(err);
  }
  if (body.id !== identity.id.toString('hex')) {
    throw new DocumentError(
      'ALLIUM_WITHDRAW_INVALID',
      'withdraw: field "id" is not the signing identity\'s relay id',
    );
  }
  return sign(identity, 'withdraw', text);
}

/** Opens a withdraw envelope with the identity key the directory holds for that relay. */
export function openWithdraw(env: SignedEnvelope, identityPublicKey: Buffer): WithdrawBody {
  const e = checkEnvelopeShape(env, 'ALLIUM_WITHDRAW_INVALID');
  if (!verifies(e, 'withdraw', identityPublicKey)) {
    throw new DocumentError(
      'ALLIUM_WITHDRAW_SIGNATURE',
      "withdraw: the signature does not verify with the relay's identity key",
    );
  }
  let w: WithdrawBody;
  try {
    w = parseWithdrawBody(e.body);
  } catch (err) {
    asDocumentError(err);
  }
  if (w.id !== relayIdOf(identityPublicKey).toString('hex')) {
    throw new DocumentError(
      'ALLIUM_WITHDRAW_INVALID',
      'withdraw: field "id" does not match the relay\'s identity key',
    );
  }
  return w;
}
