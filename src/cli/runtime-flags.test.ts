import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { CLI_PATH } from '../testnet/testnet.js';
import { missingRuntimeFlags, RUNTIME_NODE_FLAGS, runtimeFlagsAdvice } from './runtime-flags.js';

describe('runtime node flags', () => {
  it('the allium bin starts node with every runtime flag', () => {
    const shebang = readFileSync(CLI_PATH, 'utf8').split('\n')[0];
    assert.match(shebang, /^#!\/usr\/bin\/env -S node /);
    const args = shebang.split(/\s+/).slice(3);
    assert.deepEqual(missingRuntimeFlags(args), []);
  });

  it('names the missing flags, and says nothing when all are there', () => {
    const advice = runtimeFlagsAdvice(['--max-semi-space-size=1']);
    assert.ok(advice);
    assert.match(advice, /--initial-old-space-size=48/);
    assert.doesNotMatch(advice, /--max-semi-space-size=1 /);
    assert.equal(runtimeFlagsAdvice(RUNTIME_NODE_FLAGS), null);
  });
});
