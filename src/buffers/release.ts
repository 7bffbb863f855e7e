// Frees a Buffer's memory now rather than at V8's next full collection. A Buffer that lived through
// two young collections (a frame queued for a slow socket, say) is promoted, and when it dies its
// memory waits for a mark-compact, which V8 starts only after Buffer memory grew by 64 MB: on a busy
// relay or client that was most of the peak RSS. Moving the memory to a fresh, unreferenced
// ArrayBuffer (structuredClone with transfer) hands it to the next young collection instead.
//
// The transfer detaches the ArrayBuffer: every other view of it then reads as empty, silently (length
// 0, no error). So only the owner of a buffer calls this, once nothing else can read it. The callers,
// and why each is safe (no other module may call it):
// - net/link.ts, a sealed frame once the socket has written it: the cipher made it for that write
//   alone, and the write callback means the socket holds it no longer.
// - net/link.ts, a received chunk once every frame in it is decrypted: decryption writes fresh
//   buffers, so no cell body is a view of the chunk (the chunk with the decoder's partial frame is kept).
// - net/pipe-releasing.ts, stream data once the socket has written it: CircuitStream copies every
//   chunk it delivers, so the pipe held the only reference.
// - buffers/scratch.ts and buffers/cell-slabs.ts, their own backing memory, between turns when no
//   view they handed out is in use: a scratch view never outlives its turn; a slab goes when every
//   copy in it is done(), or when its link has closed and dropped its queue.
// A broken promise shows as missing bytes, which the byte-for-byte checks of the network tests catch.
// releaseBuffer itself leaves alone what is plainly shared: a view of part of a buffer (Node's pool of
// small Buffers included) and anything under 16 KiB, where a transfer costs more than it frees early.

/**
 * Releases `buf`'s memory if `buf` spans its whole ArrayBuffer (never a slice of Node's shared pool
 * or of a larger buffer). Other views of the same ArrayBuffer are not detected: the caller guarantees
 * that neither `buf` nor any of them is read afterwards, since they read as empty from then on.
 * Returns whether it was released.
 */
export function releaseBuffer(buf: Buffer): boolean {
  const ab = buf.buffer;
  if (buf.byteOffset !== 0 || buf.byteLength !== ab.byteLength || buf.byteLength < MIN_RELEASE) return false;
  if (!(ab instanceof ArrayBuffer)) return false;
  try {
    structuredClone(ab, { transfer: [ab] });
    return true;
  } catch {
    // Not detachable (Node marks some buffers so): it is left to the collector as before.
    return false;
  }
}

/** Below this a transfer costs more than the memory it frees early. */
const MIN_RELEASE = 16 * 1024;
