// What each relay learns, shown from inside the relays (in-process network): the entry never sees the
// destination or the bytes, the middle sees neither end, the exit never talks to the client.
import assert from 'node:assert/strict';
import { text } from 'node:stream/consumers';
import { after, before, test } from 'node:test';
import { streamGet } from '../src/net/http-fetch.js';
import { type InProcessNetwork, startNetwork } from './helpers/network.js';
import { startHttpServer, type WebServer } from './helpers/web.js';

interface Seen {
  bodies: Buffer[];
  fromPeers: (string | null)[];
}

const SECRET_PATH = '/hello?secret-request-path-91d2';
const MARKER = 'RESPONSE-MARKER-7f3a';

let net: InProcessNetwork;
let web: WebServer;
const seen: Seen[] = [];

before(async () => {
  web = await startHttpServer({ '/hello?secret-request-path-91d2': Buffer.from(`${MARKER} hello\n`) });
  net = await startNetwork({
    relays: 3,
    exits: 1,
    relayOptions: (i) => {
      seen[i] = { bodies: [], fromPeers: [] };
      return {
        inspect: (body, _dir, from) => {
          seen[i].bodies.push(Buffer.from(body));
          seen[i].fromPeers.push(from.peerRelayId?.toString('hex') ?? null);
        },
      };
    },
  });
});
after(async () => {
  await net?.stop();
  await web?.close();
});

test('entry, middle and exit each learn only their part', async () => {
  const [exit, entry, middle] = net.relays; // relay1 is the only exit
  const consensus = net.client.currentConsensus!;
  const byId = (id: string) => consensus.relays.find((r) => r.id === id)!;
  const circ = await net.client.buildCircuit({
    path: [byId(entry.idHex), byId(middle.idHex), byId(exit.idHex)],
  });
  const res = await streamGet(`${web.url}${SECRET_PATH}`, { connect: (h, p) => circ.openStream(h, p) });
  assert.equal(await text(res), `${MARKER} hello\n`);

  const host = Buffer.from(`127.0.0.1`);
  const path = Buffer.from('secret-request-path-91d2');
  const marker = Buffer.from(MARKER);
  const contains = (i: number, needle: Buffer) => seen[i].bodies.some((b) => b.includes(needle));

  // The entry (relay2) sees cells only from an anonymous peer (the client) on its client side, and never
  // the request, the response or the destination: they are still under the middle's and exit's layers.
  assert.ok(seen[1].bodies.length > 0);
  assert.ok(
    seen[1].fromPeers.some((p) => p === null),
    'the entry talks to the client directly',
  );
  assert.ok(!contains(1, path) && !contains(1, marker) && !contains(1, host), 'the entry saw plaintext');

  // The middle (relay3) hears only from relays, and sees no plaintext either.
  assert.ok(seen[2].bodies.length > 0);
  assert.ok(
    seen[2].fromPeers.every((p) => p !== null),
    'the middle only ever talks to relays',
  );
  assert.ok(!contains(2, path) && !contains(2, marker) && !contains(2, host), 'the middle saw plaintext');

  // The exit (relay1) sees the destination and request (it must make the connection), but its only peer on
  // this circuit is the middle relay: the client's link never reaches it.
  assert.ok(contains(0, path), 'the exit sees the request it forwards');
  assert.ok(seen[0].bodies.length > 0);
  assert.ok(
    seen[0].fromPeers.every((p) => p === middle.idHex),
    'the exit only ever hears from the middle',
  );
});
