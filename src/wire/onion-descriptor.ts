// Implements docs/protocol.md §8.4 (onion service descriptors): the outer document a store holds and
// checks, and the inner layer only those who know the address can decrypt. Both are one fixed size,
// so neither the store nor anyone watching learns how many introduction points a service has, and a
// descriptor always fits one relay message.
import { ByteReader, ByteWriter } from './bytes.js';
import { malformed, tooLarge } from './errors.js';

export const ONION_DESCRIPTOR_VERSION = 1;
/** Introduction points one descriptor names at most (a service runs 3 by default). */
export const MAX_INTRO_POINTS = 10;
/** relay id(32) | auth key(32) | encryption key(32). */
export const INTRO_POINT_ENTRY_LEN = 96;
/** The inner plaintext, padded: version | count | entries | zeros. */
export const DESCRIPTOR_INNER_LEN = 1024;
export const DESCRIPTOR_SALT_LEN = 16;
export const DESCRIPTOR_GCM_TAG_LEN = 16;
export const DESCRIPTOR_CIPHERTEXT_LEN = DESCRIPTOR_INNER_LEN + DESCRIPTOR_GCM_TAG_LEN;
const SIGNATURE_LEN = 64;
/** version | blinded key | revision | expires | salt | ciphertext, then the signature. */
export const DESCRIPTOR_SIGNED_LEN = 1 + 32 + 8 + 8 + DESCRIPTOR_SALT_LEN + DESCRIPTOR_CIPHERTEXT_LEN;
export const ONION_DESCRIPTOR_LEN = DESCRIPTOR_SIGNED_LEN + SIGNATURE_LEN; // 1169

/** The outer layer: all a store sees. */
export interface OuterDescriptor {
  /** A'_p: the period's blinded key (§8.2); the store files the descriptor under it. */
  blindedKey: Buffer;
  /** Greater for every newer descriptor of the same blinded key (ms since the period began). */
  revision: number;
  /** Unix seconds after which nobody may serve or use it. */
  expires: number;
  salt: Buffer;
  /** The inner layer, AES-256-GCM (§8.4). */
  ciphertext: Buffer;
  /** Ed25519 by the blinded key over the signed part (§8.4). */
  signature: Buffer;
}

function u64(w: ByteWriter, n: number, field: string): void {
  if (!Number.isSafeInteger(n) || n < 0)
    throw tooLarge(`${field} must be a non-negative safe integer, got ${n}`);
  w.u32(Math.floor(n / 2 ** 32), field).u32(n % 2 ** 32, field);
}

function readU64(r: ByteReader, field: string): number {
  const hi = r.u32(field);
  const lo = r.u32(field);
  if (hi >= 2 ** 21) throw malformed(`${field} is past 2^53`);
  return hi * 2 ** 32 + lo;
}

function fixed(b: Buffer, len: number, what: string): Buffer {
  if (b.length !== len) throw malformed(`${what} is ${len} bytes, got ${b.length}`);
  return b;
}

/** The bytes the signature covers (the descriptor without its last 64 bytes). */
export function descriptorSignedPart(d: Omit<OuterDescriptor, 'signature'>): Buffer {
  const w = new ByteWriter(DESCRIPTOR_SIGNED_LEN)
    .u8(ONION_DESCRIPTOR_VERSION)
    .bytes(fixed(d.blindedKey, 32, 'a blinded key'));
  u64(w, d.revision, 'revision');
  u64(w, d.expires, 'expires');
  w.bytes(fixed(d.salt, DESCRIPTOR_SALT_LEN, 'a descriptor salt'));
  w.bytes(fixed(d.ciphertext, DESCRIPTOR_CIPHERTEXT_LEN, "a descriptor's ciphertext"));
  return w.finish();
}

export function encodeOuterDescriptor(d: OuterDescriptor): Buffer {
  return Buffer.concat([descriptorSignedPart(d), fixed(d.signature, SIGNATURE_LEN, 'a signature')]);
}

export function decodeOuterDescriptor(b: Buffer): OuterDescriptor {
  const r = new ByteReader(b, 'onion descriptor');
  const version = r.u8('version');
  if (version !== ONION_DESCRIPTOR_VERSION) {
    throw malformed(`onion descriptor version ${version} is not ${ONION_DESCRIPTOR_VERSION}`);
  }
  const blindedKey = Buffer.from(r.bytes(32, 'blinded key'));
  const revision = readU64(r, 'revision');
  const expires = readU64(r, 'expires');
  const salt = Buffer.from(r.bytes(DESCRIPTOR_SALT_LEN, 'salt'));
  const ciphertext = Buffer.from(r.bytes(DESCRIPTOR_CIPHERTEXT_LEN, 'ciphertext'));
  const signature = Buffer.from(r.bytes(SIGNATURE_LEN, 'signature'));
  r.end();
  return { blindedKey, revision, expires, salt, ciphertext, signature };
}

/** One introduction point as the inner layer names it. */
export interface IntroPointEntry {
  /** The relay; clients take its address, port and onion key from their own consensus (§8.4). */
  relayId: Buffer;
  /** The service's Ed25519 key at this introduction point (ESTABLISH_INTRO, INTRODUCE). */
  authKey: Buffer;
  /** The service's X25519 key for the end-to-end handshake through this point (§8.6). */
  encKey: Buffer;
}

export function encodeInnerDescriptor(points: IntroPointEntry[]): Buffer {
  if (points.length < 1 || points.length > MAX_INTRO_POINTS) {
    throw tooLarge(`a descriptor names 1-${MAX_INTRO_POINTS} introduction points, got ${points.length}`);
  }
  const out = Buffer.alloc(DESCRIPTOR_INNER_LEN);
  out[0] = ONION_DESCRIPTOR_VERSION;
  out[1] = points.length;
  points.forEach((p, i) => {
    const at = 2 + i * INTRO_POINT_ENTRY_LEN;
    fixed(p.relayId, 32, 'a relay id').copy(out, at);
    fixed(p.authKey, 32, 'an auth key').copy(out, at + 32);
    fixed(p.encKey, 32, 'an encryption key').copy(out, at + 64);
  });
  return out;
}

/** The padding after the entries is ignored, so a later version may put more there. */
export function decodeInnerDescriptor(b: Buffer): IntroPointEntry[] {
  const r = new ByteReader(fixed(b, DESCRIPTOR_INNER_LEN, "a descriptor's inner layer"), 'inner layer');
  const version = r.u8('version');
  if (version !== ONION_DESCRIPTOR_VERSION) throw malformed(`inner layer version ${version} is not 1`);
  const count = r.u8('count');
  if (count < 1 || count > MAX_INTRO_POINTS) {
    throw malformed(`a descriptor names 1-${MAX_INTRO_POINTS} introduction points, got ${count}`);
  }
  const points: IntroPointEntry[] = [];
  for (let i = 0; i < count; i++) {
    points.push({
      relayId: Buffer.from(r.bytes(32, 'relay id')),
      authKey: Buffer.from(r.bytes(32, 'auth key')),
      encKey: Buffer.from(r.bytes(32, 'encryption key')),
    });
  }
  return points;
}
