// Implements docs/protocol.md §4 (relay message bodies: the `data` of a relay cell).
// Decoders are strict about lengths (a message that does not parse destroys the circuit, §4) and
// return copies, so their results may be kept after the cell buffer is reused.
import { ByteReader, ByteWriter, formatIp, parseIp } from './bytes.js';
import { CIRC_WINDOW_MAX, CIRC_WINDOW_MIN, RELAY_DATA_MAX, RELAY_MAC_LEN } from './constants.js';
import { malformed, tooLarge } from './errors.js';

export const MAX_HOST_LEN = 255;
export const RELAY_ID_LEN = 32;
/** A circuit SENDME's tag is the (truncated) mac of the cell it acknowledges (§5). */
export const SENDME_TAG_LEN = RELAY_MAC_LEN;
export const SENDME_VERSION = 2;

const LABEL = /^[A-Za-z0-9_-]{1,63}$/;
// getaddrinfo reads "127.1", "2130706433" and "0x7f.1" as IPv4 (inet_aton forms); no real top-level
// domain looks like that, so a name whose last label is numeric is refused instead of half-resolved.
const NUMERIC_LABEL = /^(?:[0-9]+|0x[0-9a-f]*)$/i;

/** Why `host` is not acceptable in BEGIN, or null if it is. */
export function hostProblem(host: string): string | null {
  if (typeof host !== 'string' || host.length === 0) return 'the host is empty';
  if (host.length > MAX_HOST_LEN) return `the host is longer than ${MAX_HOST_LEN} bytes`;
  if (parseIp(host)) return null;
  // Non-ASCII names are refused: clients send internationalised names as punycode (xn--...).
  const name = host.endsWith('.') ? host.slice(0, -1) : host;
  const labels = name.split('.');
  for (const l of labels) {
    if (!LABEL.test(l)) {
      return `"${l}" is not a DNS label (1-63 of letters, digits, '-' and '_'), nor is the host an IP literal`;
    }
  }
  if (NUMERIC_LABEL.test(labels[labels.length - 1])) {
    return 'the host looks like an abbreviated or non-decimal IPv4 address; write it as a.b.c.d';
  }
  return null;
}

/** A DNS name (ASCII letters, digits, '-', '_', labels of 1-63), dotted IPv4 or bare IPv6; 1-255 bytes. */
export function isValidHost(host: string): boolean {
  return hostProblem(host) === null;
}

function checkPort(port: number, what: string): void {
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw malformed(`${what} port must be 1-65535, got ${port}`);
  }
}

function checkLen(n: number, what: string): void {
  if (n > RELAY_DATA_MAX)
    throw tooLarge(`${what} would be ${n} bytes; relay data holds at most ${RELAY_DATA_MAX}`);
}

// ---- BEGIN: port(u16) | host [| 0x00 | flags(u8)] ----

/** BEGIN flags (§4.2): a client that has them sends them only to exits whose release reads them. */
export const BeginFlag = {
  /** The client takes circuit SENDMEs naming up to 4096 cells and stream windows up to 4096 (§5). */
  LARGE_WINDOWS: 1,
} as const;

export interface Begin {
  host: string;
  port: number;
  /** 0 when the BEGIN carries none (a client of an older release). Unknown bits are ignored. */
  flags: number;
}

/** `flags` other than 0 add the trailer that older exits refuse (a NUL is not a host byte). */
export function encodeBegin(host: string, port: number, flags = 0): Buffer {
  if (typeof host === 'string' && host.length > MAX_HOST_LEN) {
    throw tooLarge(`BEGIN host is ${host.length} bytes; at most ${MAX_HOST_LEN}`);
  }
  const problem = hostProblem(host);
  if (problem) throw malformed(`cannot BEGIN to "${host}": ${problem}`);
  checkPort(port, 'BEGIN');
  const w = new ByteWriter(2 + host.length + (flags ? 2 : 0)).u16(port).bytes(Buffer.from(host, 'latin1'));
  if (flags) w.u8(0).u8(flags, 'BEGIN flags');
  return w.finish();
}

export function decodeBegin(d: Buffer): Begin {
  const r = new ByteReader(d, 'BEGIN');
  const port = r.u16('port');
  checkPort(port, 'BEGIN');
  const rest = r.rest();
  const nul = rest.indexOf(0);
  const raw = nul < 0 ? rest : rest.subarray(0, nul);
  let flags = 0;
  if (nul >= 0) {
    if (rest.length !== nul + 2) throw malformed('BEGIN flags are one byte after the NUL that ends the host');
    flags = rest[nul + 1];
  }
  if (raw.length === 0) throw malformed('BEGIN names no host');
  if (raw.length > MAX_HOST_LEN) throw tooLarge(`BEGIN host is ${raw.length} bytes; at most ${MAX_HOST_LEN}`);
  for (const b of raw) {
    if (b < 0x21 || b > 0x7e) throw malformed('BEGIN host has a byte that is not printable ASCII');
  }
  const host = raw.toString('latin1');
  const problem = hostProblem(host);
  if (problem) throw malformed(`BEGIN host is not valid: ${problem}`);
  return { host, port, flags };
}

// ---- END: reason(u8) ----

export function encodeEnd(reason: number): Buffer {
  return new ByteWriter(1).u8(reason, 'END reason').finish();
}

/** An empty END means MISC (1), as in Tor. Trailing bytes are refused. */
export function decodeEnd(d: Buffer): { reason: number } {
  if (d.length === 0) return { reason: 1 };
  const r = new ByteReader(d, 'END');
  const reason = r.u8('reason');
  r.end();
  return { reason };
}

// ---- CONNECTED: atype(u8: 4 or 6) | address(4 or 16) ----

function writeAddress(w: ByteWriter, address: string, what: string): void {
  const ip = parseIp(address);
  if (!ip) throw malformed(`${what} address must be an IPv4 or IPv6 literal, got "${address}"`);
  w.u8(ip.length === 4 ? 4 : 6).bytes(ip);
}

function readAddress(r: ByteReader): string {
  const atype = r.u8('atype');
  if (atype === 4) return formatIp(r.bytes(4, 'IPv4 address'));
  if (atype === 6) return formatIp(r.bytes(16, 'IPv6 address'));
  throw malformed(`address type must be 4 or 6, got ${atype}`);
}

export function encodeConnected(address: string): Buffer {
  const w = new ByteWriter(17);
  writeAddress(w, address, 'CONNECTED');
  return w.finish();
}

/** `address` is null for an empty CONNECTED (an exit may decline to say where it connected). */
export function decodeConnected(d: Buffer): { address: string | null } {
  if (d.length === 0) return { address: null };
  const r = new ByteReader(d, 'CONNECTED');
  const address = readAddress(r);
  r.end();
  return { address };
}

// ---- SENDME (circuit level, stream 0): version(u8 = 2) | tag(16) | window(u16) ----

export interface CircuitSendme {
  /** The mac of the DATA cell this SENDME acknowledges (every CIRC_SENDME_INCREMENT-th one). */
  tag: Buffer;
  /** How many DATA cells the sender may have sent past the acknowledged one (§5). */
  window: number;
}

export function encodeCircuitSendme(m: CircuitSendme): Buffer {
  if (m.tag.length !== SENDME_TAG_LEN) {
    throw malformed(`a circuit SENDME tag is ${SENDME_TAG_LEN} bytes, got ${m.tag.length}`);
  }
  if (!Number.isInteger(m.window) || m.window < CIRC_WINDOW_MIN || m.window > CIRC_WINDOW_MAX) {
    throw malformed(
      `a circuit SENDME window is ${CIRC_WINDOW_MIN}-${CIRC_WINDOW_MAX} cells, got ${m.window}`,
    );
  }
  return new ByteWriter(1 + SENDME_TAG_LEN + 2).u8(SENDME_VERSION).bytes(m.tag).u16(m.window).finish();
}

export function decodeCircuitSendme(d: Buffer): CircuitSendme {
  const r = new ByteReader(d, 'circuit SENDME');
  const version = r.u8('version');
  if (version !== SENDME_VERSION)
    throw malformed(`circuit SENDME version ${version} is not ${SENDME_VERSION}`);
  const tag = Buffer.from(r.bytes(SENDME_TAG_LEN, 'tag'));
  const window = r.u16('window');
  r.end();
  if (window < CIRC_WINDOW_MIN || window > CIRC_WINDOW_MAX) {
    throw malformed(`circuit SENDME window ${window} is outside ${CIRC_WINDOW_MIN}-${CIRC_WINDOW_MAX}`);
  }
  return { tag, window };
}

// ---- EXTEND: atype | address | port(u16) | ID(32) | htype(u16) | hlen(u16) | hdata ----

export interface ExtendRequest {
  /** An IP literal: EXTEND never carries a host name (relays are addressed as the consensus says). */
  address: string;
  port: number;
  relayId: Buffer;
  htype: number;
  hdata: Buffer;
}

export function encodeExtend(req: ExtendRequest): Buffer {
  checkPort(req.port, 'EXTEND');
  if (req.relayId.length !== RELAY_ID_LEN) {
    throw malformed(`EXTEND relay id must be ${RELAY_ID_LEN} bytes, got ${req.relayId.length}`);
  }
  const w = new ByteWriter(64 + req.hdata.length);
  writeAddress(w, req.address, 'EXTEND');
  w.u16(req.port).bytes(req.relayId).u16(req.htype, 'EXTEND htype').u16Prefixed(req.hdata, 'EXTEND hdata');
  checkLen(w.length, 'EXTEND');
  return w.finish();
}

export function decodeExtend(d: Buffer): ExtendRequest {
  const r = new ByteReader(d, 'EXTEND');
  const address = readAddress(r);
  const port = r.u16('port');
  checkPort(port, 'EXTEND');
  const relayId = Buffer.from(r.bytes(RELAY_ID_LEN, 'relay id'));
  const htype = r.u16('htype');
  const hlen = r.u16('hlen');
  const hdata = Buffer.from(r.bytes(hlen, 'hdata'));
  r.end();
  return { address, port, relayId, htype, hdata };
}

// ---- EXTENDED: hlen(u16) | hdata ----

export function encodeExtended(hdata: Buffer): Buffer {
  checkLen(2 + hdata.length, 'EXTENDED');
  return new ByteWriter(2 + hdata.length).u16Prefixed(hdata).finish();
}

export function decodeExtended(d: Buffer): { hdata: Buffer } {
  const r = new ByteReader(d, 'EXTENDED');
  const hlen = r.u16('hlen');
  const hdata = Buffer.from(r.bytes(hlen, 'hdata'));
  r.end();
  return { hdata };
}

// ---- TRUNCATED: reason(u8), a DESTROY reason ----

export function encodeTruncated(reason: number): Buffer {
  return new ByteWriter(1).u8(reason, 'TRUNCATED reason').finish();
}

export function decodeTruncated(d: Buffer): { reason: number } {
  const r = new ByteReader(d, 'TRUNCATED');
  const reason = r.u8('reason');
  r.end();
  return { reason };
}
