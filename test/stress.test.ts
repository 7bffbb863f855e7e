// An attacker's tests against a running network (in-process, bounded in count and time): stalled
// connections, a CREATE flood, a reader that never reads, and bad frames. An ordinary client keeps
// fetching meanwhile, and memory stays bounded (RSS is printed before, during and after).
import assert from 'node:assert/strict';
import net from 'node:net';
import { text } from 'node:stream/consumers';
import { after, before, test } from 'node:test';
import { ntorClientStart } from '../src/crypto/ntor.js';
import { streamGet } from '../src/net/http-fetch.js';
import { connectLink } from '../src/net/link.js';
import { decodeDestroy, encodeCreate } from '../src/wire/cell-bodies.js';
import {
  CellCommand,
  DestroyReason,
  HandshakeType,
  RELAY_DATA_MAX,
  STREAM_WINDOW_START,
} from '../src/wire/constants.js';
import { type InProcessNetwork, startNetwork } from './helpers/network.js';
import { makeFiles, sha256, startHttpServer, type WebServer } from './helpers/web.js';

let netw: InProcessNetwork;
let web: WebServer;
const files = makeFiles();
const rss = () => `${Math.round(process.memoryUsage().rss / 1048576)} MiB`;

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
  console.log(`RSS before: ${rss()}`);
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
  console.log(`RSS with 1,000 stalled connections: ${rss()}`);
  await ordinaryFetch();
  const failuresBefore = relay.stats.handshakeFailures;
  for (const s of sockets) s.destroy();
  const deadline = Date.now() + 10_000;
  while (relay.stats.handshakeFailures - failuresBefore < 1000 && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 50));
  assert.equal(
    relay.stats.handshakeFailures - failuresBefore,
    1000,
    'every stalled connection was counted and dropped',
  );
  await ordinaryFetch();
  console.log(`RSS after: ${rss()}`);
});

test('a CREATE flood on one link is cut off by the rate limit; the relay keeps serving', async () => {
  const relay = netw.relays[1];
  const consensus = netw.client.currentConsensus!;
  const desc = consensus.relays.find((r) => r.id === relay.idHex)!;
  const link = await connectLink({
    host: '127.0.0.1',
    port: relay.port,
    relayId: relay.id,
    me: { identity: null },
  });
  let created = 0;
  let limited = 0;
  link.on({
    cells: (cells) => {
      for (const c of cells) {
        if (c.command === CellCommand.CREATED) created++;
        if (c.command === CellCommand.DESTROY && decodeDestroy(c.body).reason === DestroyReason.RESOURCELIMIT)
          limited++;
      }
    },
  });
  const before = relay.stats.limitRejections;
  for (let i = 0; i < 1000; i++) {
    const { onionskin } = ntorClientStart(relay.id, Buffer.from(desc.onionKey, 'base64'));
    link.send(
      (0x80000000 | (i + 1)) >>> 0,
      CellCommand.CREATE,
      encodeCreate(HandshakeType.NTOR_X25519_SHA256, onionskin),
    );
  }
  const deadline = Date.now() + 20_000;
  while (created + limited < 1000 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  console.log(`CREATE flood: ${created} answered, ${limited} refused (RESOURCELIMIT); RSS ${rss()}`);
  assert.ok(created <= 200, `no more than the burst plus the rate were answered (${created})`);
  assert.ok(limited >= 700);
  assert.ok(relay.stats.limitRejections - before >= 700);
  link.close();
  await ordinaryFetch();
});

test('a stream that is never read holds at most its window in memory, and others are not slowed', async () => {
  console.log(`RSS before: ${rss()}`);
  const stalled = await netw.client.connect('127.0.0.1', web.port);
  stalled.write(`GET /random10m HTTP/1.1\r\nHost: x\r\n\r\n`);
  // Never read `stalled`. The exit may send only its stream window; the rest stays at the web server.
  await new Promise((r) => setTimeout(r, 1500));
  console.log(
    `RSS with a stalled 10 MiB stream: ${rss()}; bytes that reached the client: ${stalled.bytesIn}`,
  );
  assert.ok(
    stalled.bytesIn <= STREAM_WINDOW_START * RELAY_DATA_MAX,
    `at most one stream window arrived (${stalled.bytesIn})`,
  );
  const res = await streamGet(`${web.url}/random1m`, { connect: (h, p) => netw.client.connect(h, p) });
  const chunks: Buffer[] = [];
  for await (const c of res) chunks.push(c as Buffer);
  assert.equal(sha256(Buffer.concat(chunks)), sha256(files['/random1m']));
  stalled.destroy();
  console.log(`RSS after: ${rss()}`);
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
