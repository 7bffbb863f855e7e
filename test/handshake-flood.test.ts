// A CREATE flood from many links at once (each within its per-link rate limit) is answered by the
// relay's handshake worker threads, while a download through the same relay completes intact.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { ntorClientStart } from '../src/crypto/ntor.js';
import { streamGet } from '../src/net/http-fetch.js';
import { connectLink, type Link } from '../src/net/link.js';
import { encodeCreate } from '../src/wire/cell-bodies.js';
import { CellCommand, HandshakeType } from '../src/wire/constants.js';
import { type InProcessNetwork, startNetwork } from './helpers/network.js';
import { waitFor } from './helpers/wait.js';
import { makeFiles, sha256, startHttpServer, type WebServer } from './helpers/web.js';

let netw: InProcessNetwork;
let web: WebServer;
const files = makeFiles();

before(async () => {
  web = await startHttpServer(files);
  // Three relays: every circuit uses all of them, so the download crosses the flooded relay. A low
  // inline rate makes sure the flood goes to the workers.
  netw = await startNetwork({
    relays: 3,
    exits: 1,
    relayOptions: () => ({ limits: { inlineHandshakesPerSecond: 50 } }),
  });
});
after(async () => {
  await netw?.stop();
  await web?.close();
});

test('a CREATE flood from 8 links goes to worker threads; a 10 MiB download through the relay completes', async () => {
  const relay = netw.relays[0];
  const desc = netw.client.currentConsensus!.relays.find((r) => r.id === relay.idHex)!;
  const onionKey = Buffer.from(desc.onionKey, 'base64');
  const links: Link[] = await Promise.all(
    Array.from({ length: 8 }, () =>
      connectLink({ host: '127.0.0.1', port: relay.port, relayId: relay.id, me: { identity: null } }),
    ),
  );
  let created = 0;
  for (const link of links) {
    link.on({ cells: (cells) => (created += cells.filter((c) => c.command === CellCommand.CREATED).length) });
  }
  const perLink = 300; // within the default burst of 400 per link
  const download = (async () => {
    const res = await streamGet(`${web.url}/random10m`, { connect: (h, p) => netw.client.connect(h, p) });
    const chunks: Buffer[] = [];
    for await (const c of res) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  })();
  const t0 = performance.now();
  for (let i = 0; i < perLink; i++) {
    for (const link of links) {
      const { onionskin } = ntorClientStart(relay.id, onionKey);
      link.send(
        (0x80000000 | (i + 1)) >>> 0,
        CellCommand.CREATE,
        encodeCreate(HandshakeType.NTOR_X25519_SHA256, onionskin),
      );
    }
    if (i % 50 === 49) await new Promise((r) => setImmediate(r));
  }
  await waitFor('every CREATE within the rate limits is answered', () => created >= links.length * perLink, {
    timeoutMs: 30_000,
  });
  const floodMs = performance.now() - t0;
  const body = await download;
  console.log(
    `flood: ${created} CREATEs answered in ${floodMs.toFixed(0)} ms, ${relay.handshakes.answeredByWorkers} by ` +
      `${relay.handshakes.threads} worker thread(s), ${relay.handshakes.answeredInline} inline`,
  );
  assert.equal(created, links.length * perLink, 'every CREATE within the rate limits was answered');
  assert.ok(relay.handshakes.answeredByWorkers >= created / 2, 'the workers answered most of the flood');
  assert.equal(sha256(body), sha256(files['/random10m']), 'the download arrived intact');
  for (const link of links) link.close();
});
