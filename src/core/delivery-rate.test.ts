import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DeliveryRate, RATE_MIN_INTERVAL_MS, RATE_SAMPLE_LIFETIME_MS } from './delivery-rate.js';

function clock() {
  const c = { t: 1000, now: () => c.t };
  return c;
}

describe('delivery rate (§5.1)', () => {
  it('is 0 before a whole interval has passed, then cells per millisecond over it', () => {
    const c = clock();
    const rate = new DeliveryRate(c.now);
    c.t += 50;
    rate.record(64, 100);
    assert.equal(rate.maxPerMs, 0, 'half an interval: no sample yet');
    c.t += 50;
    rate.record(64, 100);
    assert.equal(rate.maxPerMs, 128 / 100);
  });

  it('samples over at least RATE_MIN_INTERVAL_MS however short the round trip', () => {
    const c = clock();
    const rate = new DeliveryRate(c.now);
    for (let i = 0; i < RATE_MIN_INTERVAL_MS - 1; i++) {
      c.t += 1;
      rate.record(64, 1);
    }
    assert.equal(rate.maxPerMs, 0);
    c.t += 1;
    rate.record(64, 1);
    // 64 cells every millisecond over the whole interval.
    assert.equal(rate.maxPerMs, 64);
  });

  it('keeps the most of its current samples, and forgets samples older than their lifetime', () => {
    const c = clock();
    const rate = new DeliveryRate(c.now);
    c.t += 100;
    rate.record(1000, 100); // 10 per ms
    c.t += 100;
    rate.record(200, 100); // 2 per ms
    assert.equal(rate.maxPerMs, 10);
    c.t += RATE_SAMPLE_LIFETIME_MS - 50;
    rate.record(0, 100); // a long quiet spell: 0 per ms
    assert.equal(rate.maxPerMs, 2, 'the 10/ms sample has expired, the 2/ms one not yet');
    c.t += 100;
    assert.equal(rate.maxPerMs, 0);
  });

  it('takes no sample while the round trip is unknown (Infinity)', () => {
    const c = clock();
    const rate = new DeliveryRate(c.now);
    c.t += 10_000;
    rate.record(64, Number.POSITIVE_INFINITY);
    assert.equal(rate.maxPerMs, 0);
  });
});
