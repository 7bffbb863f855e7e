// What `npm pack` puts in the tarball: the compiled library and command, the docs and the README, and
// no test, test helper or fixture (package.json `files`).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));

/** A file that belongs to the tests, not to the package. */
const TEST_ONLY = /(^|\/)test\/|\.test\.|fixture|(^|\/)bench\//i;

test('npm pack lists the library and the command, and no test file or fixture', () => {
  const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
    cwd: root,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 60_000,
  });
  const [pack] = JSON.parse(out) as { files: { path: string }[] }[];
  const paths = pack.files.map((f) => f.path);
  // The package is whole: the entry points package.json names are in it.
  for (const want of [
    'package.json',
    'README.md',
    'dist/src/index.js',
    'dist/src/index.d.ts',
    'dist/src/cli/main.js',
  ])
    assert.ok(paths.includes(want), `${want} is missing from the package`);
  assert.ok(
    paths.some((p) => p.startsWith('docs/')),
    'the docs are missing from the package',
  );
  const strays = paths.filter((p) => TEST_ONLY.test(p));
  assert.deepEqual(strays, [], `the package ships test files or fixtures:\n${strays.join('\n')}`);
});
