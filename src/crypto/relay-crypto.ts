// Implements docs/protocol.md §3.3 (relay cell MAC) and §3.4 (AES-CTR layers), for one hop and direction.
import { type Cipher, createCipheriv, createHmac, timingSafeEqual } from 'node:crypto';
import {
  CELL_BODY_LEN,
  RELAY_MAC_LEN,
  RELAY_MAC_OFFSET,
  RELAY_RECOGNIZED_OFFSET,
} from '../wire/constants.js';
import { CryptoError, CryptoErrorCode, expectLength } from './errors.js';
import type { HopKeys } from './ntor.js';

const ZERO_MAC = Buffer.alloc(RELAY_MAC_LEN);
const MAC_END = RELAY_MAC_OFFSET + RELAY_MAC_LEN;
const TWO_32 = 2 ** 32;

/**
 * What every layer of one hop and direction holds: an AES-256-CTR keystream that runs on across
 * cells, a MAC key, and the cell counter that goes into every MAC (protocol §3.4).
 */
export abstract class HopLayer {
  // One long-lived cipher: a cipher object per cell costs more than the AES itself (node20-notes).
  protected readonly ctr: Cipher;
  private readonly macKey: Buffer;
  protected seqNo = 0;
  private readonly seqBuf = Buffer.alloc(8);

  constructor(cipherKey: Buffer, macKey: Buffer) {
    expectLength(cipherKey, 32, 'a layer cipher key');
    expectLength(macKey, 32, 'a layer MAC key');
    this.ctr = createCipheriv('aes-256-ctr', cipherKey, Buffer.alloc(16));
    this.macKey = Buffer.from(macKey);
  }

  /** Cells sealed, recognized or opened so far in this direction: the seq of the next one. */
  get seq(): number {
    return this.seqNo;
  }

  /** HMAC-SHA256(M, seq | parts...)[0:16] at the current seq (which the caller advances). */
  protected macAtSeq(...parts: Buffer[]): Buffer {
    if (this.seqNo >= Number.MAX_SAFE_INTEGER) {
      throw new CryptoError(CryptoErrorCode.ARGUMENT, 'relay cell sequence number exhausted');
    }
    this.seqBuf.writeUInt32BE(Math.floor(this.seqNo / TWO_32), 0);
    this.seqBuf.writeUInt32BE(this.seqNo % TWO_32, 4);
    const h = createHmac('sha256', this.macKey).update(this.seqBuf);
    for (const p of parts) h.update(p);
    return h.digest().subarray(0, RELAY_MAC_LEN);
  }
}

/**
 * Backward cells of one hop (protocol §3.4): the same object serves sender and receiver (CTR is its
 * own inverse); a side only ever seals or only ever recognizes on one LayerCipher.
 */
export class LayerCipher extends HopLayer {
  /** XORs the next CELL_BODY_LEN keystream bytes into a copy of `body`. */
  crypt(body: Buffer): Buffer {
    expectLength(body, CELL_BODY_LEN, 'a relay cell body');
    return this.ctr.update(body);
  }

  /**
   * Like crypt() for several bodies of this hop and direction laid end to end (a multiple of
   * CELL_BODY_LEN): one call instead of one per cell, for cells that queue together.
   */
  cryptMany(bodies: Buffer): Buffer {
    if (bodies.length === 0 || bodies.length % CELL_BODY_LEN !== 0) {
      throw new CryptoError(
        CryptoErrorCode.ARGUMENT,
        `cryptMany needs whole relay cell bodies (a multiple of ${CELL_BODY_LEN} bytes), got ${bodies.length}`,
      );
    }
    return this.ctr.update(bodies);
  }

  /** Writes the MAC for the current seq into `plainBody` (in place), advances seq, returns the tag. */
  seal(plainBody: Buffer): Buffer {
    expectLength(plainBody, CELL_BODY_LEN, 'a relay cell body');
    ZERO_MAC.copy(plainBody, RELAY_MAC_OFFSET);
    const tag = this.mac(plainBody);
    tag.copy(plainBody, RELAY_MAC_OFFSET);
    this.seqNo++;
    return tag;
  }

  /**
   * If `plainBody` has recognized == 0 and a MAC valid for the current seq, advances seq and
   * returns the tag; else returns null and changes nothing (the body may be forwarded as is).
   */
  recognize(plainBody: Buffer): Buffer | null {
    expectLength(plainBody, CELL_BODY_LEN, 'a relay cell body');
    if (plainBody[RELAY_RECOGNIZED_OFFSET] !== 0 || plainBody[RELAY_RECOGNIZED_OFFSET + 1] !== 0) return null;
    const expected = this.mac(plainBody);
    if (!timingSafeEqual(expected, plainBody.subarray(RELAY_MAC_OFFSET, MAC_END))) return null;
    this.seqNo++;
    return expected;
  }

  /** HMAC-SHA256(M, seq | body with the mac field read as zeros)[0:16], without touching `body`. */
  private mac(body: Buffer): Buffer {
    return this.macAtSeq(body.subarray(0, RELAY_MAC_OFFSET), ZERO_MAC, body.subarray(MAC_END));
  }
}

/** Both directions of one hop. */
export interface HopCrypto {
  /** Away from the client: Kf, Mf. */
  forward: LayerCipher;
  /** Toward the client: Kb, Mb. */
  backward: LayerCipher;
}

/**
 * Both directions as LayerCiphers: the layer primitive on its own, for tests and test vectors. Circuits
 * use circuitHopCrypto (forward-onion.ts), whose forward direction carries a tag per hop.
 */
export function hopCrypto(keys: HopKeys): HopCrypto {
  return { forward: new LayerCipher(keys.kf, keys.mf), backward: new LayerCipher(keys.kb, keys.mb) };
}
