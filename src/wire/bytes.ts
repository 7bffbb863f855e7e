// Implements docs/protocol.md §2 and §4 (big-endian integer fields, IPv4/IPv6 address fields).
// Bounds-checked reading and writing for every codec, plus IP literal <-> bytes, which the relay
// messages, SOCKS and the exit policy all need and which must not come from node:net (no I/O here).
import { malformed, tooLarge } from './errors.js';

/**
 * Reads big-endian fields from a buffer. Every read checks the remaining length first, so a short
 * input becomes a WireError naming `what` instead of a RangeError from Buffer.
 */
export class ByteReader {
  private pos = 0;
  constructor(
    private readonly buf: Buffer,
    private readonly what = 'message',
  ) {}

  get remaining(): number {
    return this.buf.length - this.pos;
  }
  get offset(): number {
    return this.pos;
  }

  private need(n: number, field: string): void {
    if (n > this.buf.length - this.pos) {
      throw malformed(
        `truncated ${this.what}: ${field} needs ${n} bytes at offset ${this.pos}, only ${this.remaining} left`,
      );
    }
  }

  u8(field = 'u8'): number {
    this.need(1, field);
    return this.buf[this.pos++];
  }
  u16(field = 'u16'): number {
    this.need(2, field);
    const v = this.buf.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }
  u32(field = 'u32'): number {
    this.need(4, field);
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  /** A view (no copy) of the next n bytes. */
  bytes(n: number, field = 'bytes'): Buffer {
    if (!Number.isInteger(n) || n < 0) throw malformed(`${this.what}: bad length ${n} for ${field}`);
    this.need(n, field);
    const v = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }
  /** A view of everything not yet read. */
  rest(): Buffer {
    const v = this.buf.subarray(this.pos);
    this.pos = this.buf.length;
    return v;
  }
  /** For exact-length formats: trailing bytes mean the sender and we disagree on the layout. */
  end(): void {
    if (this.remaining !== 0) {
      throw malformed(`${this.what} has ${this.remaining} unexpected trailing bytes at offset ${this.pos}`);
    }
  }
}

function checkUint(v: number, bits: 8 | 16 | 32, field: string): void {
  if (!Number.isInteger(v) || v < 0 || v > 2 ** bits - 1) {
    throw tooLarge(`${field} must be an integer in 0..${2 ** bits - 1}, got ${v}`);
  }
}

/**
 * Builds a message field by field into a growing buffer. Integer writes reject values that do not
 * fit their field (WireError TOO_LARGE) rather than silently truncating them as Buffer would.
 */
export class ByteWriter {
  private buf: Buffer;
  private pos = 0;
  constructor(initialCapacity = 64) {
    this.buf = Buffer.allocUnsafe(Math.max(1, initialCapacity));
  }

  get length(): number {
    return this.pos;
  }

  private reserve(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  u8(v: number, field = 'u8'): this {
    checkUint(v, 8, field);
    this.reserve(1);
    this.buf[this.pos++] = v;
    return this;
  }
  u16(v: number, field = 'u16'): this {
    checkUint(v, 16, field);
    this.reserve(2);
    this.buf.writeUInt16BE(v, this.pos);
    this.pos += 2;
    return this;
  }
  u32(v: number, field = 'u32'): this {
    checkUint(v, 32, field);
    this.reserve(4);
    this.buf.writeUInt32BE(v, this.pos);
    this.pos += 4;
    return this;
  }
  bytes(b: Uint8Array): this {
    this.reserve(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
    return this;
  }
  /** A u16 length prefix followed by the bytes. */
  u16Prefixed(b: Uint8Array, field = 'length-prefixed field'): this {
    if (b.length > 0xffff) throw tooLarge(`${field} is ${b.length} bytes; a u16 length allows at most 65535`);
    return this.u16(b.length).bytes(b);
  }
  /** A fresh buffer holding exactly what was written. */
  finish(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.pos));
  }
}

// ---- IP literals ----------------------------------------------------------------------------

const DEC_OCTET = /^(?:0|[1-9][0-9]{0,2})$/;
const HEX_GROUP = /^[0-9a-fA-F]{1,4}$/;

function parseIpv4Into(s: string, out: Buffer, at: number): boolean {
  const parts = s.split('.');
  if (parts.length !== 4) return false;
  for (let i = 0; i < 4; i++) {
    // Leading zeros are refused: "010" is octal to some resolvers and decimal to others.
    if (!DEC_OCTET.test(parts[i])) return false;
    const v = Number(parts[i]);
    if (v > 255) return false;
    out[at + i] = v;
  }
  return true;
}

function parseIpv6(s: string): Buffer | null {
  const halves = s.split('::');
  if (halves.length > 2) return null;
  const groupsOf = (h: string): string[] | null => (h === '' ? [] : h.split(':'));
  const head = groupsOf(halves[0]);
  const tail = halves.length === 2 ? groupsOf(halves[1]) : [];
  if (!head || !tail) return null;
  const all = [...head, ...tail];
  let embeddedV4: Buffer | null = null;
  // An embedded IPv4 address may only be the last thing written (e.g. ::ffff:10.0.0.1).
  const last = all.length > 0 ? all[all.length - 1] : '';
  if (last.includes('.')) {
    if (halves.length === 2 && tail.length === 0) return null; // "1.2.3.4::"
    embeddedV4 = Buffer.alloc(4);
    if (!parseIpv4Into(last, embeddedV4, 0)) return null;
    if (tail.length > 0) tail.pop();
    else head.pop();
  }
  const groupBudget = embeddedV4 ? 6 : 8;
  const words: number[] = [];
  for (const g of [...head, ...tail]) if (!HEX_GROUP.test(g)) return null;
  const written = head.length + tail.length;
  if (halves.length === 2) {
    if (written > groupBudget - 1) return null; // "::" stands for at least one zero group
  } else if (written !== groupBudget) {
    return null;
  }
  for (const g of head) words.push(Number.parseInt(g, 16));
  const zeros = groupBudget - written;
  for (let i = 0; i < zeros; i++) words.push(0);
  for (const g of tail) words.push(Number.parseInt(g, 16));
  const out = Buffer.alloc(16);
  for (let i = 0; i < words.length; i++) out.writeUInt16BE(words[i], i * 2);
  if (embeddedV4) embeddedV4.copy(out, 12);
  return out;
}

/**
 * The bytes of an IP literal: 4 for dotted IPv4, 16 for IPv6 (no brackets, no zone id), or null if
 * `address` is not one (a host name, say). IPv4-mapped IPv6 stays 16 bytes: see `unmapIpv4`.
 */
export function parseIp(address: string): Buffer | null {
  if (typeof address !== 'string' || address.length === 0 || address.length > 45) return null;
  if (address.includes(':')) return parseIpv6(address);
  const out = Buffer.alloc(4);
  return parseIpv4Into(address, out, 0) ? out : null;
}

/** True for an IPv4 dotted quad or an IPv6 literal (without brackets). */
export function isIpLiteral(address: string): boolean {
  return parseIp(address) !== null;
}

const MAPPED_PREFIX = Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]);

/** The IPv4 address inside an IPv4-mapped IPv6 address (::ffff:a.b.c.d), else the input unchanged. */
export function unmapIpv4(ip: Buffer): Buffer {
  if (ip.length === 16 && ip.subarray(0, 12).equals(MAPPED_PREFIX)) return Buffer.from(ip.subarray(12));
  return ip;
}

/** The canonical text of 4 or 16 address bytes: dotted IPv4, or RFC 5952 IPv6 without brackets. */
export function formatIp(ip: Uint8Array): string {
  if (ip.length === 4) return `${ip[0]}.${ip[1]}.${ip[2]}.${ip[3]}`;
  if (ip.length !== 16) throw malformed(`an IP address is 4 or 16 bytes, got ${ip.length}`);
  const b = Buffer.from(ip.buffer, ip.byteOffset, ip.byteLength);
  if (b.subarray(0, 12).equals(MAPPED_PREFIX)) return `::ffff:${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  const words: number[] = [];
  for (let i = 0; i < 8; i++) words.push(b.readUInt16BE(i * 2));
  // RFC 5952: compress the longest run of two or more zero groups (the first one on a tie).
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (ws: number[]) => ws.map((w) => w.toString(16)).join(':');
  if (bestStart < 0) return hex(words);
  return `${hex(words.slice(0, bestStart))}::${hex(words.slice(bestStart + bestLen))}`;
}
