import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  type Consensus,
  DirectoryDocError,
  isBase64OfLength,
  isIPv4,
  isIPv6,
  MAX_CONSENSUS_BYTES,
  MAX_DESCRIPTOR_BYTES,
  parseConsensusBody,
  parseDescriptorBody,
  parseEnvelope,
  parseWithdrawBody,
  type RelayDescriptor,
  serializeConsensus,
  serializeDescriptor,
  signingDomain,
} from './directory-docs.js';

const numRuns = Number(process.env.FUZZ_RUNS ?? 200);

const KEY_A = Buffer.alloc(32, 1).toString('base64');
const KEY_B = Buffer.alloc(32, 2).toString('base64');

function descriptor(over: Partial<RelayDescriptor> = {}): RelayDescriptor {
  return {
    nickname: 'relay_1-A',
    id: 'ab'.repeat(32),
    identityKey: KEY_A,
    onionKey: KEY_B,
    address: '192.0.2.7',
    port: 9001,
    exitPolicy: ['accept *:80', 'reject *:*'],
    bandwidth: 12345,
    version: 'allium/0.2.0',
    published: 1_700_000_000_000,
    ...over,
  };
}

function consensus(over: Partial<Consensus> = {}): Consensus {
  return {
    network: 'allium',
    serial: 7,
    validAfter: 1000,
    freshUntil: 2000,
    validUntil: 3000,
    directoryKey: KEY_A,
    relays: [{ ...descriptor(), flags: ['Running', 'Exit'] }],
    ...over,
  };
}

function rejects(fn: () => unknown, code: string, field?: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof DirectoryDocError, `expected DirectoryDocError, got ${String(err)}`);
    assert.equal(err.code, code);
    if (field !== undefined) {
      assert.equal(err.field, field);
      assert.match(err.message, new RegExp(field.replace('.', '\\.')));
    }
    return true;
  });
}

describe('address and base64 validators', () => {
  it('accepts and refuses IPv4 forms', () => {
    for (const ok of ['0.0.0.0', '127.0.0.1', '255.255.255.255', '10.20.30.40']) assert.ok(isIPv4(ok), ok);
    for (const bad of ['256.1.1.1', '1.2.3', '01.2.3.4', '1.2.3.4.5', '1.2.3.4 ', '', 'a.b.c.d']) {
      assert.equal(isIPv4(bad), false, bad);
    }
  });
  it('accepts and refuses IPv6 forms', () => {
    for (const ok of [
      '::',
      '::1',
      '2001:db8::1',
      'fe80::1:2:3:4',
      '1:2:3:4:5:6:7:8',
      '::ffff:192.0.2.1',
      '1::',
    ]) {
      assert.ok(isIPv6(ok), ok);
    }
    for (const bad of [
      ':::',
      '1:2:3:4:5:6:7:8:9',
      '1::2::3',
      '[::1]',
      'fe80::1%eth0',
      '12345::',
      ':1:2:3:4:5:6:7',
      '1.2.3.4',
    ]) {
      assert.equal(isIPv6(bad), false, bad);
    }
  });
  it('wants canonical base64 of the exact length', () => {
    assert.ok(isBase64OfLength(KEY_A, 32));
    assert.equal(isBase64OfLength(Buffer.alloc(31).toString('base64'), 32), false);
    assert.equal(isBase64OfLength(`${KEY_A.slice(0, 42)}B=`, 32), false); // non-zero padding bits
    assert.equal(isBase64OfLength(KEY_A.replace('=', ''), 32), false);
  });
});

describe('parseDescriptorBody', () => {
  it('round-trips a descriptor', () => {
    const d = descriptor();
    assert.deepEqual(parseDescriptorBody(serializeDescriptor(d)), d);
  });
  it('accepts an IPv6 address and drops unknown fields', () => {
    const body = JSON.stringify({ ...descriptor({ address: '2001:db8::7' }), future: 1 });
    const d = parseDescriptorBody(body);
    assert.equal(d.address, '2001:db8::7');
    assert.equal('future' in d, false);
  });
  it('names the bad field', () => {
    const cases: [Partial<RelayDescriptor> | Record<string, unknown>, string][] = [
      [{ nickname: 'has space' }, 'nickname'],
      [{ nickname: 'x'.repeat(33) }, 'nickname'],
      [{ id: 'AB'.repeat(32) }, 'id'],
      [{ identityKey: 'short' }, 'identityKey'],
      [{ onionKey: Buffer.alloc(33).toString('base64') }, 'onionKey'],
      [{ address: 'example.com' }, 'address'],
      [{ address: '[::1]' }, 'address'],
      [{ port: 0 }, 'port'],
      [{ port: 70000 }, 'port'],
      [{ port: 80.5 }, 'port'],
      [{ exitPolicy: 'accept *:*' }, 'exitPolicy'],
      [{ exitPolicy: [''] }, 'exitPolicy.0'],
      [{ bandwidth: -1 }, 'bandwidth'],
      [{ version: 'a\nb' }, 'version'],
      [{ published: '1' }, 'published'],
    ];
    for (const [over, field] of cases) {
      rejects(
        () => parseDescriptorBody(JSON.stringify({ ...descriptor(), ...over })),
        'ALLIUM_DESCRIPTOR_INVALID',
        field,
      );
    }
  });
  it('reports a missing field', () => {
    const { port: _p, ...rest } = descriptor();
    rejects(() => parseDescriptorBody(JSON.stringify(rest)), 'ALLIUM_DESCRIPTOR_INVALID', 'port');
  });
  it('refuses non-JSON, non-objects and oversized bodies', () => {
    rejects(() => parseDescriptorBody('{'), 'ALLIUM_DESCRIPTOR_INVALID');
    rejects(() => parseDescriptorBody('null'), 'ALLIUM_DESCRIPTOR_INVALID');
    rejects(() => parseDescriptorBody('[1,2]'), 'ALLIUM_DESCRIPTOR_INVALID');
    const big = JSON.stringify({ ...descriptor(), pad: 'x'.repeat(MAX_DESCRIPTOR_BYTES) });
    rejects(() => parseDescriptorBody(big), 'ALLIUM_DESCRIPTOR_INVALID');
    // Multi-byte characters count in bytes, not UTF-16 units.
    const wide = JSON.stringify({ ...descriptor(), pad: 'é'.repeat(MAX_DESCRIPTOR_BYTES / 2) });
    assert.ok(wide.length < MAX_DESCRIPTOR_BYTES + 400);
    rejects(() => parseDescriptorBody(wide), 'ALLIUM_DESCRIPTOR_INVALID');
    rejects(() => parseDescriptorBody(42 as unknown as string), 'ALLIUM_DESCRIPTOR_INVALID');
  });
});

describe('parseConsensusBody', () => {
  it('round-trips a consensus', () => {
    const c = consensus();
    assert.deepEqual(parseConsensusBody(serializeConsensus(c)), c);
  });
  it('refuses a wrong network, bad times, duplicate relays and bad flags', () => {
    rejects(
      () => parseConsensusBody(JSON.stringify({ ...consensus(), network: 'tor' })),
      'ALLIUM_CONSENSUS_INVALID',
      'network',
    );
    rejects(
      () => parseConsensusBody(serializeConsensus(consensus({ validUntil: 1500 }))),
      'ALLIUM_CONSENSUS_INVALID',
      'validUntil',
    );
    const r = { ...descriptor(), flags: ['Running'] };
    rejects(
      () => parseConsensusBody(serializeConsensus(consensus({ relays: [r, r] }))),
      'ALLIUM_CONSENSUS_INVALID',
      'relays.1.id',
    );
    rejects(
      () => parseConsensusBody(serializeConsensus(consensus({ relays: [{ ...r, flags: ['no spaces'] }] }))),
      'ALLIUM_CONSENSUS_INVALID',
      'relays.0.flags.0',
    );
    rejects(
      () =>
        parseConsensusBody(
          JSON.stringify({ ...consensus(), relays: [{ ...descriptor(), port: -1, flags: [] }] }),
        ),
      'ALLIUM_CONSENSUS_INVALID',
      'relays.0.port',
    );
  });
  it('enforces the 32 MiB cap before parsing', () => {
    const huge = ' '.repeat(MAX_CONSENSUS_BYTES + 1);
    rejects(() => parseConsensusBody(huge), 'ALLIUM_CONSENSUS_INVALID');
  });
});

describe('parseEnvelope and parseWithdrawBody', () => {
  it('accepts the envelope shape and refuses others', () => {
    assert.deepEqual(parseEnvelope({ body: '{}', signature: 'AAAA' }), { body: '{}', signature: 'AAAA' });
    rejects(() => parseEnvelope(null), 'ALLIUM_ENVELOPE_INVALID');
    rejects(() => parseEnvelope('x'), 'ALLIUM_ENVELOPE_INVALID');
    rejects(() => parseEnvelope({ body: 1, signature: '' }), 'ALLIUM_ENVELOPE_INVALID', 'body');
    rejects(() => parseEnvelope({ body: '' }), 'ALLIUM_ENVELOPE_INVALID', 'signature');
    rejects(
      () => parseEnvelope({ body: '', signature: 'x'.repeat(1000) }),
      'ALLIUM_ENVELOPE_INVALID',
      'signature',
    );
  });
  it('parses a withdraw body', () => {
    assert.deepEqual(parseWithdrawBody(JSON.stringify({ id: 'cd'.repeat(32), published: 5 })), {
      id: 'cd'.repeat(32),
      published: 5,
    });
    rejects(
      () => parseWithdrawBody(JSON.stringify({ id: 'x', published: 5 })),
      'ALLIUM_WITHDRAW_INVALID',
      'id',
    );
  });
  it('uses the §6.1 signing domains', () => {
    assert.equal(signingDomain('descriptor'), 'allium-descriptor-v1\n');
    assert.equal(signingDomain('consensus'), 'allium-consensus-v1\n');
    assert.equal(signingDomain('withdraw'), 'allium-withdraw-v1\n');
  });
});

describe('parsers under random input (property)', () => {
  const onlyTyped = (fn: () => unknown) => {
    try {
      fn();
    } catch (err) {
      if (!(err instanceof DirectoryDocError)) throw err;
    }
  };
  // Valid documents with one field replaced by an arbitrary value: close to valid, so deep checks run.
  const mutated = <T extends object>(base: T) =>
    fc
      .tuple(fc.constantFrom(...Object.keys(base)), fc.anything())
      .map(([k, v]) => JSON.stringify({ ...base, [k]: v }));

  it('parseDescriptorBody throws only DirectoryDocError', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.json(), mutated(descriptor())), (s) =>
        onlyTyped(() => parseDescriptorBody(s)),
      ),
      { numRuns },
    );
  });
  it('parseConsensusBody throws only DirectoryDocError', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.json(), mutated(consensus())), (s) =>
        onlyTyped(() => parseConsensusBody(s)),
      ),
      { numRuns },
    );
  });
  it('parseEnvelope throws only DirectoryDocError', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.anything(), fc.record({ body: fc.anything(), signature: fc.anything() })),
        (v) => onlyTyped(() => parseEnvelope(v)),
      ),
      { numRuns },
    );
  });
  it('a valid descriptor always round-trips', () => {
    const arb = fc.record({
      nickname: fc.stringMatching(/^[A-Za-z0-9_-]{1,32}$/),
      port: fc.integer({ min: 1, max: 65535 }),
      bandwidth: fc.nat(),
      published: fc.nat(),
      address: fc.oneof(fc.ipV4(), fc.ipV6()),
    });
    fc.assert(
      fc.property(arb, (over) => {
        const d = descriptor(over);
        assert.deepEqual(parseDescriptorBody(serializeDescriptor(d)), d);
      }),
      { numRuns },
    );
  });
});

describe('the consensus onion fields (§8.3)', () => {
  const V1 = Buffer.alloc(32, 7).toString('base64');
  const V2 = Buffer.alloc(32, 8).toString('base64');
  const onion = (over: Partial<NonNullable<Consensus['onion']>> = {}): NonNullable<Consensus['onion']> => ({
    periodSeconds: 86_400,
    ringValues: [
      { period: 20_000, value: V1 },
      { period: 20_001, value: V2 },
    ],
    onlyListedBeforeReveal: true,
    ...over,
  });
  const withOnion = (o: unknown, relayOver: Record<string, unknown> = {}) =>
    JSON.stringify({
      ...consensus(),
      relays: [{ ...descriptor(), flags: ['Running'], ...relayOver }],
      onion: o,
    });

  it('accepts them, and a consensus without them as before', () => {
    const c = consensus({
      onion: onion(),
      relays: [{ ...descriptor(), flags: ['Running'], listedSince: 5 }],
    });
    assert.deepEqual(parseConsensusBody(serializeConsensus(c)), c);
    const plain = consensus();
    assert.doesNotMatch(serializeConsensus(plain), /"onion"|listedSince/);
    assert.deepEqual(parseConsensusBody(serializeConsensus(plain)), plain);
  });

  it('the serialisation, so the signature, covers them, in one canonical order', () => {
    const c = consensus({
      onion: onion(),
      relays: [{ ...descriptor(), flags: ['Running'], listedSince: 5 }],
    });
    const text = serializeConsensus(c);
    assert.match(text, /"listedSince":5/);
    assert.match(text, /"onion":\{"periodSeconds":86400,"ringValues":\[\{"period":20000,/);
    const reordered = consensus({
      onion: {
        onlyListedBeforeReveal: true,
        ringValues: [...onion().ringValues].reverse(),
        periodSeconds: 86_400,
      },
      relays: [{ listedSince: 5, ...descriptor(), flags: ['Running'] }],
    });
    assert.equal(serializeConsensus(reordered), text);
    assert.notEqual(serializeConsensus({ ...c, onion: onion({ onlyListedBeforeReveal: false }) }), text);
  });

  it('refuses a period outside 60 s to a week, or not whole', () => {
    for (const periodSeconds of [59, 0, -1, 7 * 86_400 + 1, 600.5, '600', null]) {
      rejects(
        () => parseConsensusBody(withOnion({ ...onion(), periodSeconds })),
        'ALLIUM_CONSENSUS_INVALID',
        'onion.periodSeconds',
      );
    }
    for (const periodSeconds of [60, 600, 7 * 86_400]) {
      assert.equal(
        parseConsensusBody(withOnion({ ...onion(), periodSeconds })).onion?.periodSeconds,
        periodSeconds,
      );
    }
  });

  it('refuses more than two ring values, a period twice, or a value not 32 bytes of base64', () => {
    const three = [...onion().ringValues, { period: 20_002, value: V1 }];
    rejects(() => parseConsensusBody(withOnion(onion({ ringValues: three }))), 'ALLIUM_CONSENSUS_INVALID');
    const twice = [
      { period: 3, value: V1 },
      { period: 3, value: V2 },
    ];
    rejects(() => parseConsensusBody(withOnion(onion({ ringValues: twice }))), 'ALLIUM_CONSENSUS_INVALID');
    for (const value of [
      Buffer.alloc(31).toString('base64'),
      Buffer.alloc(33).toString('base64'),
      'not base64!',
      V1.replace('=', ''),
    ]) {
      rejects(
        () => parseConsensusBody(withOnion(onion({ ringValues: [{ period: 1, value }] }))),
        'ALLIUM_CONSENSUS_INVALID',
      );
    }
    for (const period of [-1, 1.5, '1']) {
      rejects(
        () => parseConsensusBody(withOnion({ ...onion(), ringValues: [{ period, value: V1 }] })),
        'ALLIUM_CONSENSUS_INVALID',
      );
    }
    assert.deepEqual(parseConsensusBody(withOnion(onion({ ringValues: [] }))).onion?.ringValues, []);
  });

  it('refuses a listedSince that is not a non-negative whole ms', () => {
    for (const listedSince of [-1, 1.5, '5', null]) {
      rejects(() => parseConsensusBody(withOnion(onion(), { listedSince })), 'ALLIUM_CONSENSUS_INVALID');
    }
  });

  it('under random input: only DirectoryDocError, and valid fields always round-trip (property)', () => {
    const b64 = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString('base64'));
    const valid = fc.record({
      periodSeconds: fc.integer({ min: 60, max: 7 * 86_400 }),
      ringValues: fc.uniqueArray(fc.record({ period: fc.nat(), value: b64 }), {
        maxLength: 2,
        selector: (r) => r.period,
      }),
      onlyListedBeforeReveal: fc.boolean(),
    });
    fc.assert(
      fc.property(valid, fc.option(fc.nat(), { nil: undefined }), (o, listedSince) => {
        const c = consensus({
          onion: o,
          relays: [
            { ...descriptor(), flags: ['Running'], ...(listedSince === undefined ? {} : { listedSince }) },
          ],
        });
        const back = parseConsensusBody(serializeConsensus(c));
        assert.deepEqual(
          back.onion?.ringValues,
          [...o.ringValues]
            .sort((a, b) => a.period - b.period)
            .map((r) => ({ period: r.period, value: r.value })),
        );
        assert.equal(back.relays[0].listedSince, listedSince);
        assert.equal(serializeConsensus(back), serializeConsensus(c));
      }),
      { numRuns },
    );
    const nearlyValid = fc.oneof(
      valid.chain((o) =>
        fc.tuple(fc.constantFrom(...Object.keys(o)), fc.anything()).map(([k, v]) => ({ ...o, [k]: v })),
      ),
      fc.anything(),
      fc.array(fc.record({ period: fc.anything(), value: fc.oneof(b64, fc.string()) })).map((ringValues) => ({
        ...onion(),
        ringValues,
      })),
    );
    fc.assert(
      fc.property(nearlyValid, (o) => {
        try {
          const c = parseConsensusBody(withOnion(o));
          // Whatever it took is within the rules.
          if (c.onion) {
            assert.ok(c.onion.ringValues.length <= 2);
            assert.ok(c.onion.periodSeconds >= 60 && c.onion.periodSeconds <= 7 * 86_400);
            assert.equal(new Set(c.onion.ringValues.map((r) => r.period)).size, c.onion.ringValues.length);
            for (const r of c.onion.ringValues) assert.equal(Buffer.from(r.value, 'base64').length, 32);
          }
        } catch (err) {
          if (!(err instanceof DirectoryDocError)) throw err;
        }
      }),
      { numRuns },
    );
  });
});
