// Implements docs/protocol.md §3.4 (backward cells): a wide-block layer at every hop past the entry, so
// a cell changed by one relay cannot be changed back by a colluding relay nearer the client once an
// honest hop has added its layer in between (the client then finds no hop that sent it and destroys
// the circuit); the entry's layer, with only the client's link after it, is AES-CTR alone.
import {
  type Cipher,
  createCipheriv,
  createDecipheriv,
  type Decipher,
  hash,
  randomFillSync,
} from 'node:crypto';
import { CELL_BODY_LEN, RELAY_DATA_MAX, RELAY_HEADER_LEN, RELAY_LENGTH_OFFSET } from '../wire/constants.js';
import { CryptoError, CryptoErrorCode, expectLength } from './errors.js';

/** Fills size bytes of buf from offset with padding: random, except in test vectors. */
export type PaddingSource = (buf: Buffer, offset: number, size: number) => void;
export const randomPadding: PaddingSource = (buf, offset, size) => {
  randomFillSync(buf, offset, size);
};

/** Bytes of the tag T at the front of a backward body; R, the rest, is what the keystream covers. */
export const BACKWARD_TAG_LEN = 16;
export const BACKWARD_R_LEN = CELL_BODY_LEN - BACKWARD_TAG_LEN; // 4075

const KEY_LEN = 32;
const SEQ_LEN = 8;
const TWO_32 = 2 ** 32;
/** SHA-256's input for h: Mb | seq | R' (one length for every cell, so a secret prefix keys it). */
const HASH_INPUT_LEN = KEY_LEN + SEQ_LEN + BACKWARD_R_LEN;

/** One hop's backward layer as relays and clients use it: wide (hops 1 on) or plain (hop 0). */
export interface BackwardCellLayer {
  /** Cells this layer has handled: the seq of the next one. */
  readonly seq: number;
  /** Relay: adds this hop's layer to whole bodies laid end to end; returns a fresh buffer. */
  add(bodies: Buffer): Buffer;
  /**
   * Relay: cells this hop sends, as writeRelayBody wrote them (zero tag, relay message, anything
   * after), laid end to end. Fills everything after each message with padding (in place), adds this
   * hop's layer, and returns the cells with their tags T' (what a SENDME acknowledging one echoes).
   */
  originate(plainBodies: Buffer, pad?: PaddingSource): { out: Buffer; tags: Buffer[] };
  /**
   * Client: removes this hop's layer from cells that reached it, laid end to end. Returns a fresh
   * buffer; a cell this hop sent has an all-zero tag in it (isOrigin), and its tag T' is the first
   * 16 bytes of that cell in `bodies`.
   */
  peel(bodies: Buffer): Buffer;
}

abstract class LayerBase implements BackwardCellLayer {
  // Long-lived cipher objects: one per cell costs more than the AES itself.
  protected readonly ctr: Cipher;
  protected seqNo = 0;

  constructor(kb: Buffer) {
    expectLength(kb, KEY_LEN, 'a backward layer key');
    this.ctr = createCipheriv('aes-256-ctr', kb, Buffer.alloc(16));
  }

  get seq(): number {
    return this.seqNo;
  }

  abstract add(bodies: Buffer): Buffer;
  abstract peel(bodies: Buffer): Buffer;

  originate(plainBodies: Buffer, pad: PaddingSource = randomPadding): { out: Buffer; tags: Buffer[] } {
    const k = cellCount(plainBodies);
    for (let i = 0; i < k; i++) {
      const off = i * CELL_BODY_LEN;
      const length = plainBodies.readUInt16BE(off + RELAY_LENGTH_OFFSET);
      if (length > RELAY_DATA_MAX) {
        throw new CryptoError(
          CryptoErrorCode.ARGUMENT,
          `a backward relay message of ${length} bytes does not fit`,
        );
      }
      plainBodies.fill(0, off, off + BACKWARD_TAG_LEN);
      const end = off + RELAY_HEADER_LEN + length;
      if (end < off + CELL_BODY_LEN) pad(plainBodies, end, off + CELL_BODY_LEN - end);
    }
    const out = this.add(plainBodies);
    const tags: Buffer[] = [];
    for (let i = 0; i < k; i++) {
      tags.push(Buffer.from(out.subarray(i * CELL_BODY_LEN, i * CELL_BODY_LEN + BACKWARD_TAG_LEN)));
    }
    return { out, tags };
  }

  /** Advances seq past `k` more cells. */
  protected advance(k: number): void {
    if (this.seqNo + k >= Number.MAX_SAFE_INTEGER) {
      throw new CryptoError(CryptoErrorCode.ARGUMENT, 'relay cell sequence number exhausted');
    }
    this.seqNo += k;
  }
}

/**
 * The entry's (hop 0's) backward layer: AES-256-CTR over the whole body, `T' | R' = (T | R) XOR KS`.
 * A wide layer stops a change from being undone by a relay nearer the client; between the entry and
 * the client there is only their authenticated link, and a change the entry makes to a cell from
 * further on is caught by hop 1's wide layer, the next one the client removes.
 */
export class EntryBackwardLayer extends LayerBase {
  add(bodies: Buffer): Buffer {
    this.advance(cellCount(bodies));
    return this.ctr.update(bodies);
  }

  peel(bodies: Buffer): Buffer {
    this.advance(cellCount(bodies));
    return this.ctr.update(bodies);
  }
}

/**
 * The backward direction of hops 1 on. Per cell, with seq the cells this hop has handled so far:
 *   R' = R XOR KS[16:4091] (KS: the next 4091 bytes of AES-256-CTR under Kb; its first 16 unused)
 *   h  = SHA-256(Mb | seq(u64) | R')[0:16]
 *   T' = AES-256-ECB(Kt, T XOR h) XOR h
 * A relay only ever adds layers, a client only ever peels them: one object serves one side.
 */
export class BackwardLayer extends LayerBase {
  private ecb: Cipher | null = null;
  private ecbInverse: Decipher | null = null;
  private readonly kt: Buffer;
  /** Mb | seq | R' of the cell being hashed. */
  private readonly hashInput = Buffer.alloc(HASH_INPUT_LEN);

  constructor(kb: Buffer, mb: Buffer, kt: Buffer) {
    super(kb);
    expectLength(mb, KEY_LEN, 'a backward hash key');
    expectLength(kt, KEY_LEN, 'a backward tag key');
    this.kt = Buffer.from(kt);
    mb.copy(this.hashInput, 0);
  }

  add(bodies: Buffer): Buffer {
    const k = cellCount(bodies);
    const out = this.ctr.update(bodies);
    const hs = this.hashes(out, k);
    const xs = Buffer.allocUnsafe(k * BACKWARD_TAG_LEN);
    for (let i = 0; i < k; i++)
      xor16(xs, i * BACKWARD_TAG_LEN, bodies, i * CELL_BODY_LEN, hs, i * BACKWARD_TAG_LEN);
    this.ecb ??= newEcb(this.kt);
    const ys = this.ecb.update(xs);
    for (let i = 0; i < k; i++)
      xor16(out, i * CELL_BODY_LEN, ys, i * BACKWARD_TAG_LEN, hs, i * BACKWARD_TAG_LEN);
    return out;
  }

  peel(bodies: Buffer): Buffer {
    const k = cellCount(bodies);
    const hs = this.hashes(bodies, k);
    const out = this.ctr.update(bodies);
    const xs = Buffer.allocUnsafe(k * BACKWARD_TAG_LEN);
    for (let i = 0; i < k; i++)
      xor16(xs, i * BACKWARD_TAG_LEN, bodies, i * CELL_BODY_LEN, hs, i * BACKWARD_TAG_LEN);
    this.ecbInverse ??= newEcbInverse(this.kt);
    const ys = this.ecbInverse.update(xs);
    for (let i = 0; i < k; i++)
      xor16(out, i * CELL_BODY_LEN, ys, i * BACKWARD_TAG_LEN, hs, i * BACKWARD_TAG_LEN);
    return out;
  }

  /** h of each of the `k` cells in `layered` (the R' after this hop's layer), advancing seq by k. */
  private hashes(layered: Buffer, k: number): Buffer {
    const first = this.seqNo;
    this.advance(k);
    const hs = Buffer.allocUnsafe(k * BACKWARD_TAG_LEN);
    const input = this.hashInput;
    for (let i = 0; i < k; i++) {
      const seq = first + i;
      input.writeUInt32BE(Math.floor(seq / TWO_32), KEY_LEN);
      input.writeUInt32BE(seq % TWO_32, KEY_LEN + 4);
      const off = i * CELL_BODY_LEN;
      layered.copy(input, KEY_LEN + SEQ_LEN, off + BACKWARD_TAG_LEN, off + CELL_BODY_LEN);
      hash('sha256', input, 'buffer').copy(hs, i * BACKWARD_TAG_LEN, 0, BACKWARD_TAG_LEN);
    }
    return hs;
  }
}

/** Whether a peeled body's tag is all zeros: the hop just peeled sent this cell. */
export function isOrigin(body: Buffer): boolean {
  let acc = 0;
  for (let i = 0; i < BACKWARD_TAG_LEN; i++) acc |= body[i];
  return acc === 0;
}

function cellCount(bodies: Buffer): number {
  if (bodies.length === 0 || bodies.length % CELL_BODY_LEN !== 0) {
    throw new CryptoError(
      CryptoErrorCode.ARGUMENT,
      `a backward layer takes whole relay cell bodies (a multiple of ${CELL_BODY_LEN} bytes), got ${bodies.length}`,
    );
  }
  return bodies.length / CELL_BODY_LEN;
}

function newEcb(kt: Buffer): Cipher {
  const c = createCipheriv('aes-256-ecb', kt, null);
  c.setAutoPadding(false);
  return c;
}

function newEcbInverse(kt: Buffer): Decipher {
  const d = createDecipheriv('aes-256-ecb', kt, null);
  d.setAutoPadding(false);
  return d;
}

/** out[o..o+16] = a[ao..ao+16] XOR b[bo..bo+16]. */
function xor16(out: Buffer, o: number, a: Buffer, ao: number, b: Buffer, bo: number): void {
  for (let j = 0; j < 16; j++) out[o + j] = a[ao + j] ^ b[bo + j];
}
