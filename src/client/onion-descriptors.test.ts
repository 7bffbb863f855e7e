import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ConsensusView } from '../wire/directory-docs.js';
import { DescriptorCache, onionPeriod } from './onion-descriptors.js';

const period = { number: 100, length: 600 };
const descriptor = (expiresMs: number) => ({ period, introPoints: [], expiresMs });

describe('the client descriptor cache', () => {
  it('keeps a descriptor per address until it expires or the period changes', () => {
    const cache = new DescriptorCache();
    cache.set('a', descriptor(10_000));
    assert.ok(cache.get('a', period, 9_999));
    assert.equal(cache.get('a', { number: 101, length: 600 }, 0), null, 'another period');
    cache.set('a', descriptor(10_000));
    assert.equal(cache.get('a', period, 10_000), null, 'expired');
    assert.equal(cache.size, 0);
  });

  it('drops one on request', () => {
    const cache = new DescriptorCache();
    cache.set('a', descriptor(10_000));
    cache.drop('a');
    assert.equal(cache.get('a', period, 0), null);
  });
});

describe('the period a client uses', () => {
  it("is the consensus's, and a consensus without onion fields is ALLIUM_ONION_NO_RING", () => {
    const consensus = {
      validAfter: 100 * 600 * 1000 + 5,
      onion: { periodSeconds: 600, ringValues: [], onlyListedBeforeReveal: false },
    };
    assert.deepEqual(onionPeriod(consensus as unknown as ConsensusView), period);
    assert.throws(
      () => onionPeriod({ validAfter: 0 } as unknown as ConsensusView),
      (err: { code?: string }) => err.code === 'ALLIUM_ONION_NO_RING',
    );
  });
});
