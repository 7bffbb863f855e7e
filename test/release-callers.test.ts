// releaseBuffer (src/buffers/release.ts) detaches memory, so every other view of it silently reads
// empty: only the modules its header names, each with why it is safe, may call it.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, sep } from 'node:path';
import { test } from 'node:test';

const SRC = join(import.meta.dirname, '..', '..', 'src');

test('only the modules named at the top of src/buffers/release.ts call releaseBuffer', () => {
  const callers = readdirSync(SRC, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'))
    .map((f) => f.split(sep).join('/'))
    .filter((f) => /\breleaseBuffer\b/.test(readFileSync(join(SRC, f), 'utf8')))
    .filter((f) => f !== 'buffers/release.ts' && f !== 'wire/release.ts');
  const header = readFileSync(join(SRC, 'buffers', 'release.ts'), 'utf8').split('\n\n')[0];
  const named = (f: string) => header.includes(`// - ${f}`) || header.includes(` and ${f}`);
  const unnamed = callers.filter((f) => !named(f));
  assert.deepEqual(unnamed, [], `name each caller at the top of src/buffers/release.ts, with why it is safe`);
  // The scan sees the callers it must: a check that finds nothing would pass anything.
  for (const f of ['net/link.ts', 'net/pipe-releasing.ts', 'buffers/scratch.ts', 'buffers/cell-slabs.ts'])
    assert.ok(callers.includes(f), `${f} no longer calls releaseBuffer: update the list in release.ts`);
});
