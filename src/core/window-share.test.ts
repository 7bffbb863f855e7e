// What an exit sees of a client's guard link in the circuit SENDMEs it gets (protocol §5.1): with 1, 2
// or 8 circuits receiving through one link, every circuit names the same windows, so the exit cannot
// count them; the client keeps to its budget by when it sends each SENDME instead.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CIRC_SENDME_INCREMENT, CIRC_WINDOW_START, LEGACY_CIRC_WINDOW_MAX } from '../wire/constants.js';
import type { CircuitSendme } from '../wire/relay-messages.js';
import { CircuitWindow } from './flow-control.js';
import { ReceiveBudget } from './receive-budget.js';

const BUDGET = 512;
/** Cells the shared link carries per (simulated) millisecond. */
const LINK_CELLS_PER_MS = 100;
const CELLS_PER_CIRCUIT = 4096;

interface Run {
  /** The windows each exit-side sender read in the SENDMEs of its circuit, in order. */
  observed: number[][];
  /** The most DATA cells on the link toward the client at once, once every circuit was past its first window. */
  mostInFlight: number;
  delivered: number[];
}

/** `n` circuits download CELLS_PER_CIRCUIT cells each through one link that keeps FIFO order. */
function simulate(n: number): Run {
  const clock = { t: 0 };
  const budget = new ReceiveBudget(BUDGET, () => clock.t);
  const senders = Array.from({ length: n }, () => new CircuitWindow());
  const receivers = Array.from({ length: n }, (_, i) => {
    const key = { circuit: i };
    return new CircuitWindow(
      (rtt) => budget.grantShare(key, rtt, LEGACY_CIRC_WINDOW_MAX),
      () => clock.t,
    );
  });
  const sent = new Array<number>(n).fill(0);
  const delivered = new Array<number>(n).fill(0);
  const observed: number[][] = Array.from({ length: n }, () => []);
  const link: { i: number; tag: Buffer }[] = [];
  let back: { i: number; m: CircuitSendme }[] = [];
  let mostInFlight = 0;
  let serial = 0;
  for (let tick = 0; tick < 100_000 && delivered.some((d) => d < CELLS_PER_CIRCUIT); tick++) {
    clock.t = tick;
    // SENDMEs come back within a millisecond; each sender then fills its window.
    for (const { i, m } of back) {
      senders[i].onSendme(m);
      observed[i].push(m.window);
    }
    back = [];
    for (let i = 0; i < n; i++) {
      while (senders[i].packageWindow > 0 && sent[i] < CELLS_PER_CIRCUIT) {
        const tag = Buffer.alloc(16);
        tag.writeUInt32BE(++serial);
        senders[i].onDataSent(tag);
        sent[i]++;
        link.push({ i, tag });
      }
    }
    if (sent.every((s) => s > 4 * CIRC_WINDOW_START)) mostInFlight = Math.max(mostInFlight, link.length);
    for (const { i, tag } of link.splice(0, LINK_CELLS_PER_MS)) {
      delivered[i]++;
      for (let m = receivers[i].onDataReceived(tag); m; m = receivers[i].nextSendme()) back.push({ i, m });
    }
  }
  return { observed, mostInFlight, delivered };
}

describe('circuit windows on a shared link (§5.1)', () => {
  const runs = new Map([1, 2, 8].map((n) => [n, simulate(n)]));
  // Every circuit names the same: a ramp of one increment per SENDME from the first window, then the budget.
  const expected = (length: number) =>
    Array.from({ length }, (_, k) => Math.min(BUDGET, CIRC_WINDOW_START + (k + 1) * CIRC_SENDME_INCREMENT));

  it('every circuit gets all its cells through (held SENDMEs never stall one)', () => {
    for (const [n, run] of runs)
      assert.deepEqual(run.delivered, new Array(n).fill(CELLS_PER_CIRCUIT), `${n}`);
  });

  it('the exit sees the same windows whether 1, 2 or 8 circuits share the link', () => {
    for (const [n, run] of runs) {
      for (const windows of run.observed) {
        assert.ok(
          windows.length >= CELLS_PER_CIRCUIT / CIRC_SENDME_INCREMENT - BUDGET / CIRC_SENDME_INCREMENT,
        );
        assert.deepEqual(windows, expected(windows.length), `a circuit among ${n}`);
      }
    }
  });

  it('still keeps about one budget in flight toward the client, however many circuits', () => {
    for (const [n, run] of runs) {
      // Each circuit's share, and up to two increments more when a held SENDME has to go early.
      const bound = BUDGET + n * 2 * CIRC_SENDME_INCREMENT;
      assert.ok(
        run.mostInFlight <= bound,
        `${n} circuits: ${run.mostInFlight} cells in flight, bound ${bound}`,
      );
    }
    // Eight windows of the budget each would be eight budgets.
    assert.ok((runs.get(8)?.mostInFlight ?? 0) < 4 * BUDGET);
  });
});
