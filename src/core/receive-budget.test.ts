import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  CIRC_SENDME_INCREMENT,
  CIRC_WINDOW_MAX,
  CIRC_WINDOW_MIN,
  LEGACY_CIRC_WINDOW_MAX,
} from '../wire/constants.js';
import {
  MAX_RECEIVE_BUDGET_CELLS,
  RECEIVE_ACTIVE_MS,
  RECEIVE_BUDGET_GAIN,
  ReceiveBudget,
  ReceiveBudgets,
} from './receive-budget.js';

function clock() {
  const c = { t: 1000, now: () => c.t };
  return c;
}

describe('receive budget (§5.1)', () => {
  it('gives a circuit alone the whole budget, up to the largest window its peer accepts', () => {
    assert.equal(new ReceiveBudget(512).grant({}), 512);
    assert.equal(new ReceiveBudget(8192).grant({}), LEGACY_CIRC_WINDOW_MAX, 'an exit before 0.4.0');
    // Past 1024 only as delay control lets a new circuit grow: one increment per SENDME.
    const budget = new ReceiveBudget(8192);
    const circ = {};
    let named = 0;
    for (let i = 0; i < 100; i++) named = budget.grant(circ, 10, CIRC_WINDOW_MAX);
    assert.equal(named, CIRC_WINDOW_MAX);
  });

  it('splits the budget evenly among the circuits receiving now', () => {
    const c = clock();
    const budget = new ReceiveBudget(1024, c.now);
    const circuits = Array.from({ length: 8 }, () => ({}));
    for (const circ of circuits) budget.grant(circ);
    assert.equal(budget.receiving, 8);
    for (const circ of circuits) assert.equal(budget.grant(circ), 128);
    const sum = circuits.reduce((a: number, circ) => a + budget.grant(circ), 0);
    assert.ok(sum <= 1024);
  });

  it('never names less than the smallest window, however many circuits receive', () => {
    const budget = new ReceiveBudget(512);
    for (let i = 0; i < 100; i++) budget.grant({});
    assert.equal(budget.grant({}), CIRC_WINDOW_MIN);
  });

  it('stops counting a circuit once it has been quiet, or closed', () => {
    const c = clock();
    const budget = new ReceiveBudget(512, c.now);
    const a = {};
    const b = {};
    const closed = {};
    budget.grant(a);
    budget.grant(closed);
    budget.forget(closed);
    assert.equal(budget.grant(b), 256);
    c.t += RECEIVE_ACTIVE_MS + 1;
    assert.equal(budget.grant(b), 512, 'a fell quiet');
    assert.equal(budget.receiving, 1);
  });

  /**
   * A build's last step noted `rttMs` as the link's base round trip; then eight circuits each
   * acknowledge 64 cells every `gapMs`, every SENDME timing `rttMs` too (the sender waits for each
   * raise: a long path with no queue). Returns the budget after `rounds`.
   */
  function run(
    budget: ReceiveBudget,
    c: { t: number },
    o: { rttMs: number; gapMs: number; rounds: number; noBase?: boolean },
  ) {
    if (!o.noBase) budget.noteBaseRtt(o.rttMs);
    const circuits = Array.from({ length: 8 }, () => ({}));
    for (let r = 0; r < o.rounds; r++) {
      for (const circ of circuits) budget.grant(circ, o.rttMs);
      c.t += o.gapMs;
    }
    return budget.currentCells;
  }

  it('grows on a long round trip to GAIN times what arrives per round trip, up to its largest', () => {
    const c = clock();
    const budget = new ReceiveBudget(512, c.now);
    // 8 x 64 cells per 30 ms on a 120 ms round trip: ~17 cells/ms, ~2050 per round trip.
    const cells = run(budget, c, { rttMs: 120, gapMs: 30, rounds: 40 });
    const perRtt = ((8 * CIRC_SENDME_INCREMENT) / 30) * 120;
    assert.ok(cells > 512, `the budget grew past its floor (${cells})`);
    // Within 10%: a sample counts whole bursts of SENDMEs, so it can run a little high.
    assert.ok(
      Math.abs(cells - RECEIVE_BUDGET_GAIN * perRtt) <= 0.1 * RECEIVE_BUDGET_GAIN * perRtt,
      `${cells} ~ ${RECEIVE_BUDGET_GAIN} x ${perRtt}`,
    );
    // Each of the eight now names a share of the larger budget, not of 512.
    assert.equal(budget.grant({}, 120), Math.min(LEGACY_CIRC_WINDOW_MAX, Math.floor(cells / 9)));
    // Ten times the rate: capped.
    const fast = new ReceiveBudget(512, c.now);
    assert.equal(run(fast, c, { rttMs: 120, gapMs: 3, rounds: 400 }), MAX_RECEIVE_BUDGET_CELLS);
  });

  it('stays at its floor without a base round trip (an exit), however long the SENDME round trips', () => {
    const c = clock();
    const budget = new ReceiveBudget(512, c.now);
    assert.equal(run(budget, c, { rttMs: 120, gapMs: 30, rounds: 40, noBase: true }), 512);
    assert.equal(budget.baseRttMs, Number.POSITIVE_INFINITY);
  });

  it('takes the least base round trip of the last 60-120 s, which can rise again', () => {
    const c = clock();
    const budget = new ReceiveBudget(512, c.now);
    budget.noteBaseRtt(120);
    budget.noteBaseRtt(80);
    budget.noteBaseRtt(0); // not a round trip: ignored
    budget.noteBaseRtt(Number.NaN);
    assert.equal(budget.baseRttMs, 80);
    c.t += 61_000;
    budget.noteBaseRtt(150); // a new period: 80 still counts from the one before
    assert.equal(budget.baseRttMs, 80);
    c.t += 61_000;
    budget.noteBaseRtt(150);
    assert.equal(budget.baseRttMs, 150);
  });

  it('stays at its floor where the round trip is short (loopback), however fast cells arrive', () => {
    const c = clock();
    const budget = new ReceiveBudget(512, c.now);
    // 8 x 64 cells per 4 ms (~500 MiB/s) on a 1 ms round trip: ~128 cells per round trip.
    assert.equal(run(budget, c, { rttMs: 1, gapMs: 4, rounds: 200 }), 512);
    const user = new ReceiveBudget(4096, c.now);
    assert.equal(run(user, c, { rttMs: 1, gapMs: 4, rounds: 200 }), 4096, 'a larger floor stays');
  });

  it('refuses a budget below the smallest window', () => {
    assert.throws(() => new ReceiveBudget(CIRC_WINDOW_MIN - 1), { code: 'ALLIUM_FLOW_BUDGET' });
    assert.throws(() => new ReceiveBudget(CIRC_WINDOW_MIN + 0.5), { code: 'ALLIUM_FLOW_BUDGET' });
  });

  it('keeps one budget per link: circuits of two links do not share', () => {
    const budgets = new ReceiveBudgets<object>(512);
    const linkA = {};
    const linkB = {};
    assert.equal(budgets.of(linkA), budgets.of(linkA));
    assert.notEqual(budgets.of(linkA), budgets.of(linkB));
    budgets.of(linkA).grant({});
    assert.equal(budgets.of(linkB).grant({}), 512, 'the other link has its whole budget');
    assert.equal(budgets.of(linkA).grant({}), 256);
  });
});
