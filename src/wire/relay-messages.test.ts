import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { CIRC_WINDOW_MAX, CIRC_WINDOW_MIN, DestroyReason, EndReason, RELAY_DATA_MAX } from './constants.js';
import { WireError } from './errors.js';
import {
  BeginFlag,
  decodeBegin,
  decodeCircuitSendme,
  decodeConnected,
  decodeEnd,
  decodeExtend,
  decodeExtended,
  decodeTruncated,
  type ExtendRequest,
  encodeBegin,
  encodeCircuitSendme,
  encodeConnected,
  encodeEnd,
  encodeExtend,
  encodeExtended,
  encodeTruncated,
  isValidHost,
} from './relay-messages.js';

const numRuns = Number(process.env.FUZZ_RUNS ?? 200);
const isWire = (code: string) => (e: unknown) => e instanceof WireError && e.code === code;
const hex = (s: string) => Buffer.from(s, 'hex');

describe('BEGIN (§4)', () => {
  it('is port(u16) | host', () => {
    assert.deepEqual(
      encodeBegin('example.com', 443),
      Buffer.concat([hex('01bb'), Buffer.from('example.com')]),
    );
    assert.deepEqual(decodeBegin(encodeBegin('example.com', 443)), {
      host: 'example.com',
      port: 443,
      flags: 0,
    });
  });

  it('carries flags after a NUL when there are any (clients and exits of 0.4.0)', () => {
    const b = encodeBegin('example.com', 443, BeginFlag.LARGE_WINDOWS);
    assert.deepEqual(b, Buffer.concat([hex('01bb'), Buffer.from('example.com'), hex('0001')]));
    assert.deepEqual(decodeBegin(b), { host: 'example.com', port: 443, flags: BeginFlag.LARGE_WINDOWS });
    // Bits this release does not know are kept for the caller to ignore.
    assert.equal(decodeBegin(encodeBegin('a.b', 80, 0x81)).flags, 0x81);
    for (const tail of ['00', '000102', '0001ff']) {
      assert.throws(
        () => decodeBegin(Buffer.concat([hex('0050'), Buffer.from('a.b'), hex(tail)])),
        isWire('ALLIUM_WIRE_MALFORMED'),
        `trailer ${tail}`,
      );
    }
    assert.throws(
      () => decodeBegin(Buffer.concat([hex('0050'), hex('0001')])),
      isWire('ALLIUM_WIRE_MALFORMED'),
    );
  });

  const goodHosts = [
    'example.com',
    'example.com.',
    'a',
    'localhost',
    'xn--bcher-kva.example',
    '_srv.sub-domain.Example.ORG',
    '127.0.0.1',
    '::1',
    '2001:db8::1',
    '::ffff:10.0.0.1',
    `${'a'.repeat(63)}.com`,
    Array(4).fill('a'.repeat(62)).join('.').concat('.abc'), // 255 bytes
  ];
  for (const host of goodHosts) {
    it(`accepts host ${host.slice(0, 40)}`, () => {
      assert.ok(isValidHost(host));
      assert.deepEqual(decodeBegin(encodeBegin(host, 80)), { host, port: 80, flags: 0 });
    });
  }

  const badHosts = [
    '',
    '.',
    '.example.com',
    'example..com',
    'exa mple.com',
    'ex@mple.com',
    'bücher.example',
    `${'a'.repeat(64)}.com`,
    Array(5).fill('a'.repeat(62)).join('.'), // > 255
    '[::1]',
    'fe80::1%eth0',
    'example.com:80',
    '127.1',
    '2130706433',
    '0x7f.1',
    '1.2.3.256',
    '010.0.0.1',
    'host\n',
  ];
  for (const host of badHosts) {
    it(`rejects host ${JSON.stringify(host.slice(0, 40))}`, () => {
      assert.equal(isValidHost(host), false);
      assert.throws(() => encodeBegin(host, 80), WireError);
      const raw = Buffer.concat([hex('0050'), Buffer.from(host, 'utf8')]);
      assert.throws(() => decodeBegin(raw), WireError);
    });
  }

  it('rejects ports outside 1-65535 and missing hosts', () => {
    assert.throws(() => encodeBegin('a.b', 0), isWire('ALLIUM_WIRE_MALFORMED'));
    assert.throws(() => encodeBegin('a.b', 65536), isWire('ALLIUM_WIRE_MALFORMED'));
    assert.throws(
      () => decodeBegin(Buffer.concat([hex('0000'), Buffer.from('a.b')])),
      isWire('ALLIUM_WIRE_MALFORMED'),
    );
    assert.throws(() => decodeBegin(hex('0050')), isWire('ALLIUM_WIRE_MALFORMED'));
    assert.throws(() => decodeBegin(hex('00')), isWire('ALLIUM_WIRE_MALFORMED'));
    assert.throws(
      () => decodeBegin(Buffer.concat([hex('0050'), Buffer.alloc(256, 0x61)])),
      isWire('ALLIUM_WIRE_TOO_LARGE'),
    );
  });
});

describe('END, TRUNCATED (§4)', () => {
  it('END is reason(u8); an empty END means MISC; trailing bytes are refused', () => {
    assert.deepEqual(encodeEnd(EndReason.DONE), Buffer.from([6]));
    assert.deepEqual(decodeEnd(encodeEnd(EndReason.EXITPOLICY)), { reason: 4 });
    assert.deepEqual(decodeEnd(Buffer.alloc(0)), { reason: EndReason.MISC });
    assert.throws(() => decodeEnd(Buffer.from([6, 0])), isWire('ALLIUM_WIRE_MALFORMED'));
    assert.throws(() => encodeEnd(300), isWire('ALLIUM_WIRE_TOO_LARGE'));
  });

  it('TRUNCATED is reason(u8)', () => {
    assert.deepEqual(decodeTruncated(encodeTruncated(DestroyReason.CONNECTFAILED)), { reason: 6 });
    assert.throws(() => decodeTruncated(Buffer.alloc(0)), isWire('ALLIUM_WIRE_MALFORMED'));
    assert.throws(() => decodeTruncated(Buffer.from([1, 2])), isWire('ALLIUM_WIRE_MALFORMED'));
  });
});

describe('CONNECTED (§4)', () => {
  it('is atype(4) | IPv4 or atype(6) | IPv6', () => {
    assert.deepEqual(encodeConnected('93.184.216.34'), hex('045db8d822'));
    assert.deepEqual(
      encodeConnected('::1'),
      Buffer.concat([hex('06'), hex('00000000000000000000000000000001')]),
    );
    assert.deepEqual(decodeConnected(encodeConnected('93.184.216.34')), { address: '93.184.216.34' });
    assert.deepEqual(decodeConnected(encodeConnected('2001:0DB8:0:0::1')), { address: '2001:db8::1' });
  });

  it('an empty CONNECTED has no address', () => {
    assert.deepEqual(decodeConnected(Buffer.alloc(0)), { address: null });
  });

  it('rejects host names, bad atypes, wrong lengths', () => {
    assert.throws(() => encodeConnected('example.com'), isWire('ALLIUM_WIRE_MALFORMED'));
    assert.throws(() => decodeConnected(hex('05000000')), isWire('ALLIUM_WIRE_MALFORMED'));
    assert.throws(() => decodeConnected(hex('04000000')), isWire('ALLIUM_WIRE_MALFORMED'));
    assert.throws(() => decodeConnected(hex('040000000000')), isWire('ALLIUM_WIRE_MALFORMED'));
    assert.throws(() => decodeConnected(hex('0600000000')), isWire('ALLIUM_WIRE_MALFORMED'));
  });
});

describe('circuit SENDME (§4, §5)', () => {
  it('is version(2) | tag(16) | window(u16)', () => {
    const tag = Buffer.alloc(16, 0xab);
    assert.deepEqual(
      encodeCircuitSendme({ tag, window: 300 }),
      Buffer.concat([Buffer.from([2]), tag, Buffer.from([0x01, 0x2c])]),
    );
    assert.deepEqual(decodeCircuitSendme(encodeCircuitSendme({ tag, window: 300 })), { tag, window: 300 });
  });

  it('round-trips every tag and every allowed window', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 16, maxLength: 16 }),
        fc.integer({ min: CIRC_WINDOW_MIN, max: CIRC_WINDOW_MAX }),
        (t, window) => {
          const tag = Buffer.from(t);
          assert.deepEqual(decodeCircuitSendme(encodeCircuitSendme({ tag, window })), { tag, window });
        },
      ),
      { numRuns },
    );
  });

  it('rejects other versions, tag lengths, windows out of range and trailing bytes', () => {
    const tag = Buffer.alloc(16);
    const win = (n: number) => Buffer.from([n >> 8, n & 0xff]);
    assert.throws(
      () => encodeCircuitSendme({ tag: Buffer.alloc(15), window: 64 }),
      isWire('ALLIUM_WIRE_MALFORMED'),
    );
    assert.throws(() => encodeCircuitSendme({ tag, window: CIRC_WINDOW_MAX + 1 }), /window/);
    assert.throws(() => decodeCircuitSendme(Buffer.concat([Buffer.from([1]), tag, win(64)])), /version 1/);
    assert.throws(
      () => decodeCircuitSendme(Buffer.concat([Buffer.from([2]), tag, win(CIRC_WINDOW_MIN - 1)])),
      /window/,
    );
    assert.throws(
      () => decodeCircuitSendme(Buffer.concat([Buffer.from([2]), tag, win(CIRC_WINDOW_MAX + 1)])),
      /window/,
    );
    assert.throws(() => decodeCircuitSendme(Buffer.concat([Buffer.from([2]), tag])), WireError);
    assert.throws(
      () => decodeCircuitSendme(Buffer.concat([Buffer.from([2]), tag, win(64), Buffer.alloc(1)])),
      WireError,
    );
    assert.throws(() => decodeCircuitSendme(Buffer.alloc(0)), WireError);
  });
});

describe('EXTEND / EXTENDED (§4, §4.1)', () => {
  const req: ExtendRequest = {
    address: '10.0.0.2',
    port: 9001,
    relayId: Buffer.alloc(32, 0x11),
    htype: 2,
    hdata: Buffer.alloc(96, 0x22),
  };

  it('EXTEND is atype | address | port | ID(32) | htype | hlen | hdata', () => {
    const d = encodeExtend(req);
    assert.deepEqual(
      d,
      Buffer.concat([hex('040a000002'), hex('2329'), req.relayId, hex('0002'), hex('0060'), req.hdata]),
    );
    assert.deepEqual(decodeExtend(d), req);
    const v6 = { ...req, address: 'fd00::7' };
    assert.deepEqual(decodeExtend(encodeExtend(v6)), v6);
  });

  it('EXTEND rejects host names, bad ids and ports, hdata that does not fit, short or long data', () => {
    assert.throws(() => encodeExtend({ ...req, address: 'relay.example' }), isWire('ALLIUM_WIRE_MALFORMED'));
    assert.throws(() => encodeExtend({ ...req, relayId: Buffer.alloc(31) }), isWire('ALLIUM_WIRE_MALFORMED'));
    assert.throws(() => encodeExtend({ ...req, port: 0 }), isWire('ALLIUM_WIRE_MALFORMED'));
    assert.throws(
      () => encodeExtend({ ...req, hdata: Buffer.alloc(RELAY_DATA_MAX) }),
      isWire('ALLIUM_WIRE_TOO_LARGE'),
    );
    const d = encodeExtend(req);
    assert.throws(() => decodeExtend(d.subarray(0, d.length - 1)), isWire('ALLIUM_WIRE_MALFORMED'));
    assert.throws(() => decodeExtend(Buffer.concat([d, Buffer.from([0])])), isWire('ALLIUM_WIRE_MALFORMED'));
    const badPort = Buffer.from(d);
    badPort.writeUInt16BE(0, 5);
    assert.throws(() => decodeExtend(badPort), isWire('ALLIUM_WIRE_MALFORMED'));
  });

  it('EXTENDED is hlen | hdata, exactly', () => {
    const hdata = Buffer.alloc(64, 5);
    assert.deepEqual(encodeExtended(hdata).subarray(0, 2), hex('0040'));
    assert.deepEqual(decodeExtended(encodeExtended(hdata)), { hdata });
    assert.throws(() => decodeExtended(hex('0040')), isWire('ALLIUM_WIRE_MALFORMED'));
    assert.throws(() => decodeExtended(hex('000000')), isWire('ALLIUM_WIRE_MALFORMED'));
    assert.throws(() => encodeExtended(Buffer.alloc(RELAY_DATA_MAX - 1)), isWire('ALLIUM_WIRE_TOO_LARGE'));
  });

  it('decoders return copies', () => {
    const d = encodeExtend(req);
    const out = decodeExtend(d);
    d.fill(0);
    assert.deepEqual(out.relayId, req.relayId);
    assert.deepEqual(out.hdata, req.hdata);
  });
});

describe('properties', () => {
  const ipv4 = fc.ipV4();
  const ipv6 = fc.ipV6().filter((s) => !s.includes('%'));

  it('EXTEND round-trips (addresses come back canonical but the same bytes)', () => {
    fc.assert(
      fc.property(
        fc.oneof(ipv4, ipv6),
        fc.integer({ min: 1, max: 65535 }),
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.nat(0xffff),
        fc.uint8Array({ maxLength: 500 }),
        (address, port, id, htype, h) => {
          const r = { address, port, relayId: Buffer.from(id), htype, hdata: Buffer.from(h) };
          const back = decodeExtend(encodeExtend(r));
          assert.deepEqual(encodeExtend(back), encodeExtend(r));
          assert.deepEqual({ ...back, address: '' }, { ...r, address: '' });
          assert.deepEqual(decodeConnected(encodeConnected(address)), { address: back.address });
        },
      ),
      { numRuns },
    );
  });

  it('BEGIN round-trips generated domain names and IP literals', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.domain().filter((d) => d.length <= 255 && !/\.[0-9]+$/.test(d)),
          ipv4,
          ipv6,
        ),
        fc.integer({ min: 1, max: 65535 }),
        fc.integer({ min: 0, max: 255 }),
        (host, port, flags) => {
          assert.deepEqual(decodeBegin(encodeBegin(host, port, flags)), { host, port, flags });
        },
      ),
      { numRuns },
    );
  });

  it('every decoder throws nothing but WireError on random bytes', () => {
    const decoders = [
      decodeBegin,
      decodeEnd,
      decodeConnected,
      decodeCircuitSendme,
      decodeExtend,
      decodeExtended,
      decodeTruncated,
    ];
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (b) => {
        for (const decode of decoders) {
          try {
            decode(Buffer.from(b));
          } catch (e) {
            assert.ok(e instanceof WireError, `${decode.name}: ${e}`);
          }
        }
      }),
      { numRuns: numRuns * 5 },
    );
  });
});
