// Implements docs/protocol.md §3.4 (AES-CTR layers and the forward tag's MAC), for one hop and direction.
import { type Cipher, createCipheriv, createHmac } from 'node:crypto';
import { RELAY_MAC_LEN } from '../wire/constants.js';
import { CryptoError, CryptoErrorCode, expectLength } from './errors.js';

const TWO_32 = 2 ** 32;

/**
 * What every layer of one hop and direction holds: an AES-256-CTR keystream that runs on across
 * cells, a MAC key, and the cell counter that goes into every MAC (protocol §3.4).
 */
export abstract class HopLayer {
  // One long-lived cipher: a cipher object per cell costs more than the AES itself (node20-notes).
  protected readonly ctr: Cipher;
  protected readonly macKey: Buffer;
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
