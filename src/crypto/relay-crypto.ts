// Implements docs/protocol.md §3.4 (AES-CTR layers and the forward tag's MAC), for one hop and direction.
import { type Cipher, createCipheriv, hash } from 'node:crypto';
import { RELAY_MAC_LEN } from '../wire/constants.js';
import { CryptoError, CryptoErrorCode, expectLength } from './errors.js';

const TWO_32 = 2 ** 32;
/** SHA-256's block: HMAC's key pads are this long. */
const BLOCK_LEN = 64;
const SEQ_LEN = 8;
const DIGEST_LEN = 32;

/**
 * What every layer of one hop and direction holds: an AES-256-CTR keystream that runs on across
 * cells, a MAC key, and the cell counter that goes into every MAC (protocol §3.4).
 */
export abstract class HopLayer {
  // One long-lived cipher: a cipher object per cell costs more than the AES itself (node20-notes).
  protected readonly ctr: Cipher;
  protected readonly macKey: Buffer;
  protected seqNo = 0;
  /**
   * HMAC-SHA256 as two one-shot hashes over its padded key: (K ^ ipad) | seq | parts, then
   * (K ^ opad) | inner. The same bytes as createHmac, without a MAC object (and its two key blocks
   * hashed again) per cell, a cost a relay pays on every forward cell and a client per hop.
   */
  private inner: Buffer;
  private readonly outer = Buffer.alloc(BLOCK_LEN + DIGEST_LEN);

  constructor(cipherKey: Buffer, macKey: Buffer) {
    expectLength(cipherKey, 32, 'a layer cipher key');
    expectLength(macKey, 32, 'a layer MAC key');
    this.ctr = createCipheriv('aes-256-ctr', cipherKey, Buffer.alloc(16));
    this.macKey = Buffer.from(macKey);
    // Sized for the usual message (a cell command and a cell's X); a longer one grows it.
    this.inner = Buffer.alloc(BLOCK_LEN + SEQ_LEN + 1 + 4075);
    for (let i = 0; i < BLOCK_LEN; i++) {
      const k = i < macKey.length ? macKey[i] : 0;
      this.inner[i] = k ^ 0x36;
      this.outer[i] = k ^ 0x5c;
    }
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
    let len = BLOCK_LEN + SEQ_LEN;
    for (const p of parts) len += p.length;
    if (this.inner.length < len) {
      const grown = Buffer.alloc(len);
      this.inner.copy(grown, 0, 0, BLOCK_LEN);
      this.inner = grown;
    }
    const inner = this.inner;
    inner.writeUInt32BE(Math.floor(this.seqNo / TWO_32), BLOCK_LEN);
    inner.writeUInt32BE(this.seqNo % TWO_32, BLOCK_LEN + 4);
    let at = BLOCK_LEN + SEQ_LEN;
    for (const p of parts) at += p.copy(inner, at);
    hash('sha256', inner.subarray(0, len), 'buffer').copy(this.outer, BLOCK_LEN);
    return hash('sha256', this.outer, 'buffer').subarray(0, RELAY_MAC_LEN);
  }
}
