import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidArgumentError } from 'commander';
import { parseReceiveBudget, receiveBudgetCells } from './options.js';

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
