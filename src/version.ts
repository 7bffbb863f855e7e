// The release and what it requires of the relays a client uses (docs/protocol.md §5, §6.2).

/** This release; relays publish it in their descriptors as `allium/<version>`. */
export const ALLIUM_VERSION = '0.5.0';

/**
 * The oldest release any relay of a path may run, and the directory lists: the release that
 * changed the cell crypto (protocol §3.4: the cell command in every forward tag, a wide-block
 * backward layer, a fifth key from the key schedule) and the link handshake's first message (§1.2),
 * so no cell or link of an older relay can be read.
 */
export const MIN_RELAY_VERSION: readonly [number, number, number] = [0, 5, 0];

/**
 * The oldest release an exit may run for this client's streams: the one that brought circuit SENDME
 * version 2 (protocol §5), which an older exit refuses, and an older exit's SENDMEs ours.
 * Entries and middles do not read SENDMEs, so any release serves there.
 */
export const MIN_EXIT_VERSION: readonly [number, number, number] = [0, 2, 0];

/**
 * The oldest release an entry may run for a link-bound first hop (protocol §3.6): an
 * older entry refuses handshake type 3, so the client runs ntor with it as before.
 */
export const MIN_LINK_BOUND_VERSION: readonly [number, number, number] = [0, 3, 0];

/**
 * The oldest release an exit may run for windows past 4 MiB (protocol §5): an older
 * exit refuses a circuit SENDME that names more than 1024 cells and a stream SENDME past 1024.
 */
export const MIN_LARGE_WINDOW_VERSION: readonly [number, number, number] = [0, 4, 0];

/** Whether a descriptor's `version` ("allium/X.Y.Z...") is at least `min`; false if it does not parse. */
export function versionAtLeast(version: string, min: readonly [number, number, number]): boolean {
  const m = /^allium\/(\d+)\.(\d+)\.(\d+)/.exec(version);
  if (!m) return false;
  for (let i = 0; i < 3; i++) {
    const part = Number(m[i + 1]);
    if (part !== min[i]) return part > min[i];
  }
  return true;
}
