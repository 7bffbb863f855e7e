import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { OnionError } from '../wire/onion-errors.js';
import {
  DEFAULT_INTRO_BURST,
  DEFAULT_INTRO_RATE,
  IntroRateLimiter,
  introLimits,
} from './intro-rate-limiter.js';
import { IntroReplayCache } from './intro-replay-cache.js';

const isCode = (code: string) => (e: unknown) => e instanceof OnionError && e.code === code;
const key = (i: number) =>
  Buffer.alloc(32, 0)
    .fill(i & 0xff, 0, 1)
    .fill(i >> 8, 1, 2);

describe('INTRODUCE replay cache (§8.8)', () => {
  it('admits each client key once and refuses its replay', () => {
    const cache = new IntroReplayCache(100);
    cache.admit(key(1));
    cache.admit(key(2));
    assert.throws(() => cache.admit(key(1)), isCode('ALLIUM_ONION_INTRODUCE_REPLAY'));
    assert.throws(() => cache.admit(Buffer.from(key(2))), isCode('ALLIUM_ONION_INTRODUCE_REPLAY'));
    assert.equal(cache.size, 2);
  });

  it('never forgets: when full it refuses new keys and still refuses replays', () => {
    const cache = new IntroReplayCache(10);
    for (let i = 0; i < 10; i++) cache.admit(key(i));
    assert.ok(cache.exhausted);
    assert.throws(() => cache.admit(key(99)), isCode('ALLIUM_ONION_INTRO_EXHAUSTED'));
    for (let i = 0; i < 10; i++)
      assert.throws(() => cache.admit(key(i)), isCode('ALLIUM_ONION_INTRODUCE_REPLAY'));
  });

  it('refuses exactly the repeats in any sequence of keys', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 30 }), { maxLength: 80 }), (ids) => {
        const cache = new IntroReplayCache(1000);
        const seen = new Set<number>();
        for (const id of ids) {
          if (seen.has(id))
            assert.throws(() => cache.admit(key(id)), isCode('ALLIUM_ONION_INTRODUCE_REPLAY'));
          else cache.admit(key(id));
          seen.add(id);
        }
      }),
    );
  });
});

describe('introduction rate limits (§8.8)', () => {
  it("takes the service's asked limits within the relay's bounds, 0 meaning the default", () => {
    const max = { rate: 100, burst: 500 };
    assert.deepEqual(introLimits({ rate: 0, burst: 0 }, max), {
      rate: DEFAULT_INTRO_RATE,
      burst: DEFAULT_INTRO_BURST,
    });
    assert.deepEqual(introLimits({ rate: 10, burst: 20 }, max), { rate: 10, burst: 20 });
    assert.deepEqual(introLimits({ rate: 65535, burst: 65535 }, max), max);
    assert.deepEqual(introLimits({ rate: 0, burst: 0 }, { rate: 0, burst: 0 }), { rate: 1, burst: 1 });
  });

  it('passes a burst, then the rate, on the clock it is given', () => {
    const limiter = new IntroRateLimiter({ rate: 10, burst: 5 }, 1_000);
    for (let i = 0; i < 5; i++) assert.ok(limiter.admit(1_000));
    assert.ok(!limiter.admit(1_000));
    assert.ok(!limiter.admit(1_050));
    assert.ok(limiter.admit(1_100), 'one more after 100 ms at 10/s');
    assert.ok(!limiter.admit(1_100));
    assert.ok(!limiter.admit(900), 'a clock stepping back gives nothing');
    assert.equal(limiter.refused, 4);
    let passed = 0;
    for (let t = 2_000; t < 12_000; t += 10) if (limiter.admit(t)) passed++;
    assert.ok(passed >= 100 && passed <= 106, `${passed} in 10 s at 10/s with a burst of 5`);
  });

  it('never passes more than burst + rate x elapsed', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 50 }),
        fc.integer({ min: 1, max: 50 }),
        fc.array(fc.integer({ min: 0, max: 500 }), { maxLength: 200 }),
        (rate, burst, steps) => {
          const limiter = new IntroRateLimiter({ rate, burst }, 0);
          let t = 0;
          let passed = 0;
          for (const s of steps) {
            t += s;
            if (limiter.admit(t)) passed++;
          }
          assert.ok(passed <= burst + (rate * t) / 1000 + 1e-9);
        },
      ),
    );
  });
});
