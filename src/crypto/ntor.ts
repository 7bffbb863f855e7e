// Implements docs/protocol.md §3.1 (ntor circuit handshake) and §3.2 (key schedule).
import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import { NTOR_ONIONSKIN_LEN, NTOR_REPLY_LEN } from '../wire/constants.js';
import { CryptoError, CryptoErrorCode, expectLength } from './errors.js';
import { X25519Key } from './keys.js';

export const NTOR_PROTOID = 'allium-ntor-x25519-sha256-1';
const PROTOID = Buffer.from(NTOR_PROTOID, 'ascii');
const T_MAC = Buffer.from(`${NTOR_PROTOID}:mac`, 'ascii');
const T_KEY = Buffer.from(`${NTOR_PROTOID}:key_extract`, 'ascii');
const T_VERIFY = Buffer.from(`${NTOR_PROTOID}:verify`, 'ascii');
const M_EXPAND = Buffer.from(`${NTOR_PROTOID}:key_expand`, 'ascii');
const SERVER = Buffer.from('Server', 'ascii');
const KEY_LEN = 32;

/**
 * The keys of one hop (§3.2): K for the AES-CTR layers, M for the forward tags and backward hashes,
 * Kt for the AES block cipher that folds the backward tag into each layer (§3.4).
 */
export interface HopKeys {
  kf: Buffer;
  kb: Buffer;
  mf: Buffer;
  mb: Buffer;
  kt: Buffer;
}

/** What the client keeps between sending CREATE/EXTEND and receiving CREATED/EXTENDED. */
export interface NtorClientState {
  readonly relayId: Buffer;
  readonly onionKey: Buffer;
}

class ClientState implements NtorClientState {
  /** EXP(B, x), made ahead by ntorClientPrecompute while the reply is on its way; wiped at finish. */
  exp2: Buffer | null = null;
  constructor(
    readonly relayId: Buffer,
    readonly onionKey: Buffer,
    // Dropped after the first finish attempt so the ephemeral secret does not outlive the handshake.
    public x: X25519Key | null,
  ) {}
}

function H(message: Buffer, key: Buffer): Buffer {
  return createHmac('sha256', key).update(message).digest();
}

function isAllZero(b: Buffer): boolean {
  let acc = 0;
  for (let i = 0; i < b.length; i++) acc |= b[i];
  return acc === 0;
}

/** X25519, with a failed or all-zero result (a low-order peer point) reported as `code`. */
function exp(mine: X25519Key, peerPublic: Buffer, code: CryptoErrorCode, what: string): Buffer {
  let shared: Buffer;
  try {
    shared = mine.dh(peerPublic);
  } catch (err) {
    throw new CryptoError(code, `ntor: ${what} is not a usable X25519 point`, { cause: err });
  }
  if (isAllZero(shared)) throw new CryptoError(code, `ntor: ${what} gives an all-zero shared secret`);
  return shared;
}

/** secret_input -> (AUTH, keys): the part both sides compute identically (§3.1, §3.2). */
function derive(
  exp1: Buffer,
  exp2: Buffer,
  id: Buffer,
  B: Buffer,
  X: Buffer,
  Y: Buffer,
): { auth: Buffer; keys: HopKeys } {
  const secretInput = Buffer.concat([exp1, exp2, id, B, X, Y, PROTOID]);
  const keySeed = H(secretInput, T_KEY);
  const verify = H(secretInput, T_VERIFY);
  const authInput = Buffer.concat([verify, id, B, Y, X, PROTOID, SERVER]);
  const auth = H(authInput, T_MAC);
  const okm = Buffer.from(hkdfSync('sha256', keySeed, T_KEY, M_EXPAND, 5 * KEY_LEN));
  secretInput.fill(0);
  keySeed.fill(0);
  return {
    auth,
    keys: {
      kf: Buffer.from(okm.subarray(0, 32)),
      kb: Buffer.from(okm.subarray(32, 64)),
      mf: Buffer.from(okm.subarray(64, 96)),
      mb: Buffer.from(okm.subarray(96, 128)),
      kt: Buffer.from(okm.subarray(128, 160)),
    },
  };
}

/**
 * Client side, step one: the 96-byte onionskin `ID | B | X` for CREATE or EXTEND. `relayId` and
 * `onionKey` come from the signed consensus; `ephemeral` is x when made ahead of time (never reused).
 */
export function ntorClientStart(
  relayId: Buffer,
  onionKey: Buffer,
  ephemeral?: X25519Key,
): { onionskin: Buffer; state: NtorClientState } {
  expectLength(relayId, 32, 'a relay id');
  expectLength(onionKey, 32, 'an onion key');
  const x = ephemeral ?? X25519Key.generate();
  const id = Buffer.from(relayId);
  const B = Buffer.from(onionKey);
  const onionskin = Buffer.concat([id, B, x.publicKey]);
  return { onionskin, state: new ClientState(id, B, x) };
}

function onionKeyExp(x: X25519Key, onionKey: Buffer): Buffer {
  return exp(x, onionKey, CryptoErrorCode.HANDSHAKE_AUTH, "the relay's onion key B");
}

/**
 * Client side, optional, between the two steps: computes EXP(B, x), which needs nothing from the
 * reply, so that ntorClientFinish is left with one X25519 instead of two on the circuit's
 * build path. A point that fails here fails the same way in ntorClientFinish.
 */
export function ntorClientPrecompute(state: NtorClientState): void {
  if (!(state instanceof ClientState) || !state.x || state.exp2) return;
  try {
    state.exp2 = onionKeyExp(state.x, state.onionKey);
  } catch {
    // Left for ntorClientFinish, which reports it to the caller waiting for the handshake.
  }
}

/**
 * Client side, step two: checks the relay's `Y | AUTH` and returns the hop keys. Throws
 * HANDSHAKE_MALFORMED on a wrong length, HANDSHAKE_AUTH if AUTH differs or a secret is zero.
 * A state can be finished once: the ephemeral secret is dropped whatever the outcome.
 */
export function ntorClientFinish(state: NtorClientState, reply: Buffer): HopKeys {
  if (!(state instanceof ClientState)) {
    throw new CryptoError(CryptoErrorCode.ARGUMENT, 'ntor: not a state made by ntorClientStart');
  }
  const x = state.x;
  state.x = null;
  const precomputed = state.exp2;
  state.exp2 = null;
  if (!x) {
    throw new CryptoError(CryptoErrorCode.HANDSHAKE_MALFORMED, 'ntor: this handshake was already finished');
  }
  let derived: ReturnType<typeof derive>;
  let gotAuth: Buffer;
  try {
    if (reply.length !== NTOR_REPLY_LEN) {
      throw new CryptoError(
        CryptoErrorCode.HANDSHAKE_MALFORMED,
        `ntor: a reply is ${NTOR_REPLY_LEN} bytes (Y | AUTH), got ${reply.length}`,
      );
    }
    const Y = Buffer.from(reply.subarray(0, 32));
    gotAuth = reply.subarray(32, 64);
    const exp1 = exp(x, Y, CryptoErrorCode.HANDSHAKE_AUTH, "the relay's Y");
    const exp2 = precomputed ?? onionKeyExp(x, state.onionKey);
    derived = derive(exp1, exp2, state.relayId, state.onionKey, x.publicKey, Y);
    exp1.fill(0);
    exp2.fill(0);
  } finally {
    precomputed?.fill(0);
  }
  const { auth, keys } = derived;
  if (!timingSafeEqual(auth, gotAuth)) {
    throw new CryptoError(
      CryptoErrorCode.HANDSHAKE_AUTH,
      'ntor: the relay did not prove it holds the onion key in the consensus (AUTH mismatch)',
    );
  }
  return keys;
}

/**
 * Relay side: answers an onionskin with `Y | AUTH` and the hop keys. Throws HANDSHAKE_MALFORMED
 * if the length is wrong, `ID` or `B` is not ours, or `X` is not a usable point (answer with
 * DESTROY(PROTOCOL)). `ephemeral` is Y when made ahead of time (never reused), else one is made now.
 */
export function ntorServerRespond(
  onionskin: Buffer,
  me: { relayId: Buffer; onionKey: X25519Key; previousOnionKey?: X25519Key | null },
  ephemeral?: X25519Key,
): { reply: Buffer; keys: HopKeys } {
  if (onionskin.length !== NTOR_ONIONSKIN_LEN) {
    throw new CryptoError(
      CryptoErrorCode.HANDSHAKE_MALFORMED,
      `ntor: an onionskin is ${NTOR_ONIONSKIN_LEN} bytes (ID | B | X), got ${onionskin.length}`,
    );
  }
  const id = onionskin.subarray(0, 32);
  const B = onionskin.subarray(32, 64);
  const X = Buffer.from(onionskin.subarray(64, 96));
  if (!id.equals(me.relayId)) {
    throw new CryptoError(CryptoErrorCode.HANDSHAKE_MALFORMED, 'ntor: the onionskin is for another relay id');
  }
  // B picks the key (§3.1): the current one, or the one it replaced while its grace period lasts.
  const b = B.equals(me.onionKey.publicKey)
    ? me.onionKey
    : me.previousOnionKey && B.equals(me.previousOnionKey.publicKey)
      ? me.previousOnionKey
      : null;
  if (!b) {
    throw new CryptoError(
      CryptoErrorCode.HANDSHAKE_MALFORMED,
      'ntor: the onionskin names an onion key that is neither our current one nor the one before (stale consensus?)',
    );
  }
  const y = ephemeral ?? X25519Key.generate();
  const exp1 = exp(y, X, CryptoErrorCode.HANDSHAKE_MALFORMED, "the client's X");
  const exp2 = exp(b, X, CryptoErrorCode.HANDSHAKE_MALFORMED, "the client's X");
  const { auth, keys } = derive(exp1, exp2, Buffer.from(id), Buffer.from(B), X, y.publicKey);
  exp1.fill(0);
  exp2.fill(0);
  return { reply: Buffer.concat([y.publicKey, auth]), keys };
}
