// Property tests for every decoder (docs/protocol.md §1-§7, SOCKS5): random and mutated-valid input
// gets only the decoder's typed error, never a hang, never more than its caps. `npm test` runs a
// few hundred cases per decoder; `npm run fuzz` (scripts/fuzz.mjs) runs 100,000.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runTargets, TARGETS } from './fuzz/run.js';

const numRuns = Number(process.env.FUZZ_RUNS ?? 300);

describe('every decoder under random and mutated input', () => {
  it(`runs ${numRuns} cases per decoder in watched workers, all passing`, async () => {
    const results = await runTargets({ numRuns, concurrency: 2, stallMs: 60_000 });
    assert.deepEqual(
      results.map((r) => r.name),
      TARGETS.map((t) => t.name),
    );
    const failed = results.filter((r) => !r.ok);
    assert.deepEqual(
      failed.map((r) => `${r.name}: ${r.failure}`),
      [],
    );
    for (const r of results) assert.ok(r.cases >= numRuns, `${r.name} ran ${r.cases} cases`);
  });
});

describe('the fuzz harness', () => {
  const fixtures = new URL('./fuzz/harness-fixtures.js', import.meta.url).href;

  it('reports a decoder that throws something other than its typed error, with the input', async () => {
    const [r] = await runTargets({
      numRuns: 1000,
      targetsModule: fixtures,
      names: ['throws a foreign error'],
    });
    assert.equal(r.ok, false);
    assert.match(r.failure ?? '', /threw RangeError \(not WireError\)/);
    assert.match(r.failure ?? '', /Counterexample/);
  });

  it('ends a worker whose decoder never returns and reports a hang', async () => {
    const [r] = await runTargets({ numRuns: 1000, targetsModule: fixtures, names: ['hangs'], stallMs: 1500 });
    assert.equal(r.ok, false);
    assert.match(r.failure ?? '', /^hang: no progress for 1500 ms/);
  });
});
