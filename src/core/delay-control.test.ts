import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { CIRC_WINDOW_MAX, CIRC_WINDOW_MIN, LEGACY_CIRC_WINDOW_MAX } from '../wire/constants.js';
import { DelayControl, QUEUE_DELAY_TARGET_MS, WINDOW_DECREASE } from './delay-control.js';

/** How late eight round trips come, in an order that stands for random: 5-50 ms, 27 on average. */
const JITTER_MS = [5, 40, 20, 50, 10, 35, 45, 25];

function clock() {
  const c = { t: 0, now: () => c.t };
  return c;
}

/**
 * One circuit on a link whose least round trip is 100 ms; `rounds(n, gapMs, queueMs)` feeds it n
 * rounds of JITTER_MS, one SENDME every `gapMs`, each round trip `queueMs` more, and returns the
 * windows it named.
 */
function jittery() {
  const c = clock();
  const dc = new DelayControl(c.now);
  const circ = {};
  dc.limit(circ, CIRC_WINDOW_MAX, 100);
  return {
    rounds(n: number, gapMs: number, queueMs: number): number[] {
      const named: number[] = [];
      for (let round = 0; round < n; round++) {
        for (const late of JITTER_MS) {
          c.t += gapMs;
          named.push(dc.limit(circ, CIRC_WINDOW_MAX, 100 + queueMs + late));
        }
      }
      return named;
    },
  };
}

describe('delay control (§5.1)', () => {
  it('leaves the window alone while no round trip is known or the queue stays under the target', () => {
    const dc = new DelayControl(clock().now);
    const circ = {};
    assert.equal(dc.limit(circ, 512, null), 512);
    assert.equal(dc.limit(circ, 512, 5), 512);
    assert.equal(dc.limit(circ, 512, 5 + QUEUE_DELAY_TARGET_MS - 1), 512);
  });

  it('shrinks a circuit whose round trip grew past the least by more than the target, down to the smallest window', () => {
    const c = clock();
    const dc = new DelayControl(c.now);
    const circ = {};
    dc.limit(circ, 512, 5); // the least round trip on this link
    c.t += 100; // long enough ago that it is not one of the circuit's recent round trips
    const named: number[] = [];
    for (let i = 0; i < 40; i++) {
      c.t += 5; // one least round trip between SENDMEs: each may cut
      named.push(dc.limit(circ, 512, 200));
    }
    assert.ok(named[0] < 512, `shrinks at once (${named[0]})`);
    for (let i = 1; i < named.length; i++) assert.ok(named[i] <= named[i - 1]);
    assert.equal(named.at(-1), CIRC_WINDOW_MIN);
  });

  it('cuts at most once per least round trip, since a cut shows only a round trip later', () => {
    const c = clock();
    const dc = new DelayControl(c.now);
    const circ = {};
    dc.limit(circ, 4096, 100); // the least round trip: 100 ms
    c.t += 1000; // long enough ago that it is not one of the circuit's recent round trips
    const named: number[] = [];
    for (let i = 0; i < 64; i++) {
      c.t += 1; // 64 SENDMEs within one round trip, all showing a queue
      named.push(dc.limit(circ, 4096, 300));
    }
    // The first round trip showed no queue: the cap grew by one increment before the cut.
    const once = Math.floor((LEGACY_CIRC_WINDOW_MAX + CIRC_WINDOW_MIN) * WINDOW_DECREASE);
    assert.deepEqual(new Set(named), new Set([once]), 'one cut in the first round trip');
    c.t += 100;
    assert.equal(
      dc.limit(circ, 4096, 300),
      Math.floor(once * WINDOW_DECREASE),
      'the next round trip may cut again',
    );
  });

  it('does not take a link whose delay varies for a queue: it judges a round trip by its least sample', () => {
    // Eight SENDMEs a round trip, each 5-50 ms late (their mean, 127 ms, is 27 over the least): the
    // smoothed round trip would show a queue past the target at nearly every SENDME.
    const j = jittery();
    assert.equal(j.rounds(60, 12.5, 0).at(-1), CIRC_WINDOW_MAX);
  });

  it('judges a small window, one SENDME a round trip, by the least of its last three', () => {
    const j = jittery();
    // At most one cut in eight round trips (the three 35, 45, 25), against seven increments.
    const grown = j.rounds(8, 100, 0);
    assert.ok((grown.at(-1) ?? 0) > 2 * LEGACY_CIRC_WINDOW_MAX, `grows (${grown.join(',')})`);
    // The same round trips with a queue under them still cut it.
    const cut = j.rounds(8, 100, QUEUE_DELAY_TARGET_MS + 5);
    assert.ok((cut.at(-1) ?? Number.POSITIVE_INFINITY) < LEGACY_CIRC_WINDOW_MAX, `shrinks (${cut.at(-1)})`);
  });

  it('still cuts a queue that raises every sample of the round trip', () => {
    const cut = jittery().rounds(20, 12.5, QUEUE_DELAY_TARGET_MS + 5);
    assert.ok(
      (cut.at(-1) ?? Number.POSITIVE_INFINITY) < LEGACY_CIRC_WINDOW_MAX / 4,
      `shrinks (${cut.at(-1)})`,
    );
  });

  it('counts a round trip of samples only over the base round trip when the least never saw the link quiet', () => {
    // SENDMEs 25 ms apart, 70 and 130 ms in turn, against a least of 60 that came under load.
    const run = (baseRttMs: number) => {
      const c = clock();
      const dc = new DelayControl(c.now);
      const circ = {};
      dc.limit(circ, 512, 60, baseRttMs);
      let w = 0;
      for (let i = 0; i < 40; i++) {
        c.t += 25;
        w = dc.limit(circ, 512, i % 2 ? 130 : 70, baseRttMs);
      }
      return w;
    };
    // Judged by the least of its last three (70), the circuit grows to its share...
    assert.equal(run(Number.POSITIVE_INFINITY), 512);
    // ...but builds found the link's round trip at 5 ms: three samples span 50 ms, ten of those, so
    // the smoothed round trip (100, 40 over the least) decides, and it cuts.
    assert.equal(run(5), CIRC_WINDOW_MIN);
  });

  it('starts a circuit at 1024 cells and lets it double per round trip up to the largest window', () => {
    const c = clock();
    const dc = new DelayControl(c.now);
    const circ = {};
    assert.equal(dc.limit(circ, CIRC_WINDOW_MAX, null), LEGACY_CIRC_WINDOW_MAX);
    // A round trip of 1024 cells brings 16 SENDMEs, each +64: 2048 after one round trip.
    let w = 0;
    for (let i = 0; i < 16; i++) w = dc.limit(circ, CIRC_WINDOW_MAX, 100);
    assert.equal(w, 2 * LEGACY_CIRC_WINDOW_MAX);
    for (let i = 0; i < 64; i++) w = dc.limit(circ, CIRC_WINDOW_MAX, 100);
    assert.equal(w, CIRC_WINDOW_MAX);
  });

  it('grows it back one increment per SENDME once the queue is gone, up to the share', () => {
    const c = clock();
    const dc = new DelayControl(c.now);
    const circ = {};
    dc.limit(circ, 512, 5);
    for (let i = 0; i < 40; i++) {
      c.t += 5;
      dc.limit(circ, 512, 200);
    }
    const back: number[] = [];
    for (let i = 0; i < 20; i++) back.push(dc.limit(circ, 512, 5));
    // The smoothed round trip falls below the target within a few samples, then +64 each.
    const firstGrowth = back.findIndex((w) => w > CIRC_WINDOW_MIN);
    assert.ok(firstGrowth >= 0 && firstGrowth < 8, `grows again (${back.join(',')})`);
    assert.equal(back.at(-1), 512);
    assert.ok(dc.limit(circ, CIRC_WINDOW_MAX * 2, 5) <= CIRC_WINDOW_MAX);
  });

  it('judges every circuit of a link against the least round trip of any of them', () => {
    const dc = new DelayControl(clock().now);
    const fast = {};
    const slow = {};
    dc.limit(fast, 512, 4);
    // 30 ms is a queue of 26 ms against the link's least: the slow circuit shrinks.
    assert.ok(dc.limit(slow, 512, 30) < 512);
  });

  it('forgets a least round trip two periods old, so a link whose path got slower is not held down for good', () => {
    const c = clock();
    const dc = new DelayControl(c.now);
    const circ = {};
    dc.limit(circ, 512, 1);
    c.t += 10_001;
    dc.limit(circ, 512, 50); // a new period: the least is still 1 (the previous period's)
    c.t += 10_001;
    for (let i = 0; i < 10; i++) dc.limit(circ, 512, 50); // another: now the least is 50
    const after = [];
    for (let i = 0; i < 10; i++) after.push(dc.limit(circ, 512, 50));
    assert.equal(after.at(-1), 512, `grows back to the share (${after.join(',')})`);
  });

  it('names a window from the smallest to the share, whatever round trips come at whatever pace', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            dt: fc.double({ min: 0, max: 500, noNaN: true }),
            rtt: fc.option(fc.double({ min: 0.01, max: 2000, noNaN: true })),
            share: fc.integer({ min: CIRC_WINDOW_MIN, max: CIRC_WINDOW_MAX * 2 }),
          }),
          { maxLength: 200 },
        ),
        (steps) => {
          const c = clock();
          const dc = new DelayControl(c.now);
          const circ = {};
          for (const { dt, rtt, share } of steps) {
            c.t += dt;
            const w = dc.limit(circ, share, rtt);
            assert.ok(Number.isInteger(w), `${w}`);
            assert.ok(w >= Math.min(share, CIRC_WINDOW_MIN) && w <= Math.min(share, CIRC_WINDOW_MAX));
          }
        },
      ),
    );
  });
});
