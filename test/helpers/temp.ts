// Temporary directories for tests: made under the system's temporary folder, removed when the test
// process exits (whatever the outcome), so no run leaves data behind. scripts/run-tests.mjs lists
// anything left.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const made: string[] = [];

/** A fresh empty directory named allium-<what>-XXXXXX, removed at process exit. */
export function tempDir(what: string): string {
  const dir = mkdtempSync(join(tmpdir(), `allium-${what}-`));
  if (made.length === 0) process.once('exit', removeAll);
  made.push(dir);
  return dir;
}

/** Removes one directory made by tempDir now (a test that wants its space back early). */
export function removeTempDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  const i = made.indexOf(dir);
  if (i >= 0) made.splice(i, 1);
}

function removeAll(): void {
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
}
