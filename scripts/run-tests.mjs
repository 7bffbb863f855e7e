#!/usr/bin/env node
// Runs every compiled test file with node's test runner. Node 20 does not expand globs itself,
// so the file list is built here. Usage: node scripts/run-tests.mjs [filter-substring ...]
// The stress suite (dist/test/stress/) runs only when a filter names it: `npm run test:stress`.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
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
  .filter((f) =>
    filters.length === 0 ? !f.startsWith(stress) : filters.some((s) => f.includes(s)),
  )
  .sort();
if (files.length === 0) {
  console.error('no test files found (did the build run?)');
  process.exit(1);
}
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=2', '--test-timeout=300000', ...files], {
  stdio: 'inherit',
});
process.exit(r.status ?? 1);
