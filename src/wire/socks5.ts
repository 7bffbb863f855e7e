// Implements docs/protocol.md §4.2 (where streams come from): a SOCKS5 server, RFC 1928 + RFC 1929.
// A no-I/O step machine, so the socket code that drives it stays trivial.
import { ByteWriter, formatIp, parseIp } from './bytes.js';
import { EndReason } from './constants.js';
import { WireError } from './errors.js';
import { hostProblem, MAX_HOST_LEN } from './relay-messages.js';

export const SocksReply = {
  SUCCEEDED: 0,
  GENERAL_FAILURE: 1,
  NOT_ALLOWED: 2,
  NETWORK_UNREACHABLE: 3,
  HOST_UNREACHABLE: 4,
  CONNECTION_REFUSED: 5,
  TTL_EXPIRED: 6,
  COMMAND_NOT_SUPPORTED: 7,
  ADDRESS_TYPE_NOT_SUPPORTED: 8,
  // Tor's extended replies for onion destinations (protocol §8.9), which programs print as numbers.
  ONION_DESCRIPTOR_NOT_FOUND: 0xf0,
  ONION_DESCRIPTOR_INVALID: 0xf1,
  ONION_INTRO_FAILED: 0xf2,
  ONION_RENDEZVOUS_FAILED: 0xf3,
  ONION_ADDRESS_INVALID: 0xf6,
  ONION_INTRO_TIMEOUT: 0xf7,
} as const;
export type SocksReply = (typeof SocksReply)[keyof typeof SocksReply];

export type Socks5Step =
  | { kind: 'need-more' }
  /** Send `bytes`, then call step() again (with Buffer.alloc(0) if no new input): more may be buffered. */
  | { kind: 'reply'; bytes: Buffer }
  /** CONNECT parsed; answer later with encodeSocksReply. `rest` = bytes the client sent after it. */
  | {
      kind: 'request';
      host: string;
      port: number;
      addressType: 'domain' | 'ipv4' | 'ipv6';
      username?: string;
      password?: string;
      rest: Buffer;
    }
  /** Send `bytes` (may be empty), then close. */
  | { kind: 'fail'; bytes: Buffer; error: WireError };

const SOCKS_VERSION = 5;
const AUTH_VERSION = 1; // RFC 1929 sub-negotiation version
const METHOD_NONE = 0x00;
const METHOD_USERPASS = 0x02;
const METHOD_UNACCEPTABLE = 0xff;
const CMD_CONNECT = 1;
const ATYP_IPV4 = 1;
const ATYP_DOMAIN = 3;
const ATYP_IPV6 = 4;

// What a SOCKS4 server answers to refuse (VN 0, CD 91): friendlier than silence for old clients.
const SOCKS4_REJECT = Buffer.from([0, 0x5b, 0, 0, 0, 0, 0, 0]);
const HTTP_REFUSAL = Buffer.from(
  'HTTP/1.0 501 Not Implemented\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n' +
    'This is a SOCKS5 proxy, not an HTTP proxy. Configure your application to use SOCKS5 here.\r\n',
  'latin1',
);

/** The reply to a request: VER | REP | RSV | ATYP | BND.ADDR | BND.PORT (default 0.0.0.0:0). */
export function encodeSocksReply(code: number, bound?: { address: string; port: number }): Buffer {
  const w = new ByteWriter(22).u8(SOCKS_VERSION).u8(code, 'SOCKS reply code').u8(0);
  const address = bound?.address ?? '0.0.0.0';
  const ip = parseIp(address);
  if (ip) {
    w.u8(ip.length === 4 ? ATYP_IPV4 : ATYP_IPV6).bytes(ip);
  } else {
    const name = Buffer.from(address, 'utf8');
    if (name.length === 0 || name.length > MAX_HOST_LEN) {
      throw new WireError('ALLIUM_WIRE_MALFORMED', `SOCKS bound address "${address}" cannot be encoded`);
    }
    w.u8(ATYP_DOMAIN).u8(name.length).bytes(name);
  }
  return w.u16(bound?.port ?? 0, 'SOCKS bound port').finish();
}

/** The SOCKS reply code closest to why the exit ended a stream (§2.3 END reasons). */
export function socksReplyForEndReason(endReason: number): number {
  switch (endReason) {
    case EndReason.EXITPOLICY:
      return SocksReply.NOT_ALLOWED;
    case EndReason.RESOLVEFAILED:
    case EndReason.NOROUTE:
      return SocksReply.HOST_UNREACHABLE;
    case EndReason.CONNECTREFUSED:
      return SocksReply.CONNECTION_REFUSED;
    case EndReason.TIMEOUT:
      return SocksReply.TTL_EXPIRED;
    default:
      return SocksReply.GENERAL_FAILURE;
  }
}

/** The SOCKS reply for an onion-service failure's error code (§8.9), or null for other codes. */
export function socksReplyForOnionCode(code: string): number | null {
  if (code.startsWith('ALLIUM_ONION_ADDRESS')) return SocksReply.ONION_ADDRESS_INVALID;
  if (code === 'ALLIUM_ONION_DESCRIPTOR_NOT_FOUND' || code === 'ALLIUM_ONION_NO_RING')
    return SocksReply.ONION_DESCRIPTOR_NOT_FOUND;
  if (
    code === 'ALLIUM_ONION_DESCRIPTOR_SIGNATURE' ||
    code === 'ALLIUM_ONION_DESCRIPTOR_KEY' ||
    code === 'ALLIUM_ONION_DESCRIPTOR_EXPIRED' ||
    code === 'ALLIUM_ONION_DESCRIPTOR_DECRYPT' ||
    code === 'ALLIUM_ONION_DESCRIPTOR_MALFORMED'
  )
    return SocksReply.ONION_DESCRIPTOR_INVALID;
  if (code === 'ALLIUM_ONION_SERVICE_UNREACHABLE') return SocksReply.ONION_INTRO_FAILED;
  if (code === 'ALLIUM_ONION_RENDEZVOUS_AUTH' || code === 'ALLIUM_ONION_RENDEZVOUS_FAILED')
    return SocksReply.ONION_RENDEZVOUS_FAILED;
  if (code === 'ALLIUM_ONION_INTRODUCE_TIMEOUT' || code === 'ALLIUM_ONION_CONNECT_TIMEOUT')
    return SocksReply.ONION_INTRO_TIMEOUT;
  return null;
}

type State = 'greeting' | 'auth' | 'request' | 'done';

/**
 * One SOCKS5 server handshake. Feed every received chunk to step(); after a 'reply' call step()
 * again even without new input, because a client may send greeting, credentials and request in
 * one chunk. Credentials are accepted whatever they are: they only select circuit isolation.
 */
export class Socks5Handshake {
  private state: State = 'greeting';
  private buf: Buffer = Buffer.alloc(0);
  private username: string | undefined;
  private password: string | undefined;

  step(input: Buffer): Socks5Step {
    if (this.state === 'done') {
      return this.fail(Buffer.alloc(0), 'step() was called after the SOCKS5 handshake had already ended');
    }
    if (input.length > 0) this.buf = this.buf.length === 0 ? input : Buffer.concat([this.buf, input]);
    switch (this.state) {
      case 'greeting':
        return this.greeting();
      case 'auth':
        return this.auth();
      case 'request':
        return this.request();
    }
  }

  private fail(bytes: Buffer, message: string): Socks5Step {
    this.state = 'done';
    this.buf = Buffer.alloc(0);
    return { kind: 'fail', bytes, error: new WireError('ALLIUM_WIRE_MALFORMED', message) };
  }

  private consume(n: number): void {
    this.buf = this.buf.subarray(n);
  }

  private badVersion(version: number): Socks5Step {
    if (version === 4) {
      return this.fail(SOCKS4_REJECT, 'the client spoke SOCKS4; only SOCKS5 is supported (use socks5h://)');
    }
    // Upper-case ASCII: probably an HTTP method (GET, CONNECT, POST...) sent to the SOCKS port.
    if (version >= 0x41 && version <= 0x5a) {
      return this.fail(
        HTTP_REFUSAL,
        'the client sent HTTP to the SOCKS5 port; configure it as a SOCKS5 proxy',
      );
    }
    return this.fail(Buffer.alloc(0), `the client sent SOCKS version ${version}; only SOCKS5 is supported`);
  }

  private greeting(): Socks5Step {
    const b = this.buf;
    if (b.length < 1) return { kind: 'need-more' };
    if (b[0] !== SOCKS_VERSION) return this.badVersion(b[0]);
    if (b.length < 2) return { kind: 'need-more' };
    const nmethods = b[1];
    if (nmethods === 0) {
      return this.fail(
        Buffer.from([SOCKS_VERSION, METHOD_UNACCEPTABLE]),
        'the SOCKS5 greeting offered no methods',
      );
    }
    if (b.length < 2 + nmethods) return { kind: 'need-more' };
    const methods = b.subarray(2, 2 + nmethods);
    this.consume(2 + nmethods);
    // Prefer username/password: the credentials are how applications ask for separate circuits.
    if (methods.includes(METHOD_USERPASS)) {
      this.state = 'auth';
      return { kind: 'reply', bytes: Buffer.from([SOCKS_VERSION, METHOD_USERPASS]) };
    }
    if (methods.includes(METHOD_NONE)) {
      this.state = 'request';
      return { kind: 'reply', bytes: Buffer.from([SOCKS_VERSION, METHOD_NONE]) };
    }
    return this.fail(
      Buffer.from([SOCKS_VERSION, METHOD_UNACCEPTABLE]),
      'the SOCKS5 client offered neither "no authentication" (0x00) nor "username/password" (0x02)',
    );
  }

  private auth(): Socks5Step {
    const b = this.buf;
    if (b.length < 1) return { kind: 'need-more' };
    const refuse = Buffer.from([AUTH_VERSION, 1]);
    if (b[0] !== AUTH_VERSION) {
      return this.fail(refuse, `username/password sub-negotiation version ${b[0]} is not ${AUTH_VERSION}`);
    }
    if (b.length < 2) return { kind: 'need-more' };
    const ulen = b[1];
    if (b.length < 3 + ulen) return { kind: 'need-more' };
    const plen = b[2 + ulen];
    if (b.length < 3 + ulen + plen) return { kind: 'need-more' };
    const user = decodeUtf8(b.subarray(2, 2 + ulen));
    const pass = decodeUtf8(b.subarray(3 + ulen, 3 + ulen + plen));
    this.consume(3 + ulen + plen);
    if (user === null || pass === null) {
      return this.fail(refuse, 'the SOCKS5 username or password is not valid UTF-8');
    }
    this.username = user;
    this.password = pass;
    this.state = 'request';
    return { kind: 'reply', bytes: Buffer.from([AUTH_VERSION, 0]) };
  }

  private request(): Socks5Step {
    const b = this.buf;
    if (b.length < 1) return { kind: 'need-more' };
    if (b[0] !== SOCKS_VERSION) {
      return this.fail(Buffer.alloc(0), `the SOCKS5 request has version ${b[0]}, not ${SOCKS_VERSION}`);
    }
    if (b.length < 4) return { kind: 'need-more' };
    const cmd = b[1];
    const atyp = b[3];
    if (cmd !== CMD_CONNECT) {
      const name = cmd === 2 ? 'BIND' : cmd === 3 ? 'UDP ASSOCIATE' : `command ${cmd}`;
      return this.fail(
        encodeSocksReply(SocksReply.COMMAND_NOT_SUPPORTED),
        `SOCKS5 ${name} is not supported; only CONNECT is`,
      );
    }
    let host: string;
    let addressType: 'domain' | 'ipv4' | 'ipv6';
    let at: number;
    if (atyp === ATYP_IPV4) {
      if (b.length < 4 + 4 + 2) return { kind: 'need-more' };
      host = formatIp(b.subarray(4, 8));
      addressType = 'ipv4';
      at = 8;
    } else if (atyp === ATYP_IPV6) {
      if (b.length < 4 + 16 + 2) return { kind: 'need-more' };
      host = formatIp(b.subarray(4, 20));
      addressType = 'ipv6';
      at = 20;
    } else if (atyp === ATYP_DOMAIN) {
      if (b.length < 5) return { kind: 'need-more' };
      const len = b[4];
      if (b.length < 5 + len + 2) return { kind: 'need-more' };
      const raw = b.subarray(5, 5 + len);
      host = raw.toString('latin1');
      const problem = raw.some((c) => c < 0x21 || c > 0x7e)
        ? 'it has bytes that are not printable ASCII (send internationalised names as punycode)'
        : hostProblem(host);
      if (problem) {
        return this.fail(encodeSocksReply(SocksReply.HOST_UNREACHABLE), `bad SOCKS5 host name: ${problem}`);
      }
      addressType = 'domain';
      at = 5 + len;
    } else {
      return this.fail(
        encodeSocksReply(SocksReply.ADDRESS_TYPE_NOT_SUPPORTED),
        `SOCKS5 address type ${atyp} is not supported (1 IPv4, 3 domain, 4 IPv6)`,
      );
    }
    const port = b.readUInt16BE(at);
    const rest = Buffer.from(b.subarray(at + 2));
    this.state = 'done';
    this.buf = Buffer.alloc(0);
    if (port === 0) {
      return this.fail(encodeSocksReply(SocksReply.GENERAL_FAILURE), 'SOCKS5 CONNECT to port 0');
    }
    const step: Socks5Step = { kind: 'request', host, port, addressType, rest };
    if (this.username !== undefined) step.username = this.username;
    if (this.password !== undefined) step.password = this.password;
    return step;
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
function decodeUtf8(b: Buffer): string | null {
  try {
    return utf8.decode(b);
  } catch {
    return null;
  }
}
