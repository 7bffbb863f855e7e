// Atomic file writes for every role's data directory (directory records, the client's cached consensus
// and entry guards): write a temporary file, fsync it, rename it over the old one, fsync the folder.
// A process killed mid-write leaves its temporary file behind; the next process to write the same file
// (and the directory at start) removes such leftovers, so crashes cannot fill the disk.
import { constants as fsConstants } from 'node:fs';
import { open, readdir, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

let tmpCounter = 0;
/** Files whose leftovers this process has removed already. */
const swept = new Set<string>();

function tmpPrefix(path: string): string {
  return `${basename(path)}.tmp-`;
}

/**
 * Removes temporary files that earlier processes left beside `path` (`<name>.tmp-<pid>-<n>`), never
 * this process's own. Returns how many were removed; a file that cannot be removed is skipped.
 */
export async function removeStaleTempFiles(path: string): Promise<number> {
  swept.add(path);
  const prefix = tmpPrefix(path);
  const own = `${prefix}${process.pid}-`;
  let names: string[];
  try {
    names = await readdir(dirname(path));
  } catch {
    return 0;
  }
  let removed = 0;
  for (const name of names) {
    if (!name.startsWith(prefix) || name.startsWith(own) || !/^\d+-\d+$/.test(name.slice(prefix.length)))
      continue;
    try {
      await unlink(join(dirname(path), name));
      removed++;
    } catch {
      // Gone already, or not ours to remove: either way nothing to do.
    }
  }
  return removed;
}

/** Replaces `path` with `data` atomically; the file is created with `mode`. */
export async function writeFileAtomic(path: string, data: string | Buffer, mode = 0o600): Promise<void> {
  if (!swept.has(path)) await removeStaleTempFiles(path);
  const tmp = `${path}.tmp-${process.pid}-${++tmpCounter}`;
  const fh = await open(tmp, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, mode);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } catch (err) {
    await fh.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    throw err;
  }
  await fh.close();
  try {
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  }
  // Make the rename itself durable; not every platform lets a directory be fsynced, which is fine.
  try {
    const dir = await open(dirname(path), 'r');
    await dir.sync().catch(() => {});
    await dir.close();
  } catch {
    // best effort
  }
}
