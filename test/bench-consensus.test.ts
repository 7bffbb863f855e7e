// Keeps the consensus benchmark runnable: a small run must list every relay it made.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatConsensusBench, runConsensusBench } from '../bench/consensus.js';

test('the consensus benchmark runs and reports every figure (50 relays)', async () => {
  const r = await runConsensusBench(50);
  assert.equal(r.relays, 50);
  for (const k of ['consensusBytes', 'buildSignMs', 'fetchVerifyMs', 'verifyOnlyMs', 'directoryStartMs'])
    assert.ok(Number.isFinite(r[k]) && r[k] > 0, `${k} = ${r[k]}`);
  assert.ok(r.bytesPerRelay > 200, 'each relay carries its keys, address and policy');
  assert.match(formatConsensusBench(r), /^consensus with 50 relays: /);
});
