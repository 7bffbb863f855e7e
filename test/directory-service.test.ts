// The directory end to end, with real processes on loopback: address discovery, the reachability check,
// liveness (TTL, withdraw, restart), directory restart and outage, and a client's cached consensus.
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { text } from 'node:stream/consumers';
import { after, before, describe, test } from 'node:test';
import { CONSENSUS_CACHE_FILE } from '../src/client/consensus-keeper.js';
import { signConsensus } from '../src/core/documents.js';
import { IdentityKey } from '../src/crypto/keys.js';
import { DirectoryClient } from '../src/net/directory-client.js';
import { streamGet } from '../src/net/http-fetch.js';
import { socksConnect } from '../src/net/socks-client.js';
import { type ConsensusView, parseConsensusBody } from '../src/wire/directory-docs.js';
import {
  AlliumProcess,
  directoryArgs,
  freePort,
  relayArgs as relayCommand,
  runAllium,
} from './helpers/allium-process.js';
import { missingIPv6Loopback, skipUnlessAvailable } from './helpers/requirements.js';
import { tempDir } from './helpers/temp.js';
import { waitFor } from './helpers/wait.js';
import { startHttpServer, type WebServer } from './helpers/web.js';

const TTL_SECONDS = 5;
const NO_IPV6 = skipUnlessAvailable(await missingIPv6Loopback());
const PAGE = 'PAGE-MARKER-31c9 the directory may come and go\n';

describe('the directory as a service (directory, relays and clients as processes on 127.0.0.1)', () => {
  const root = tempDir('dirsvc');
  const cacheDir = join(root, 'fetch-cache');
  const procs: AlliumProcess[] = [];
  let web: WebServer;
  let dirPort: number;
  let directory: AlliumProcess;
  let url = '';
  let key = '';
  let base: AlliumProcess[] = [];
  let client: AlliumProcess;
  /** The raw consensus served right after the relays registered: an older serial, for the rollback test. */
  let earlyEnvelope = '';

  const dirArgs = (ttlSeconds: number) =>
    directoryArgs(join(root, 'directory'), dirPort, [
      '--relay-ttl',
      String(ttlSeconds),
      '--log-level',
      'info',
    ]);
  const relayArgs = (nick: string, extra: string[] = []) =>
    relayCommand({
      directory: url,
      key,
      dataDir: join(root, nick),
      nickname: nick,
      extra: ['--port', '0', '--refresh', '1', '--log-level', 'info', ...extra],
    });
  const start = async (name: string, args: string[]) => {
    const p = await AlliumProcess.start(name, args);
    procs.push(p);
    return p;
  };
  const consensus = (minSerial?: number): Promise<ConsensusView> =>
    new DirectoryClient({ url, directoryKey: Buffer.from(key, 'base64'), timeoutMs: 5000 }).consensus({
      minSerial,
    });
  const listedIds = async () => (await consensus()).relays.map((r) => r.id);
  const fetchPage = (opts: { dataDir?: string; directory?: string } = {}) =>
    runAllium([
      'fetch',
      `${web.url}/page`,
      '--directory',
      opts.directory ?? url,
      '--directory-key',
      key,
      ...(opts.dataDir ? ['--data-dir', opts.dataDir] : []),
    ]);
  /** A page through the long-running client's SOCKS port, on a new circuit (fresh credentials). */
  const pageViaClient = async (isolation: string) => {
    const [host, port] = [
      client.ready.socks.replace(/:\d+$/, ''),
      Number(client.ready.socks.split(':').pop()),
    ];
    const res = await streamGet(`${web.url}/page`, {
      connect: (h, p) =>
        socksConnect({
          proxyHost: host,
          proxyPort: port,
          host: h,
          port: p,
          username: isolation,
          password: 'x',
        }),
    });
    return text(res);
  };

  before(async () => {
    web = await startHttpServer({ '/page': Buffer.from(PAGE) });
    dirPort = await freePort();
    directory = await start('directory', dirArgs(TTL_SECONDS));
    assert.ok(directory.running, directory.log);
    url = directory.ready.url;
    key = directory.ready.key;
    const exit = ['--exit', '--allow-private'];
    base = await Promise.all([
      start('exit1', relayArgs('exit1', exit)),
      start('exit2', relayArgs('exit2', exit)),
      start('mid1', relayArgs('mid1')),
      start('mid2', relayArgs('mid2')),
    ]);
    for (const r of base) assert.ok(r.running, `${r.name} did not start:\n${r.log}`);
    await waitFor('the four relays are listed', async () => (await listedIds()).length === 4, {
      everyMs: 100,
    });
    earlyEnvelope = await (await fetch(`${url}/v1/consensus`)).text();
    client = await start('client', [
      'client',
      '--directory',
      url,
      '--directory-key',
      key,
      '--socks',
      '127.0.0.1:0',
      '--data-dir',
      join(root, 'client'),
      '--log-level',
      'info',
    ]);
    assert.ok(client.running, client.log);
  });

  after(async () => {
    await Promise.all(procs.map((p) => p.kill('SIGTERM')));
    await web?.close();
    rmSync(root, { recursive: true, force: true });
  });

  test('a relay started without --address is listed with the address the directory saw', async () => {
    const c = await consensus();
    for (const r of base) {
      const listed = c.relays.find((x) => x.id === r.ready.id);
      assert.ok(listed, `${r.name} is not listed`);
      assert.equal(listed.address, '127.0.0.1');
      assert.equal(listed.port, Number(r.ready.port));
      assert.match(r.log, /learned public address from the directory/);
    }
  });

  test('over IPv6 too: a relay on ::1 is listed at ::1', {
    skip: NO_IPV6,
  }, async () => {
    const d6 = await start('directory6', [
      'directory',
      '--data-dir',
      join(root, 'directory6'),
      '--host',
      '::1',
      '--port',
      '0',
      '--log-level',
      'warn',
    ]);
    assert.ok(d6.running, d6.log);
    assert.match(d6.ready.url, /^http:\/\/\[::1\]:\d+$/);
    const r6 = await start('relay6', [
      'relay',
      '--directory',
      d6.ready.url,
      '--directory-key',
      d6.ready.key,
      '--data-dir',
      join(root, 'relay6'),
      '--host',
      '::1',
      '--log-level',
      'warn',
    ]);
    assert.ok(r6.running, r6.log);
    const c = await new DirectoryClient({
      url: d6.ready.url,
      directoryKey: Buffer.from(d6.ready.key, 'base64'),
    }).consensus();
    assert.deepEqual(
      c.relays.map((x) => [x.id, x.address, x.port]),
      [[r6.ready.id, '::1', Number(r6.ready.port)]],
    );
    await r6.kill();
    await d6.kill();
  });

  test('a relay registered at an address and port nobody listens on is not listed, and its log says why', async () => {
    // It listens on 127.0.0.1 but advertises 127.0.0.2: nothing answers at the address it registered.
    const bad = await start('unreachable', relayArgs('unreachable', ['--address', '127.0.0.2']));
    await bad.waitExit();
    assert.notEqual(bad.exitCode, 0);
    assert.match(
      bad.log,
      /not reachable from the directory at 127\.0\.0\.2:\d+: TCP connection failed \(connect ECONNREFUSED/,
    );
    await directory.waitForLog(/relay not reachable: not listed/);
    const c = await consensus();
    assert.ok(!c.relays.some((r) => r.nickname === 'unreachable'));
    assert.equal(c.relays.length, 4);
  });

  test('liveness: a restart with the same identity replaces the record, SIGKILL drops out within the TTL, a clean stop withdraws at once', async () => {
    const first = await start('extra', relayArgs('extra'));
    const id = first.ready.id;
    await waitFor('the relay is listed', async () => (await listedIds()).includes(id), {
      timeoutMs: 5000,
      everyMs: 100,
    });
    await first.kill('SIGKILL');

    // Same data directory: same identity, a new port. The old record has not expired yet.
    const again = await start('extra-again', relayArgs('extra'));
    assert.equal(again.ready.id, id);
    assert.notEqual(again.ready.port, first.ready.port);
    const mine = (await consensus()).relays.filter((r) => r.id === id);
    assert.deepEqual(
      mine.map((r) => r.port),
      [Number(again.ready.port)],
    );
    await directory.waitForLog(new RegExp(`"id":"${id}".*relay descriptor changed`));

    await again.kill('SIGKILL');
    await waitFor(
      `relay ${id} leaves the consensus within the TTL (${TTL_SECONDS} s) after SIGKILL`,
      async () => !(await listedIds()).includes(id),
      { timeoutMs: TTL_SECONDS * 1000 + 5000, everyMs: 100 },
    );
    await directory.waitForLog(new RegExp(`"id":"${id}".*relay dropped: not refreshed within the TTL`));
    // The relays that kept refreshing stayed listed through several TTLs.
    const ids = await listedIds();
    for (const r of base) assert.ok(ids.includes(r.ready.id), `${r.name} dropped out`);

    const leaver = await start('leaver', relayArgs('leaver'));
    await waitFor('the leaver is listed', async () => (await listedIds()).includes(leaver.ready.id), {
      timeoutMs: 5000,
      everyMs: 100,
    });
    await leaver.kill('SIGTERM');
    assert.equal(leaver.exitCode, 0);
    // Gone right after it exited, long before its TTL: it withdrew itself.
    assert.ok(!(await listedIds()).includes(leaver.ready.id));
    await directory.waitForLog(new RegExp(`"id":"${leaver.ready.id}".*relay withdrew itself`));
  });

  test('directory outage: clients keep fetching pages; killed and restarted, the directory keeps every relay and its key', async () => {
    // A fetch that caches the consensus while the directory is up.
    const first = await fetchPage({ dataDir: cacheDir });
    assert.equal(first.code, 0, first.stderr);
    assert.equal(first.stdout, PAGE);
    const before = await consensus();
    const ids = before.relays.map((r) => r.id).sort();

    await directory.kill('SIGKILL');
    await assert.rejects(consensus(), { code: 'ALLIUM_DIRECTORY_UNREACHABLE' });
    // The running client builds a new circuit from the consensus it holds; relays keep relaying.
    assert.equal(await pageViaClient('during-outage'), PAGE);
    // A new `allium fetch` process starts from its cached consensus.
    const cached = await fetchPage({ dataDir: cacheDir });
    assert.equal(cached.code, 0, cached.stderr);
    assert.equal(cached.stdout, PAGE);
    // Without a cache there is nothing to start from.
    // (Not run: it would wait out the client's 30 s start timeout.)

    // Restart on the same port and data directory. A longer TTL than the outage, so what it loads is live.
    directory = await start('directory-restarted', dirArgs(60));
    assert.ok(directory.running, directory.log);
    assert.equal(directory.ready.key, key);
    const listening = await directory.waitForLog(/directory listening/);
    assert.match(listening, new RegExp(`"relays":${ids.length}[,}]`));
    // A client configured with the old key verifies the new consensus, which has a higher serial.
    const after = await consensus(before.serial + 1);
    assert.deepEqual(after.relays.map((r) => r.id).sort(), ids);
    const fresh = await fetchPage();
    assert.equal(fresh.code, 0, fresh.stderr);
    assert.equal(fresh.stdout, PAGE);
    for (const r of base) assert.ok(r.running, `${r.name} exited during the outage`);
  });

  test('a stale or rolled-back consensus is refused', async () => {
    // Bring the cache up to date with the restarted directory.
    const update = await fetchPage({ dataDir: cacheDir });
    assert.equal(update.code, 0, update.stderr);
    const cacheFile = join(cacheDir, CONSENSUS_CACHE_FILE);
    const cachedText = readFileSync(cacheFile, 'utf8');
    const cachedSerial = parseConsensusBody(JSON.parse(cachedText).body).serial;
    const earlySerial = parseConsensusBody(JSON.parse(earlyEnvelope).body).serial;
    assert.ok(earlySerial < cachedSerial);

    // A directory (or someone in the way) that replays what we choose.
    let served = earlyEnvelope;
    const replay = http.createServer((req, res) => {
      if (req.url === '/v1/consensus') res.writeHead(200, { 'content-type': 'application/json' }).end(served);
      else res.writeHead(404).end();
    });
    await new Promise<void>((r) => replay.listen(0, '127.0.0.1', r));
    const replayUrl = `http://127.0.0.1:${(replay.address() as AddressInfo).port}`;
    try {
      // Rollback: the replayed consensus is genuine and still valid, but older than the cached one.
      const rolled = await fetchPage({ dataDir: cacheDir, directory: replayUrl });
      assert.match(rolled.stderr, /ALLIUM_CONSENSUS_ROLLBACK/);
      assert.equal(rolled.code, 0, rolled.stderr);
      assert.equal(rolled.stdout, PAGE, 'the cached consensus still serves');
      assert.equal(readFileSync(cacheFile, 'utf8'), cachedText, 'the cache keeps the newer consensus');
      // The same document is fine for a client that never saw a newer one: the cache made the difference.
      const naive = await fetchPage({ directory: replayUrl });
      assert.equal(naive.code, 0, naive.stderr);

      // Stale: signed with the directory's real key, expired an hour ago.
      const seed = Buffer.from(readFileSync(join(root, 'directory', 'directory-key'), 'utf8').trim(), 'hex');
      const now = Date.now();
      const current = parseConsensusBody(JSON.parse(cachedText).body);
      served = JSON.stringify(
        signConsensus(IdentityKey.fromSeed(seed), {
          ...current,
          serial: cachedSerial + 1_000_000,
          validAfter: now - 4 * 3600_000,
          freshUntil: now - 4 * 3600_000 + 60_000,
          validUntil: now - 3600_000,
        }),
      );
      const stale = await fetchPage({ directory: replayUrl });
      assert.notEqual(stale.code, 0);
      assert.match(stale.stderr, /consensus \d+ expired at .*: fetch a fresh one/);
      const staleCached = await fetchPage({ dataDir: cacheDir, directory: replayUrl });
      assert.match(staleCached.stderr, /ALLIUM_CONSENSUS_EXPIRED/);
      assert.equal(staleCached.code, 0, staleCached.stderr);
      assert.equal(staleCached.stdout, PAGE);
      assert.equal(readFileSync(cacheFile, 'utf8'), cachedText);
    } finally {
      await new Promise((r) => replay.close(r));
    }
  });
});
