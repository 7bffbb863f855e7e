import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidArgumentError } from 'commander';
import { parseLinkDelay, parseReceiveBudget, receiveBudgetCells } from './options.js';

describe('--receive-budget', () => {
  it('takes KiB and gives whole 4 KiB cells', () => {
    assert.equal(parseReceiveBudget('2048'), 2048);
    assert.equal(receiveBudgetCells(2048), 512);
    assert.equal(receiveBudgetCells(258), 64);
  });

  it('refuses less than one window (256 KiB), more than 1 GiB, and what is not a whole number', () => {
    for (const bad of ['255', '0', '-1', '1048577', '1.5', 'lots', ''])
      assert.throws(() => parseReceiveBudget(bad), InvalidArgumentError, bad);
  });
});

describe('--link-delay', () => {
  it('takes whole milliseconds from 0 to 10000', () => {
    assert.equal(parseLinkDelay('0'), 0);
    assert.equal(parseLinkDelay('20'), 20);
    assert.equal(parseLinkDelay('10000'), 10_000);
    for (const bad of ['-1', '1.5', '10001', 'far', ''])
      assert.throws(() => parseLinkDelay(bad), InvalidArgumentError, bad);
  });
});
