// Implements docs/protocol.md §3.4 (forward cells): every hop checks a tag over the cell and its cell
// command before it removes its layer, so a cell changed by one relay (body or RELAY/RELAY_EARLY) is
// caught by the very next one (no tagging attack can pass a marked cell down the circuit). Fixed-size
// cells are kept Sphinx-style: each hop shifts out the tag it consumed and appends 16 zero bytes,
// which the client accounts for in advance.
import { timingSafeEqual } from 'node:crypto';
import { Scratch } from '../buffers/scratch.js';
import { CELL_BODY_LEN, CellCommand } from '../wire/constants.js';
import {
  type BackwardCellLayer,
  BackwardLayer,
  EntryBackwardLayer,
  type PaddingSource,
  randomPadding,
} from './backward-layer.js';
import { CryptoError, CryptoErrorCode, expectLength } from './errors.js';
import { circuitBinding } from './intro-auth.js';
import type { HopKeys } from './ntor.js';
import { HopLayer } from './relay-crypto.js';

/** Bytes of the per-hop tag at the front of a forward cell body. */
export const FORWARD_TAG_LEN = 16;
/** Bytes after the tag: what each hop decrypts. */
export const FORWARD_X_LEN = CELL_BODY_LEN - FORWARD_TAG_LEN; // 4075
/** A forward payload for the hop that reads it starts with this many zero bytes. */
export const FORWARD_MARKER_LEN = 8;

/** Zeros to draw keystream with: grown to the largest batch seen, never written. */
let zeros = Buffer.alloc(FORWARD_X_LEN);

/** Keystream-sized zeros for `cells` cells (a view of the shared, never-written buffer). */
function zerosFor(cells: number): Buffer {
  const n = cells * FORWARD_X_LEN;
  if (zeros.length < n) zeros = Buffer.alloc(n);
  return zeros.subarray(0, n);
}

/** a ^= b over a.length bytes, four at a time where both start on a 4-byte boundary. */
function xorInPlace(a: Buffer, b: Buffer): void {
  const n = a.length;
  let i = 0;
  if (((a.byteOffset | b.byteOffset) & 3) === 0) {
    const words = n >>> 2;
    const a32 = new Int32Array(a.buffer, a.byteOffset, words);
    const b32 = new Int32Array(b.buffer, b.byteOffset, words);
    for (let k = 0; k < words; k++) a32[k] ^= b32[k];
    i = words << 2;
  }
  for (; i < n; i++) a[i] ^= b[i];
}

/** What a relay finds when it opens a forward cell. */
export type ForwardOpen =
  | { kind: 'tampered' }
  | { kind: 'mine'; payload: Buffer; tag: Buffer } // payload: FORWARD_X_LEN bytes, marker | relay message | tail
  | { kind: 'forward'; body: Buffer }; // CELL_BODY_LEN bytes for the next hop

/** The forward direction of one hop: checks (relay) or makes (client) the per-hop tag of every cell. */
export class ForwardLayer extends HopLayer {
  /**
   * The circuit binding of this hop (§8.6): a secret of the circuit's origin and this hop alone,
   * which ESTABLISH_INTRO is MACed under so it cannot be replayed on another circuit.
   */
  circuitBinding(): Buffer {
    return circuitBinding(this.macKey);
  }

  /** mac(M, seq, command, x) for the next cell, advancing seq. */
  tag(x: Buffer, command: number): Buffer {
    const t = this.macAtSeq(commandByte(command), x);
    this.seqNo++;
    return t;
  }

  /** The next `cells` x FORWARD_X_LEN keystream bytes (the client needs some before it can build a cell). */
  keystreamMany(cells: number): Buffer {
    return this.ctr.update(zerosFor(cells));
  }

  /** XORs the next xs.length keystream bytes into a copy of `xs` (whole cells' X, laid end to end). */
  cryptMany(xs: Buffer): Buffer {
    return this.ctr.update(xs);
  }

  /** Relay side: check the tag, remove this layer, and say whether the cell is for this hop. */
  open(body: Buffer, command: number): ForwardOpen {
    return this.openMany([body], [command])[0];
  }

  /**
   * open() for cells of this hop that arrived together, in order, with the cell command each came in
   * (RELAY or RELAY_EARLY, which the tag covers): each tag checked before its cell is opened, then
   * this layer removed from all of them in one cipher call. The first tampered cell ends the list
   * (its result is 'tampered'); the cells after it are not opened and get no result.
   */
  openMany(bodies: Buffer[], commands: number[]): ForwardOpen[] {
    let good = 0;
    for (; good < bodies.length; good++) {
      const body = bodies[good];
      expectLength(body, CELL_BODY_LEN, 'a relay cell body');
      const mac = this.macAtSeq(commandByte(commands[good]), body.subarray(FORWARD_TAG_LEN));
      if (!timingSafeEqual(mac, body.subarray(0, FORWARD_TAG_LEN))) break;
      this.seqNo++;
    }
    const results: ForwardOpen[] = [];
    if (good > 0) {
      const joined = openBatch.take(good * FORWARD_X_LEN);
      for (let i = 0; i < good; i++) bodies[i].copy(joined, i * FORWARD_X_LEN, FORWARD_TAG_LEN);
      const ys = this.ctr.update(joined);
      let next: Buffer | null = null;
      for (let i = 0; i < good; i++) {
        const y = ys.subarray(i * FORWARD_X_LEN, (i + 1) * FORWARD_X_LEN);
        if (isMarker(y)) {
          results.push({
            kind: 'mine',
            payload: y,
            tag: Buffer.from(bodies[i].subarray(0, FORWARD_TAG_LEN)),
          });
          continue;
        }
        // Not ours: y is the next hop's tag and cell, shifted by one tag; the end stays 16 zeros.
        next ??= Buffer.alloc(good * CELL_BODY_LEN);
        const body = next.subarray(i * CELL_BODY_LEN, (i + 1) * CELL_BODY_LEN);
        y.copy(body, 0);
        results.push({ kind: 'forward', body });
      }
    }
    if (good < bodies.length) results.push({ kind: 'tampered' });
    return results;
  }
}

/** Where a relay joins the X parts of a run of forward cells for one cipher call (reused, never kept). */
const openBatch = new Scratch();

/** The cell command as the one byte the tag covers (one buffer per command, never written). */
const COMMAND_BYTES = Array.from({ length: 256 }, (_, c) => Buffer.from([c]));
function commandByte(command: number): Buffer {
  const b = COMMAND_BYTES[command];
  if (!b) throw new CryptoError(CryptoErrorCode.ARGUMENT, `a cell command is a u8, got ${command}`);
  return b;
}

/** Whether an opened X starts with the marker that says the cell is for this hop. */
function isMarker(y: Buffer): boolean {
  for (let i = 0; i < FORWARD_MARKER_LEN; i++) if (y[i] !== 0) return false;
  return true;
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
export function wrapForward(
  layers: ForwardLayer[],
  message: Buffer,
  command: number = CellCommand.RELAY,
  pad: PaddingSource = randomPadding,
): { body: Buffer; tag: Buffer } {
  const { bodies, tags } = wrapForwardMany(layers, [message], command, pad);
  return { body: bodies[0], tag: tags[0] };
}

/**
 * wrapForward for several messages to the same hop, in order (the same bytes as one call each): one
 * cipher call per hop for all of them, and the layers of the entry and of the target hop applied by
 * the cipher itself. Only a hop in between needs its keystream on its own, whose tail goes into the
 * filler (protocol §3.4); X at the target hop ends in the filler whatever P's tail was, so the
 * target's keystream is never needed apart.
 */
export function wrapForwardMany(
  layers: ForwardLayer[],
  messages: Buffer[],
  command: number = CellCommand.RELAY,
  pad: PaddingSource = randomPadding,
): { bodies: Buffer[]; tags: Buffer[] } {
  const h = layers.length - 1;
  if (h < 0) throw new CryptoError(CryptoErrorCode.ARGUMENT, 'wrapForward needs at least one hop');
  for (const message of messages) {
    if (message.length > forwardMessageCapacity(h)) {
      throw new CryptoError(
        CryptoErrorCode.ARGUMENT,
        `a forward message to hop ${h} carries at most ${forwardMessageCapacity(h)} bytes`,
      );
    }
  }
  const k = messages.length;
  const X = FORWARD_X_LEN;
  const T = FORWARD_TAG_LEN;
  const ks = layers.map((l, j) => (j > 0 && j < h ? l.keystreamMany(k) : null));
  // X_h = P XOR KS_h with P = 8 zeros | message | random, then its last 16h bytes are the filler F_h.
  // Random, not zero, padding: the target hop cannot tell from P how far the filler reaches (its
  // position in the path), and the tag of a cell with padding cannot be computed without the cell.
  const p = Buffer.allocUnsafe(k * X);
  for (let i = 0; i < k; i++) {
    const at = i * X;
    p.fill(0, at, at + FORWARD_MARKER_LEN);
    messages[i].copy(p, at + FORWARD_MARKER_LEN);
    const end = at + FORWARD_MARKER_LEN + messages[i].length;
    const padEnd = (i + 1) * X - T * h;
    if (end < padEnd) pad(p, end, padEnd - end);
  }
  let x = layers[h].cryptMany(p);
  if (h > 0) {
    const filler = Buffer.alloc(T * h);
    for (let i = 0; i < k; i++) {
      filler.fill(0);
      // F_1 = 16 zeros; F_{j+1} = (F_j XOR the last 16j bytes of KS_j) | 16 zeros.
      for (let j = 1; j < h; j++) {
        const tail = ks[j]!.subarray((i + 1) * X - T * j, (i + 1) * X);
        for (let b = 0; b < tail.length; b++) filler[b] ^= tail[b];
      }
      filler.copy(x, (i + 1) * X - T * h);
    }
  }
  let tags = tagEach(layers[h], x, k, command);
  const lastTags = tags;
  for (let j = h - 1; j >= 0; j--) {
    // X_j = (T_{j+1} | X_{j+1}[0:4059]) XOR KS_j
    const y = Buffer.allocUnsafeSlow(k * X);
    for (let i = 0; i < k; i++) {
      tags[i].copy(y, i * X);
      x.copy(y, i * X + T, i * X, (i + 1) * X - T);
    }
    const keystream = ks[j];
    if (keystream) {
      xorInPlace(y, keystream);
      x = y;
    } else {
      x = layers[j].cryptMany(y);
    }
    tags = tagEach(layers[j], x, k, command);
  }
  const out = Buffer.allocUnsafeSlow(k * CELL_BODY_LEN);
  const bodies: Buffer[] = [];
  for (let i = 0; i < k; i++) {
    tags[i].copy(out, i * CELL_BODY_LEN);
    x.copy(out, i * CELL_BODY_LEN + T, i * X, (i + 1) * X);
    bodies.push(out.subarray(i * CELL_BODY_LEN, (i + 1) * CELL_BODY_LEN));
  }
  return { bodies, tags: lastTags };
}

/** The tags of `k` cells' X laid end to end, in order (each advances the layer's seq). */
function tagEach(layer: ForwardLayer, xs: Buffer, k: number, command: number): Buffer[] {
  const tags: Buffer[] = [];
  for (let i = 0; i < k; i++) {
    tags.push(layer.tag(xs.subarray(i * FORWARD_X_LEN, (i + 1) * FORWARD_X_LEN), command));
  }
  return tags;
}

/**
 * Both directions of one hop as circuits use them: tagged forward layers; backward, a wide-block
 * layer, except at the entry (hop 0), whose backward layer is AES-CTR alone (protocol §3.4).
 */
export interface CircuitHopCrypto {
  forward: ForwardLayer;
  backward: BackwardCellLayer;
}

/**
 * `firstHop`: this hop is the circuit's entry. A client knows it by position; a relay by its link:
 * the circuit came over a link whose peer did not authenticate as a relay.
 */
export function circuitHopCrypto(keys: HopKeys, at: { firstHop: boolean }): CircuitHopCrypto {
  return {
    forward: new ForwardLayer(keys.kf, keys.mf),
    backward: at.firstHop ? new EntryBackwardLayer(keys.kb) : new BackwardLayer(keys.kb, keys.mb, keys.kt),
  };
}
