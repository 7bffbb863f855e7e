import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { loadOrCreateIdentity, loadOrCreateX25519 } from './keys-store.js';

/** Temporary directories of this file, removed after its tests. */
const made: string[] = [];
function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  made.push(dir);
  return dir;
}
after(() => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
});

test('a relay keeps its identity across restarts, in a 0600 key file', () => {
  const dir = tempDir('allium-keys-');
  const a = loadOrCreateIdentity(dir);
  const b = loadOrCreateIdentity(dir);
  assert.deepEqual(a.publicKey, b.publicKey);
  assert.equal(statSync(join(dir, 'identity.key')).mode & 0o777, 0o600);
  const o1 = loadOrCreateX25519(dir, 'onion.key');
  assert.deepEqual(loadOrCreateX25519(dir, 'onion.key').publicKey, o1.publicKey);
});

test('a key file others can read is refused with a message saying how to fix it', () => {
  const dir = tempDir('allium-keys-');
  loadOrCreateIdentity(dir);
  chmodSync(join(dir, 'identity.key'), 0o644);
  assert.throws(
    () => loadOrCreateIdentity(dir),
    (err: Error & { code: string }) => {
      assert.equal(err.code, 'ALLIUM_KEY_PERMISSIONS');
      assert.match(err.message, /chmod 600/);
      return true;
    },
  );
});
