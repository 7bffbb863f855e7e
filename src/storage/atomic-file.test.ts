import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { removeStaleTempFiles, writeFileAtomic } from './atomic-file.js';

test('leftovers of killed writers are removed at the first write; other files are not', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'allium-atomic-'));
  try {
    const path = join(dir, 'state.json');
    const stale = ['state.json.tmp-1-1', 'state.json.tmp-99999-12'];
    const kept = ['other.json.tmp-1-1', 'state.json.tmp-notes', 'state.json.bak'];
    for (const n of [...stale, ...kept]) writeFileSync(join(dir, n), 'x'.repeat(1000));
    await writeFileAtomic(path, 'new');
    assert.equal(readFileSync(path, 'utf8'), 'new');
    assert.deepEqual(readdirSync(dir).sort(), ['state.json', ...kept].sort());
    // This process's own temporary files are never touched (a write of ours may be in flight).
    const own = `state.json.tmp-${process.pid}-999`;
    writeFileSync(join(dir, own), 'x');
    assert.equal(await removeStaleTempFiles(path), 0);
    assert.ok(readdirSync(dir).includes(own));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
