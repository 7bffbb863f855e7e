import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { listedRelay } from '../../test/helpers/relay-fixtures.js';
import type { ConsensusRelay } from '../wire/directory-docs.js';
import { rendezvousCandidates } from './rendezvous-choice.js';

const relay = listedRelay;
const ids = (rs: ConsensusRelay[]) => rs.map((r) => r.nickname).sort();
const set = (...ns: number[]) => new Set(ns.map((n) => relay(n).id));

describe('rendezvousCandidates (protocol §8.10)', () => {
  const six = [1, 2, 3, 4, 5, 6].map((n) => relay(n));

  it('leaves out the guards, the introduction points and relays that just failed', () => {
    const got = rendezvousCandidates(six, { guards: set(1), points: set(2, 3, 4), avoid: set(5) });
    assert.deepEqual(ids(got), ['r6']);
  });

  it('a relay that failed (a dead one still listed) is never the only choice while another remains', () => {
    // The network of the process test after an introduction point was killed: one guard, three
    // points, the dead relay; without the failure rule the dead one is the only candidate.
    const got = rendezvousCandidates(six, { guards: set(1), points: set(2, 3, 4), avoid: set(6) });
    assert.ok(got.length > 0);
    assert.ok(!got.some((r) => r.nickname === 'r6'), `candidates ${ids(got)}`);
  });

  it('on a small network falls back to the points, then to relays that failed, never to a guard', () => {
    const three = [1, 2, 3].map((n) => relay(n));
    assert.deepEqual(ids(rendezvousCandidates(three, { guards: set(1), points: set(2, 3), avoid: set() })), [
      'r2',
      'r3',
    ]);
    assert.deepEqual(ids(rendezvousCandidates(three, { guards: set(1), points: set(), avoid: set(2, 3) })), [
      'r2',
      'r3',
    ]);
    assert.deepEqual(rendezvousCandidates([relay(1)], { guards: set(1), points: set(), avoid: set() }), []);
  });

  it('never a relay that is not running or too old to serve', () => {
    const rs = [relay(1, { flags: [] }), relay(2, { version: 'allium/0.1.0' }), relay(3)];
    assert.deepEqual(ids(rendezvousCandidates(rs, { guards: set(), points: set(), avoid: set() })), ['r3']);
  });

  it('property: never a guard; outside points and failures whenever such a relay exists', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 12 }),
        fc.array(fc.integer({ min: 1, max: 12 }), { maxLength: 4 }),
        fc.array(fc.integer({ min: 1, max: 12 }), { maxLength: 6 }),
        fc.array(fc.integer({ min: 1, max: 12 }), { maxLength: 6 }),
        (n, g, p, a) => {
          const relays = Array.from({ length: n }, (_, i) => relay(i + 1));
          const guards = set(...g);
          const points = set(...p);
          const avoid = set(...a);
          const got = rendezvousCandidates(relays, { guards, points, avoid });
          for (const r of got) assert.ok(!guards.has(r.id));
          const ideal = relays.filter((r) => !guards.has(r.id) && !points.has(r.id) && !avoid.has(r.id));
          if (ideal.length > 0) assert.deepEqual(ids(got), ids(ideal));
          const nonGuards = relays.filter((r) => !guards.has(r.id));
          assert.equal(got.length > 0, nonGuards.length > 0);
        },
      ),
    );
  });
});
