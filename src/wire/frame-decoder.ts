// Implements docs/protocol.md §1.2 and §1.3 (u16-length-prefixed Noise messages on a link).
import { MAX_FRAME_LEN } from './constants.js';
import { malformed, tooLarge, type WireError } from './errors.js';

const PREFIX_LEN = 2;

/** The 2-byte length prefix of a frame of `len` bytes (1..65535). */
export function encodeFrameLength(len: number): Buffer {
  if (!Number.isInteger(len) || len < 1)
    throw malformed(`a frame length must be a positive integer, got ${len}`);
  if (len > MAX_FRAME_LEN) throw tooLarge(`a frame is at most ${MAX_FRAME_LEN} bytes, got ${len}`);
  const b = Buffer.allocUnsafe(PREFIX_LEN);
  b.writeUInt16BE(len, 0);
  return b;
}

/**
 * Cuts a TCP byte stream into frame payloads however it is chunked. Only the partial tail is kept.
 * A payload that lies inside one pushed chunk is returned as a view of it (no copy), so callers
 * must not reuse chunk buffers (socket 'data' buffers are fresh). After an error the decoder stays
 * failed: the link must close, since the stream can no longer be framed.
 */
export class FrameDecoder {
  private readonly maxFrameLen: number;
  private chunks: Buffer[] = [];
  private head = 0;
  private total = 0;
  private failure: WireError | null = null;

  constructor(maxFrameLen: number = MAX_FRAME_LEN) {
    if (!Number.isInteger(maxFrameLen) || maxFrameLen < 1 || maxFrameLen > MAX_FRAME_LEN) {
      throw tooLarge(`maxFrameLen must be 1..${MAX_FRAME_LEN}, got ${maxFrameLen}`);
    }
    this.maxFrameLen = maxFrameLen;
  }

  /** Bytes received but not yet returned as part of a frame. */
  get buffered(): number {
    return this.total;
  }

  push(chunk: Buffer): Buffer[] {
    if (this.failure) throw this.failure;
    if (chunk.length > 0) {
      this.chunks.push(chunk);
      this.total += chunk.length;
    }
    const frames: Buffer[] = [];
    while (this.total >= PREFIX_LEN) {
      const len = this.peekLength();
      if (len === 0) this.fail(malformed('received a zero-length frame'));
      if (len > this.maxFrameLen) {
        this.fail(tooLarge(`received a ${len}-byte frame; the limit is ${this.maxFrameLen}`));
      }
      if (this.total < PREFIX_LEN + len) break;
      frames.push(this.take(PREFIX_LEN + len).subarray(PREFIX_LEN));
    }
    return frames;
  }

  private fail(err: WireError): never {
    this.failure = err;
    this.chunks = [];
    this.head = 0;
    this.total = 0;
    throw err;
  }

  private peekLength(): number {
    const first = this.chunks[this.head];
    if (first.length >= PREFIX_LEN) return first.readUInt16BE(0);
    // The prefix itself is split across chunks (the first holds exactly one byte).
    return (first[0] << 8) | this.chunks[this.head + 1][0];
  }

  private dropHead(): void {
    this.head++;
    // Compact now and then rather than shift() per chunk, which is quadratic for tiny chunks.
    if (this.head === this.chunks.length) {
      this.chunks = [];
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.chunks.length) {
      this.chunks = this.chunks.slice(this.head);
      this.head = 0;
    }
  }

  /** Removes and returns the next n buffered bytes, copying only when they span chunks. */
  private take(n: number): Buffer {
    this.total -= n;
    const first = this.chunks[this.head];
    if (first.length >= n) {
      if (first.length === n) this.dropHead();
      else this.chunks[this.head] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const c = this.chunks[this.head];
      const want = n - filled;
      if (c.length <= want) {
        c.copy(out, filled);
        filled += c.length;
        this.dropHead();
      } else {
        c.copy(out, filled, 0, want);
        filled += want;
        this.chunks[this.head] = c.subarray(want);
      }
    }
    return out;
  }
}
