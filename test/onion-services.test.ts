// Onion services end to end over a real in-process network (protocol §8): a service started with
// createService in front of a local HTTP server, reached at its .allium address by the library's
// client (fetch, connect) and through the SOCKS port, with the directory's own onion fields. Also the
// ways it fails: a mistyped address, an address nobody serves, a service gone (and back), an
// introduction point lost, an INTRODUCE2 replayed.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import http from 'node:http';
import type net from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { consensusPeriod } from '../src/core/onion-ring.js';
import { clientIntroduce } from '../src/crypto/hs-ntor.js';
import { blindPublicKey, subcredential } from '../src/crypto/key-blinding.js';
import { IdentityKey, randomBytes } from '../src/crypto/keys.js';
import { onionAddressOf, parseOnionAddress } from '../src/crypto/onion-address.js';
import type { AlliumError } from '../src/errors.js';
import { type Client, createClient, createService, type OnionService } from '../src/index.js';
import { HttpProxyServer } from '../src/net/http-proxy-server.js';
import { SocksServer } from '../src/net/socks-server.js';
import type { IntroPoint } from '../src/service/intro-points.js';
import { DestroyReason } from '../src/wire/constants.js';
import { encodeIntroduce } from '../src/wire/onion-messages.js';
import { SocksReply } from '../src/wire/socks5.js';
import { type InProcessNetwork, startNetwork } from './helpers/network.js';
import { socksReply } from './helpers/socks-reply.js';
import { waitFor } from './helpers/wait.js';

const PAGE = Buffer.from('<html><body>an onion service, reached through the network</body></html>\n');

let netw: InProcessNetwork;
let web: http.Server;
let webPort: number;
let service: OnionService;
let client: Client;
const services: OnionService[] = [];

/** GET /page answers PAGE; POST /echo answers with the body it receives, as it receives it. */
function webServer(): http.Server {
  return http.createServer((req, res) => {
    if (req.url === '/page') {
      res.writeHead(200, { 'content-type': 'text/html', 'content-length': PAGE.length });
      res.end(PAGE);
      return;
    }
    if (req.url === '/echo' && req.method === 'POST') {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      req.pipe(res);
      return;
    }
    res.writeHead(404).end();
  });
}

async function startService(dataDir: string): Promise<OnionService> {
  const s = await createService({
    directory: netw.directory.url,
    directoryKey: netw.directory.publicKey,
    to: `127.0.0.1:${webPort}`,
    dataDir,
  });
  services.push(s);
  return s;
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    return (err as AlliumError).code ?? (err as Error).message;
  }
  return 'no error';
}

before(async () => {
  netw = await startNetwork({ relays: 8, exits: 1 });
  web = webServer();
  await new Promise<void>((r) => web.listen(0, '127.0.0.1', () => r()));
  webPort = (web.address() as net.AddressInfo).port;
  service = await startService(join(netw.dataDir, 'service'));
  await service.ready;
  client = await createClient({ directory: netw.directory.url, directoryKey: netw.directory.publicKey });
});

after(async () => {
  await client?.close();
  for (const s of services) await s.close();
  web?.close();
  await netw?.stop();
});

describe('an onion service over the network', () => {
  it('serves a page at its address, byte for byte, and a warm request reuses the joined circuit', async () => {
    assert.match(service.address, /^[a-z2-7]{56}\.allium$/);
    const res = await client.fetch(`http://${service.address}/page`);
    assert.equal(res.status, 200);
    assert.deepEqual(Buffer.from(await res.arrayBuffer()), PAGE);
    const rendezvous = client.raw.onion.counts.rendezvous;
    // Any labels in front and any case name the same service.
    const again = await client.fetch(`http://www.${service.address.toUpperCase()}/page`);
    assert.deepEqual(Buffer.from(await again.arrayBuffer()), PAGE);
    assert.equal(client.raw.onion.counts.rendezvous, rendezvous, 'no new rendezvous');
    assert.equal(service.stats().streams >= 2, true);
  });

  it('makes one rendezvous for streams that start together under one isolation key', async () => {
    const rendezvous = client.raw.onion.counts.rendezvous;
    const pages = await Promise.all(
      [1, 2, 3].map(async () =>
        Buffer.from(
          await (
            await client.fetch(`http://${service.address}/page`, { isolation: 'together' })
          ).arrayBuffer(),
        ),
      ),
    );
    for (const page of pages) assert.deepEqual(page, PAGE);
    assert.equal(client.raw.onion.counts.rendezvous, rendezvous + 1);
  });

  it('carries 10 MiB each way, byte for byte', async () => {
    const body = Buffer.alloc(10 * 1024 * 1024);
    for (let i = 0; i < body.length; i += 4) body.writeUInt32LE((i * 2654435761) >>> 0, i);
    const res = await client.fetch(`http://${service.address}/echo`, { method: 'POST', body });
    assert.equal(res.status, 200);
    const hash = createHash('sha256');
    let bytes = 0;
    for await (const chunk of res.body!) {
      hash.update(chunk);
      bytes += chunk.length;
    }
    assert.equal(bytes, body.length);
    assert.equal(hash.digest('hex'), createHash('sha256').update(body).digest('hex'));
  });

  it('answers SOCKS with the onion codes: a mistyped address (0xF6), an address nobody serves (0xF0)', async () => {
    const socks = await SocksServer.listen({
      host: '127.0.0.1',
      port: 0,
      connect: (req) => client.raw.connect(req.host, req.port, { isolation: 'socks' }),
    });
    try {
      const typo = service.address.startsWith('a')
        ? `b${service.address.slice(1)}`
        : `a${service.address.slice(1)}`;
      assert.equal(await codeOf(client.connect(typo, 80)), 'ALLIUM_ONION_ADDRESS_CHECKSUM');
      assert.equal(await socksReply(socks.port, typo), SocksReply.ONION_ADDRESS_INVALID);
      const nobody = onionAddressOf(IdentityKey.generate().publicKey);
      assert.equal(await codeOf(client.connect(nobody, 80)), 'ALLIUM_ONION_DESCRIPTOR_NOT_FOUND');
      assert.equal(await socksReply(socks.port, nobody), SocksReply.ONION_DESCRIPTOR_NOT_FOUND);
      assert.equal(await socksReply(socks.port, service.address), SocksReply.SUCCEEDED);
    } finally {
      await socks.close();
    }
  });

  it("serves through the client's HTTP proxy (the request right behind the BEGIN)", async () => {
    const proxy = await HttpProxyServer.listen({
      host: '127.0.0.1',
      port: 0,
      connect: (req) =>
        client.raw.connect(req.host, req.port, { isolation: 'proxy', optimistic: req.optimistic }),
    });
    try {
      const body = await new Promise<Buffer>((resolve, reject) => {
        const req = http.request(
          { host: '127.0.0.1', port: proxy.port, path: `http://${service.address}/page` },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => resolve(Buffer.concat(chunks)));
          },
        );
        req.on('error', reject);
        req.end();
      });
      assert.deepEqual(body, PAGE);
    } finally {
      await proxy.close();
    }
  });

  it('refuses a port it does not publish', async () => {
    const refused = service.stats().streamsRefused;
    assert.equal(await codeOf(client.connect(service.address, 81)), 'ALLIUM_STREAM_REFUSED');
    assert.equal(service.stats().streamsRefused, refused + 1);
  });

  it('gives up on a service that never comes to the rendezvous within the whole deadline (ALLIUM_ONION_CONNECT_TIMEOUT)', async () => {
    // Its introduction points swallow every introduction: each client waits at its rendezvous point.
    const { points } = service.internals;
    const restore: (() => void)[] = [];
    for (const point of points!.active) {
      const deliver = point.circuit.onUnexpected;
      point.circuit.onUnexpected = () => {};
      restore.push(() => {
        point.circuit.onUnexpected = deliver;
      });
    }
    const patient = await createClient({
      directory: netw.directory.url,
      directoryKey: netw.directory.publicKey,
      onionConnectTimeoutMs: 1500,
    });
    try {
      // Not ALLIUM_ONION_INTRODUCE_TIMEOUT: the whole deadline ends it before the rendezvous wait does.
      assert.equal(
        await codeOf(patient.connect(service.address, 80, { isolation: 'deadline' })),
        'ALLIUM_ONION_CONNECT_TIMEOUT',
      );
    } finally {
      for (const r of restore) r();
      await patient.close();
    }
  });

  it('drops a replayed INTRODUCE2', async () => {
    const { points, introductions } = service.internals;
    const recorded: { point: IntroPoint; data: Buffer }[] = [];
    for (const point of points!.active) {
      const deliver = point.circuit.onUnexpected!;
      point.circuit.onUnexpected = (command, data) => {
        recorded.push({ point, data });
        deliver(command, data);
      };
    }
    const res = await client.fetch(`http://${service.address}/page`, { isolation: 'replay' });
    assert.equal(res.status, 200);
    await res.arrayBuffer();
    assert.equal(recorded.length, 1);
    const before = introductions!.counts.joined;
    assert.equal(await introductions!.introduce(recorded[0].point, recorded[0].data), 'replays');
    assert.equal(introductions!.counts.replays, 1);
    assert.equal(introductions!.counts.joined, before, 'no rendezvous circuit for the replay');
  });

  it('drops a forged introduction, and one naming a rendezvous relay its consensus does not list', async () => {
    const { points, introductions } = service.internals;
    const point = points!.active[0];
    const identityKey = parseOnionAddress(service.address);
    const period = consensusPeriod(client.raw.currentConsensus!)!;
    const sub = subcredential(identityKey, blindPublicKey(identityKey, period));
    const introduce = (rendezvousId: Buffer, key = sub) =>
      encodeIntroduce(
        clientIntroduce({ authKey: point.authKey.publicKey, encKey: point.encKey.publicKey }, key, {
          cookie: randomBytes(32),
          rendezvousId,
        }).message,
      );
    const counts = { ...introductions!.counts };
    assert.equal(await introductions!.introduce(point, introduce(randomBytes(32))), 'unknownRelay');
    assert.equal(
      await introductions!.introduce(point, introduce(netw.relays[0].id, randomBytes(32))),
      'refused',
    );
    assert.equal(introductions!.counts.unknownRelay, counts.unknownRelay + 1);
    assert.equal(introductions!.counts.refused, counts.refused + 1);
    assert.equal(introductions!.counts.joined, counts.joined);
  });

  it('is still reached when introduction points are lost, and replaces them', async () => {
    // The client holds the descriptor that names the points about to be lost.
    await (await client.fetch(`http://${service.address}/page`, { isolation: 'lost-warm' })).arrayBuffer();
    const { points } = service.internals;
    const [lost1, lost2] = points!.active;
    lost1.circuit.destroy(DestroyReason.FINISHED, 'the test cut it');
    lost2.circuit.destroy(DestroyReason.FINISHED, 'the test cut it');
    const refusedAtRelays = () => netw.relays.reduce((n, r) => n + r.onionLoad().introductionsRefused, 0);
    await waitFor('the relays dropped the lost points', () =>
      netw.relays.some((r) => r.id.toString('hex') === lost1.relay.id && r.onionLoad().introPoints === 0)
        ? true
        : null,
    );
    // Clients holding the descriptor that names the lost points go on to the one left: connect until
    // one tried a lost point first (each tries them in random order), all of them served.
    const refused = refusedAtRelays();
    const fetched = client.raw.onion.counts.descriptorsFetched;
    for (let i = 0; i < 20 && refusedAtRelays() === refused; i++) {
      const res = await client.fetch(`http://${service.address}/page`, { isolation: `lost-${i}` });
      assert.deepEqual(Buffer.from(await res.arrayBuffer()), PAGE);
    }
    assert.ok(
      refusedAtRelays() > refused,
      'a lost introduction point was tried, and refused the introduction',
    );
    assert.equal(
      client.raw.onion.counts.descriptorsFetched,
      fetched,
      'the cached descriptor served throughout',
    );
    await waitFor('the service replaced the lost introduction points', () =>
      points!.active.length === 3 && !points!.active.includes(lost1) && !points!.active.includes(lost2)
        ? true
        : null,
    );
    assert.equal(service.stats().introPointsLost, 2);
  });

  it('retires introduction points at the end of their life: successors published, the old kept a while for clients in flight', async () => {
    const { points } = service.internals;
    const old = points!.active;
    const rounds = service.stats().descriptorRounds;
    points!.retireOlderThan(0);
    await waitFor('three successors are up', () =>
      points!.active.length === 3 && points!.active.every((p) => !old.includes(p)) ? true : null,
    );
    await waitFor('the descriptor naming them was published', () =>
      service.stats().descriptorRounds > rounds ? true : null,
    );
    assert.ok(
      old.every((p) => !p.circuit.closed && p.retiring),
      'the retired points wait out their grace',
    );
    const res = await client.fetch(`http://${service.address}/page`, { isolation: 'after-retire' });
    assert.deepEqual(Buffer.from(await res.arrayBuffer()), PAGE);
  });

  it('once closed, is unreachable for a client holding its descriptor; restarted from its data directory, it is back at the same address', async () => {
    const address = service.address;
    await service.close();
    const relaysHold = () => netw.relays.reduce((n, r) => n + r.onionLoad().introPoints, 0);
    await waitFor('the introduction points are gone at the relays', () => (relaysHold() === 0 ? true : null));
    assert.equal(
      await codeOf(client.connect(address, 80, { isolation: 'closed' })),
      'ALLIUM_ONION_SERVICE_UNREACHABLE',
    );

    service = await startService(join(netw.dataDir, 'service'));
    assert.equal(service.address, address, 'the same key, the same address');
    await service.ready;
    // The client's cached descriptor names the old points: refused, it fetches the new one.
    const res = await client.fetch(`http://${address}/page`, { isolation: 'restarted' });
    assert.deepEqual(Buffer.from(await res.arrayBuffer()), PAGE);
  });
});
