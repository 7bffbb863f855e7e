// Implements docs/protocol.md §8.6 (the end-to-end handshake, after Tor's hs-ntor): the client
// encrypts its INTRODUCE to the service's key at one introduction point, the service answers at the
// rendezvous point, and both derive keys for a layer that no relay holds. Bound to the introduction
// point's auth key and encryption key from the descriptor, and (for INTRODUCE) to the
// subcredential, so only a client that knows the address can introduce itself.
import { createCipheriv, createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import { OnionError } from '../wire/onion-errors.js';
import {
  decodeIntroducePlaintext,
  encodeIntroducePlaintext,
  type Introduce,
  type IntroducePlaintext,
  introduceMacInput,
  type RendezvousHandshake,
} from '../wire/onion-messages.js';
import { expectLength } from './errors.js';
import { X25519Key } from './keys.js';

export const HS_NTOR_PROTOID = 'allium-hs-ntor-x25519-sha256-1';
const PROTOID = Buffer.from(HS_NTOR_PROTOID, 'ascii');
const T_ENC = Buffer.from(`${HS_NTOR_PROTOID}:hs_key_extract`, 'ascii');
const T_VERIFY = Buffer.from(`${HS_NTOR_PROTOID}:hs_verify`, 'ascii');
const T_MAC = Buffer.from(`${HS_NTOR_PROTOID}:hs_mac`, 'ascii');
const M_EXPAND = Buffer.from(`${HS_NTOR_PROTOID}:hs_key_expand`, 'ascii');
const M_INTRO = Buffer.from(`${HS_NTOR_PROTOID}:hs_intro_expand`, 'ascii');
const SERVER = Buffer.from('Server', 'ascii');

/**
 * The end-to-end keys (§8.6): `kf`/`mf` for cells from the client to the service, `kb`/`mb` for
 * cells back, each used as a forward layer one hop past the rendezvous point (§8.7).
 */
export interface EndToEndKeys {
  kf: Buffer;
  kb: Buffer;
  mf: Buffer;
  mb: Buffer;
}

/** What the service publishes for one introduction point, and what the client reads of it. */
export interface IntroPointKeys {
  /** Ed25519: names the service at the introduction point. */
  authKey: Buffer;
  /** X25519 (B): the key the client's INTRODUCE is encrypted to. */
  encKey: Buffer;
}

const H = (message: Buffer, key: Buffer) => createHmac('sha256', key).update(message).digest();

function isAllZero(b: Buffer): boolean {
  let acc = 0;
  for (const x of b) acc |= x;
  return acc === 0;
}

function dh(
  mine: X25519Key,
  peer: Buffer,
  code: 'ALLIUM_ONION_INTRODUCE_AUTH' | 'ALLIUM_ONION_RENDEZVOUS_AUTH',
): Buffer {
  let shared: Buffer;
  try {
    shared = mine.dh(peer);
  } catch (err) {
    throw new OnionError(code, 'hs-ntor: the peer key is not a usable X25519 point', { cause: err });
  }
  if (isAllZero(shared)) throw new OnionError(code, 'hs-ntor: the peer key gives an all-zero shared secret');
  return shared;
}

/** intro_secret_input = EXP(B, x) | AUTH_KEY | X | B | PROTOID -> ENC_KEY(32) | MAC_KEY(32). */
function introKeys(exp: Buffer, intro: IntroPointKeys, X: Buffer, sub: Buffer): { enc: Buffer; mac: Buffer } {
  const input = Buffer.concat([exp, intro.authKey, X, intro.encKey, PROTOID]);
  const okm = Buffer.from(hkdfSync('sha256', input, T_ENC, Buffer.concat([M_INTRO, sub]), 64));
  input.fill(0);
  return { enc: okm.subarray(0, 32), mac: okm.subarray(32, 64) };
}

/** AES-256-CTR from a zero counter: each key encrypts one plaintext once (it comes from a fresh X). */
function ctr(key: Buffer, data: Buffer): Buffer {
  const c = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  return Buffer.concat([c.update(data), c.final()]);
}

/** rend_secret_input -> (AUTH, keys): what both sides compute alike. */
function rendezvous(
  exp1: Buffer,
  exp2: Buffer,
  intro: IntroPointKeys,
  X: Buffer,
  Y: Buffer,
): { auth: Buffer; keys: EndToEndKeys } {
  const input = Buffer.concat([exp1, exp2, intro.authKey, intro.encKey, X, Y, PROTOID]);
  const keySeed = H(input, T_ENC);
  const verify = H(input, T_VERIFY);
  const auth = H(Buffer.concat([verify, intro.authKey, intro.encKey, Y, X, PROTOID, SERVER]), T_MAC);
  const okm = Buffer.from(hkdfSync('sha256', keySeed, T_ENC, M_EXPAND, 128));
  input.fill(0);
  keySeed.fill(0);
  return {
    auth,
    keys: {
      kf: Buffer.from(okm.subarray(0, 32)),
      kb: Buffer.from(okm.subarray(32, 64)),
      mf: Buffer.from(okm.subarray(64, 96)),
      mb: Buffer.from(okm.subarray(96, 128)),
    },
  };
}

/** What the client keeps from its INTRODUCE1 until RENDEZVOUS2 comes. */
export interface ClientIntroState {
  readonly intro: IntroPointKeys;
  x: X25519Key | null;
}

/**
 * Client: the INTRODUCE1 body for one introduction point, and the state to finish with. `x` is the
 * one-time key when made ahead (tests); never reuse one: the service refuses a repeated X.
 */
export function clientIntroduce(
  intro: IntroPointKeys,
  sub: Buffer,
  plaintext: IntroducePlaintext,
  x: X25519Key = X25519Key.generate(),
): { message: Introduce; state: ClientIntroState } {
  expectLength(intro.authKey, 32, 'an introduction auth key');
  expectLength(intro.encKey, 32, 'an introduction encryption key');
  expectLength(sub, 32, 'a subcredential');
  const exp = dh(x, intro.encKey, 'ALLIUM_ONION_INTRODUCE_AUTH');
  const keys = introKeys(exp, intro, x.publicKey, sub);
  exp.fill(0);
  const encrypted = ctr(keys.enc, encodeIntroducePlaintext(plaintext));
  const unsigned = { authKey: Buffer.from(intro.authKey), clientKey: x.publicKey, encrypted };
  const mac = H(introduceMacInput(unsigned), keys.mac);
  return { message: { ...unsigned, mac }, state: { intro, x } };
}

/** What the service keeps between opening an INTRODUCE2 and answering at the rendezvous point. */
export interface ServiceIntroState {
  readonly intro: IntroPointKeys;
  readonly clientKey: Buffer;
  readonly exp2: Buffer;
}

/**
 * Service: checks an INTRODUCE2 at the introduction point whose keys are `intro` (its secret `b`)
 * and returns what it says. Throws ALLIUM_ONION_INTRODUCE_AUTH on a wrong MAC or an unusable X.
 * The caller refuses a repeated X (§8.8) only after this succeeds, so forgeries cannot fill its cache.
 */
export function serviceOpenIntroduce(
  message: Introduce,
  intro: { authKey: Buffer; encKey: X25519Key },
  sub: Buffer,
): { plaintext: IntroducePlaintext; state: ServiceIntroState } {
  if (!message.authKey.equals(intro.authKey)) {
    throw new OnionError('ALLIUM_ONION_INTRODUCE_AUTH', 'the INTRODUCE2 names another introduction auth key');
  }
  const keys = { authKey: intro.authKey, encKey: intro.encKey.publicKey };
  const exp = dh(intro.encKey, message.clientKey, 'ALLIUM_ONION_INTRODUCE_AUTH');
  const { enc, mac } = introKeys(exp, keys, message.clientKey, sub);
  const expected = H(introduceMacInput(message), mac);
  if (message.mac.length !== expected.length || !timingSafeEqual(expected, message.mac)) {
    exp.fill(0);
    throw new OnionError(
      'ALLIUM_ONION_INTRODUCE_AUTH',
      "the INTRODUCE2's MAC does not verify: not from a client that read this service's descriptor",
    );
  }
  const plaintext = decodeIntroducePlaintext(ctr(enc, message.encrypted));
  return { plaintext, state: { intro: keys, clientKey: Buffer.from(message.clientKey), exp2: exp } };
}

/** Service: RENDEZVOUS1's Y | AUTH and the end-to-end keys. `y` is made here unless given (tests). */
export function serviceRendezvous(
  state: ServiceIntroState,
  y: X25519Key = X25519Key.generate(),
): { handshake: RendezvousHandshake; keys: EndToEndKeys } {
  const exp1 = dh(y, state.clientKey, 'ALLIUM_ONION_INTRODUCE_AUTH');
  const { auth, keys } = rendezvous(exp1, state.exp2, state.intro, state.clientKey, y.publicKey);
  exp1.fill(0);
  state.exp2.fill(0);
  return { handshake: { serviceKey: y.publicKey, auth }, keys };
}

/**
 * Client: checks RENDEZVOUS2 and returns the end-to-end keys. Throws ALLIUM_ONION_RENDEZVOUS_AUTH if
 * AUTH does not prove the introduction point's encryption key, or Y is unusable. Once only.
 */
export function clientRendezvous(state: ClientIntroState, handshake: RendezvousHandshake): EndToEndKeys {
  const x = state.x;
  state.x = null;
  if (!x)
    throw new OnionError('ALLIUM_ONION_RENDEZVOUS_AUTH', 'hs-ntor: this introduction was already finished');
  const exp1 = dh(x, handshake.serviceKey, 'ALLIUM_ONION_RENDEZVOUS_AUTH');
  const exp2 = dh(x, state.intro.encKey, 'ALLIUM_ONION_RENDEZVOUS_AUTH');
  const { auth, keys } = rendezvous(exp1, exp2, state.intro, x.publicKey, handshake.serviceKey);
  exp1.fill(0);
  exp2.fill(0);
  if (handshake.auth.length !== auth.length || !timingSafeEqual(auth, handshake.auth)) {
    throw new OnionError(
      'ALLIUM_ONION_RENDEZVOUS_AUTH',
      "the rendezvous answer does not prove the service's key (AUTH mismatch)",
    );
  }
  return keys;
}
