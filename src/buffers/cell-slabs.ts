// Cell bodies that must wait (a link whose socket is backed up) are copied here, into slabs the link
// owns, instead of being kept as views. A view keeps its whole parent alive (a decrypted frame of 15
// cells of many circuits, a run of one circuit), and a parent that waits long enough to be promoted
// stays in memory, dead, until V8's next full collection. A slab whose cells have all been written is
// reused, so a backlog costs one copy per cell and no allocation.

import { releaseBuffer } from './release.js';

const SLAB_BYTES = 64 * 1024;
/** Empty slabs kept for reuse; more than this are left to the collector. */
const MAX_FREE = 16;

interface Slab {
  buf: Buffer;
  used: number;
  /** Copies handed out and not yet done(). */
  pending: number;
}

export class CellSlabs {
  private current: Slab | null = null;
  private readonly free: Slab[] = [];
  private readonly byBuffer = new Map<ArrayBufferLike, Slab>();

  /** A copy of `body` in a slab; call done() with it once it has been read for the last time. */
  copy(body: Buffer): Buffer {
    if (body.length > SLAB_BYTES) return Buffer.from(body);
    let s = this.current;
    if (!s || s.used + body.length > SLAB_BYTES) {
      if (s && s.pending === 0) this.recycle(s);
      s = this.free.pop() ?? this.make();
      this.current = s;
    }
    const view = s.buf.subarray(s.used, s.used + body.length);
    body.copy(view);
    s.used += body.length;
    s.pending++;
    return view;
  }

  /** `view` (from copy(), or any other buffer, which is ignored) will not be read again. */
  done(view: Buffer): void {
    const s = this.byBuffer.get(view.buffer);
    if (!s) return;
    s.pending--;
    if (s.pending === 0 && s !== this.current) this.recycle(s);
  }

  /** Gives back the empty slabs kept for reuse (the queue they served has drained). */
  trim(): void {
    for (const s of this.free) {
      this.byBuffer.delete(s.buf.buffer);
      releaseBuffer(s.buf);
    }
    this.free.length = 0;
  }

  /** Forgets every slab (the link closed: nothing will be read again). */
  clear(): void {
    for (const s of this.byBuffer.values()) releaseBuffer(s.buf);
    this.current = null;
    this.free.length = 0;
    this.byBuffer.clear();
  }

  private make(): Slab {
    const s: Slab = { buf: Buffer.allocUnsafeSlow(SLAB_BYTES), used: 0, pending: 0 };
    this.byBuffer.set(s.buf.buffer, s);
    return s;
  }

  private recycle(s: Slab): void {
    s.used = 0;
    if (this.free.length < MAX_FREE) this.free.push(s);
    else {
      this.byBuffer.delete(s.buf.buffer);
      releaseBuffer(s.buf);
    }
  }
}
