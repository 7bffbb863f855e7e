import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ByteReader, ByteWriter, formatIp, isIpLiteral, parseIp, unmapIpv4 } from './bytes.js';
import { WireError } from './errors.js';

const numRuns = Number(process.env.FUZZ_RUNS ?? 200);

function isWire(code: string) {
  return (e: unknown) => e instanceof WireError && e.code === code;
}

describe('ByteReader', () => {
  it('reads big-endian fields in order and tracks what is left', () => {
    const r = new ByteReader(Buffer.from([1, 0x02, 0x03, 0xde, 0xad, 0xbe, 0xef, 9, 8, 7]));
    assert.equal(r.u8(), 1);
    assert.equal(r.u16(), 0x0203);
    assert.equal(r.u32(), 0xdeadbeef);
    assert.equal(r.remaining, 3);
    assert.deepEqual(r.bytes(1), Buffer.from([9]));
    assert.deepEqual(r.rest(), Buffer.from([8, 7]));
    assert.equal(r.remaining, 0);
    r.end();
  });

  it('throws WireError MALFORMED, naming the message, on every kind of overrun', () => {
    const r = new ByteReader(Buffer.from([1]), 'TEST');
    assert.throws(() => r.u16(), isWire('ALLIUM_WIRE_MALFORMED'));
    assert.throws(() => r.u32(), /truncated TEST/);
    assert.throws(() => r.bytes(2), isWire('ALLIUM_WIRE_MALFORMED'));
    assert.throws(() => r.bytes(-1), isWire('ALLIUM_WIRE_MALFORMED'));
    assert.throws(() => r.end(), /trailing/);
    assert.equal(r.u8(), 1);
    assert.throws(() => r.u8(), isWire('ALLIUM_WIRE_MALFORMED'));
  });

  it('bytes() returns views, not copies', () => {
    const buf = Buffer.from([1, 2, 3]);
    const v = new ByteReader(buf).bytes(2);
    buf[0] = 99;
    assert.equal(v[0], 99);
  });

  it('random reads on random input throw nothing but WireError', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 16 }),
        fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 10 }),
        (b, ops) => {
          const r = new ByteReader(Buffer.from(b));
          try {
            for (const op of ops)
              [() => r.u8(), () => r.u16(), () => r.u32(), () => r.bytes(3), () => r.end()][op]();
          } catch (e) {
            assert.ok(e instanceof WireError);
          }
        },
      ),
      { numRuns },
    );
  });
});

describe('ByteWriter', () => {
  it('writes fields big-endian and grows as needed', () => {
    const w = new ByteWriter(1);
    w.u8(1)
      .u16(0x0203)
      .u32(0xdeadbeef)
      .bytes(Buffer.from([9]))
      .u16Prefixed(Buffer.from([7, 7]));
    assert.equal(w.length, 12);
    assert.deepEqual(w.finish(), Buffer.from([1, 2, 3, 0xde, 0xad, 0xbe, 0xef, 9, 0, 2, 7, 7]));
  });

  it('refuses values that do not fit their field instead of truncating them', () => {
    const w = new ByteWriter();
    assert.throws(() => w.u8(256), isWire('ALLIUM_WIRE_TOO_LARGE'));
    assert.throws(() => w.u8(-1), isWire('ALLIUM_WIRE_TOO_LARGE'));
    assert.throws(() => w.u16(65536), isWire('ALLIUM_WIRE_TOO_LARGE'));
    assert.throws(() => w.u32(2 ** 32), isWire('ALLIUM_WIRE_TOO_LARGE'));
    assert.throws(() => w.u16(1.5), isWire('ALLIUM_WIRE_TOO_LARGE'));
    assert.throws(() => w.u16Prefixed(Buffer.alloc(65536)), isWire('ALLIUM_WIRE_TOO_LARGE'));
    assert.equal(w.length, 0);
  });

  it('round-trips through ByteReader', () => {
    fc.assert(
      fc.property(
        fc.nat(255),
        fc.nat(65535),
        fc.nat(0xffffffff),
        fc.uint8Array({ maxLength: 300 }),
        (a, b, c, d) => {
          const buf = new ByteWriter(0).u8(a).u16(b).u32(c).u16Prefixed(d).finish();
          const r = new ByteReader(buf);
          assert.equal(r.u8(), a);
          assert.equal(r.u16(), b);
          assert.equal(r.u32(), c);
          assert.deepEqual(r.bytes(r.u16()), Buffer.from(d));
          r.end();
        },
      ),
      { numRuns },
    );
  });
});

describe('parseIp / formatIp', () => {
  const good: [string, number[] | string][] = [
    ['127.0.0.1', [127, 0, 0, 1]],
    ['0.0.0.0', [0, 0, 0, 0]],
    ['255.255.255.255', [255, 255, 255, 255]],
    ['::1', '00000000000000000000000000000001'],
    ['::', '00000000000000000000000000000000'],
    ['2001:db8::1', '20010db8000000000000000000000001'],
    ['fe80::', 'fe800000000000000000000000000000'],
    ['1:2:3:4:5:6:7:8', '00010002000300040005000600070008'],
    ['1:2:3:4:5:6:7::', '00010002000300040005000600070000'],
    ['::2:3:4:5:6:7:8', '00000002000300040005000600070008'],
    ['::ffff:10.0.0.1', '00000000000000000000ffff0a000001'],
    ['64:ff9b::192.0.2.33', '0064ff9b0000000000000000c0000221'],
    ['1:2:3:4:5:6:1.2.3.4', '00010002000300040005000601020304'],
    ['ABCD:EF01::', 'abcdef01000000000000000000000000'],
  ];
  for (const [text, bytes] of good) {
    it(`parses ${text}`, () => {
      const want = typeof bytes === 'string' ? Buffer.from(bytes, 'hex') : Buffer.from(bytes);
      assert.deepEqual(parseIp(text), want);
      assert.ok(isIpLiteral(text));
    });
  }

  const bad = [
    '',
    'localhost',
    '1.2.3',
    '1.2.3.4.5',
    '256.0.0.1',
    '01.2.3.4',
    '1.2.3.-4',
    '1.2.3.4 ',
    ' 1.2.3.4',
    '0x7f.0.0.1',
    '1:2:3:4:5:6:7:8:9',
    '1:2:3:4:5:6:7',
    '1::2::3',
    ':::',
    ':1::',
    '1:',
    '12345::',
    'g::1',
    '[::1]',
    'fe80::1%eth0',
    '1.2.3.4::',
    '::1.2.3.4:5',
    '1:2:3:4:5:6:7:1.2.3.4',
    '::ffff:1.2.3.04',
    '1:2:3:4:5:6:7:8::',
  ];
  for (const text of bad) {
    it(`rejects ${JSON.stringify(text)}`, () => assert.equal(parseIp(text), null));
  }

  it('formats IPv6 as RFC 5952 (longest zero run, first on a tie, lowercase, no single-group ::)', () => {
    const f = (hex: string) => formatIp(Buffer.from(hex, 'hex'));
    assert.equal(f('20010db8000000000000000000000001'), '2001:db8::1');
    assert.equal(f('20010db8000000010000000000000001'), '2001:db8:0:1::1');
    assert.equal(f('20010db8000000000001000000000001'), '2001:db8::1:0:0:1');
    assert.equal(f('20010db8000000010001000100010001'), '2001:db8:0:1:1:1:1:1');
    assert.equal(f('00000000000000000000000000000000'), '::');
    assert.equal(f('00000000000000000000ffff7f000001'), '::ffff:127.0.0.1');
    assert.equal(formatIp(Buffer.from([10, 1, 2, 3])), '10.1.2.3');
    assert.throws(() => formatIp(Buffer.alloc(5)), isWire('ALLIUM_WIRE_MALFORMED'));
  });

  it('unmapIpv4 extracts only IPv4-mapped addresses', () => {
    assert.deepEqual(unmapIpv4(parseIp('::ffff:1.2.3.4')!), Buffer.from([1, 2, 3, 4]));
    assert.equal(unmapIpv4(parseIp('::1')!).length, 16);
    assert.equal(unmapIpv4(parseIp('1.2.3.4')!).length, 4);
  });

  // WHATWG URL parsing (no node:net in src/wire, even in tests) is the oracle for IPv6 text.
  const zeroBiasedWords = fc.array(fc.oneof(fc.constant(0), fc.constant(0), fc.nat(0xffff)), {
    minLength: 8,
    maxLength: 8,
  });
  const wordsToBuf = (ws: number[]) => {
    const b = Buffer.alloc(16);
    for (let i = 0; i < 8; i++) b.writeUInt16BE(ws[i], i * 2);
    return b;
  };

  it('formatIp -> parseIp round-trips, and agrees with the URL serializer', () => {
    fc.assert(
      fc.property(zeroBiasedWords, (ws) => {
        const b = wordsToBuf(ws);
        const text = formatIp(b);
        assert.deepEqual(parseIp(text), b);
        const mapped = b.subarray(0, 12).equals(Buffer.from('00000000000000000000ffff', 'hex'));
        if (!mapped) assert.equal(`[${text}]`, new URL(`http://[${text}]/`).hostname);
      }),
      { numRuns },
    );
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 4, maxLength: 4 }), (b) => {
        assert.deepEqual(parseIp(formatIp(b)), Buffer.from(b));
      }),
      { numRuns },
    );
  });

  it('parses every uncompressed and embedded-IPv4 spelling of an address', () => {
    fc.assert(
      fc.property(zeroBiasedWords, fc.boolean(), (ws, upper) => {
        const b = wordsToBuf(ws);
        let full = ws.map((w) => w.toString(16)).join(':');
        if (upper) full = full.toUpperCase();
        assert.deepEqual(parseIp(full), b);
        const v4tail = `${ws
          .slice(0, 6)
          .map((w) => w.toString(16))
          .join(':')}:${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
        assert.deepEqual(parseIp(v4tail), b);
      }),
      { numRuns },
    );
  });

  it('accepts exactly the IPv6 strings the URL parser accepts (random strings)', () => {
    const chars = fc.constantFrom(...'0123456789abcdefABCDEF:.:::'.split(''));
    fc.assert(
      fc.property(fc.string({ unit: chars, maxLength: 24 }), (s) => {
        if (!s.includes(':')) return;
        let urlOk = true;
        let urlHost = '';
        try {
          urlHost = new URL(`http://[${s}]/`).hostname;
        } catch {
          urlOk = false;
        }
        const mine = parseIp(s);
        assert.equal(mine !== null, urlOk, `disagreement on ${JSON.stringify(s)}`);
        if (mine && urlOk) assert.deepEqual(parseIp(urlHost.slice(1, -1)), mine);
      }),
      { numRuns: numRuns * 10 },
    );
  });

  it('never throws on arbitrary strings', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 60 }), (s) => {
        const ip = parseIp(s);
        assert.ok(ip === null || ip.length === 4 || ip.length === 16);
      }),
      { numRuns },
    );
  });
});
