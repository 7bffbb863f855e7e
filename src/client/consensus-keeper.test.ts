import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { makeTestRelay } from '../../test/helpers/relay-fixtures.js';
import { type OpenConsensusOptions, openConsensusJson, signConsensus } from '../core/documents.js';
import { IdentityKey } from '../crypto/keys.js';
import { DirectoryClientError } from '../net/directory-client.js';
import type { Consensus, SignedEnvelope } from '../wire/directory-docs.js';
import {
  CONSENSUS_CACHE_FILE,
  ConsensusKeeper,
  type ConsensusSource,
  refreshDelay,
  retryDelay,
} from './consensus-keeper.js';

const T0 = Date.UTC(2025, 5, 1, 12, 0, 0);
const MIN = 60_000;
const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'allium-keeper-'));
  dirs.push(d);
  return d;
}
after(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

const directoryKey = IdentityKey.generate();
const relays = [makeTestRelay({ nickname: 'a' }), makeTestRelay({ nickname: 'b' })].map((r) => ({
  ...r.descriptor,
  flags: ['Running', 'Exit'],
}));

function signed(serial: number, validAfter: number, key = directoryKey): SignedEnvelope {
  const c: Consensus = {
    network: 'allium',
    serial,
    validAfter,
    freshUntil: validAfter + MIN,
    validUntil: validAfter + 180 * MIN,
    directoryKey: key.publicKey.toString('base64'),
    relays,
  };
  return signConsensus(key, c);
}

/** A directory that serves whatever envelope the test sets, verified as DirectoryClient does; or is down. */
class FakeDirectory implements ConsensusSource {
  readonly url = 'http://127.0.0.1:7';
  envelope: SignedEnvelope | null = null;
  fetches = 0;
  async fetchConsensus(opts: OpenConsensusOptions) {
    this.fetches++;
    if (!this.envelope) {
      throw new DirectoryClientError('ALLIUM_DIRECTORY_UNREACHABLE', 'cannot reach the directory (test)');
    }
    const consensus = openConsensusJson(this.envelope, directoryKey.publicKey, opts);
    return { consensus, document: this.envelope };
  }
}

function keeperOf(source: ConsensusSource, clock: { now: number }, dataDir?: string): ConsensusKeeper {
  return new ConsensusKeeper({
    source,
    directoryKey: directoryKey.publicKey,
    dataDir,
    now: () => clock.now,
  });
}

describe('ConsensusKeeper', () => {
  it('fetches, verifies and caches; a new keeper loads the cache and verifies it again', async () => {
    const dataDir = join(await tempDir(), 'client');
    const dir = new FakeDirectory();
    const clock = { now: T0 };
    dir.envelope = signed(100, T0);
    const k1 = keeperOf(dir, clock, dataDir);
    assert.equal(await k1.load(), null);
    const c = await k1.refresh();
    assert.equal(c.serial, 100);
    assert.equal(k1.current?.serial, 100);
    const file = join(dataDir, CONSENSUS_CACHE_FILE);
    assert.deepEqual(JSON.parse(await readFile(file, 'utf8')), dir.envelope);
    assert.equal((await stat(file)).mode & 0o077, 0);

    // A restart with the directory down still has the consensus.
    const down = new FakeDirectory();
    clock.now = T0 + 30 * MIN;
    const k2 = keeperOf(down, clock, dataDir);
    assert.equal((await k2.load())?.serial, 100);
    assert.equal(k2.current?.serial, 100);
    await assert.rejects(k2.refresh(), { code: 'ALLIUM_DIRECTORY_UNREACHABLE' });
    assert.equal(k2.current?.serial, 100, 'a failed refresh keeps the consensus held');
  });

  it('keeps working through an outage until validUntil, then says the consensus expired', async () => {
    const dir = new FakeDirectory();
    const clock = { now: T0 };
    dir.envelope = signed(5, T0);
    const k = keeperOf(dir, clock);
    await k.refresh();
    dir.envelope = null;
    clock.now = T0 + 179 * MIN;
    await assert.rejects(k.refresh());
    assert.equal(k.current?.serial, 5);
    clock.now = T0 + 182 * MIN; // past validUntil and the 60 s of skew
    assert.equal(k.current, null);
    const err = k.noConsensusError();
    assert.equal(err.code, 'ALLIUM_CLIENT_NO_CONSENSUS');
    assert.match(
      err.message,
      /consensus \(serial 5\) expired at .* has not given a newer one \(last attempt: cannot reach/,
    );
  });

  it('refuses a rollback, also across a restart, and keeps the newer consensus and its cache', async () => {
    const dataDir = await tempDir();
    const dir = new FakeDirectory();
    const clock = { now: T0 + MIN };
    const older = signed(10, T0);
    const newer = signed(20, T0 + MIN);
    dir.envelope = newer;
    const k = keeperOf(dir, clock, dataDir);
    await k.refresh();
    dir.envelope = older; // still inside its validity window: only the serial gives it away
    await assert.rejects(k.refresh(), { code: 'ALLIUM_CONSENSUS_ROLLBACK' });
    assert.equal(k.current?.serial, 20);
    assert.deepEqual(JSON.parse(await readFile(join(dataDir, CONSENSUS_CACHE_FILE), 'utf8')), newer);

    const k2 = keeperOf(dir, clock, dataDir);
    await k2.load();
    assert.equal(k2.minSerial, 20);
    await assert.rejects(k2.refresh(), { code: 'ALLIUM_CONSENSUS_ROLLBACK' });

    // Without the cache the same offer is accepted: the floor comes from the cache.
    const k3 = keeperOf(dir, clock);
    assert.equal((await k3.refresh()).serial, 10);
  });

  it('refuses a stale consensus from the directory', async () => {
    const dir = new FakeDirectory();
    const clock = { now: T0 + 4 * 60 * MIN };
    dir.envelope = signed(7, T0); // valid until T0 + 3 h
    const k = keeperOf(dir, clock);
    await assert.rejects(k.refresh(), { code: 'ALLIUM_CONSENSUS_EXPIRED' });
    assert.equal(k.current, null);
  });

  it('ignores a cache that is expired (but remembers its serial), foreign, or damaged', async () => {
    const dataDir = await tempDir();
    const file = join(dataDir, CONSENSUS_CACHE_FILE);
    const dir = new FakeDirectory();
    const clock = { now: T0 + 4 * 60 * MIN };

    await writeFile(file, JSON.stringify(signed(50, T0)));
    const expired = keeperOf(dir, clock, dataDir);
    assert.equal(await expired.load(), null);
    assert.equal(expired.current, null);
    assert.equal(expired.minSerial, 50);

    await writeFile(file, JSON.stringify(signed(60, clock.now, IdentityKey.generate())));
    const foreign = keeperOf(dir, clock, dataDir);
    assert.equal(await foreign.load(), null);
    assert.equal(foreign.minSerial, undefined);

    const forged = signed(70, clock.now);
    forged.body = forged.body.replace('"serial":70', '"serial":71');
    await writeFile(file, JSON.stringify(forged));
    assert.equal(await keeperOf(dir, clock, dataDir).load(), null);

    await writeFile(file, '{"body": "trunc');
    const damaged = keeperOf(dir, clock, dataDir);
    assert.equal(await damaged.load(), null);
    // ...and the next good fetch replaces it.
    dir.envelope = signed(80, clock.now);
    await damaged.refresh();
    assert.deepEqual(JSON.parse(await readFile(file, 'utf8')), dir.envelope);
  });

  it('refreshes in the background and picks up a newer consensus', async () => {
    const dir = new FakeDirectory();
    const now = Date.now();
    dir.envelope = signConsensus(directoryKey, {
      network: 'allium',
      serial: 1,
      validAfter: now,
      freshUntil: now + 200,
      validUntil: now + 60 * MIN,
      directoryKey: directoryKey.publicKey.toString('base64'),
      relays,
    });
    const k = new ConsensusKeeper({ source: dir, directoryKey: directoryKey.publicKey, minRetryMs: 50 });
    await k.refresh();
    dir.envelope = signed(2, now);
    k.start();
    try {
      for (let i = 0; i < 100 && k.current?.serial !== 2; i++) await new Promise((r) => setTimeout(r, 50));
      assert.equal(k.current?.serial, 2);
    } finally {
      k.stop();
    }
    const fetches = dir.fetches;
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(dir.fetches, fetches, 'stop() ends the refreshes');
  });

  it('schedules the next fetch before freshUntil, and backs off while the directory is down', () => {
    const c = JSON.parse(signed(1, T0).body) as Consensus;
    for (const r of [0, 0.5, 0.999]) {
      const d = refreshDelay(c, T0, 1000, () => r);
      assert.ok(T0 + d >= T0 + MIN / 2 && T0 + d < c.freshUntil, `delay ${d} with random ${r}`);
    }
    // Holding a consensus already past its refresh point: poll again within the fresh window.
    const late = refreshDelay(c, c.freshUntil + 5000, 1000, () => 0.5);
    assert.ok(late > 0 && late <= MIN);
    const delays = [1, 2, 3, 4, 10, 50].map((n) => retryDelay(n, 1000, 60_000, () => 0.5));
    assert.deepEqual(delays, [1000, 2000, 4000, 8000, 60_000, 60_000]);
  });
});
