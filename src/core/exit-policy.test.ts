import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  DEFAULT_EXIT_POLICY,
  ExitPolicy,
  ExitPolicyError,
  isPrivateAddress,
  parseExitPolicy,
  parseIp,
} from './exit-policy.js';

const numRuns = Number(process.env.FUZZ_RUNS ?? 200);
const pub = { allowPrivate: false };
const priv = { allowPrivate: true };
const isSyntax = (line: number) => (e: unknown) =>
  e instanceof ExitPolicyError &&
  e.code === 'ALLIUM_EXIT_POLICY_SYNTAX' &&
  e.message.includes(`line ${line} `);

const PRIVATE = [
  '127.0.0.1',
  '127.255.255.254',
  '10.0.0.1',
  '172.16.0.1',
  '172.31.255.255',
  '192.168.1.1',
  '169.254.169.254',
  '224.0.0.1',
  '239.255.255.250',
  '0.0.0.0',
  '0.1.2.3',
  '255.255.255.255',
  '::',
  '::1',
  'fe80::1',
  'febf::1',
  'fc00::1',
  'fd12:3456::1',
  'ff02::1',
  '::ffff:127.0.0.1',
  '::ffff:10.1.1.1',
  '64:ff9b::10.0.0.1',
];
const PUBLIC = [
  '93.184.216.34',
  '8.8.8.8',
  '172.15.255.255',
  '172.32.0.1',
  '2606:4700::1111',
  '::ffff:8.8.8.8',
  '64:ff9b::8.8.8.8',
];

describe('isPrivateAddress (§7)', () => {
  for (const a of PRIVATE) it(`${a} is private`, () => assert.equal(isPrivateAddress(a), true));
  for (const a of PUBLIC) it(`${a} is public`, () => assert.equal(isPrivateAddress(a), false));
  it('a host name is not an address at all', () => assert.equal(isPrivateAddress('localhost'), false));
  it('re-exports parseIp', () => assert.deepEqual(parseIp('1.2.3.4'), Buffer.from([1, 2, 3, 4])));
});

describe('ExitPolicy.allows', () => {
  it('the default policy accepts public destinations and refuses private ones', () => {
    const p = ExitPolicy.fromLines(DEFAULT_EXIT_POLICY, pub);
    for (const a of PUBLIC) assert.equal(p.allows(a, 443), true, a);
    for (const a of PRIVATE) assert.equal(p.allows(a, 443), false, a);
  });

  it('allowPrivate lets the rules decide private destinations too', () => {
    const p = ExitPolicy.fromLines(DEFAULT_EXIT_POLICY, priv);
    for (const a of PRIVATE) assert.equal(p.allows(a, 80), true, a);
    const loop = ExitPolicy.fromLines(['accept 127.0.0.0/8:*', 'reject *:*'], priv);
    assert.equal(loop.allows('127.0.0.1', 8080), true);
    assert.equal(loop.allows('::ffff:127.0.0.1', 8080), true);
    assert.equal(loop.allows('8.8.8.8', 80), false);
    assert.equal(
      ExitPolicy.fromLines(['accept 127.0.0.0/8:*', 'reject *:*'], pub).allows('127.0.0.1', 8080),
      false,
    );
  });

  it('first match wins', () => {
    const a = ExitPolicy.fromLines(['reject *:25', 'accept *:*'], pub);
    assert.equal(a.allows('8.8.8.8', 25), false);
    assert.equal(a.allows('8.8.8.8', 80), true);
    const b = ExitPolicy.fromLines(['accept *:*', 'reject *:25'], pub);
    assert.equal(b.allows('8.8.8.8', 25), true);
    const c = ExitPolicy.fromLines(['reject 8.8.8.0/24:*', 'accept 8.0.0.0/8:*'], pub);
    assert.equal(c.allows('8.8.8.8', 53), false);
    assert.equal(c.allows('8.8.9.8', 53), true);
  });

  it('no match means reject', () => {
    const p = ExitPolicy.fromLines(['accept *:80'], pub);
    assert.equal(p.allows('8.8.8.8', 443), false);
    assert.equal(new ExitPolicy([], pub).allows('8.8.8.8', 80), false);
  });

  it('matches IPv6 prefixes, and IPv4 rules only IPv4 (mapped addresses count as IPv4)', () => {
    const p = ExitPolicy.fromLines(['accept [2a01:4f8::]/32:443', 'accept 8.8.0.0/16:*', 'reject *:*'], pub);
    assert.equal(p.allows('2a01:4f8::5', 443), true);
    assert.equal(p.allows('2a01:4f8:ffff::1', 443), true);
    assert.equal(p.allows('2a01:4f9::1', 443), false);
    assert.equal(p.allows('2a01:4f8::5', 80), false);
    assert.equal(p.allows('8.8.4.4', 1), true);
    assert.equal(p.allows('::ffff:8.8.4.4', 1), true);
    assert.equal(p.allows('1.2.3.4', 443), false);
    const six = ExitPolicy.fromLines(['accept [::ffff:8.8.0.0]/112:*'], pub);
    assert.equal(six.allows('8.8.1.1', 22), true, 'a rule written as mapped IPv6 is an IPv4 rule');
    assert.deepEqual(six.toLines(), ['accept 8.8.0.0/16:*']);
  });

  it('port ranges are inclusive', () => {
    const p = ExitPolicy.fromLines(['accept *:80-443'], pub);
    assert.deepEqual(
      [79, 80, 200, 443, 444].map((port) => p.allows('8.8.8.8', port)),
      [false, true, true, true, false],
    );
  });

  it('refuses host names, zone ids and ports outside 1-65535', () => {
    const p = ExitPolicy.fromLines(DEFAULT_EXIT_POLICY, priv);
    assert.equal(p.allows('example.com', 80), false);
    assert.equal(p.allows('fe80::1%eth0', 80), false);
    assert.equal(p.allows('8.8.8.8', 0), false);
    assert.equal(p.allows('8.8.8.8', 65536), false);
    assert.equal(p.allows('8.8.8.8', 1.5), false);
  });
});

describe('parseExitPolicy (§7 syntax)', () => {
  it('parses the documented forms', () => {
    const rules = parseExitPolicy([
      'accept 127.0.0.0/8:*',
      'reject *:*',
      'accept [::1]:80-443',
      'accept *:443',
      'reject 10.0.0.0/8:*',
    ]);
    assert.equal(rules.length, 5);
    assert.deepEqual(rules[2], {
      action: 'accept',
      network: parseIp('::1'),
      bits: 128,
      portLo: 80,
      portHi: 443,
    });
    assert.deepEqual(rules[1], { action: 'reject', network: null, bits: 0, portLo: 1, portHi: 65535 });
  });

  it('skips blank lines and # comments, ignores case of the action', () => {
    const p = ExitPolicy.fromLines(['', '  # web only', ' ACCEPT *:80 ', 'Reject *:*'], pub);
    assert.deepEqual(p.toLines(), ['accept *:80', 'reject *:*']);
  });

  it('toLines is canonical and parses back to the same policy', () => {
    const p = ExitPolicy.fromLines(
      [
        'accept 10.1.2.3/8:80',
        'accept [2001:DB8::1]:*',
        'accept [2001:db8::/32]:22',
        'reject [::ffff:10.0.0.0]/104:*',
        'reject *:1-65535',
        'accept 1.2.3.4/32:22-22',
        'accept 0.0.0.0/0:7',
      ],
      pub,
    );
    const lines = p.toLines();
    assert.deepEqual(lines, [
      'accept 10.0.0.0/8:80',
      'accept [2001:db8::1]:*',
      'accept [2001:db8::]/32:22',
      'reject 10.0.0.0/8:*',
      'reject *:*',
      'accept 1.2.3.4:22',
      'accept 0.0.0.0/0:7',
    ]);
    assert.deepEqual(ExitPolicy.fromLines(lines, pub).toLines(), lines);
  });

  const bad: [string, string][] = [
    ['allow *:*', 'accept" or "reject'],
    ['accept', 'accept" or "reject'],
    ['accept *', 'no ":PORT"'],
    ['accept *:0', 'outside 1-65535'],
    ['accept *:65536', 'outside 1-65535'],
    ['accept *:443-80', 'backwards'],
    ['accept *:http', 'not a port'],
    ['accept *:80-', 'not a port'],
    ['accept 1.2.3.4/33:*', 'prefix length'],
    ['accept 1.2.3.4/:*', 'prefix length'],
    ['accept [::1]/129:*', 'prefix length'],
    ['accept ::1:80', 'brackets'],
    ['accept [::1:80', 'not closed'],
    ['accept [::1]80', 'no ":PORT"'],
    ['accept [1.2.3.4]:80', 'not an IPv6 address'],
    ['accept 1.2.3:80', 'not "*" or an IPv4 address'],
    ['accept localhost:80', 'not "*" or an IPv4 address'],
    ['accept */8:*', 'takes no prefix length'],
    ['accept * :80', 'accept" or "reject'],
  ];
  for (const [line, why] of bad) {
    it(`rejects "${line}" and names the line`, () => {
      assert.throws(() => parseExitPolicy(['accept *:80', line]), isSyntax(2));
      assert.throws(
        () => parseExitPolicy([line]),
        (e: unknown) => e instanceof Error && e.message.includes(why),
      );
    });
  }

  it('throws nothing but ExitPolicyError on random lines', () => {
    const chars = fc.constantFrom(...'acceptrejct *:[]/-.0123456789abcdef#'.split(''));
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.string({ unit: chars, maxLength: 30 }), fc.string({ maxLength: 30 })), {
          maxLength: 4,
        }),
        (lines) => {
          try {
            const p = ExitPolicy.fromLines(lines, pub);
            assert.deepEqual(ExitPolicy.fromLines(p.toLines(), pub).toLines(), p.toLines());
          } catch (e) {
            assert.ok(e instanceof ExitPolicyError, String(e));
          }
        },
      ),
      { numRuns: numRuns * 5 },
    );
  });
});

describe('mayAllowPort and isExit', () => {
  it('default policy may allow any port', () => {
    const p = ExitPolicy.fromLines(DEFAULT_EXIT_POLICY, pub);
    assert.equal(p.mayAllowPort(1), true);
    assert.equal(p.mayAllowPort(65535), true);
    assert.equal(p.mayAllowPort(0), false);
    assert.equal(p.isExit(), true);
  });

  it('an earlier reject shadows a later accept', () => {
    const p = ExitPolicy.fromLines(['reject *:80', 'accept *:*'], pub);
    assert.equal(p.mayAllowPort(80), false);
    assert.equal(p.mayAllowPort(81), true);
  });

  it('private-only accepts count only when allowPrivate', () => {
    const lines = ['accept 127.0.0.0/8:*', 'accept 10.0.0.0/8:*', 'accept [fc00::]/7:*', 'reject *:*'];
    assert.equal(ExitPolicy.fromLines(lines, pub).mayAllowPort(80), false);
    assert.equal(ExitPolicy.fromLines(lines, pub).isExit(), false);
    assert.equal(ExitPolicy.fromLines(lines, priv).mayAllowPort(80), true);
    assert.equal(ExitPolicy.fromLines(lines, priv).isExit(), true);
  });

  it('is exact about partly shadowed prefixes and both address families', () => {
    const v4Gone = ['reject 0.0.0.0/1:*', 'reject 128.0.0.0/1:*'];
    assert.equal(
      ExitPolicy.fromLines([...v4Gone, 'accept *:*'], pub).mayAllowPort(80),
      true,
      'IPv6 still open',
    );
    assert.equal(
      ExitPolicy.fromLines([...v4Gone, 'reject [::]/0:*', 'accept *:*'], pub).mayAllowPort(80),
      false,
    );
    assert.equal(
      ExitPolicy.fromLines(['reject 0.0.0.0/1:*', 'accept 0.0.0.0/0:*'], pub).mayAllowPort(80),
      true,
    );
    assert.equal(
      ExitPolicy.fromLines(['reject 8.0.0.0/8:*', 'accept 8.8.0.0/16:*'], pub).mayAllowPort(80),
      false,
    );
    // Everything public of 0/1 and 128/1 rejected, the rest of both halves is private.
    assert.equal(
      ExitPolicy.fromLines(['reject 0.0.0.0/0:*', 'accept 10.0.0.0/8:*'], priv).mayAllowPort(80),
      false,
    );
    assert.equal(
      ExitPolicy.fromLines(['accept 10.0.0.0/8:*', 'reject 0.0.0.0/0:*'], priv).mayAllowPort(80),
      true,
    );
    // 169.254/16 minus its private self is empty; 169.0/8 is not.
    assert.equal(ExitPolicy.fromLines(['accept 169.254.0.0/16:*'], pub).mayAllowPort(80), false);
    assert.equal(ExitPolicy.fromLines(['accept 169.0.0.0/8:*'], pub).mayAllowPort(80), true);
  });

  it('isExit finds a single open port among rejects', () => {
    assert.equal(
      ExitPolicy.fromLines(['reject *:1-79', 'reject *:81-65535', 'accept *:*'], pub).isExit(),
      true,
    );
    assert.equal(
      ExitPolicy.fromLines(['reject *:1-80', 'reject *:81-65535', 'accept *:*'], pub).isExit(),
      false,
    );
    assert.equal(ExitPolicy.fromLines(['reject *:*'], pub).isExit(), false);
    assert.equal(ExitPolicy.fromLines([], priv).isExit(), false);
  });

  it('whatever allows() accepts, mayAllowPort and isExit agree with (random policies)', () => {
    const addr = fc.constantFrom(
      '8.8.8.8',
      '8.8.4.4',
      '10.0.0.1',
      '127.0.0.1',
      '1.1.1.1',
      '2001:db8::1',
      '::1',
      '2606::1',
    );
    const target = fc.constantFrom(
      '*',
      '8.0.0.0/8',
      '8.8.8.8',
      '10.0.0.0/8',
      '0.0.0.0/1',
      '[2001:db8::]/32',
      '[::]/0',
      '[::1]',
    );
    const ports = fc.constantFrom('*', '53', '80-443', '443', '1-100');
    const rule = fc
      .tuple(fc.constantFrom('accept', 'reject'), target, ports)
      .map(([a, t, p]) => `${a} ${t}:${p}`);
    fc.assert(
      fc.property(
        fc.array(rule, { maxLength: 6 }),
        fc.boolean(),
        addr,
        fc.constantFrom(53, 80, 443, 8080),
        (lines, ap, a, port) => {
          const p = ExitPolicy.fromLines(lines, { allowPrivate: ap });
          if (p.allows(a, port)) {
            assert.equal(p.mayAllowPort(port), true, `${lines.join(', ')} allows ${a}:${port}`);
            assert.equal(p.isExit(), true);
          }
          if (!p.mayAllowPort(port)) assert.equal(p.allows(a, port), false);
        },
      ),
      { numRuns: numRuns * 5 },
    );
  });
});
