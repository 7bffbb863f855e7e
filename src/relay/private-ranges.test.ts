// What an exit publishes and what it enforces agree on every special-purpose block (protocol §7):
// each block's first, middle and last address and its neighbours on both sides, in IPv4, IPv6,
// IPv4-mapped and NAT64 form, then random addresses under random operator policies.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ExitPolicy, isPrivateAddress, isSpecialPurposeAddress } from '../core/exit-policy.js';
import { NAT64_PREFIX, SPECIAL_PURPOSE_V4, SPECIAL_PURPOSE_V6 } from '../core/special-purpose-addresses.js';
import { formatIp, parseIp } from '../wire/bytes.js';
import { PRIVATE_REJECT_LINES, publishedExitPolicy } from './private-ranges.js';

const numRuns = Number(process.env.FUZZ_RUNS ?? 300);

/** The exit as it enforces `lines`, and as a client reads what it publishes (literally). */
function bothViews(lines: string[]): { enforced: ExitPolicy; published: ExitPolicy } {
  return {
    enforced: ExitPolicy.fromLines(lines, { allowPrivate: false }),
    published: ExitPolicy.fromLines(publishedExitPolicy(lines, false), { allowPrivate: true }),
  };
}

function toBig(ip: Buffer): bigint {
  return BigInt(`0x${ip.toString('hex')}`);
}
function fromBig(n: bigint, bytes: number): Buffer {
  return Buffer.from(n.toString(16).padStart(bytes * 2, '0'), 'hex');
}

/** First, middle and last address of a block, and the addresses just outside it (when they exist). */
function probes(cidr: string): { inside: string[]; outside: string[] } {
  const [addr, bitsText] = cidr.split('/');
  const ip = parseIp(addr)!;
  const width = BigInt(ip.length * 8);
  const hostBits = width - BigInt(bitsText);
  const first = toBig(ip);
  const last = first + (1n << hostBits) - 1n;
  const max = (1n << width) - 1n;
  const fmt = (n: bigint) => formatIp(fromBig(n, ip.length));
  const outside: string[] = [];
  if (first > 0n) outside.push(fmt(first - 1n));
  if (last < max) outside.push(fmt(last + 1n));
  return { inside: [fmt(first), fmt(first + (last - first) / 2n), fmt(last)], outside };
}

function nat64(v4: string): string {
  return `${NAT64_PREFIX}${v4}`;
}

describe('the published policy is the enforced one (special-purpose registries)', () => {
  const { enforced, published } = bothViews(['accept *:*']);

  for (const block of SPECIAL_PURPOSE_V4) {
    it(`${block.cidr} (${block.name}): refused in every form, neighbours judged alike`, () => {
      const { inside, outside } = probes(block.cidr);
      for (const a of inside) {
        for (const form of [a, `::ffff:${a}`, nat64(a)]) {
          assert.equal(enforced.allows(form, 443), false, `enforced allows ${form}`);
          assert.equal(published.allows(form, 443), false, `published allows ${form}`);
          assert.equal(isSpecialPurposeAddress(form), true, form);
          if (block.local) assert.equal(isPrivateAddress(form), true, `isPrivateAddress(${form})`);
        }
      }
      if (!block.local) assert.equal(isPrivateAddress(inside[1]), false, inside[1]);
      for (const a of outside) {
        for (const form of [a, `::ffff:${a}`, nat64(a)]) {
          assert.equal(enforced.allows(form, 443), published.allows(form, 443), form);
        }
      }
    });
  }

  for (const block of SPECIAL_PURPOSE_V6) {
    it(`${block.cidr} (${block.name}): refused, neighbours judged alike`, () => {
      const { inside, outside } = probes(block.cidr);
      for (const a of inside) {
        assert.equal(enforced.allows(a, 443), false, `enforced allows ${a}`);
        assert.equal(published.allows(a, 443), false, `published allows ${a}`);
        if (block.local) assert.equal(isPrivateAddress(a), true, `isPrivateAddress(${a})`);
      }
      // A relay on such an address is "public" for EXTEND (relay.ts) unless the block is local.
      if (!block.local) assert.equal(isPrivateAddress(inside[1]), false, inside[1]);
      for (const a of outside) assert.equal(enforced.allows(a, 443), published.allows(a, 443), a);
    });
  }

  it('the ranges the review found disagreeing: CGNAT, 240/4, site-local, NAT64', () => {
    for (const a of ['100.64.0.1', '100.100.100.200', '100.127.255.254', '240.0.0.1', 'fec0::1']) {
      assert.equal(enforced.allows(a, 80), false, a);
      assert.equal(published.allows(a, 80), false, a);
    }
    for (const a of ['64:ff9b::10.0.0.1', '64:ff9b::127.0.0.1', '64:ff9b::100.100.100.200']) {
      assert.equal(enforced.allows(a, 80), false, a);
      assert.equal(published.allows(a, 80), false, a);
    }
    for (const a of ['8.8.8.8', '100.128.0.1', '64:ff9b::8.8.8.8', '2606:4700::1111']) {
      assert.equal(enforced.allows(a, 80), true, a);
      assert.equal(published.allows(a, 80), true, a);
    }
  });

  it('random addresses are judged alike under random operator policies', () => {
    const v4 = fc.uint8Array({ minLength: 4, maxLength: 4 }).map((b) => formatIp(b));
    const v6 = fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) => formatIp(b));
    // Addresses near the blocks' edges are where two lists would disagree.
    const nearBlock = fc
      .constantFrom(...SPECIAL_PURPOSE_V4, ...SPECIAL_PURPOSE_V6)
      .chain((b) => fc.constantFrom(...probes(b.cidr).inside, ...probes(b.cidr).outside));
    const address = fc.oneof(
      v4,
      v6,
      nearBlock,
      v4.map((a) => `::ffff:${a}`),
      v4.map(nat64),
      nearBlock.filter((a) => !a.includes(':')).map(nat64),
    );
    const rule = fc
      .tuple(fc.constantFrom('accept', 'reject'), fc.oneof(address, fc.constant('*')), fc.nat({ max: 32 }))
      .map(([action, a, bits]) =>
        a === '*'
          ? `${action} *:80-443`
          : a.includes(':')
            ? `${action} [${a}]/${bits * 4}:*`
            : `${action} ${a}/${bits}:*`,
      );
    fc.assert(
      fc.property(
        fc.array(rule, { maxLength: 4 }),
        address,
        fc.integer({ min: 1, max: 65535 }),
        (rules, a, port) => {
          const { enforced: e, published: p } = bothViews([...rules, 'accept *:*']);
          assert.equal(e.allows(a, port), p.allows(a, port), `${a}:${port} under ${rules.join(', ')}`);
          assert.equal(e.mayAllowPort(port), p.mayAllowPort(port));
        },
      ),
      { numRuns },
    );
  });

  it('allowPrivate publishes the operator lines alone, a middle publishes reject *:*', () => {
    assert.deepEqual(publishedExitPolicy(['accept *:80'], true), ['accept *:80']);
    assert.deepEqual(publishedExitPolicy([], false), ['reject *:*']);
    assert.deepEqual(publishedExitPolicy(['accept *:80'], false), [...PRIVATE_REJECT_LINES, 'accept *:80']);
    const many = Array.from({ length: 256 - PRIVATE_REJECT_LINES.length + 1 }, (_, i) => `accept *:${i + 1}`);
    assert.throws(() => publishedExitPolicy(many, false), /a descriptor holds at most/);
    assert.equal(publishedExitPolicy(many.slice(1), false).length, 256);
  });
});
