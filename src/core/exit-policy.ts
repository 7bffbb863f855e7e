// Implements docs/protocol.md §7 (exit policy: rule syntax, special-purpose address refusal, first match).
// Pure: addresses are parsed by src/wire/bytes.ts, not node:net, so this runs anywhere.
import { AlliumError } from '../errors.js';
import { formatIp, parseIp, unmapIpv4 } from '../wire/bytes.js';
import { NAT64_PREFIX, SPECIAL_PURPOSE_V4, SPECIAL_PURPOSE_V6 } from './special-purpose-addresses.js';

export { parseIp };

export class ExitPolicyError extends AlliumError {}

export interface ExitRule {
  action: 'accept' | 'reject';
  /** Network address (4 or 16 bytes, host bits zero), or null for `*` (every IPv4 and IPv6 address). */
  network: Buffer | null;
  /** Prefix length: 0-32 for IPv4, 0-128 for IPv6; 0 for `*`. */
  bits: number;
  portLo: number;
  portHi: number;
}

/** Exits accept every public destination unless the operator says otherwise. */
export const DEFAULT_EXIT_POLICY: string[] = ['accept *:*'];

interface Prefix {
  net: Buffer;
  bits: number;
}

function prefixHas(p: Prefix, ip: Buffer): boolean {
  if (p.net.length !== ip.length) return false;
  const whole = p.bits >> 3;
  for (let i = 0; i < whole; i++) if (p.net[i] !== ip[i]) return false;
  const rem = p.bits & 7;
  if (rem === 0) return true;
  const mask = (0xff << (8 - rem)) & 0xff;
  return (p.net[whole] & mask) === (ip[whole] & mask);
}

/** `outer` contains every address of `inner`. */
function prefixContains(outer: Prefix, inner: Prefix): boolean {
  return outer.bits <= inner.bits && prefixHas(outer, inner.net);
}

function masked(ip: Buffer, bits: number): Buffer {
  const out = Buffer.alloc(ip.length);
  for (let i = 0; i < ip.length; i++) {
    const keep = Math.min(8, Math.max(0, bits - i * 8));
    out[i] = ip[i] & ((0xff << (8 - keep)) & 0xff);
  }
  return out;
}

function pfx(text: string, bits: number): Prefix {
  const ip = parseIp(text);
  if (!ip) throw new Error(`bad built-in prefix ${text}`);
  return { net: masked(ip, bits), bits };
}

function cidr(text: string): Prefix {
  const slash = text.indexOf('/');
  return pfx(text.slice(0, slash), Number(text.slice(slash + 1)));
}

// What an exit refuses unless allowPrivate: the special-purpose blocks (special-purpose-addresses.ts),
// the same list the relay publishes (relay/private-ranges.ts).
const REFUSED_V4: Prefix[] = SPECIAL_PURPOSE_V4.map((b) => cidr(b.cidr));
const LOCAL_V4: Prefix[] = SPECIAL_PURPOSE_V4.filter((b) => b.local).map((b) => cidr(b.cidr));
const NAT64 = parseIp(NAT64_PREFIX)!;
/** The NAT64 forms of IPv4 blocks: the well-known prefix leads to the embedded IPv4 address. */
function nat64(blocks: Prefix[]): Prefix[] {
  return blocks.map((p) => {
    const net = Buffer.from(NAT64);
    p.net.copy(net, 12);
    return { net, bits: 96 + p.bits };
  });
}
const REFUSED_V6: Prefix[] = [...SPECIAL_PURPOSE_V6.map((b) => cidr(b.cidr)), ...nat64(REFUSED_V4)];
const LOCAL_V6: Prefix[] = [
  ...SPECIAL_PURPOSE_V6.filter((b) => b.local).map((b) => cidr(b.cidr)),
  ...nat64(LOCAL_V4),
];
// IPv4-mapped IPv6 is judged as the IPv4 address it carries, never as IPv6.
const MAPPED_V6 = pfx('::ffff:0.0.0.0', 96);

function isRefusedIp(ip: Buffer): boolean {
  return (ip.length === 4 ? REFUSED_V4 : REFUSED_V6).some((p) => prefixHas(p, ip));
}

/**
 * In a block that reaches the host itself or its site: private, shared (CGNAT), loopback, link-local,
 * multicast, unspecified, and their IPv4-mapped and NAT64 forms. Not an IP literal -> false.
 */
export function isPrivateAddress(address: string): boolean {
  const ip = parseIp(address);
  if (ip === null) return false;
  const plain = unmapIpv4(ip);
  return (plain.length === 4 ? LOCAL_V4 : LOCAL_V6).some((p) => prefixHas(p, plain));
}

/** In a special-purpose block an exit refuses unless its operator allows private destinations (§7). */
export function isSpecialPurposeAddress(address: string): boolean {
  const ip = parseIp(address);
  return ip !== null && isRefusedIp(unmapIpv4(ip));
}

/**
 * The blocks an exit refuses, as reject rules for every port, in the order published: IPv4, IPv6,
 * then the NAT64 forms of the IPv4 blocks.
 */
export function specialPurposeRejects(): ExitRule[] {
  return [...REFUSED_V4, ...REFUSED_V6].map((p) => ({
    action: 'reject',
    network: Buffer.from(p.net),
    bits: p.bits,
    portLo: 1,
    portHi: 65535,
  }));
}

// ---- parsing ----

function syntax(index: number, line: string, why: string): ExitPolicyError {
  return new ExitPolicyError(
    'ALLIUM_EXIT_POLICY_SYNTAX',
    `exit policy line ${index + 1} "${line}": ${why} (expected e.g. "accept 10.0.0.0/8:80-443", "reject *:*", "accept [::1]:22")`,
  );
}

const PORT = /^[0-9]{1,5}$/;

function parsePort(text: string, fail: (why: string) => ExitPolicyError): number {
  if (!PORT.test(text)) throw fail(`"${text}" is not a port`);
  const n = Number(text);
  if (n < 1 || n > 65535) throw fail(`port ${n} is outside 1-65535`);
  return n;
}

function parseRule(raw: string, index: number): ExitRule {
  const line = raw.trim();
  const fail = (why: string) => syntax(index, raw, why);
  const m = /^(accept|reject)\s+(\S+)$/i.exec(line);
  if (!m) throw fail('a rule is "accept" or "reject", a space, then ADDRESS[/BITS]:PORT[-PORT]');
  const action = m[1].toLowerCase() as 'accept' | 'reject';
  const target = m[2];

  let addrText: string;
  let bitsText: string | undefined;
  let portText: string;
  let v6 = false;
  if (target.startsWith('[')) {
    // Tor's form "[addr]/bits:port"; "[addr/bits]:port" is accepted too.
    const close = target.indexOf(']');
    if (close < 0) throw fail('an IPv6 address opened with "[" is not closed with "]"');
    addrText = target.slice(1, close);
    v6 = true;
    let after = target.slice(close + 1);
    const inner = addrText.indexOf('/');
    if (inner >= 0) {
      bitsText = addrText.slice(inner + 1);
      addrText = addrText.slice(0, inner);
    }
    if (after.startsWith('/')) {
      if (bitsText !== undefined) throw fail('the prefix length is given twice');
      const colon = after.indexOf(':');
      if (colon < 0) throw fail('no ":PORT" after the address');
      bitsText = after.slice(1, colon);
      after = after.slice(colon);
    }
    if (!after.startsWith(':')) throw fail('no ":PORT" after the address');
    portText = after.slice(1);
  } else {
    const colon = target.indexOf(':');
    if (colon < 0) throw fail('no ":PORT" after the address');
    const left = target.slice(0, colon);
    portText = target.slice(colon + 1);
    if (portText.includes(':')) throw fail('IPv6 addresses must be written in brackets, e.g. [::1]:80');
    const slash = left.indexOf('/');
    addrText = slash >= 0 ? left.slice(0, slash) : left;
    bitsText = slash >= 0 ? left.slice(slash + 1) : undefined;
  }

  let portLo: number;
  let portHi: number;
  if (portText === '*') {
    portLo = 1;
    portHi = 65535;
  } else {
    const dash = portText.indexOf('-');
    portLo = parsePort(dash >= 0 ? portText.slice(0, dash) : portText, fail);
    portHi = dash >= 0 ? parsePort(portText.slice(dash + 1), fail) : portLo;
    if (portHi < portLo) throw fail(`port range ${portLo}-${portHi} is backwards`);
  }

  if (addrText === '*' && !v6) {
    if (bitsText !== undefined) throw fail('"*" takes no prefix length');
    return { action, network: null, bits: 0, portLo, portHi };
  }
  const ip = parseIp(addrText);
  if (!ip || (v6 && ip.length !== 16) || (!v6 && ip.length !== 4)) {
    throw fail(v6 ? `"${addrText}" is not an IPv6 address` : `"${addrText}" is not "*" or an IPv4 address`);
  }
  const maxBits = ip.length * 8;
  let bits = maxBits;
  if (bitsText !== undefined) {
    if (!/^[0-9]{1,3}$/.test(bitsText) || Number(bitsText) > maxBits) {
      throw fail(`prefix length "${bitsText}" must be 0-${maxBits}`);
    }
    bits = Number(bitsText);
  }
  // A rule on the IPv4-mapped range is a rule on IPv4, where such addresses are judged.
  if (ip.length === 16 && bits >= 96 && prefixHas(MAPPED_V6, ip)) {
    return { action, network: masked(ip.subarray(12), bits - 96), bits: bits - 96, portLo, portHi };
  }
  // Host bits are cleared ("10.1.2.3/8" means 10.0.0.0/8); toLines() shows the canonical form.
  return { action, network: masked(ip, bits), bits, portLo, portHi };
}

/**
 * Parses policy lines. Blank lines and lines starting with '#' are skipped; anything else that is
 * not a rule throws ExitPolicyError naming the line.
 */
export function parseExitPolicy(lines: string[]): ExitRule[] {
  const rules: ExitRule[] = [];
  lines.forEach((line, i) => {
    if (typeof line !== 'string') throw syntax(i, String(line), 'a rule must be a string');
    const t = line.trim();
    if (t === '' || t.startsWith('#')) return;
    rules.push(parseRule(line, i));
  });
  return rules;
}

export function formatExitRule(r: ExitRule): string {
  let addr = '*';
  if (r.network) {
    const full = r.network.length * 8;
    const ip = r.network.length === 16 ? `[${formatIp(r.network)}]` : formatIp(r.network);
    addr = r.bits === full ? ip : `${ip}/${r.bits}`;
  }
  const ports =
    r.portLo === 1 && r.portHi === 65535
      ? '*'
      : r.portLo === r.portHi
        ? `${r.portLo}`
        : `${r.portLo}-${r.portHi}`;
  return `${r.action} ${addr}:${ports}`;
}

// ---- evaluation ----

function ruleMatches(r: ExitRule, ip: Buffer, port: number): boolean {
  if (port < r.portLo || port > r.portHi) return false;
  return r.network === null || prefixHas({ net: r.network, bits: r.bits }, ip);
}

/** Every address of `p` lies in some prefix of `set` (all of one family). */
function covered(p: Prefix, set: Prefix[]): boolean {
  if (set.some((s) => prefixContains(s, p))) return true;
  const inside = set.filter((s) => prefixContains(p, s));
  if (inside.length === 0) return false;
  // Some of p is excluded but maybe not all: check both halves (depth <= 128, only where `inside` is).
  const bits = p.bits + 1;
  const low = { net: p.net, bits };
  const high = { net: Buffer.from(p.net), bits };
  high.net[p.bits >> 3] |= 0x80 >> (p.bits & 7);
  return covered(low, inside) && covered(high, inside);
}

const ANY_V4: Prefix = pfx('0.0.0.0', 0);
const ANY_V6: Prefix = pfx('::', 0);

export class ExitPolicy {
  readonly rules: readonly ExitRule[];
  readonly allowPrivate: boolean;

  constructor(rules: ExitRule[], opts: { allowPrivate: boolean }) {
    this.rules = rules.map((r) => ({ ...r, network: r.network ? Buffer.from(r.network) : null }));
    this.allowPrivate = opts.allowPrivate;
  }

  static fromLines(lines: string[], opts: { allowPrivate: boolean }): ExitPolicy {
    return new ExitPolicy(parseExitPolicy(lines), opts);
  }

  /**
   * May the exit connect to `address` (an IP literal, after DNS) on `port`? A host name, a zone id
   * or a port outside 1-65535 is refused.
   */
  allows(address: string, port: number): boolean {
    if (!Number.isInteger(port) || port < 1 || port > 65535) return false;
    const parsed = parseIp(address);
    if (!parsed) return false;
    const ip = unmapIpv4(parsed);
    if (!this.allowPrivate && isRefusedIp(ip)) return false;
    for (const r of this.rules) if (ruleMatches(r, ip, port)) return r.action === 'accept';
    return false;
  }

  /**
   * Could some destination on `port` be allowed? For a client choosing an exit before DNS: exact,
   * taking into account rules shadowed by earlier rejects and (unless allowPrivate) private ranges.
   */
  mayAllowPort(port: number): boolean {
    if (!Number.isInteger(port) || port < 1 || port > 65535) return false;
    return this.mayAllowPortIn(port, ANY_V4, REFUSED_V4) || this.mayAllowPortIn(port, ANY_V6, REFUSED_V6);
  }

  /** True if the first rule matching `port` accepts some address of `family` not excluded before it. */
  private mayAllowPortIn(port: number, family: Prefix, privateRanges: Prefix[]): boolean {
    const excluded: Prefix[] = this.allowPrivate ? [] : [...privateRanges];
    // Mapped addresses are judged as IPv4 by allows(), so IPv6 rules never decide them.
    if (family.net.length === 16) excluded.push(MAPPED_V6);
    for (const r of this.rules) {
      if (port < r.portLo || port > r.portHi) continue;
      if (r.network && r.network.length !== family.net.length) continue;
      const p = r.network ? { net: r.network, bits: r.bits } : family;
      if (r.action === 'reject') excluded.push(p);
      else if (!covered(p, excluded)) return true;
    }
    return false;
  }

  /** Accepts at least one (address, port). A relay whose policy does not is not an exit (§6.2). */
  isExit(): boolean {
    // Which rules match changes only at range ends, so testing one port per segment is enough.
    const candidates = new Set<number>([1]);
    for (const r of this.rules) {
      candidates.add(r.portLo);
      if (r.portHi < 65535) candidates.add(r.portHi + 1);
    }
    for (const p of candidates) if (this.mayAllowPort(p)) return true;
    return false;
  }

  toLines(): string[] {
    return this.rules.map(formatExitRule);
  }
}
