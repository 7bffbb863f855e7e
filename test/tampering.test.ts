// A relay that changes bytes of the cells it forwards (a tagging relay): the circuit is destroyed, the user
// gets an error instead of modified data, and every relay keeps serving.
import assert from 'node:assert/strict';
import { text } from 'node:stream/consumers';
import { after, before, test } from 'node:test';
import { streamGet } from '../src/net/http-fetch.js';
import { type InProcessNetwork, startNetwork } from './helpers/network.js';
import { makeFiles, sha256, startHttpServer, type WebServer } from './helpers/web.js';

let net: InProcessNetwork;
let web: WebServer;
const files = makeFiles();
const tamper = { forward: false, backward: false, count: 0 };

before(async () => {
  web = await startHttpServer(files);
  net = await startNetwork({
    relays: 4,
    exits: 1,
    relayOptions: (i) =>
      i === 1
        ? {
            // relay2: flips one byte of the cells it forwards, when told to.
            inspect: (body, dir) => {
              if ((dir === 'forward' && tamper.forward) || (dir === 'backward' && tamper.backward)) {
                body[100] ^= 0x5a;
                tamper.count++;
              }
            },
          }
        : {},
  });
});
after(async () => {
  await net?.stop();
  await web?.close();
});

function pathVia(middleIdx: number) {
  const c = net.client.currentConsensus!;
  const byId = (id: string) => c.relays.find((r) => r.id === id)!;
  const entry = net.relays.find((_, i) => i !== 0 && i !== middleIdx)!;
  return [byId(entry.idHex), byId(net.relays[middleIdx].idHex), byId(net.relays[0].idHex)];
}

/** Each relay's integrity failures now, to compare with after a test. */
const integrity = () => net.relays.map((r) => r.stats.integrityFailures);
/** What each relay counted since `before`. */
const counted = (before: number[]) => integrity().map((n, i) => n - before[i]);

test('a byte changed on the way to the exit destroys the circuit; nothing reaches the web server', async () => {
  const circ = await net.client.buildCircuit({ path: pathVia(1) });
  const before = web.peers.length;
  const failures = integrity();
  tamper.forward = true;
  await assert.rejects(circ.openStream('127.0.0.1', web.port), (err: Error & { code: string }) => {
    assert.equal(err.code, 'ALLIUM_CIRCUIT_DESTROYED');
    return true;
  });
  tamper.forward = false;
  assert.ok(tamper.count > 0);
  assert.equal(circ.closed, true);
  assert.equal(web.peers.length, before, 'the exit did not act on a modified cell');
  // The hop after the tagging middle (the exit, relay1) caught it, and no other relay counted anything.
  assert.deepEqual(counted(failures), [1, 0, 0, 0]);
});

test('a tagging entry is caught by the very next hop (the middle), before the exit sees anything', async () => {
  const c = net.client.currentConsensus!;
  const byId = (id: string) => c.relays.find((r) => r.id === id)!;
  const [exit, tagger, middle] = net.relays;
  const circ = await net.client.buildCircuit({
    path: [byId(tagger.idHex), byId(middle.idHex), byId(exit.idHex)],
  });
  const failures = integrity();
  const before = web.peers.length;
  tamper.forward = true;
  await assert.rejects(circ.openStream('127.0.0.1', web.port), { code: 'ALLIUM_CIRCUIT_DESTROYED' });
  tamper.forward = false;
  // Only the middle (relay3) counted it: the cell never reached the exit.
  assert.deepEqual(counted(failures), [0, 0, 1, 0], 'the middle caught the change, no one else');
  assert.equal(web.peers.length, before);
});

test('a byte changed on the way back makes the client drop the circuit, not deliver bad data', async () => {
  const circ = await net.client.buildCircuit({ path: pathVia(1) });
  const failures = integrity();
  const res = await streamGet(`${web.url}/random1m`, {
    connect: async (h, p) => {
      const s = await circ.openStream(h, p);
      tamper.backward = true; // from now on, responses are tampered
      return s;
    },
  }).catch((e: Error) => e);
  let body: string | Error;
  if (res instanceof Error) body = res;
  else body = await text(res).catch((e: Error) => e);
  tamper.backward = false;
  assert.ok(body instanceof Error, 'the transfer failed rather than deliver modified bytes');
  assert.equal(circ.closed, true);
  assert.match(circ.closeReason, /integrity/i);
  // Backward cells are checked by the client alone: no relay counted anything.
  assert.deepEqual(counted(failures), [0, 0, 0, 0]);
});

test('after tampering, every relay (the tagging one too, now honest) still carries a download intact', async () => {
  const c = net.client.currentConsensus!;
  const byId = (i: number) => c.relays.find((r) => r.id === net.relays[i].idHex)!;
  const failures = integrity();
  // Each relay that is not the exit serves as the middle once, and the exit ends every path.
  for (const middle of [1, 2, 3]) {
    const entry = middle === 3 ? 1 : 3;
    const circ = await net.client.buildCircuit({ path: [byId(entry), byId(middle), byId(0)] });
    const res = await streamGet(`${web.url}/random1m`, { connect: (h, p) => circ.openStream(h, p) });
    const chunks: Buffer[] = [];
    for await (const chunk of res) chunks.push(chunk as Buffer);
    assert.equal(sha256(Buffer.concat(chunks)), sha256(files['/random1m']), `through relay${middle + 1}`);
    assert.equal(circ.closed, false);
  }
  assert.deepEqual(counted(failures), [0, 0, 0, 0], 'honest traffic counts no integrity failure');
});
