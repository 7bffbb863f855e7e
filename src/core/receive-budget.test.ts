import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CIRC_WINDOW_MAX, CIRC_WINDOW_MIN } from '../wire/constants.js';
import { RECEIVE_ACTIVE_MS, ReceiveBudget, ReceiveBudgets } from './receive-budget.js';

function clock() {
  const c = { t: 1000, now: () => c.t };
  return c;
}

describe('receive budget (§5.1)', () => {
  it('gives a circuit alone the whole budget, up to the largest window', () => {
    assert.equal(new ReceiveBudget(512).grant({}), 512);
    assert.equal(new ReceiveBudget(4096).grant({}), CIRC_WINDOW_MAX);
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

  it('refuses a budget below the smallest window', () => {
    assert.throws(() => new ReceiveBudget(CIRC_WINDOW_MIN - 1), RangeError);
    assert.throws(() => new ReceiveBudget(CIRC_WINDOW_MIN + 0.5), RangeError);
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
