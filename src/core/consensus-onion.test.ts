// The onion fields of a consensus computed from votes (§6.8 rule 7): the ring value from the
// contributions, whatever their order; a value a majority already saw signed stays; the settings most
// votes carry; listedSince as the high-median.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { periodBytes } from '../crypto/key-blinding.js';
import { sha256 } from '../crypto/keys.js';
import { parseVoteBody, serializeVote, type Vote, type VoteOnion } from '../wire/authority-docs.js';
import type { ConsensusRelay } from '../wire/directory-docs.js';
import { combineListedSince, combineRingValue, consensusOnion } from './consensus-onion.js';
import { computeConsensus } from './consensus-rule.js';
import { periodAt, ringValueRevealMs } from './onion-period.js';
import { ringValueFor, storesFor } from './onion-ring.js';
import { FETCH_SPREAD } from './onion-stores.js';

const numRuns = Number(process.env.FUZZ_RUNS ?? 200);
const LEN = 600;
// The start of a period, well before the next one's reveal.
const T = 2_000_000 * LEN * 1000;
const P = periodAt(T, LEN);
const KEY = Buffer.alloc(32, 7).toString('base64');
const b64 = (fill: number) => Buffer.alloc(32, fill).toString('base64');
const authorityId = (i: number) => i.toString(16).padStart(2, '0').repeat(32);
const relayId = (i: number) => (0x80 + i).toString(16).repeat(32);

function entry(i: number, listedSince?: number): ConsensusRelay {
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
    published: T - 1000,
    flags: ['Running'],
    ...(listedSince !== undefined ? { listedSince } : {}),
  };
}

function onion(contribution: number, over: Partial<VoteOnion> = {}): VoteOnion {
  return {
    periodSeconds: LEN,
    onlyListedBeforeReveal: false,
    contributions: [{ period: P.number, value: b64(contribution) }],
    ringValues: [],
    ...over,
  };
}

function vote(i: number, o: VoteOnion | undefined, relays: ConsensusRelay[] = [], validAfter = T): Vote {
  return {
    network: 'allium',
    authority: authorityId(i),
    validAfter,
    freshUntil: validAfter + 60_000,
    validUntil: validAfter + 3_600_000,
    relays,
    ...(o ? { onion: o } : {}),
  };
}

describe('consensusOnion (§6.8 rule 7)', () => {
  it('the ring value is SHA-256 of the label, the period and the sorted contributions', () => {
    const got = consensusOnion([vote(0, onion(3)), vote(1, onion(1)), vote(2, onion(2))], T);
    const want = sha256(
      Buffer.from('allium-hs-ring-value-v1'),
      periodBytes(P),
      Buffer.alloc(32, 1),
      Buffer.alloc(32, 2),
      Buffer.alloc(32, 3),
    );
    assert.deepEqual(got, {
      periodSeconds: LEN,
      ringValues: [{ period: P.number, value: want.toString('base64') }],
      onlyListedBeforeReveal: false,
    });
  });

  it('whatever order the votes come in, every authority computes the same (property)', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 0, max: 255 }), { minLength: 1, maxLength: 9 }),
        fc.integer({ min: 0, max: LEN * 1000 - 1 }),
        (fills, offset) => {
          const votes = fills.map((f, i) =>
            vote(
              i,
              onion(f, {
                contributions: [
                  { period: P.number, value: b64(f) },
                  { period: P.number + 1, value: b64(255 - f) },
                ],
              }),
              [],
              T + offset,
            ),
          );
          const a = consensusOnion(votes, T + offset);
          const b = consensusOnion([...votes].reverse(), T + offset);
          assert.deepEqual(a, b);
          // The current period always; the next one from its reveal on.
          const reveal = T + offset >= ringValueRevealMs({ number: P.number + 1, length: LEN });
          assert.equal(a?.ringValues.length, reveal ? 2 : 1);
        },
      ),
      { numRuns },
    );
  });

  it('a value more than half of the votes saw signed stays, whatever the contributions', () => {
    const signed = [{ period: P.number, value: b64(99) }];
    const got = consensusOnion(
      [
        vote(0, onion(1, { ringValues: signed })),
        vote(1, onion(2, { ringValues: signed })),
        vote(2, onion(3)),
      ],
      T,
    );
    assert.equal(got?.ringValues[0].value, b64(99));
    // One authority alone claiming a value cannot impose it: the contributions decide.
    const alone = consensusOnion(
      [vote(0, onion(1, { ringValues: signed })), vote(1, onion(2)), vote(2, onion(3))],
      T,
    );
    assert.equal(
      alone?.ringValues[0].value,
      combineRingValue(
        P,
        [1, 2, 3].map((f) => Buffer.alloc(32, f)),
      ).toString('base64'),
    );
  });

  it('takes the settings more than half of the votes carry, and contributions only from those votes', () => {
    const other = onion(9, { periodSeconds: 86_400 });
    const got = consensusOnion([vote(0, onion(1)), vote(1, onion(2)), vote(2, other)], T);
    assert.equal(got?.periodSeconds, LEN);
    assert.equal(
      got?.ringValues[0].value,
      combineRingValue(
        P,
        [1, 2].map((f) => Buffer.alloc(32, f)),
      ).toString('base64'),
    );
    assert.equal(consensusOnion([vote(0, onion(1)), vote(1, other)], T), undefined, 'no majority: no fields');
    assert.equal(consensusOnion([vote(0, undefined), vote(1, undefined), vote(2, onion(1))], T), undefined);
  });

  it('listedSince is the high-median of the entries that carry one', () => {
    assert.equal(combineListedSince([]), undefined);
    assert.equal(combineListedSince([undefined]), undefined);
    assert.equal(combineListedSince([5]), 5);
    assert.equal(combineListedSince([0, 5]), 5, 'one authority alone cannot make a relay older');
    assert.equal(combineListedSince([9, 0, 5]), 5);
    assert.equal(combineListedSince([undefined, 7, 3]), 7);
  });
});

describe('computeConsensus with onion fields', () => {
  it('gives a consensus whose ring and stores a client can read, the same bytes at every authority', () => {
    const relays = Array.from({ length: 6 }, (_, i) => entry(i, T - 10_000 * (i + 1)));
    const votes = [0, 1, 2].map((i) => vote(i, onion(i + 1), relays));
    // Through the vote's own serialisation, as votes travel.
    const travelled = votes.map((v) => parseVoteBody(serializeVote(v)));
    const { consensus } = computeConsensus({
      authorities: [0, 1, 2].map(authorityId),
      votes: travelled,
      validAfter: T,
    });
    assert.ok(consensus.onion);
    assert.deepEqual(
      consensus.relays.map((r) => r.listedSince),
      relays.map((r) => r.listedSince),
    );
    assert.ok(ringValueFor(consensus, P));
    const stores = storesFor(consensus, Buffer.alloc(32, 5), P, FETCH_SPREAD);
    assert.ok(stores && stores.length === 2 && stores.every((replica) => replica.length === FETCH_SPREAD));
    const again = computeConsensus({
      authorities: [0, 1, 2].map(authorityId),
      votes: [...travelled].reverse(),
      validAfter: T,
    });
    assert.deepEqual(again.consensus, consensus);
  });
});
