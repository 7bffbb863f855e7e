import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { serializeAuthorityConsensus, type Vote } from '../wire/authority-docs.js';
import type { ConsensusRelay } from '../wire/directory-docs.js';
import { computeConsensus, lowMedian } from './consensus-rule.js';
import { DocumentError } from './documents.js';

const numRuns = Number(process.env.FUZZ_RUNS ?? 200);
const PERIOD = 1_700_000_000_000;
const KEY = Buffer.alloc(32, 7).toString('base64');

const authorityId = (i: number) => i.toString(16).padStart(2, '0').repeat(32);
const relayId = (i: number) => (0x80 + i).toString(16).repeat(32);

function entry(i: number, over: Partial<ConsensusRelay> = {}): ConsensusRelay {
  return {
    nickname: `relay${i}`,
    id: relayId(i),
    identityKey: KEY,
    onionKey: KEY,
    address: '127.0.0.1',
    port: 9000 + i,
    exitPolicy: ['reject *:*'],
    bandwidth: 1000,
    version: 'allium/0.5.0',
    published: PERIOD - 1000,
    flags: ['Running'],
    ...over,
  };
}

function vote(authority: number, relays: ConsensusRelay[], over: Partial<Vote> = {}): Vote {
  return {
    network: 'allium',
    authority: authorityId(authority),
    validAfter: PERIOD,
    freshUntil: PERIOD + 60_000,
    validUntil: PERIOD + 3_600_000,
    relays: [...relays].sort((a, b) => (a.id < b.id ? -1 : 1)),
    ...over,
  };
}

const ids = (n: number) => Array.from({ length: n }, (_, i) => authorityId(i));

function rejects(fn: () => unknown, code: string, message?: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof DocumentError, String(err));
    assert.equal(err.code, code);
    if (message) assert.match(err.message, message);
    return true;
  });
}

describe('lowMedian', () => {
  it('takes the lower middle value', () => {
    assert.equal(lowMedian([5]), 5);
    assert.equal(lowMedian([9, 1]), 1);
    assert.equal(lowMedian([3, 1, 2]), 2);
    assert.equal(lowMedian([4, 1, 3, 2]), 2);
  });
  it('lies between the least and the greatest, and ignores order', () => {
    fc.assert(
      fc.property(fc.array(fc.integer(), { minLength: 1, maxLength: 20 }), (xs) => {
        const m = lowMedian(xs);
        assert.ok(m >= Math.min(...xs) && m <= Math.max(...xs));
        assert.equal(lowMedian([...xs].reverse()), m);
        // At least half the values are at or above it: one low outlier cannot drag it down.
        assert.ok(2 * xs.filter((x) => x >= m).length >= xs.length);
      }),
      { numRuns },
    );
  });
});

describe('computeConsensus', () => {
  it('lists a relay only when a strict majority of ALL configured authorities vote for it', () => {
    // Five configured, three voting: a relay needs three votes, not two of the three present.
    const votes = [
      vote(0, [entry(1), entry(2)]),
      vote(1, [entry(1), entry(2)]),
      vote(2, [entry(1), entry(3)]),
    ];
    const { consensus } = computeConsensus({ authorities: ids(5), votes, validAfter: PERIOD });
    assert.deepEqual(
      consensus.relays.map((r) => r.id),
      [relayId(1)],
    );
    assert.deepEqual(consensus.authorities, ids(3));
    assert.equal(consensus.serial, PERIOD);
  });

  it('refuses to compute from fewer than a majority of the configured authorities', () => {
    const votes = [vote(0, [entry(1)]), vote(1, [entry(1)])];
    rejects(
      () => computeConsensus({ authorities: ids(5), votes, validAfter: PERIOD }),
      'ALLIUM_CONSENSUS_TOO_FEW_VOTES',
      /^2 of 5 votes for the period from .*; need 3$/,
    );
  });

  it('leaves out votes of unknown authorities and of other periods, and says why', () => {
    const votes = [
      vote(0, [entry(1)]),
      vote(1, [entry(1)]),
      vote(2, [entry(1)], { validAfter: PERIOD - 60_000 }),
      vote(9, [entry(1)]),
    ];
    const { consensus, ignored } = computeConsensus({ authorities: ids(3), votes, validAfter: PERIOD });
    assert.deepEqual(consensus.authorities, ids(2));
    assert.deepEqual(
      ignored.map((i) => i.authority),
      [authorityId(2), authorityId(9)],
    );
    assert.match(ignored[0].reason, /a vote for the period from/);
    assert.equal(ignored[1].reason, 'not a configured authority');
  });

  it('refuses two votes from one authority', () => {
    rejects(
      () =>
        computeConsensus({
          authorities: ids(3),
          votes: [vote(0, [entry(1)]), vote(0, [entry(2)])],
          validAfter: PERIOD,
        }),
      'ALLIUM_VOTE_INVALID',
    );
  });

  it('takes one descriptor whole by majority, the bandwidth by low-median and flags by majority', () => {
    const moved = { address: '127.0.0.2', port: 9999, published: PERIOD - 500 };
    const votes = [
      vote(0, [entry(1, { bandwidth: 100, flags: ['Running', 'Exit'] })]),
      vote(1, [entry(1, { ...moved, bandwidth: 900, flags: ['Running', 'Exit'] })]),
      vote(2, [entry(1, { bandwidth: 5_000_000, flags: ['Running'] })]),
    ];
    const { consensus } = computeConsensus({ authorities: ids(3), votes, validAfter: PERIOD });
    const r = consensus.relays[0];
    assert.equal(r.address, '127.0.0.1', 'two votes carry the first descriptor');
    assert.equal(r.port, 9001);
    assert.equal(r.bandwidth, 900, 'low-median: one inflated claim does not count');
    assert.deepEqual(r.flags, ['Running', 'Exit']);
  });

  it('breaks a tie between descriptors by the later published', () => {
    const later = { address: '127.0.0.2', published: PERIOD - 10 };
    const votes = [vote(0, [entry(1)]), vote(1, [entry(1, later)])];
    const { consensus } = computeConsensus({ authorities: ids(2), votes, validAfter: PERIOD });
    assert.equal(consensus.relays[0].address, '127.0.0.2');
  });

  it('takes freshUntil and validUntil by low-median', () => {
    const votes = [
      vote(0, [], { freshUntil: PERIOD + 10, validUntil: PERIOD + 100 }),
      vote(1, [], { freshUntil: PERIOD + 30, validUntil: PERIOD + 300 }),
      vote(2, [], { freshUntil: PERIOD + 20, validUntil: PERIOD + 999_999 }),
    ];
    const { consensus } = computeConsensus({ authorities: ids(3), votes, validAfter: PERIOD });
    assert.equal(consensus.freshUntil, PERIOD + 20);
    assert.equal(consensus.validUntil, PERIOD + 300);
  });

  // Votes drawn from a small pool of relays and variants, so agreement, ties and splits all occur.
  const voteArb = (authority: number) =>
    fc
      .uniqueArray(
        fc.record({
          relay: fc.integer({ min: 0, max: 7 }),
          port: fc.constantFrom(9001, 9002),
          published: fc.constantFrom(PERIOD - 2000, PERIOD - 1000),
          bandwidth: fc.nat({ max: 1_000_000 }),
          exit: fc.boolean(),
          extra: fc.constantFrom([], ['Stable'], ['Fast', 'Stable']),
        }),
        { selector: (r) => r.relay, maxLength: 8 },
      )
      .chain((relays) =>
        fc
          .record({
            fresh: fc.integer({ min: 0, max: 1000 }),
            valid: fc.integer({ min: 0, max: 100_000 }),
          })
          .map(({ fresh, valid }) =>
            vote(
              authority,
              relays.map((r) =>
                entry(r.relay, {
                  port: r.port,
                  published: r.published,
                  bandwidth: r.bandwidth,
                  flags: [...(r.exit ? ['Exit'] : []), 'Running', ...r.extra],
                }),
              ),
              { freshUntil: PERIOD + fresh, validUntil: PERIOD + fresh + valid },
            ),
          ),
      );
  const electionArb = fc.integer({ min: 1, max: 9 }).chain((n) =>
    fc.record({
      n: fc.constant(n),
      votes: fc
        .subarray(
          Array.from({ length: n }, (_, i) => i),
          { minLength: Math.floor(n / 2) + 1 },
        )
        .chain((voters) => fc.tuple(...voters.map((a) => voteArb(a)))),
    }),
  );

  it('gives the same bytes for any order of the votes', () => {
    fc.assert(
      fc.property(electionArb, fc.integer(), ({ n, votes }, seed) => {
        const a = computeConsensus({ authorities: ids(n), votes, validAfter: PERIOD });
        const shuffled = [...votes].sort(
          (x, y) =>
            ((Number.parseInt(x.authority.slice(0, 2), 16) * 7919 + seed) % 13) -
            ((Number.parseInt(y.authority.slice(0, 2), 16) * 7919 + seed) % 13),
        );
        const b = computeConsensus({
          authorities: [...ids(n)].reverse(),
          votes: shuffled,
          validAfter: PERIOD,
        });
        assert.equal(serializeAuthorityConsensus(b.consensus), serializeAuthorityConsensus(a.consensus));
      }),
      { numRuns },
    );
  });

  it('lists exactly the relays a strict majority voted for, each flag by majority of its voters', () => {
    fc.assert(
      fc.property(electionArb, ({ n, votes }) => {
        const { consensus } = computeConsensus({ authorities: ids(n), votes, validAfter: PERIOD });
        for (let relay = 0; relay < 8; relay++) {
          const entries = votes.flatMap((v) => v.relays.filter((r) => r.id === relayId(relay)));
          const listed = consensus.relays.find((r) => r.id === relayId(relay));
          assert.equal(
            listed !== undefined,
            2 * entries.length > n,
            `relay ${relay}: ${entries.length} of ${n}`,
          );
          if (!listed) continue;
          for (const flag of ['Exit', 'Running', 'Stable', 'Fast']) {
            const have = entries.filter((e) => e.flags.includes(flag)).length;
            assert.equal(listed.flags.includes(flag), 2 * have > entries.length, flag);
          }
          const bws = entries.map((e) => e.bandwidth).sort((x, y) => x - y);
          assert.equal(listed.bandwidth, bws[Math.floor((bws.length - 1) / 2)]);
          // The descriptor chosen is one some voter actually carried, whole.
          assert.ok(entries.some((e) => e.port === listed.port && e.published === listed.published));
        }
        assert.ok(
          consensus.validAfter <= consensus.freshUntil && consensus.freshUntil <= consensus.validUntil,
        );
      }),
      { numRuns },
    );
  });
});
