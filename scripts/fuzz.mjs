#!/usr/bin/env node
// `npm run fuzz`: every decoder (test/fuzz/targets.ts) with FUZZ_RUNS cases (default 100,000), each in
// a worker thread ended if it makes no progress for FUZZ_STALL_MS (a hang). Prints cases per decoder.
// Usage: node scripts/fuzz.mjs [name-substring ...]   env: FUZZ_RUNS, FUZZ_JOBS, FUZZ_SEED, FUZZ_STALL_MS
import { availableParallelism } from 'node:os';

const { runTargets, TARGETS } = await import('../dist/test/fuzz/run.js').catch((err) => {
  console.error(`cannot load dist/test/fuzz/run.js (run \`npm run build\` first): ${err.message}`);
  process.exit(2);
});

const numRuns = Number(process.env.FUZZ_RUNS ?? 100_000);
const concurrency = Number(process.env.FUZZ_JOBS ?? availableParallelism());
const stallMs = Number(process.env.FUZZ_STALL_MS ?? 60_000);
const seed = process.env.FUZZ_SEED === undefined ? undefined : Number(process.env.FUZZ_SEED);
const filters = process.argv.slice(2);
const names = TARGETS.map((t) => t.name).filter(
  (n) => filters.length === 0 || filters.some((f) => n.includes(f)),
);
if (names.length === 0) {
  console.error(
    `no fuzz target matches ${filters.join(', ')}; targets:\n  ${TARGETS.map((t) => t.name).join('\n  ')}`,
  );
  process.exit(2);
}

console.log(`fuzzing ${names.length} decoders, ${numRuns} cases each, ${concurrency} at a time`);
const started = Date.now();
const results = await runTargets({
  numRuns,
  concurrency,
  stallMs,
  seed,
  names,
  onResult: (r) =>
    console.log(
      `${r.ok ? 'ok  ' : 'FAIL'} ${String(r.cases).padStart(8)} cases ${(r.ms / 1000).toFixed(1).padStart(7)} s  ${r.name}`,
    ),
});
const failed = results.filter((r) => !r.ok);
for (const r of failed) console.log(`\n--- ${r.name}\n${r.failure}`);
const total = results.reduce((s, r) => s + r.cases, 0);
console.log(
  `\n${results.length - failed.length}/${results.length} decoders passed, ${total} cases in ${((Date.now() - started) / 1000).toFixed(0)} s`,
);
process.exit(failed.length === 0 ? 0 : 1);
