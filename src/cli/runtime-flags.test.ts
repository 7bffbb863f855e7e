import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { CLI_PATH } from '../testnet/testnet.js';
import { missingRuntimeFlags, RUNTIME_ENV, RUNTIME_NODE_FLAGS, runtimeFlagsAdvice } from './runtime-flags.js';

describe('runtime node flags', () => {
  it('the allium bin starts node with every runtime flag', () => {
    const shebang = readFileSync(CLI_PATH, 'utf8').split('\n')[0];
    assert.match(shebang, /^#!\/usr\/bin\/env -S /);
    const words = shebang.split(/\s+/).slice(2);
    const env = Object.fromEntries(words.filter((w) => /^[A-Z_]+=/.test(w)).map((w) => w.split('=')));
    const args = words.slice(words.indexOf('node') + 1);
    assert.ok(words.includes('node'));
    assert.deepEqual(missingRuntimeFlags(args), []);
    assert.equal(runtimeFlagsAdvice(args, env), null);
  });

  it('names the missing flags, and says nothing when all are there', () => {
    const advice = runtimeFlagsAdvice(['--max-semi-space-size=1'], { ...RUNTIME_ENV });
    assert.ok(advice);
    assert.match(advice, /--initial-old-space-size=24/);
    assert.doesNotMatch(advice, /--max-semi-space-size=1 /);
    assert.equal(runtimeFlagsAdvice(RUNTIME_NODE_FLAGS, { ...RUNTIME_ENV }), null);
    assert.match(runtimeFlagsAdvice(RUNTIME_NODE_FLAGS, {}) ?? '', /MALLOC_ARENA_MAX=2/);
  });
});
