#!/usr/bin/env node
// Runs every compiled test file with node's test runner. Node 20 does not expand globs itself,
// so the file list is built here. Usage: node scripts/run-tests.mjs [filter-substring ...]
// The stress suite (dist/test/stress/) runs only when a filter names it: `npm run test:stress`.
// After the run it lists every skipped test with its reason (scripts/test-summary-reporter.mjs), and
// every file or folder a test left in its temporary directory: the tests run with TMPDIR set to a
// fresh folder of this run, removed at the end. Under CI=true a leftover fails the run.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

function walk(dir, out) {
  if (!existsSync(dir)) return out;
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

const filters = process.argv.slice(2);
const stress = join('dist', 'test', 'stress');
const files = [...walk('dist/src', []), ...walk('dist/test', [])]
  .filter((f) => (filters.length === 0 ? !f.startsWith(stress) : filters.some((s) => f.includes(s))))
  .sort();
if (files.length === 0) {
  console.error('no test files found (did the build run?)');
  process.exit(1);
}
const runTmp = mkdtempSync(join(tmpdir(), 'allium-run-'));
const reporter = process.stdout.isTTY ? 'spec' : 'tap';
const r = spawnSync(
  process.execPath,
  [
    '--test',
    '--test-concurrency=2',
    '--test-timeout=300000',
    `--test-reporter=${reporter}`,
    '--test-reporter-destination=stdout',
    '--test-reporter=./scripts/test-summary-reporter.mjs',
    '--test-reporter-destination=stdout',
    ...files,
  ],
  { stdio: 'inherit', env: { ...process.env, TMPDIR: runTmp } },
);
let status = r.status ?? 1;
const left = readdirSync(runTmp);
if (left.length > 0) {
  console.log(`left in the temporary directory (${left.length}): ${left.join(', ')}`);
  if (process.env.CI === 'true') status = status || 1;
} else {
  console.log('left in the temporary directory: nothing');
}
rmSync(runTmp, { recursive: true, force: true });
process.exit(status);
