// One reusable buffer per purpose for the hot path: a batch of cells is assembled here, handed to one
// cipher call (which returns fresh output), and the space is reused for the next batch. Fewer large
// allocations mean less garbage collection, a large share of a relay's CPU otherwise. Callers must
// finish with the returned view before they yield, and must never keep it.
import { releaseBuffer } from './release.js';

export class Scratch {
  private buf = Buffer.allocUnsafe(0);

  /** A view of `size` bytes, valid until the next call. */
  take(size: number): Buffer {
    if (this.buf.length < size) this.buf = Buffer.allocUnsafe(Math.max(size, this.buf.length * 2, 65536));
    return this.buf.subarray(0, size);
  }

  /** Gives a buffer grown by a burst back (called between turns, when no view of it is in use). */
  release(): void {
    if (this.buf.length <= 65536) return;
    const old = this.buf;
    this.buf = Buffer.allocUnsafe(0);
    releaseBuffer(old);
  }
}
