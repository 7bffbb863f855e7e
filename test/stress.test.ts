// An attacker's tests against a running network (in-process, bounded in count and time): stalled
// connections, a CREATE flood, a reader that never reads, and bad frames. An ordinary client keeps
// fetching meanwhile, and memory stays bounded: the process's RSS (network and test together) may
// grow by at most MEMORY_BOUND over what it was when each attack began. The bound is loose, far
// above what each attack costs, and far under what one that held memory per connection or per
// byte sent would.
import assert from 'node:assert/strict';
import net from 'node:net';
import { text } from 'node:stream/consumers';
import { after, before, test } from 'node:test';
import { ntorClientStart } from '../src/crypto/ntor.js';
import { streamGet } from '../src/net/http-fetch.js';
import { decodeDestroy, encodeCreate } from '../src/wire/cell-bodies.js';
import {
  CellCommand,
  DestroyReason,
  HandshakeType,
  RELAY_DATA_MAX,
  STREAM_WINDOW_START,
} from '../src/wire/constants.js';
import { type InProcessNetwork, startNetwork } from './helpers/network.js';
import { rawLink } from './helpers/raw-client.js';
import { waitFor } from './helpers/wait.js';
import { makeFiles, sha256, startHttpServer, type WebServer } from './helpers/web.js';

let netw: InProcessNetwork;
let web: WebServer;
const files = makeFiles();
const MiB = 1024 * 1024;
const MEMORY_BOUND = 128 * MiB;
const mib = (bytes: number) => `${Math.round(bytes / MiB)} MiB`;

/** The RSS when an attack begins; `check` prints the growth since and asserts it is under the bound. */
function memoryBaseline(what: string) {
  const base = process.memoryUsage().rss;
  console.log(`${what}: RSS at the start ${mib(base)}`);
  return (when: string) => {
    const now = process.memoryUsage().rss;
    console.log(`${what}: RSS ${when} ${mib(now)} (${now >= base ? '+' : ''}${mib(now - base)})`);
    assert.ok(now - base <= MEMORY_BOUND, `${what}: RSS grew by ${mib(now - base)} ${when}`);
  };
}

before(async () => {
  web = await startHttpServer(files);
  netw = await startNetwork({
    relays: 3,
    exits: 1,
    relayOptions: () => ({ limits: { createsPerSecond: 50, createBurst: 100 } }),
  });
});
after(async () => {
  await netw?.stop();
  await web?.close();
});

async function ordinaryFetch(): Promise<void> {
  const res = await streamGet(`${web.url}/hello`, { connect: (h, p) => netw.client.connect(h, p) });
  assert.equal(await text(res), files['/hello'].toString());
}

test('1,000 connections that open and stall do not stop an ordinary client', async () => {
  const relay = netw.relays[1];
  const memory = memoryBaseline('stalled connections');
  const sockets: net.Socket[] = [];
  await Promise.all(
    Array.from(
      { length: 1000 },
      () =>
        new Promise<void>((resolve) => {
          const s = net.connect(relay.port, '127.0.0.1', () => resolve());
          s.on('error', () => resolve());
          sockets.push(s);
        }),
    ),
  );
  await ordinaryFetch();
  memory('with 1,000 stalled connections');
  const failuresBefore = relay.stats.handshakeFailures;
  for (const s of sockets) s.destroy();
  await waitFor(
    'every stalled connection was counted and dropped',
    () => relay.stats.handshakeFailures - failuresBefore >= 1000,
  );
  assert.equal(relay.stats.handshakeFailures - failuresBefore, 1000);
  await ordinaryFetch();
  memory('after they closed');
});

test('a CREATE flood on one link is cut off by the rate limit; the relay keeps serving', async () => {
  const relay = netw.relays[1];
  const memory = memoryBaseline('CREATE flood');
  const raw = await rawLink(relay);
  const answers = () => {
    let created = 0;
    let limited = 0;
    for (const c of raw.cells) {
      if (c.command === CellCommand.CREATED) created++;
      if (c.command === CellCommand.DESTROY && decodeDestroy(c.body).reason === DestroyReason.RESOURCELIMIT)
        limited++;
    }
    return { created, limited };
  };
  const before = relay.stats.limitRejections;
  for (let i = 0; i < 1000; i++) {
    const { onionskin } = ntorClientStart(relay.id, relay.onionKey.publicKey);
    raw.link.send(
      (0x80000000 | (i + 1)) >>> 0,
      CellCommand.CREATE,
      encodeCreate(HandshakeType.NTOR_X25519_SHA256, onionskin),
    );
  }
  const { created, limited } = await waitFor(
    'every CREATE is answered or refused',
    () => {
      const a = answers();
      return a.created + a.limited >= 1000 && a;
    },
    { timeoutMs: 20_000 },
  );
  console.log(`CREATE flood: ${created} answered, ${limited} refused (RESOURCELIMIT)`);
  memory('after the flood');
  assert.ok(created <= 200, `no more than the burst plus the rate were answered (${created})`);
  assert.ok(limited >= 700);
  assert.ok(relay.stats.limitRejections - before >= 700);
  raw.close();
  await ordinaryFetch();
});

test('a stream that is never read holds at most its window in memory, and others are not slowed', async () => {
  const memory = memoryBaseline('a stream never read');
  const stalled = await netw.client.connect('127.0.0.1', web.port);
  stalled.write(`GET /random10m HTTP/1.1\r\nHost: x\r\n\r\n`);
  // Never read `stalled`. The exit may send only its stream window; the rest stays at the web server.
  let last = -1;
  await waitFor(
    'the stalled stream stops receiving',
    () => {
      const same = stalled.bytesIn > 0 && stalled.bytesIn === last;
      last = stalled.bytesIn;
      return same;
    },
    { everyMs: 300 },
  );
  console.log(`bytes that reached the stalled stream: ${stalled.bytesIn}`);
  memory('with a stalled 10 MiB stream');
  assert.ok(
    stalled.bytesIn <= STREAM_WINDOW_START * RELAY_DATA_MAX,
    `at most one stream window arrived (${stalled.bytesIn})`,
  );
  const res = await streamGet(`${web.url}/random1m`, { connect: (h, p) => netw.client.connect(h, p) });
  const chunks: Buffer[] = [];
  for await (const c of res) chunks.push(c as Buffer);
  assert.equal(sha256(Buffer.concat(chunks)), sha256(files['/random1m']));
  stalled.destroy();
  memory('after');
});

test('an oversized frame or a truncated handshake closes that connection only', async () => {
  const relay = netw.relays[2];
  for (const bytes of [Buffer.from([0xff, 0xff, 1, 2, 3]), Buffer.from([0x00, 0x20, 1, 2, 3])]) {
    const closed = await new Promise<boolean>((resolve) => {
      const s = net.connect(relay.port, '127.0.0.1', () => s.end(bytes));
      s.on('error', () => {});
      s.on('close', () => resolve(true));
      setTimeout(() => resolve(false), 15_000).unref();
    });
    assert.equal(closed, true);
  }
  await ordinaryFetch();
});
