// Keeps the consensus benchmark runnable: a small run must list every relay it made.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatAuthoritiesBench, runAuthoritiesBench } from '../bench/authorities.js';
import { formatConsensusBench, runConsensusBench } from '../bench/consensus.js';

test('the consensus benchmark runs and reports every figure (50 relays)', async () => {
  const r = await runConsensusBench(50);
  assert.equal(r.relays, 50);
  for (const k of ['consensusBytes', 'buildSignMs', 'fetchVerifyMs', 'verifyOnlyMs', 'directoryStartMs'])
    assert.ok(Number.isFinite(r[k]) && r[k] > 0, `${k} = ${r[k]}`);
  assert.ok(r.bytesPerRelay > 200, 'each relay carries its keys, address and policy');
  assert.match(formatConsensusBench(r), /^consensus with 50 relays: /);
});

test('the authorities benchmark runs with 3 and 9 authorities and reports every figure (50 relays)', () => {
  for (const n of [3, 9]) {
    const r = runAuthoritiesBench(50, n);
    assert.equal(r.authorities, n);
    for (const k of [
      'voteBytes',
      'voteSignMs',
      'voteCheckMs',
      'computeMs',
      'consensusBytes',
      'consensusSignMs',
      'servedBytes',
      'clientVerifyMs',
    ] as const)
      assert.ok(Number.isFinite(r[k]) && r[k] > 0, `${k} = ${r[k]}`);
    assert.ok(r.servedBytes > r.consensusBytes, 'the served document carries the signatures');
    assert.match(formatAuthoritiesBench(r), new RegExp(`^${n} authorities, 50 relays: `));
  }
});
