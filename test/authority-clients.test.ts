// Relays and clients of an authority set, in one process over real HTTP and real links: relays
// register with every authority and serve the consensus as caches; a client accepts only a
// consensus a strict majority signed, says what is missing when not, and moves past a cache that
// altered a byte.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { AlliumClient } from '../src/client/client.js';
import { cacheUrlsOf } from '../src/core/consensus-caches.js';
import { openTrustedConsensus } from '../src/core/consensus-trust.js';
import { Directory } from '../src/directory/directory.js';
import { DirectoryStore } from '../src/directory/store.js';
import { type AlliumError, createClient } from '../src/index.js';
import { type Logger, silentLogger } from '../src/log.js';
import { ConsensusSources } from '../src/net/consensus-sources.js';
import { Relay } from '../src/relay/relay.js';
import type { AuthoritySet } from '../src/wire/authority-docs.js';

const INTERVAL_MS = 1000;
const dirs: string[] = [];

async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'allium-auth-clients-'));
  dirs.push(d);
  return d;
}

async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

/** An HTTP server that answers GET /v1/consensus with `body()`, counting the requests. */
async function fakeServer(
  body: () => string,
): Promise<{ url: string; hits: number; close(): Promise<void> }> {
  const state = { hits: 0 };
  const srv = http.createServer((_req, res) => {
    state.hits++;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(body());
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(srv.address() as net.AddressInfo).port}`;
  return {
    url,
    get hits() {
      return state.hits;
    },
    close: () =>
      new Promise<void>((r) => {
        srv.closeAllConnections();
        srv.close(() => r());
      }),
  };
}

/** A logger that keeps warnings (message and fields) for the assertions. */
function recordingLogger(lines: string[]): Logger {
  const rec = (obj: unknown, msg?: string) => {
    lines.push(`${typeof obj === 'string' ? obj : (msg ?? '')} ${JSON.stringify(obj)}`);
  };
  const l = { ...silentLogger, warn: rec, child: () => l } as unknown as Logger;
  return l;
}

let set: AuthoritySet;
const auths: Directory[] = [];
const relays: Relay[] = [];
/** A consensus all three signed, as served. */
let goodText = '';

before(async () => {
  set = { authorities: [] };
  const setup: { dataDir: string; port: number }[] = [];
  for (let i = 0; i < 3; i++) {
    const dataDir = await tempDir();
    const store = new DirectoryStore(dataDir);
    await store.init();
    const { key } = await store.loadOrCreateKey();
    const port = await freePort();
    setup.push({ dataDir, port });
    set.authorities.push({
      nickname: `auth${i + 1}`,
      id: key.id.toString('hex'),
      identityKey: key.publicKey.toString('base64'),
      url: `http://127.0.0.1:${port}`,
    });
  }
  for (const s of setup) {
    auths.push(
      await Directory.start({
        dataDir: s.dataDir,
        port: s.port,
        authorities: set,
        votingIntervalMs: INTERVAL_MS,
        // Every relay here registers from one loopback address.
        listing: { maxRelaysPerLocalAddress: 32 },
      }),
    );
  }
  for (let i = 0; i < 3; i++) {
    relays.push(
      await Relay.start({
        dataDir: await tempDir(),
        nickname: `r${i + 1}`,
        authorities: set,
        address: '127.0.0.1',
        port: 0,
        cachePort: 0,
        cacheRefreshMs: 500,
        directoryWaitMs: 10_000,
        ...(i === 0 ? { exitPolicy: ['accept *:*'], allowPrivate: true } : {}),
      }),
    );
  }
  // Wait (bounded) for a consensus listing the three relays, signed by all three authorities.
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    const res = await fetch(`${auths[0].url}/v1/consensus`).catch(() => null);
    if (res?.status === 200) {
      const text = await res.text();
      const json = JSON.parse(text) as { signatures: unknown[] };
      const { consensus } = openTrustedConsensus(json, { kind: 'authorities', set });
      if (consensus.relays.length === 3 && json.signatures.length === 3) {
        goodText = text;
        break;
      }
    }
    await sleep(100);
  }
  assert.ok(goodText, 'a consensus of the three relays, signed by all three authorities, within 20 s');
});

after(async () => {
  await Promise.all(relays.map((r) => r.stop()));
  await Promise.all(auths.map((a) => a.stop()));
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

describe('relays and clients of three authorities', () => {
  it('every relay registered with every authority, and the consensus names each one as a cache', async () => {
    for (const a of auths) assert.equal(a.service.liveRelays().length, 3, `${a.url} holds all three relays`);
    const { consensus } = openTrustedConsensus(JSON.parse(goodText), { kind: 'authorities', set });
    const caches = cacheUrlsOf(consensus);
    assert.deepEqual(
      caches.sort(),
      relays.map((r) => `http://127.0.0.1:${r.cachePort}`).sort(),
      'each relay names its cache port in the descriptor the consensus lists',
    );
  });

  it('a relay cache serves the consensus byte for byte as the authorities signed it', async () => {
    const deadline = Date.now() + 15_000;
    let served: { body: string } | null = null;
    while (Date.now() < deadline) {
      const res = await fetch(`http://127.0.0.1:${relays[1].cachePort}/v1/consensus`);
      if (res.status === 200) {
        served = (await res.json()) as { body: string };
        const c = openTrustedConsensus(served, { kind: 'authorities', set }).consensus;
        if (c.relays.length === 3) break;
      }
      await sleep(200);
    }
    assert.ok(served, 'the cache serves a consensus');
    const opened = openTrustedConsensus(served, { kind: 'authorities', set });
    assert.equal(opened.consensus.relays.length, 3);
  });

  it('a cache that alters one byte is refused, with the reason, and the next source is asked', async () => {
    const good = JSON.parse(goodText) as { body: string; signatures: unknown[] };
    // One digit of the body changed: every signature fails.
    const i = good.body.indexOf('"bandwidth":') + '"bandwidth":'.length;
    const digit = good.body[i];
    const altered = {
      ...good,
      body: `${good.body.slice(0, i)}${digit === '1' ? '2' : '1'}${good.body.slice(i + 1)}`,
    };
    const bad = await fakeServer(() => JSON.stringify(altered));
    const lines: string[] = [];
    try {
      const sources = new ConsensusSources({
        trust: { kind: 'authorities', set },
        caches: () => [bad.url],
        logger: recordingLogger(lines),
      });
      const got = await sources.fetchConsensus({});
      assert.equal(bad.hits, 1, 'the altering cache was asked first');
      assert.ok(
        set.authorities.some((a) => a.url === sources.lastSource),
        `then an authority: ${sources.lastSource}`,
      );
      assert.equal(got.consensus.relays.length, 3);
      const refusal = lines.find((l) => l.includes('refused the consensus a cache served'));
      assert.ok(refusal, lines.join('\n'));
      assert.match(refusal, /0 of 3 signatures; need 2/);
      assert.match(refusal, new RegExp(bad.url.replace(/[.:/]/g, '\\$&')));
    } finally {
      await bad.close();
    }
  });

  it('a cache that lags (an older consensus than the one held) is passed over quietly, never taken', async () => {
    const old = JSON.parse(goodText) as { body: string };
    const oldSerial = (JSON.parse(old.body) as { serial: number }).serial;
    const lagging = await fakeServer(() => goodText);
    const lines: string[] = [];
    try {
      const sources = new ConsensusSources({
        trust: { kind: 'authorities', set },
        caches: () => [lagging.url],
        logger: recordingLogger(lines),
      });
      // Bounded: a newer period's consensus (one a second) held by the client.
      let held = 0;
      for (let i = 0; i < 50 && held <= oldSerial; i++) {
        const doc = await (await fetch(`${auths[0].url}/v1/consensus`)).json();
        held = openTrustedConsensus(doc, { kind: 'authorities', set }).consensus.serial;
        if (held <= oldSerial) await sleep(100);
      }
      assert.ok(held > oldSerial, 'the authorities moved on to a newer consensus');
      const hits = lagging.hits;
      const got = await sources.fetchConsensus({ minSerial: held });
      assert.ok(lagging.hits > hits, 'the lagging cache was asked');
      assert.ok(got.consensus.serial >= held, 'its older consensus was not taken');
      assert.ok(
        set.authorities.some((a) => a.url === sources.lastSource),
        `from ${sources.lastSource}`,
      );
      assert.deepEqual(
        lines.filter((l) => l.includes('refused')),
        [],
        'a lagging cache is not worth a warning each time',
      );
    } finally {
      await lagging.close();
    }
  });

  it('a client refuses a consensus only one of three signed: "1 of 3 signatures; need 2"', async () => {
    const good = JSON.parse(goodText) as { body: string; signatures: unknown[] };
    const minority = JSON.stringify({ body: good.body, signatures: good.signatures.slice(0, 1) });
    // The same three authorities (keys), at addresses that serve only the minority-signed document.
    const fakes = await Promise.all(set.authorities.map(() => fakeServer(() => minority)));
    try {
      const liars: AuthoritySet = {
        authorities: set.authorities.map((a, i) => ({ ...a, url: fakes[i].url })),
      };
      await assert.rejects(
        AlliumClient.start({ authorities: liars, startTimeoutMs: 5000 }),
        (err: Error & { code?: string }) => {
          assert.equal(err.code, 'ALLIUM_CONSENSUS_SIGNATURE');
          assert.match(
            err.message,
            /consensus refused: 1 of 3 signatures; need 2 \(auth2 \([0-9a-f]{8}\): no signature; auth3/,
          );
          return true;
        },
      );
    } finally {
      await Promise.all(fakes.map((f) => f.close()));
    }
  });

  it('a client of the set builds a circuit through the relays the consensus lists', async () => {
    const client = await AlliumClient.start({ authorities: set, startTimeoutMs: 10_000 });
    try {
      const c = client.currentConsensus;
      assert.equal(c?.relays.length, 3);
      const circ = await client.buildCircuit();
      assert.equal(circ.hops.length, 3);
    } finally {
      await client.close();
    }
  });

  it('through the library: createClient({ authorities }) takes the set file and fetches a page', async () => {
    const site = http.createServer((_req, res) => res.end('hello through the set\n'));
    await new Promise<void>((r) => site.listen(0, '127.0.0.1', r));
    const siteUrl = `http://127.0.0.1:${(site.address() as net.AddressInfo).port}/`;
    const text = JSON.stringify({ format: 'allium-authorities', version: 1, ...set });
    try {
      for (const authorities of [text, set]) {
        const client = await createClient({ authorities, startTimeoutMs: 10_000 });
        try {
          assert.equal(await (await client.fetch(siteUrl)).text(), 'hello through the set\n');
          assert.equal(client.raw.currentConsensus?.relays.length, 3);
        } finally {
          await client.close();
        }
      }
    } finally {
      site.closeAllConnections();
      await new Promise<void>((r) => site.close(() => r()));
    }
    await assert.rejects(
      createClient({ authorities: set, directory: set.authorities[0].url }),
      (e: AlliumError) => e.code === 'ALLIUM_CLIENT_OPTIONS',
    );
    const wrongId = {
      authorities: set.authorities.map((a, i) => (i === 0 ? { ...a, id: '0'.repeat(64) } : a)),
    };
    await assert.rejects(
      createClient({ authorities: wrongId }),
      (e: AlliumError) => e.code === 'ALLIUM_AUTHORITY_SET_INVALID' && /authorities\.0/.test(e.message),
    );
  });
});
