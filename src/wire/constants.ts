// Implements docs/protocol.md §2 (cells) and §4 (relay messages): the numbers every part agrees on.

/** Every cell on a link is exactly this many bytes: circId(4) | command(1) | body(4091). */
export const CELL_LEN = 4096;
export const CELL_HEADER_LEN = 5;
export const CELL_BODY_LEN = CELL_LEN - CELL_HEADER_LEN; // 4091

/**
 * Backward relay cell body as the hop that sends it writes it (§3.4):
 * tag(16, zeros) | relayCommand(1) | streamId(2) | length(2) | data | random padding.
 */
export const RELAY_TAG_LEN = 16;
/** The size of a circuit SENDME's tag: a backward layer's tag or a forward cell's. */
export const RELAY_MAC_LEN = 16;
export const RELAY_COMMAND_OFFSET = 16;
export const RELAY_STREAM_OFFSET = 17;
export const RELAY_LENGTH_OFFSET = 19;
export const RELAY_HEADER_LEN = 21;
export const RELAY_DATA_MAX = CELL_BODY_LEN - RELAY_HEADER_LEN; // 4070
/**
 * Unpredictable padding bytes, at least, in a DATA cell that a circuit SENDME will acknowledge: with
 * them the receiver cannot compute the cell's tag without having received it (§5).
 */
export const SENDME_CELL_MIN_PADDING = 16;

/** Cells of one link frame: at most this many per Noise transport message (§1.3). */
export const MAX_CELLS_PER_FRAME = 15;
/** Largest Noise message, handshake or transport (the 2-byte length prefix caps it). */
export const MAX_FRAME_LEN = 65535;

/** The high bit of a circuit id says which side of the link allocated it (§2.2). */
export const CIRC_ID_INITIATOR_BIT = 0x80000000;

export const CellCommand = {
  PADDING: 0,
  CREATE: 1,
  CREATED: 2,
  RELAY: 3,
  DESTROY: 4,
  RELAY_EARLY: 5,
} as const;
export type CellCommand = (typeof CellCommand)[keyof typeof CellCommand];

export const RelayCommand = {
  BEGIN: 1,
  DATA: 2,
  END: 3,
  CONNECTED: 4,
  SENDME: 5,
  EXTEND: 6,
  EXTENDED: 7,
  TRUNCATE: 8,
  TRUNCATED: 9,
  DROP: 10,
  // Onion services (§8.5), with Tor's numbers so a reader of rend-spec-v3 knows them.
  ESTABLISH_INTRO: 32,
  ESTABLISH_RENDEZVOUS: 33,
  INTRODUCE1: 34,
  INTRODUCE2: 35,
  RENDEZVOUS1: 36,
  RENDEZVOUS2: 37,
  INTRO_ESTABLISHED: 38,
  RENDEZVOUS_ESTABLISHED: 39,
  INTRODUCE_ACK: 40,
  HS_DESC_STORE: 41,
  HS_DESC_STORED: 42,
  HS_DESC_FETCH: 43,
  HS_DESC_FETCHED: 44,
} as const;
export type RelayCommand = (typeof RelayCommand)[keyof typeof RelayCommand];

/** Why a circuit was destroyed (DESTROY body, TRUNCATED body). Tor's numbers plus INTEGRITY. */
export const DestroyReason = {
  NONE: 0,
  PROTOCOL: 1,
  INTERNAL: 2,
  REQUESTED: 3,
  HIBERNATING: 4,
  RESOURCELIMIT: 5,
  CONNECTFAILED: 6,
  OR_IDENTITY: 7,
  CHANNEL_CLOSED: 8,
  FINISHED: 9,
  TIMEOUT: 10,
  DESTROYED: 11,
  NOSUCHSERVICE: 12,
  INTEGRITY: 13,
} as const;
export type DestroyReason = (typeof DestroyReason)[keyof typeof DestroyReason];

/** Why a stream ended (END body). Tor's numbers. */
export const EndReason = {
  MISC: 1,
  RESOLVEFAILED: 2,
  CONNECTREFUSED: 3,
  EXITPOLICY: 4,
  DESTROY: 5,
  DONE: 6,
  TIMEOUT: 7,
  NOROUTE: 8,
  HIBERNATING: 9,
  INTERNAL: 10,
  RESOURCELIMIT: 11,
  CONNRESET: 12,
  TORPROTOCOL: 13,
} as const;
export type EndReason = (typeof EndReason)[keyof typeof EndReason];

/** Circuit handshake types carried in CREATE and EXTEND. */
/**
 * Circuit handshakes (§3.1, §3.6): ntor for every hop, or for the first hop only a handshake bound to
 * the link's own key agreement, which needs no answer before the next EXTEND.
 */
export const HandshakeType = { NTOR_X25519_SHA256: 2, LINK_BOUND: 3 } as const;
export const NTOR_ONIONSKIN_LEN = 96; // ID(32) | B(32) | X(32)
export const NTOR_REPLY_LEN = 64; // Y(32) | AUTH(32)
export const LINK_BOUND_HDATA_LEN = 32; // X(32)
export const LINK_BOUND_REPLY_LEN = 32; // CONFIRM(32)
/**
 * Link-bound CREATEs one link carries at most (§3.6): a relay remembers every X of a link to refuse a
 * repeated one, so their number is bounded; clients use ntor on a link past it.
 */
export const MAX_LINK_BOUND_CREATES_PER_LINK = 4096;

/** Flow control (§5), counted in DATA cells. */
/** Every this many DATA cells the receiver answers a circuit SENDME that names its next window. */
export const CIRC_SENDME_INCREMENT = 64;
/** What a circuit's sender may send before its first SENDME: small, so new circuits do not burst. */
export const CIRC_WINDOW_START = 128;
/** The windows a circuit SENDME may name. At least one increment, so a SENDME is always due. */
export const CIRC_WINDOW_MIN = CIRC_SENDME_INCREMENT;
/**
 * The most a receiver may let a sender have in flight past its last acknowledged cell (16 MiB):
 * over long round trips, LEGACY_CIRC_WINDOW_MAX per round trip held one download well below what the
 * path carries (docs/performance.md, "Windows past 4 MiB").
 */
export const CIRC_WINDOW_MAX = 4096;
/** The most a client or exit without large windows (§5) accepts in a circuit SENDME (4 MiB): none is named more. */
export const LEGACY_CIRC_WINDOW_MAX = 1024;
/** A stream's window at its start, and the most a peer without large windows (§5) lets it reach. */
export const STREAM_WINDOW_START = 1024;
/** The most a stream's receiver may let its window grow to with extra SENDMEs (16 MiB). */
export const STREAM_WINDOW_MAX = 4096;
export const STREAM_SENDME_INCREMENT = 128;

/** A circuit may carry at most this many RELAY_EARLY cells per direction-hop (limits path length). */
export const MAX_RELAY_EARLY = 8;

/** EXTENDs one hop handles per circuit, TRUNCATE-then-EXTEND included (§4.1); one more destroys it. */
export const MAX_EXTENDS_PER_CIRCUIT = 4;

export function destroyReasonName(r: number): string {
  for (const [k, v] of Object.entries(DestroyReason)) if (v === r) return k;
  return `UNKNOWN(${r})`;
}
export function endReasonName(r: number): string {
  for (const [k, v] of Object.entries(EndReason)) if (v === r) return k;
  return `UNKNOWN(${r})`;
}
