// A few of the mutation checks (scripts/mutations.mjs, INSUITE) on every run, so the tests they
// guard stay able to fail: each breaks the code on purpose in a copy of the build, and its test must
// then fail. `node scripts/mutation-check.mjs` runs them all (docs/testing.md).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const LIMIT_MS = 240_000;

test('each mutation in the suite makes its test fail', { timeout: LIMIT_MS + 10_000 }, async () => {
  const { status, output } = await new Promise<{ status: number | null; output: string }>((resolve) => {
    const child = spawn(process.execPath, ['scripts/mutation-check.mjs', '--insuite'], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), LIMIT_MS);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ status: code, output });
    });
  });
  console.log(output.trimEnd());
  const verdicts = output.split('\n').filter((l) => /^(caught|SURVIVED|ERROR)\s/.test(l));
  assert.ok(verdicts.length >= 4, `the harness checked ${verdicts.length} mutations`);
  for (const v of verdicts) assert.match(v, /^caught /);
  assert.equal(status, 0);
});
