// Implements docs/protocol.md §8.5 (the relay messages of onion services): introduction, rendezvous
// and descriptor storage. Every body has a fixed layout (the descriptor one fixed size), so decoders
// are exact about lengths and throw only WireError; what the fields mean is checked in src/crypto.
import { ByteReader, ByteWriter } from './bytes.js';
import { malformed } from './errors.js';
import { ONION_DESCRIPTOR_LEN } from './onion-descriptor.js';

export const ONION_MESSAGE_VERSION = 1;
export const ED25519_KEY_LEN = 32;
export const X25519_KEY_LEN = 32;
export const SIGNATURE_LEN = 64;
/** HMAC-SHA256 outputs, kept whole: these MACs guard one message each, not a stream of cells. */
export const ONION_MAC_LEN = 32;
/** A rendezvous cookie: 32 random bytes, so guessing another client's is hopeless. */
export const REND_COOKIE_LEN = 32;
/** INTRODUCE's encrypted part: cookie(32) | rendezvous relay id(32) | 64 reserved bytes. */
export const INTRO_PLAINTEXT_LEN = 128;
/** The most INTRODUCE2s per second (and burst) a service may ask its introduction point for. */
export const MAX_INTRO_RATE = 65535;

function version(r: ByteReader, what: string): void {
  const v = r.u8('version');
  if (v !== ONION_MESSAGE_VERSION) throw malformed(`${what} version ${v} is not ${ONION_MESSAGE_VERSION}`);
}

function fixed(b: Buffer, len: number, what: string): Buffer {
  if (b.length !== len) throw malformed(`${what} is ${len} bytes, got ${b.length}`);
  return b;
}

function copy(r: ByteReader, n: number, field: string): Buffer {
  return Buffer.from(r.bytes(n, field));
}

// ---- ESTABLISH_INTRO: version | auth_key(32) | rate(u16) | burst(u16) | handshake_auth(32) | sig(64) ----

export interface EstablishIntro {
  /** The introduction point's own Ed25519 key for this service (§8.4): unlinkable to the address. */
  authKey: Buffer;
  /** INTRODUCE2s per second the service asks the relay to pass at most; 0: the relay's default. */
  rate: number;
  /** Burst of that rate; 0: the relay's default. */
  burst: number;
  /** HMAC under the circuit binding (§8.6) of everything before it: ties the message to its circuit. */
  handshakeAuth: Buffer;
  /** Ed25519 by authKey over everything before it (§8.6). */
  signature: Buffer;
}

/** The bytes the handshake auth covers: version | auth_key | rate | burst. */
export function establishIntroAuthInput(m: Pick<EstablishIntro, 'authKey' | 'rate' | 'burst'>): Buffer {
  return new ByteWriter(37)
    .u8(ONION_MESSAGE_VERSION)
    .bytes(fixed(m.authKey, ED25519_KEY_LEN, 'an introduction auth key'))
    .u16(m.rate, 'ESTABLISH_INTRO rate')
    .u16(m.burst, 'ESTABLISH_INTRO burst')
    .finish();
}

/** The bytes the signature covers: the auth input, then the handshake auth. */
export function establishIntroSignedInput(m: Omit<EstablishIntro, 'signature'>): Buffer {
  return Buffer.concat([
    establishIntroAuthInput(m),
    fixed(m.handshakeAuth, ONION_MAC_LEN, 'a handshake auth'),
  ]);
}

export function encodeEstablishIntro(m: EstablishIntro): Buffer {
  return Buffer.concat([establishIntroSignedInput(m), fixed(m.signature, SIGNATURE_LEN, 'a signature')]);
}

export function decodeEstablishIntro(d: Buffer): EstablishIntro {
  const r = new ByteReader(d, 'ESTABLISH_INTRO');
  version(r, 'ESTABLISH_INTRO');
  const authKey = copy(r, ED25519_KEY_LEN, 'auth key');
  const rate = r.u16('rate');
  const burst = r.u16('burst');
  const handshakeAuth = copy(r, ONION_MAC_LEN, 'handshake auth');
  const signature = copy(r, SIGNATURE_LEN, 'signature');
  r.end();
  return { authKey, rate, burst, handshakeAuth, signature };
}

// ---- INTRODUCE1 and INTRODUCE2 (the same body): version | auth_key | X | encrypted | mac ----

export interface Introduce {
  /** Which service, as the introduction point knows it (its auth key). */
  authKey: Buffer;
  /** The client's one-time X25519 key of the handshake (§8.6). */
  clientKey: Buffer;
  /** INTRO_PLAINTEXT_LEN bytes under the introduction keys. */
  encrypted: Buffer;
  /** HMAC-SHA256 under the introduction MAC key over everything before it. */
  mac: Buffer;
}

/** What the MAC covers: version | auth_key | X | encrypted. */
export function introduceMacInput(m: Omit<Introduce, 'mac'>): Buffer {
  return new ByteWriter(1 + 64 + INTRO_PLAINTEXT_LEN)
    .u8(ONION_MESSAGE_VERSION)
    .bytes(fixed(m.authKey, ED25519_KEY_LEN, 'an introduction auth key'))
    .bytes(fixed(m.clientKey, X25519_KEY_LEN, "a client's key"))
    .bytes(fixed(m.encrypted, INTRO_PLAINTEXT_LEN, 'the encrypted part of INTRODUCE'))
    .finish();
}

export function encodeIntroduce(m: Introduce): Buffer {
  return Buffer.concat([introduceMacInput(m), fixed(m.mac, ONION_MAC_LEN, 'a MAC')]);
}

export function decodeIntroduce(d: Buffer): Introduce {
  const r = new ByteReader(d, 'INTRODUCE');
  version(r, 'INTRODUCE');
  const authKey = copy(r, ED25519_KEY_LEN, 'auth key');
  const clientKey = copy(r, X25519_KEY_LEN, 'client key');
  const encrypted = copy(r, INTRO_PLAINTEXT_LEN, 'encrypted part');
  const mac = copy(r, ONION_MAC_LEN, 'mac');
  r.end();
  return { authKey, clientKey, encrypted, mac };
}

/** INTRODUCE's plaintext: where the client waits, and the cookie it waits under. */
export interface IntroducePlaintext {
  cookie: Buffer;
  /** The rendezvous relay's id; the service looks up the rest in its own consensus (§8.6). */
  rendezvousId: Buffer;
}

export function encodeIntroducePlaintext(p: IntroducePlaintext): Buffer {
  const out = Buffer.alloc(INTRO_PLAINTEXT_LEN);
  fixed(p.cookie, REND_COOKIE_LEN, 'a rendezvous cookie').copy(out, 0);
  fixed(p.rendezvousId, 32, 'a relay id').copy(out, REND_COOKIE_LEN);
  return out;
}

/** The reserved tail is ignored, so a later version may use it without breaking this one. */
export function decodeIntroducePlaintext(d: Buffer): IntroducePlaintext {
  const r = new ByteReader(fixed(d, INTRO_PLAINTEXT_LEN, "INTRODUCE's plaintext"), "INTRODUCE's plaintext");
  return { cookie: copy(r, REND_COOKIE_LEN, 'cookie'), rendezvousId: copy(r, 32, 'rendezvous relay id') };
}

// ---- INTRODUCE_ACK: status(u8) ----

export const IntroduceAckStatus = {
  /** Passed on to the service. */
  SUCCESS: 0,
  /** No circuit of this relay serves that auth key (the descriptor is stale, or the service moved). */
  UNKNOWN_SERVICE: 1,
  /** The INTRODUCE1 did not parse. */
  MALFORMED: 2,
  /** Not passed on now: over the rate the service asked for. */
  RATE_LIMITED: 3,
} as const;
export type IntroduceAckStatus = (typeof IntroduceAckStatus)[keyof typeof IntroduceAckStatus];

function status(r: ByteReader, max: number, what: string): number {
  const s = r.u8('status');
  if (s > max) throw malformed(`${what} status ${s} is unknown`);
  return s;
}

export function encodeIntroduceAck(s: IntroduceAckStatus): Buffer {
  return new ByteWriter(1).u8(s, 'INTRODUCE_ACK status').finish();
}

export function decodeIntroduceAck(d: Buffer): IntroduceAckStatus {
  const r = new ByteReader(d, 'INTRODUCE_ACK');
  const s = status(r, IntroduceAckStatus.RATE_LIMITED, 'INTRODUCE_ACK');
  r.end();
  return s as IntroduceAckStatus;
}

// ---- ESTABLISH_RENDEZVOUS: cookie(32); RENDEZVOUS1: cookie | Y | AUTH; RENDEZVOUS2: Y | AUTH ----

export function encodeEstablishRendezvous(cookie: Buffer): Buffer {
  return Buffer.from(fixed(cookie, REND_COOKIE_LEN, 'a rendezvous cookie'));
}

export function decodeEstablishRendezvous(d: Buffer): { cookie: Buffer } {
  return { cookie: Buffer.from(fixed(d, REND_COOKIE_LEN, 'ESTABLISH_RENDEZVOUS')) };
}

/** The service's half of the end-to-end handshake (§8.6): Y | AUTH. */
export interface RendezvousHandshake {
  serviceKey: Buffer;
  auth: Buffer;
}

export function encodeRendezvous1(cookie: Buffer, h: RendezvousHandshake): Buffer {
  return Buffer.concat([fixed(cookie, REND_COOKIE_LEN, 'a rendezvous cookie'), encodeRendezvous2(h)]);
}

export function decodeRendezvous1(d: Buffer): { cookie: Buffer } & RendezvousHandshake {
  const r = new ByteReader(fixed(d, REND_COOKIE_LEN + 64, 'RENDEZVOUS1'), 'RENDEZVOUS1');
  const cookie = copy(r, REND_COOKIE_LEN, 'cookie');
  return { cookie, ...decodeRendezvous2(r.rest()) };
}

export function encodeRendezvous2(h: RendezvousHandshake): Buffer {
  return Buffer.concat([
    fixed(h.serviceKey, X25519_KEY_LEN, "the service's key"),
    fixed(h.auth, ONION_MAC_LEN, 'a handshake AUTH'),
  ]);
}

export function decodeRendezvous2(d: Buffer): RendezvousHandshake {
  const r = new ByteReader(fixed(d, 64, 'RENDEZVOUS2'), 'RENDEZVOUS2');
  return { serviceKey: copy(r, X25519_KEY_LEN, 'Y'), auth: copy(r, ONION_MAC_LEN, 'AUTH') };
}

// ---- INTRO_ESTABLISHED, RENDEZVOUS_ESTABLISHED: empty ----

export function decodeEmpty(d: Buffer, what: string): void {
  if (d.length !== 0) throw malformed(`${what} carries nothing, got ${d.length} bytes`);
}

// ---- HS_DESC_STORE: descriptor; HS_DESC_STORED: status; HS_DESC_FETCH: blinded key;
// ---- HS_DESC_FETCHED: status [| descriptor] ----

export function encodeDescriptorStore(descriptor: Buffer): Buffer {
  return Buffer.from(fixed(descriptor, ONION_DESCRIPTOR_LEN, 'an onion descriptor'));
}

/** The descriptor's bytes, whole: the store parses and checks them (src/crypto/onion-descriptor.ts). */
export function decodeDescriptorStore(d: Buffer): Buffer {
  return Buffer.from(fixed(d, ONION_DESCRIPTOR_LEN, 'HS_DESC_STORE'));
}

export const DescriptorStoreStatus = {
  STORED: 0,
  /** It did not parse, or its signature does not verify. */
  INVALID: 1,
  /** It has expired, or claims to live longer than a descriptor may. */
  EXPIRED: 2,
  /** The store holds one of the same blinded key with this revision or a later one. */
  NOT_NEWER: 3,
  /** The store holds as many descriptors as it keeps. */
  FULL: 4,
} as const;
export type DescriptorStoreStatus = (typeof DescriptorStoreStatus)[keyof typeof DescriptorStoreStatus];

export function encodeDescriptorStored(s: DescriptorStoreStatus): Buffer {
  return new ByteWriter(1).u8(s, 'HS_DESC_STORED status').finish();
}

export function decodeDescriptorStored(d: Buffer): DescriptorStoreStatus {
  const r = new ByteReader(d, 'HS_DESC_STORED');
  const s = status(r, DescriptorStoreStatus.FULL, 'HS_DESC_STORED');
  r.end();
  return s as DescriptorStoreStatus;
}

export function encodeDescriptorFetch(blindedKey: Buffer): Buffer {
  return Buffer.from(fixed(blindedKey, ED25519_KEY_LEN, 'a blinded key'));
}

export function decodeDescriptorFetch(d: Buffer): { blindedKey: Buffer } {
  return { blindedKey: Buffer.from(fixed(d, ED25519_KEY_LEN, 'HS_DESC_FETCH')) };
}

const FOUND = 0;
const NOT_FOUND = 1;

/** A descriptor, or null: the store holds none for that key. */
export function encodeDescriptorFetched(descriptor: Buffer | null): Buffer {
  if (!descriptor) return Buffer.from([NOT_FOUND]);
  return Buffer.concat([
    Buffer.from([FOUND]),
    fixed(descriptor, ONION_DESCRIPTOR_LEN, 'an onion descriptor'),
  ]);
}

export function decodeDescriptorFetched(d: Buffer): Buffer | null {
  const r = new ByteReader(d, 'HS_DESC_FETCHED');
  const s = status(r, NOT_FOUND, 'HS_DESC_FETCHED');
  if (s === NOT_FOUND) {
    r.end();
    return null;
  }
  const descriptor = copy(r, ONION_DESCRIPTOR_LEN, 'descriptor');
  r.end();
  return descriptor;
}
