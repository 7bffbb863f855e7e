import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  CIRC_SENDME_INCREMENT,
  CIRC_WINDOW_MAX,
  CIRC_WINDOW_MIN,
  CIRC_WINDOW_START,
  STREAM_SENDME_INCREMENT,
  STREAM_WINDOW_MAX,
  STREAM_WINDOW_START,
} from '../wire/constants.js';
import type { CircuitSendme } from '../wire/relay-messages.js';
import {
  CircuitWindow,
  FlowControlError,
  STREAM_WINDOW_GAIN,
  StreamWindow,
  type StreamWindowGrowth,
} from './flow-control.js';

const numRuns = Number(process.env.FUZZ_RUNS ?? 200);

function tagOf(n: number): Buffer {
  const t = Buffer.alloc(16);
  t.writeUInt32BE(n);
  return t;
}

/** Sends `n` DATA cells from `sender`, numbered from `from`. */
function send(sender: CircuitWindow, from: number, n: number): number[] {
  const sent: number[] = [];
  for (let i = 0; i < n; i++) {
    sender.onDataSent(tagOf(from + i));
    sent.push(from + i);
  }
  return sent;
}

describe('circuit windows (§5)', () => {
  it('lets a new circuit send its first window, then waits for a SENDME', () => {
    const sender = new CircuitWindow();
    assert.equal(sender.packageWindow, CIRC_WINDOW_START);
    send(sender, 0, CIRC_WINDOW_START);
    assert.equal(sender.packageWindow, 0);
  });

  it('acknowledges every increment-th cell with the window the receiver names', () => {
    const sender = new CircuitWindow();
    const receiver = new CircuitWindow(() => 300);
    send(sender, 0, CIRC_WINDOW_START);
    const sendmes: CircuitSendme[] = [];
    for (let i = 0; i < CIRC_SENDME_INCREMENT; i++) {
      const m = receiver.onDataReceived(tagOf(i));
      if (m) sendmes.push(m);
    }
    assert.deepEqual(sendmes, [{ tag: tagOf(CIRC_SENDME_INCREMENT - 1), window: 300 }]);
    sender.onSendme(sendmes[0]);
    // 300 past the acknowledged cell, of which the cells sent after it are in flight.
    assert.equal(sender.packageWindow, CIRC_SENDME_INCREMENT + 300 - CIRC_WINDOW_START);
  });

  it('clamps what the receiver names to the windows a SENDME may carry', () => {
    for (const [asked, named] of [
      [1, CIRC_WINDOW_MIN],
      [5000, CIRC_WINDOW_MAX],
      [100.7, 100],
    ]) {
      const receiver = new CircuitWindow(() => asked);
      let m: CircuitSendme | null = null;
      for (let i = 0; i < CIRC_SENDME_INCREMENT; i++) m = receiver.onDataReceived(tagOf(i));
      assert.equal(m?.window, named);
    }
  });

  it('measures a round trip from the SENDME that raised the window to the first cell only it allowed', () => {
    const c = { t: 0 };
    const rtts: (number | null)[] = [];
    const receiver = new CircuitWindow(
      (rtt) => {
        rtts.push(rtt);
        return CIRC_WINDOW_MIN;
      },
      () => c.t,
    );
    // The SENDME at cell 64 names 64 more: the limit stays at the first window (128), nothing to time.
    for (let i = 1; i <= CIRC_SENDME_INCREMENT; i++) receiver.onDataReceived(tagOf(i));
    // The SENDME at cell 128, sent at t = 100, raises it to 192.
    c.t = 100;
    for (let i = CIRC_SENDME_INCREMENT + 1; i <= CIRC_WINDOW_START; i++) receiver.onDataReceived(tagOf(i));
    // Cell 129 is the first the raise allowed: it arrives 37 ms after that SENDME.
    c.t = 137;
    for (let i = CIRC_WINDOW_START + 1; i <= CIRC_WINDOW_START + CIRC_SENDME_INCREMENT; i++)
      receiver.onDataReceived(tagOf(i));
    assert.deepEqual(rtts, [null, null, 37]);
  });

  it('refuses a SENDME that echoes no cell it sent (an unearned SENDME)', () => {
    const sender = new CircuitWindow();
    send(sender, 0, CIRC_SENDME_INCREMENT);
    assert.throws(
      () => sender.onSendme({ tag: tagOf(7), window: CIRC_WINDOW_MAX }),
      (e: unknown) => e instanceof FlowControlError && e.code === 'ALLIUM_FLOW_SENDME',
    );
    const fresh = new CircuitWindow();
    assert.throws(() => fresh.onSendme({ tag: tagOf(0), window: CIRC_WINDOW_MAX }), /unexpected tag/);
  });

  it('never stalls, never overruns, and keeps in flight within the windows named, whatever the receiver names when', () => {
    // A sender with endless data, a receiver naming random windows, and two in-order channels that
    // deliver random amounts in random order.
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            act: fc.constantFrom('send', 'deliver', 'ack'),
            n: fc.integer({ min: 1, max: 400 }),
            window: fc.integer({ min: 0, max: 5000 }),
          }),
          { maxLength: 60 },
        ),
        (steps) => {
          let grant = CIRC_WINDOW_MAX;
          const sender = new CircuitWindow();
          const receiver = new CircuitWindow(() => grant);
          let next = 0;
          let delivered = 0;
          const forward: number[] = [];
          const backward: CircuitSendme[] = [];
          let largestNamed = CIRC_WINDOW_START;
          const run = (act: string, n: number) => {
            if (act === 'send') {
              const k = Math.max(0, Math.min(n, sender.packageWindow));
              forward.push(...send(sender, next, k));
              next += k;
            } else if (act === 'deliver') {
              for (const cell of forward.splice(0, n)) {
                const m = receiver.onDataReceived(tagOf(cell));
                delivered++;
                if (m) {
                  backward.push(m);
                  largestNamed = Math.max(largestNamed, m.window);
                }
              }
            } else {
              for (const m of backward.splice(0, n)) sender.onSendme(m);
            }
            // Never more in flight past the receiver's count than the largest window it named, plus
            // the cells under an increment it has not acknowledged yet.
            assert.ok(next - delivered <= largestNamed + CIRC_SENDME_INCREMENT);
          };
          for (const s of steps) {
            grant = s.window;
            run(s.act, s.n);
          }
          // Drain both ways: the sender may always send again.
          run('deliver', Number.POSITIVE_INFINITY);
          run('ack', Number.POSITIVE_INFINITY);
          assert.ok(sender.packageWindow > 0, `stalled with ${sender.packageWindow}`);
        },
      ),
      { numRuns },
    );
  });
});

describe('stream windows (§5)', () => {
  /**
   * A sender with endless data and a receiver whose application consumes `perTick` cells every
   * `tickMs` (SENDMEs reach the sender at once: the window, not the path, is what is checked).
   * Returns the receiver's granted window and the most that waited for the application.
   */
  function run(opts: {
    growth: Omit<StreamWindowGrowth, 'now'> | null;
    perTick: number;
    tickMs: number;
    ticks: number;
  }) {
    const c = { t: 0 };
    const receiver = new StreamWindow(opts.growth ? { ...opts.growth, now: () => c.t } : null);
    const sender = new StreamWindow();
    let arrived = 0;
    let mostInFlight = 0;
    for (let i = 0; i < opts.ticks; i++) {
      c.t += opts.tickMs;
      while (sender.packageWindow > 0) {
        sender.onDataSent();
        receiver.onDataReceived();
        arrived++;
      }
      mostInFlight = Math.max(mostInFlight, arrived);
      const take = Math.min(opts.perTick, arrived);
      arrived -= take;
      const sendmes = receiver.onConsumed(take);
      for (let k = 0; k < sendmes; k++) sender.onSendme();
    }
    return { granted: receiver.grantedWindow, mostInFlight };
  }
  /** The same for a receiver that grows its window, on a path whose base round trip is `rttMs`. */
  const growing = (rttMs: number, perTick: number, ticks = 300) =>
    run({ growth: { largest: STREAM_WINDOW_MAX, baseRttMs: () => rttMs }, perTick, tickMs: 10, ticks });

  it('keeps the first window without growth (an exit before 0.4.0): one SENDME per 128 consumed', () => {
    const w = new StreamWindow();
    for (let i = 0; i < STREAM_WINDOW_START; i++) w.onDataReceived();
    assert.equal(w.onConsumed(STREAM_SENDME_INCREMENT * 3 + 5), 3);
    assert.equal(w.grantedWindow, STREAM_WINDOW_START);
    const r = run({ growth: null, perTick: 400, tickMs: 10, ticks: 200 });
    assert.equal(r.granted, STREAM_WINDOW_START);
    assert.ok(r.mostInFlight <= STREAM_WINDOW_START);
  });

  it('grows to twice what a fast reader consumes per base round trip, up to the largest window', () => {
    // 40 cells per ms over a 120 ms path: twice that is 9600 cells, past the largest.
    const fast = growing(120, 400);
    assert.equal(fast.granted, STREAM_WINDOW_MAX);
    assert.ok(fast.mostInFlight <= STREAM_WINDOW_MAX);
    // 10 cells per ms over 120 ms: 2400 cells, rounded down to an increment.
    const mid = growing(120, 100);
    const wanted = STREAM_WINDOW_GAIN * 10 * 120;
    assert.equal(mid.granted, Math.floor(wanted / STREAM_SENDME_INCREMENT) * STREAM_SENDME_INCREMENT);
  });

  it('does not grow for a slow reader, on a short path, or before the path is timed', () => {
    // 0.3 cells per ms (~1.2 MiB/s): 36 cells per 120 ms round trip, twice that far under 1024.
    const slow = growing(120, 3, 3000);
    assert.equal(slow.granted, STREAM_WINDOW_START);
    assert.ok(
      slow.mostInFlight <= STREAM_WINDOW_START,
      'what waits for the slow reader stays within the first window',
    );
    // 100 MiB/s on one machine (a 5 ms path): 250 cells.
    const local = growing(5, 250);
    assert.equal(local.granted, STREAM_WINDOW_START);
    const untimed = growing(Infinity, 400);
    assert.equal(untimed.granted, STREAM_WINDOW_START);
  });

  it('refuses a stream SENDME that would take the window past the largest', () => {
    const w = new StreamWindow();
    for (let i = 0; i < (STREAM_WINDOW_MAX - STREAM_WINDOW_START) / STREAM_SENDME_INCREMENT; i++)
      w.onSendme();
    assert.equal(w.packageWindow, STREAM_WINDOW_MAX);
    assert.throws(
      () => w.onSendme(),
      (e: unknown) => e instanceof FlowControlError && e.code === 'ALLIUM_FLOW_SENDME',
    );
  });

  it('never lets the sender overrun, whatever the reader consumes when', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({ consume: fc.integer({ min: 0, max: 600 }), ms: fc.integer({ min: 0, max: 300 }) }),
          {
            maxLength: 80,
          },
        ),
        fc.integer({ min: 1, max: 400 }),
        (steps, rtt) => {
          const c = { t: 0 };
          const receiver = new StreamWindow({
            largest: STREAM_WINDOW_MAX,
            baseRttMs: () => rtt,
            now: () => c.t,
          });
          const sender = new StreamWindow();
          let arrived = 0;
          for (const s of steps) {
            c.t += s.ms;
            while (sender.packageWindow > 0) {
              sender.onDataSent();
              receiver.onDataReceived(); // throws on an overrun
              arrived++;
            }
            const take = Math.min(s.consume, arrived);
            arrived -= take;
            const sendmes = receiver.onConsumed(take);
            for (let k = 0; k < sendmes; k++) sender.onSendme(); // throws past the largest
            assert.ok(receiver.grantedWindow <= STREAM_WINDOW_MAX);
            assert.ok(arrived <= receiver.grantedWindow);
          }
        },
      ),
      { numRuns },
    );
  });
});
