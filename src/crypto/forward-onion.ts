// Implements docs/protocol.md §3.4 (forward cells): every hop checks a tag over the cell before it
// removes its layer, so a cell changed by one relay is caught by the very next one (no tagging
// attack can pass a marked cell down the circuit). Fixed-size cells are kept Sphinx-style: each hop
// shifts out the tag it consumed and appends 16 zero bytes, which the client accounts for in advance.
import { timingSafeEqual } from 'node:crypto';
import { CELL_BODY_LEN } from '../wire/constants.js';
import { CryptoError, CryptoErrorCode, expectLength } from './errors.js';
import type { HopKeys } from './ntor.js';
import { HopLayer, LayerCipher } from './relay-crypto.js';

/** Bytes of the per-hop tag at the front of a forward cell body. */
export const FORWARD_TAG_LEN = 16;
/** Bytes after the tag: what each hop decrypts. */
export const FORWARD_X_LEN = CELL_BODY_LEN - FORWARD_TAG_LEN; // 4075
/** A forward payload for the hop that reads it starts with this many zero bytes. */
export const FORWARD_MARKER_LEN = 8;

const ZERO_X = Buffer.alloc(FORWARD_X_LEN);

/** a XOR b (b at least as long as a). Four bytes a step where the buffers allow it: SENDMEs make it hot. */
function xor(a: Buffer, b: Buffer): Buffer {
  const n = a.length;
  const out = Buffer.allocUnsafe(n);
  let i = 0;
  if (((a.byteOffset | b.byteOffset | out.byteOffset) & 3) === 0) {
    const words = n >>> 2;
    const a32 = new Int32Array(a.buffer, a.byteOffset, words);
    const b32 = new Int32Array(b.buffer, b.byteOffset, words);
    const o32 = new Int32Array(out.buffer, out.byteOffset, words);
    for (let k = 0; k < words; k++) o32[k] = a32[k] ^ b32[k];
    i = words << 2;
  }
  for (; i < n; i++) out[i] = a[i] ^ b[i];
  return out;
}

/** What a relay finds when it opens a forward cell. */
export type ForwardOpen =
  | { kind: 'tampered' }
  | { kind: 'mine'; payload: Buffer; tag: Buffer } // payload: FORWARD_X_LEN bytes, marker | relay message | tail
  | { kind: 'forward'; body: Buffer }; // CELL_BODY_LEN bytes for the next hop

/** The forward direction of one hop: checks (relay) or makes (client) the per-hop tag of every cell. */
export class ForwardLayer extends HopLayer {
  /** mac(M, seq, x) for the next cell, advancing seq. */
  tag(x: Buffer): Buffer {
    const t = this.macAtSeq(x);
    this.seqNo++;
    return t;
  }

  /** The next FORWARD_X_LEN keystream bytes (the client needs them before it can build a cell). */
  keystream(): Buffer {
    return this.ctr.update(ZERO_X);
  }

  /** Relay side: check the tag, remove this layer, and say whether the cell is for this hop. */
  open(body: Buffer): ForwardOpen {
    expectLength(body, CELL_BODY_LEN, 'a relay cell body');
    const x = body.subarray(FORWARD_TAG_LEN);
    const tag = body.subarray(0, FORWARD_TAG_LEN);
    if (!timingSafeEqual(this.macAtSeq(x), tag)) return { kind: 'tampered' };
    this.seqNo++;
    const y = this.ctr.update(x);
    for (let i = 0; i < FORWARD_MARKER_LEN; i++) {
      if (y[i] !== 0) {
        // Not ours: y is the next hop's tag and cell, shifted by one tag; refill the end with zeros.
        const next = Buffer.alloc(CELL_BODY_LEN);
        y.copy(next, 0);
        return { kind: 'forward', body: next };
      }
    }
    return { kind: 'mine', payload: y, tag: Buffer.from(tag) };
  }
}

/** The most relay message bytes (header included) a forward cell carries to hop `hopIndex` (0 = entry). */
export function forwardMessageCapacity(hopIndex: number): number {
  return FORWARD_X_LEN - FORWARD_MARKER_LEN - FORWARD_TAG_LEN * hopIndex;
}

/**
 * Client side: builds the body that, sent to hop 0, arrives at hop `layers.length - 1` as `message`
 * (a relay message: header and data), every hop on the way checking its tag. Consumes one cell of
 * keystream and one seq at each of those hops. Also returns the tag the last hop will verify.
 */
export function wrapForward(layers: ForwardLayer[], message: Buffer): { body: Buffer; tag: Buffer } {
  const h = layers.length - 1;
  if (h < 0) throw new CryptoError(CryptoErrorCode.ARGUMENT, 'wrapForward needs at least one hop');
  if (message.length > forwardMessageCapacity(h)) {
    throw new CryptoError(
      CryptoErrorCode.ARGUMENT,
      `a forward message to hop ${h} carries at most ${forwardMessageCapacity(h)} bytes`,
    );
  }
  const ks = layers.map((l) => l.keystream());
  // The tail of X at hop j is fixed by the zeros each earlier hop appended, pushed through their layers.
  let filler = Buffer.alloc(0);
  for (let j = 1; j <= h; j++) {
    const prev = filler.length;
    filler = Buffer.concat([
      xor(filler, ks[j - 1].subarray(FORWARD_X_LEN - prev)),
      Buffer.alloc(FORWARD_TAG_LEN),
    ]);
  }
  const payload = Buffer.alloc(FORWARD_X_LEN);
  message.copy(payload, FORWARD_MARKER_LEN);
  const tailAt = FORWARD_X_LEN - filler.length;
  xor(filler, ks[h].subarray(tailAt)).copy(payload, tailAt);
  let x = xor(payload, ks[h]);
  let t = layers[h].tag(x);
  const lastTag = t;
  for (let j = h - 1; j >= 0; j--) {
    const y = Buffer.concat([t, x.subarray(0, FORWARD_X_LEN - FORWARD_TAG_LEN)]);
    x = xor(y, ks[j]);
    t = layers[j].tag(x);
  }
  return { body: Buffer.concat([t, x]), tag: lastTag };
}

/** Both directions of one hop as circuits use them: tagged forward layers, recognised backward cells. */
export interface CircuitHopCrypto {
  forward: ForwardLayer;
  backward: LayerCipher;
}

export function circuitHopCrypto(keys: HopKeys): CircuitHopCrypto {
  return { forward: new ForwardLayer(keys.kf, keys.mf), backward: new LayerCipher(keys.kb, keys.mb) };
}
