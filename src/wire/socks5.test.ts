import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { EndReason } from './constants.js';
import { WireError } from './errors.js';
import {
  encodeSocksReply,
  Socks5Handshake,
  type Socks5Step,
  SocksReply,
  socksReplyForEndReason,
  socksReplyForOnionCode,
} from './socks5.js';

const numRuns = Number(process.env.FUZZ_RUNS ?? 200);
const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const ascii = (s: string) => Buffer.from(s, 'latin1');
const cat = (...parts: Buffer[]) => Buffer.concat(parts);

/** Feeds chunks like a socket would, following each 'reply' with an empty step as the API asks. */
function drive(chunks: Buffer[], h = new Socks5Handshake()): { replies: Buffer[]; final: Socks5Step } {
  const replies: Buffer[] = [];
  for (const c of chunks) {
    let s = h.step(c);
    while (s.kind === 'reply') {
      replies.push(s.bytes);
      s = h.step(Buffer.alloc(0));
    }
    if (s.kind !== 'need-more') return { replies, final: s };
  }
  return { replies, final: { kind: 'need-more' } };
}

const GREET_NOAUTH = hex('05 01 00');
const GREET_BOTH = hex('05 02 00 02');
const AUTH = cat(hex('01 04'), ascii('user'), hex('06'), ascii('secret'));
const REQ_DOMAIN = cat(hex('05 01 00 03 0b'), ascii('example.com'), hex('01bb'));
const REQ_V4 = hex('05 01 00 01 7f000001 1f90');
const REQ_V6 = hex('05 01 00 04 20010db8000000000000000000000001 0050');
const NO_AUTH_OK = hex('05 00');
const USERPASS_CHOSEN = hex('05 02');
const AUTH_OK = hex('01 00');

function expectRequest(final: Socks5Step): Extract<Socks5Step, { kind: 'request' }> {
  assert.equal(final.kind, 'request', final.kind === 'fail' ? final.error.message : final.kind);
  return final as Extract<Socks5Step, { kind: 'request' }>;
}
function expectFail(final: Socks5Step): Extract<Socks5Step, { kind: 'fail' }> {
  assert.equal(final.kind, 'fail');
  const f = final as Extract<Socks5Step, { kind: 'fail' }>;
  assert.ok(f.error instanceof WireError);
  assert.equal(f.error.code, 'ALLIUM_WIRE_MALFORMED');
  return f;
}

describe('Socks5Handshake (RFC 1928 / 1929)', () => {
  it('no auth, domain name', () => {
    const { replies, final } = drive([GREET_NOAUTH, REQ_DOMAIN]);
    assert.deepEqual(replies, [NO_AUTH_OK]);
    const r = expectRequest(final);
    assert.deepEqual(
      { host: r.host, port: r.port, addressType: r.addressType, rest: r.rest },
      { host: 'example.com', port: 443, addressType: 'domain', rest: Buffer.alloc(0) },
    );
    assert.equal(r.username, undefined);
    assert.equal(r.password, undefined);
  });

  it('prefers username/password when offered, and passes the credentials on', () => {
    const { replies, final } = drive([GREET_BOTH, AUTH, REQ_V4]);
    assert.deepEqual(replies, [USERPASS_CHOSEN, AUTH_OK]);
    const r = expectRequest(final);
    assert.deepEqual(
      [r.host, r.port, r.addressType, r.username, r.password],
      ['127.0.0.1', 8080, 'ipv4', 'user', 'secret'],
    );
  });

  it('accepts an empty username and password (they only select isolation)', () => {
    const { replies, final } = drive([hex('05 01 02'), hex('01 00 00'), REQ_V4]);
    assert.deepEqual(replies, [USERPASS_CHOSEN, AUTH_OK]);
    const r = expectRequest(final);
    assert.equal(r.username, '');
    assert.equal(r.password, '');
  });

  it('IPv6 destinations come back canonical', () => {
    const r = expectRequest(drive([GREET_NOAUTH, REQ_V6]).final);
    assert.deepEqual([r.host, r.port, r.addressType], ['2001:db8::1', 80, 'ipv6']);
  });

  it('greeting, credentials, request and early data in one chunk', () => {
    const payload = ascii('GET / HTTP/1.1\r\n\r\n');
    const { replies, final } = drive([cat(GREET_BOTH, AUTH, REQ_DOMAIN, payload)]);
    assert.deepEqual(replies, [USERPASS_CHOSEN, AUTH_OK]);
    const r = expectRequest(final);
    assert.equal(r.host, 'example.com');
    assert.deepEqual(r.rest, payload);
  });

  it('byte at a time', () => {
    const all = cat(GREET_BOTH, AUTH, REQ_V6, hex('aa'));
    const bytes = [...all].map((b) => Buffer.from([b]));
    const { replies, final } = drive(bytes);
    assert.deepEqual(replies, [USERPASS_CHOSEN, AUTH_OK]);
    const r = expectRequest(final);
    assert.equal(r.host, '2001:db8::1');
    // The request completed before 0xaa arrived: that byte is ordinary stream data for the caller.
    assert.deepEqual(r.rest, Buffer.alloc(0));
  });

  it('needs more on every truncation of a valid handshake', () => {
    const all = cat(GREET_BOTH, AUTH, REQ_DOMAIN);
    for (let n = 0; n < all.length; n++) {
      assert.equal(drive([all.subarray(0, n)]).final.kind, 'need-more', `after ${n} bytes`);
    }
  });

  it('bad version: SOCKS4 gets a SOCKS4 refusal, HTTP an HTTP one, anything else silence', () => {
    assert.deepEqual(
      expectFail(drive([hex('04 01 0050 7f000001 00')]).final).bytes,
      hex('00 5b 000000000000'),
    );
    const http = expectFail(drive([ascii('GET / HTTP/1.1\r\n')]).final);
    assert.match(http.bytes.toString(), /^HTTP\/1\.0 501/);
    assert.match(http.error.message, /HTTP/);
    assert.deepEqual(expectFail(drive([hex('06 01 00')]).final).bytes, Buffer.alloc(0));
    assert.deepEqual(expectFail(drive([GREET_NOAUTH, hex('04 01 00 01')]).final).bytes, Buffer.alloc(0));
  });

  it('no acceptable method, or none offered: 05 ff', () => {
    assert.deepEqual(expectFail(drive([hex('05 02 01 03')]).final).bytes, hex('05 ff'));
    assert.deepEqual(expectFail(drive([hex('05 00')]).final).bytes, hex('05 ff'));
  });

  it('bad sub-negotiation version or non-UTF-8 credentials: 01 01', () => {
    assert.deepEqual(expectFail(drive([hex('05 01 02'), hex('02 00 00')]).final).bytes, hex('01 01'));
    assert.deepEqual(expectFail(drive([hex('05 01 02'), hex('01 01 ff 00')]).final).bytes, hex('01 01'));
  });

  it('BIND and UDP ASSOCIATE are refused with 07', () => {
    for (const cmd of ['02', '03', '09']) {
      const f = expectFail(drive([GREET_NOAUTH, hex(`05 ${cmd} 00 01 7f000001 0050`)]).final);
      assert.deepEqual(f.bytes, encodeSocksReply(SocksReply.COMMAND_NOT_SUPPORTED));
      assert.equal(f.bytes[1], 7);
    }
  });

  it('unknown address types are refused with 08', () => {
    const f = expectFail(drive([GREET_NOAUTH, hex('05 01 00 02 00')]).final);
    assert.equal(f.bytes[1], 8);
  });

  it('bad host names are refused with 04, port 0 with 01', () => {
    const bad = (name: Buffer) => cat(hex('05 01 00 03'), Buffer.from([name.length]), name, hex('0050'));
    for (const name of [
      ascii('bad host'),
      ascii(''),
      ascii('a..b'),
      Buffer.from('bücher.de'),
      ascii('127.1'),
    ]) {
      assert.equal(expectFail(drive([GREET_NOAUTH, bad(name)]).final).bytes[1], 4, name.toString());
    }
    assert.equal(expectFail(drive([GREET_NOAUTH, hex('05 01 00 01 01020304 0000')]).final).bytes[1], 1);
  });

  it('refuses to step after the handshake ended', () => {
    const h = new Socks5Handshake();
    expectRequest(drive([GREET_NOAUTH, REQ_V4], h).final);
    expectFail(h.step(hex('00')));
  });

  it('the same replies and request however the handshake is chunked', () => {
    const all = cat(GREET_BOTH, AUTH, REQ_DOMAIN, ascii('tail'));
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: all.length - 1 }), { maxLength: 10 }), (cuts) => {
        const at = [...new Set(cuts)].sort((a, b) => a - b);
        const chunks: Buffer[] = [];
        let prev = 0;
        for (const c of [...at, all.length]) {
          chunks.push(all.subarray(prev, c));
          prev = c;
        }
        const { replies, final } = drive(chunks);
        assert.deepEqual(replies, [USERPASS_CHOSEN, AUTH_OK]);
        const r = expectRequest(final);
        assert.equal(r.host, 'example.com');
        // Bytes after the request that arrive in the same chunk are `rest`; later ones are the caller's.
        assert.ok(ascii('tail').subarray(0, r.rest.length).equals(r.rest));
      }),
      { numRuns },
    );
  });

  it('never throws on random input, and every fail carries a WireError', () => {
    const prefix = fc.constantFrom(Buffer.alloc(0), GREET_NOAUTH, GREET_BOTH, cat(GREET_BOTH, AUTH));
    fc.assert(
      fc.property(prefix, fc.array(fc.uint8Array({ maxLength: 30 }), { maxLength: 6 }), (p, chunks) => {
        const { final } = drive([p, ...chunks.map((c) => Buffer.from(c))]);
        if (final.kind === 'fail') assert.ok(final.error instanceof WireError);
        if (final.kind === 'request') assert.ok(final.port >= 1 && final.host.length >= 1);
      }),
      { numRuns: numRuns * 5 },
    );
  });
});

describe('encodeSocksReply', () => {
  it('defaults to 0.0.0.0:0', () => {
    assert.deepEqual(encodeSocksReply(SocksReply.SUCCEEDED), hex('05 00 00 01 00000000 0000'));
  });
  it('encodes IPv4, IPv6 and domain bound addresses', () => {
    assert.deepEqual(
      encodeSocksReply(0, { address: '10.1.2.3', port: 9050 }),
      hex('05 00 00 01 0a010203 235a'),
    );
    assert.deepEqual(
      encodeSocksReply(5, { address: '::1', port: 1 }),
      hex('05 05 00 04 00000000000000000000000000000001 0001'),
    );
    assert.deepEqual(
      encodeSocksReply(0, { address: 'a.b', port: 2 }),
      cat(hex('05 00 00 03 03'), ascii('a.b'), hex('0002')),
    );
  });
  it('refuses values that do not fit', () => {
    assert.throws(() => encodeSocksReply(256), WireError);
    assert.throws(() => encodeSocksReply(0, { address: '1.2.3.4', port: 65536 }), WireError);
    assert.throws(() => encodeSocksReply(0, { address: '', port: 1 }), WireError);
  });
});

describe('socksReplyForEndReason', () => {
  it('maps END reasons to the closest SOCKS reply', () => {
    assert.equal(socksReplyForEndReason(EndReason.EXITPOLICY), SocksReply.NOT_ALLOWED);
    assert.equal(socksReplyForEndReason(EndReason.RESOLVEFAILED), SocksReply.HOST_UNREACHABLE);
    assert.equal(socksReplyForEndReason(EndReason.NOROUTE), SocksReply.HOST_UNREACHABLE);
    assert.equal(socksReplyForEndReason(EndReason.CONNECTREFUSED), SocksReply.CONNECTION_REFUSED);
    assert.equal(socksReplyForEndReason(EndReason.TIMEOUT), SocksReply.TTL_EXPIRED);
    for (const r of [EndReason.MISC, EndReason.DONE, EndReason.DESTROY, EndReason.INTERNAL, 0, 200]) {
      assert.equal(socksReplyForEndReason(r), SocksReply.GENERAL_FAILURE);
    }
  });
});

describe('socksReplyForOnionCode', () => {
  it("maps onion-service failures to Tor's extended replies (protocol §8.9)", () => {
    const cases: [string, number][] = [
      ['ALLIUM_ONION_ADDRESS', 0xf6],
      ['ALLIUM_ONION_ADDRESS_CHECKSUM', 0xf6],
      ['ALLIUM_ONION_ADDRESS_VERSION', 0xf6],
      ['ALLIUM_ONION_ADDRESS_KEY', 0xf6],
      ['ALLIUM_ONION_DESCRIPTOR_NOT_FOUND', 0xf0],
      ['ALLIUM_ONION_NO_RING', 0xf0],
      ['ALLIUM_ONION_DESCRIPTOR_SIGNATURE', 0xf1],
      ['ALLIUM_ONION_DESCRIPTOR_EXPIRED', 0xf1],
      ['ALLIUM_ONION_DESCRIPTOR_DECRYPT', 0xf1],
      ['ALLIUM_ONION_DESCRIPTOR_KEY', 0xf1],
      ['ALLIUM_ONION_DESCRIPTOR_MALFORMED', 0xf1],
      ['ALLIUM_ONION_SERVICE_UNREACHABLE', 0xf2],
      ['ALLIUM_ONION_RENDEZVOUS_AUTH', 0xf3],
      ['ALLIUM_ONION_RENDEZVOUS_FAILED', 0xf3],
      ['ALLIUM_ONION_INTRODUCE_TIMEOUT', 0xf7],
      ['ALLIUM_ONION_CONNECT_TIMEOUT', 0xf7],
    ];
    for (const [code, reply] of cases) assert.equal(socksReplyForOnionCode(code), reply, code);
    assert.equal(socksReplyForOnionCode('ALLIUM_STREAM_REFUSED'), null);
  });
});
