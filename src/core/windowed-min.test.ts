import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { WindowedMin } from './windowed-min.js';

describe('windowed least (§5.1 round trips)', () => {
  it('is Infinity before the first value, then the least of this period and the one before', () => {
    const c = { t: 0 };
    const m = new WindowedMin(1000, () => c.t);
    assert.equal(m.value, Number.POSITIVE_INFINITY);
    m.note(50);
    m.note(30);
    m.note(40);
    assert.equal(m.value, 30);
    c.t = 1500; // a new period: the last one's least still counts
    m.note(80);
    assert.equal(m.value, 30);
    c.t = 3000; // and now it is gone: the least can rise
    m.note(90);
    assert.equal(m.value, 80);
    c.t = 4100;
    m.note(100);
    assert.equal(m.value, 90);
  });
});
