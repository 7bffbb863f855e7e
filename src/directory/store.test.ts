import assert from 'node:assert/strict';
import { chmod, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { makeTestRelay } from '../../test/helpers/relay-fixtures.js';
import { signDescriptor } from '../core/documents.js';
import { writeFileAtomic } from '../storage/atomic-file.js';
import { Directory } from './directory.js';
import { DirectoryError } from './errors.js';
import { DirectoryStore } from './store.js';

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'allium-store-test-'));
  dirs.push(d);
  return d;
}
after(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function startFails(dataDir: string, code: string): Promise<void> {
  await assert.rejects(Directory.start({ dataDir }), (err: unknown) => {
    assert.ok(err instanceof DirectoryError, String(err));
    assert.equal(err.code, code, err.message);
    return true;
  });
}

describe('DirectoryStore', () => {
  it('writes files atomically with the given mode and leaves no temp files', async () => {
    const d = await tempDir();
    const p = join(d, 'f.json');
    await writeFileAtomic(p, 'one');
    await writeFileAtomic(p, 'two', 0o600);
    assert.equal(await readFile(p, 'utf8'), 'two');
    assert.equal((await stat(p)).mode & 0o777, 0o600);
    assert.deepEqual(await readdir(d), ['f.json']);
  });

  it('creates a key on first start and reads the same one back', async () => {
    const d = await tempDir();
    const store = new DirectoryStore(d);
    await store.init();
    const a = await store.loadOrCreateKey();
    assert.equal(a.created, true);
    const b = await store.loadOrCreateKey();
    assert.equal(b.created, false);
    assert.equal(b.loosePermissions, false);
    assert.deepEqual(b.key.publicKey, a.key.publicKey);
    assert.match(await readFile(store.keyPath, 'utf8'), /^[0-9a-f]{64}\n$/);
    await chmod(store.keyPath, 0o644);
    assert.equal((await store.loadOrCreateKey()).loosePermissions, true);
  });

  it('round-trips relay records and re-verifies their signatures', async () => {
    const d = await tempDir();
    const store = new DirectoryStore(d);
    await store.init();
    const r = makeTestRelay();
    const envelope = signDescriptor(r.identity, r.descriptor);
    await store.saveState({
      serial: 42,
      relays: [{ envelope, firstSeen: 1, lastSeen: 2 }],
      withdrawn: [{ id: 'ab'.repeat(32), published: 3, expires: 4 }],
    });
    const loaded = await store.loadState();
    assert.equal(loaded.serial, 42);
    assert.deepEqual(loaded.relays, [{ envelope, firstSeen: 1, lastSeen: 2, descriptor: r.descriptor }]);
    assert.deepEqual(loaded.withdrawn, [{ id: 'ab'.repeat(32), published: 3, expires: 4 }]);

    // A record changed on disk no longer verifies: a clear error, not a silently smaller network.
    const doc = JSON.parse(await readFile(store.statePath, 'utf8'));
    doc.relays[0].envelope.body = doc.relays[0].envelope.body.replace('"port":9001', '"port":9002');
    await writeFile(store.statePath, JSON.stringify(doc));
    await assert.rejects(store.loadState(), (err: unknown) => {
      assert.equal((err as DirectoryError).code, 'ALLIUM_DIRECTORY_STORE_CORRUPT');
      assert.match((err as Error).message, /relay record 0/);
      return true;
    });
  });

  it('an empty data directory starts with no relays', async () => {
    const store = new DirectoryStore(join(await tempDir(), 'nested', 'dir'));
    await store.init();
    assert.deepEqual(await store.loadState(), { serial: 0, relays: [], withdrawn: [] });
  });
});

describe('Directory.start refuses a damaged data directory', () => {
  it('corrupt relays.json', async () => {
    const d = await tempDir();
    const dir = await Directory.start({ dataDir: d });
    await dir.stop();
    await writeFile(join(d, 'relays.json'), '{"format": "allium-directory-state", "vers');
    await startFails(d, 'ALLIUM_DIRECTORY_STORE_CORRUPT');
    await writeFile(join(d, 'relays.json'), '{"format": "something-else"}');
    await startFails(d, 'ALLIUM_DIRECTORY_STORE_CORRUPT');
  });

  it('relay records without the key that signed them', async () => {
    const d = await tempDir();
    const dir = await Directory.start({ dataDir: d });
    await dir.stop();
    await rm(join(d, 'directory-key'));
    await startFails(d, 'ALLIUM_DIRECTORY_KEY_MISSING');
  });

  it('a key file that is not a key', async () => {
    const d = await tempDir();
    await writeFile(join(d, 'directory-key'), 'hello\n', { mode: 0o600 });
    await startFails(d, 'ALLIUM_DIRECTORY_KEY_CORRUPT');
  });

  it('bad timing options', async () => {
    await assert.rejects(
      Directory.start({ dataDir: await tempDir(), consensusFreshMs: 10_000, consensusValidMs: 5_000 }),
      (err: unknown) => (err as DirectoryError).code === 'ALLIUM_DIRECTORY_CONFIG',
    );
  });
});
