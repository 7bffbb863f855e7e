import assert from 'node:assert/strict';
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { X25519Key } from '../crypto/keys.js';
import { OnionKeys } from './onion-keys.js';

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

const policy = { lifetimeMs: 1000, graceMs: 400 };
const fresh = () => tempDir('allium-onion-');

test('the first start makes a key that survives a restart, in a file only the owner reads', () => {
  const dir = fresh();
  const a = OnionKeys.load(dir, 5000);
  assert.equal(statSync(join(dir, 'onion-keys.json')).mode & 0o777, 0o600);
  const b = OnionKeys.load(dir, 9000);
  assert.deepEqual(b.current.publicKey, a.current.publicKey);
  assert.equal(b.active(9000).previousOnionKey, null);
});

test('a rotation keeps the old key answering for the grace period, then forgets it; both survive restarts', async () => {
  const dir = fresh();
  const keys = OnionKeys.load(dir, 0);
  const first = keys.current.publicKey;
  assert.deepEqual(await keys.maintain(policy, 999), { rotated: false, dropped: false });
  assert.equal(keys.nextChangeAt(policy), 1000);

  assert.deepEqual(await keys.maintain(policy, 1000), { rotated: true, dropped: false });
  assert.notDeepEqual(keys.current.publicKey, first);
  assert.deepEqual(keys.active(1200).previousOnionKey?.publicKey, first);
  assert.equal(keys.nextChangeAt(policy), 1400, 'the grace ends before the next rotation');

  const reloaded = OnionKeys.load(dir, 1300);
  assert.deepEqual(reloaded.current.publicKey, keys.current.publicKey);
  assert.deepEqual(reloaded.active(1300).previousOnionKey?.publicKey, first);
  // Past the grace the old key no longer answers, even before maintain() runs.
  assert.equal(reloaded.active(1400).previousOnionKey, null);

  assert.deepEqual(await reloaded.maintain(policy, 1400), { rotated: false, dropped: true });
  const secrets = readFileSync(join(dir, 'onion-keys.json'), 'utf8');
  assert.equal(JSON.parse(secrets).previous, null, 'the old secret is gone from the disk');
  assert.equal(reloaded.nextChangeAt(policy), 2000);
});

test('a relay that was off past a rotation and its grace ends up with one new key', async () => {
  const keys = OnionKeys.load(fresh(), 0);
  await keys.maintain(policy, 1000);
  const afterFirst = keys.current.publicKey;
  assert.deepEqual(await keys.maintain(policy, 10_000), { rotated: true, dropped: true });
  assert.deepEqual(keys.active(10_000).previousOnionKey?.publicKey, afterFirst);
});

test("an earlier version's onion.key is taken over (same key, its age from the file) and removed", () => {
  const dir = fresh();
  const legacy = X25519Key.generate();
  writeFileSync(join(dir, 'onion.key'), `${legacy.secret().toString('hex')}\n`, { mode: 0o600 });
  utimesSync(join(dir, 'onion.key'), 1000, 1000); // seconds: made at t = 1,000,000 ms
  const keys = OnionKeys.load(dir, 5_000_000);
  assert.deepEqual(keys.current.publicKey, legacy.publicKey);
  assert.equal(existsSync(join(dir, 'onion.key')), false);
  assert.equal(keys.nextChangeAt(policy), 1_000_000 + policy.lifetimeMs);
});

test('a damaged or world-readable key file is refused with a message that says what to do', () => {
  const dir = fresh();
  OnionKeys.load(dir, 0);
  const path = join(dir, 'onion-keys.json');
  chmodSync(path, 0o644);
  assert.throws(() => OnionKeys.load(dir), { code: 'ALLIUM_KEY_PERMISSIONS', message: /chmod 600/ });
  chmodSync(path, 0o600);
  writeFileSync(path, '{"current":"zz"}');
  assert.throws(() => OnionKeys.load(dir), { code: 'ALLIUM_KEY_FILE', message: /move it away/ });
});
