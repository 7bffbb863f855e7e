// Frees a Buffer's memory now rather than at V8's next full collection. A Buffer that lived through
// two young collections (a frame queued for a slow socket, say) is promoted, and when it dies its
// memory waits for a mark-compact, which V8 starts only after Buffer memory grew by 64 MB: that
// was most of a busy relay's peak RSS. Moving the memory to a fresh, unreferenced ArrayBuffer
// (structuredClone with transfer) hands it to the next young collection instead, a few ms away.

/**
 * Releases `buf`'s memory if `buf` is the only view of its own ArrayBuffer (never a slice of
 * Node's shared pool or of a larger buffer). The caller guarantees nothing reads `buf` afterwards:
 * it reads as empty from then on. Returns whether it was released.
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
