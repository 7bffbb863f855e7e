import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { sha256 } from '../crypto/keys.js';
import { periodAt, periodStartMs, ringValueRevealMs } from './onion-period.js';
import {
  descriptorStores,
  FETCH_SPREAD,
  nodeIndex,
  type RingRelay,
  STORE_REPLICAS,
  STORE_SPREAD,
  storeIndex,
} from './onion-stores.js';

const numRuns = Number(process.env.FUZZ_RUNS ?? 100);
const period = { number: 20_000, length: 86_400 };
const relays = (n: number, listedSince = 0): RingRelay[] =>
  Array.from({ length: n }, (_, i) => ({ id: sha256(Buffer.from(`relay ${i}`)), listedSince }));
const params = {
  blindedKey: Buffer.alloc(32, 0xbb),
  period,
  ringValue: Buffer.alloc(32, 0x77),
  onlyListedBeforeReveal: true,
};

describe('time periods (§8.3)', () => {
  it('numbers periods from the epoch and reveals the next ring value a quarter period ahead', () => {
    assert.deepEqual(periodAt(periodStartMs(period), 86_400), period);
    assert.deepEqual(periodAt(periodStartMs(period) - 1, 86_400), { ...period, number: period.number - 1 });
    assert.equal(ringValueRevealMs(period), periodStartMs(period) - 6 * 3600 * 1000);
  });
});

describe('descriptor stores on the hash ring (§8.3)', () => {
  it('picks the pinned stores from a fixed consensus', () => {
    const stores = descriptorStores(relays(20), params, STORE_SPREAD);
    assert.deepEqual(
      stores.map((r) => r.map((id) => id.slice(0, 8))),
      PINNED,
    );
  });

  it('is deterministic, gives distinct relays, and puts the fetch set inside the store set', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 40 }),
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        (n, key) => {
          const p = { ...params, blindedKey: Buffer.from(key) };
          const list = relays(n);
          const stores = descriptorStores(list, p, STORE_SPREAD);
          assert.deepEqual(
            descriptorStores([...list].reverse(), p, STORE_SPREAD),
            stores,
            'order of the consensus',
          );
          const all = stores.flat();
          assert.equal(new Set(all).size, all.length, 'no relay twice');
          assert.equal(all.length, Math.min(n, STORE_REPLICAS * STORE_SPREAD));
          // Every relay a client asks holds the descriptor (a replica's fetch set may reach into the
          // relays the replica before it stored at, never past the store set).
          const stored = new Set(all);
          for (const id of descriptorStores(list, p, FETCH_SPREAD).flat()) assert.ok(stored.has(id));
        },
      ),
      { numRuns },
    );
  });

  it('follows each store index clockwise on the ring of node indexes', () => {
    const list = relays(30);
    const ring = list
      .map((r) => ({ id: r.id.toString('hex'), index: nodeIndex(r.id, params.ringValue, period) }))
      .sort((a, b) => Buffer.compare(a.index, b.index));
    const first = storeIndex(params.blindedKey, 1, period);
    const after = ring.filter((n) => Buffer.compare(n.index, first) > 0).concat(ring);
    assert.deepEqual(
      descriptorStores(list, params, STORE_SPREAD)[0],
      after.slice(0, STORE_SPREAD).map((n) => n.id),
    );
  });

  it('moves with the period, the ring value and the blinded key', () => {
    const list = relays(40);
    const base = descriptorStores(list, params, STORE_SPREAD).flat().join();
    for (const p of [
      { ...params, period: { ...period, number: period.number + 1 } },
      { ...params, ringValue: Buffer.alloc(32, 0x78) },
      { ...params, blindedKey: Buffer.alloc(32, 0xbc) },
    ]) {
      assert.notEqual(descriptorStores(list, p, STORE_SPREAD).flat().join(), base);
    }
  });

  it('leaves off relays listed after the ring value was published, unless told not to', () => {
    const reveal = ringValueRevealMs(period);
    const old = relays(10, reveal - 1);
    const young = Array.from({ length: 50 }, (_, i) => ({
      id: sha256(Buffer.from(`young ${i}`)),
      listedSince: reveal,
    }));
    const youngIds = new Set(young.map((r) => r.id.toString('hex')));
    const stores = descriptorStores([...old, ...young], params, STORE_SPREAD).flat();
    assert.equal(stores.length, STORE_REPLICAS * STORE_SPREAD);
    assert.ok(stores.every((id) => !youngIds.has(id)));
    const anyAge = descriptorStores(
      [...old, ...young],
      { ...params, onlyListedBeforeReveal: false },
      STORE_SPREAD,
    );
    assert.ok(anyAge.flat().some((id) => youngIds.has(id)));
    assert.deepEqual(descriptorStores([], params, STORE_SPREAD), [[], []]);
  });
});

const PINNED = [
  ['eda82703', '79e236bb', '06bd4332', '4b132be4'],
  ['e6800165', '98af416a', '350e2949', '2278fdc5'],
];
