// Onion key rotation (protocol §3.1): a relay replaces its onion key when the key's lifetime ends and
// publishes the new one at once; the old key still answers CREATEs (inline and on the handshake
// worker) for the grace period, for clients whose consensus is older, and is refused after it.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { ntorClientFinish, ntorClientStart } from '../src/crypto/ntor.js';
import { connectLink, type Link } from '../src/net/link.js';
import type { Relay } from '../src/relay/relay.js';
import type { Cell } from '../src/wire/cell.js';
import { decodeCreated, decodeDestroy, encodeCreate } from '../src/wire/cell-bodies.js';
import { CellCommand, DestroyReason, HandshakeType } from '../src/wire/constants.js';
import { type InProcessNetwork, startNetwork } from './helpers/network.js';
import { sleep, waitFor } from './helpers/wait.js';

const LIFETIME_MS = 5000;
const GRACE_MS = 2000;
let netw: InProcessNetwork;
let relay: Relay;

before(async () => {
  netw = await startNetwork({
    relays: 3,
    exits: 1,
    // Relay 1 rotates quickly, and answers all but the first CREATE of a burst on its worker thread.
    relayOptions: (i) =>
      i === 0
        ? {
            onionKeyPolicy: { lifetimeMs: LIFETIME_MS, graceMs: GRACE_MS },
            limits: { inlineHandshakesPerSecond: 1, handshakeThreads: 1 },
          }
        : {},
  });
  relay = netw.relays[0];
});
after(async () => {
  await netw?.stop();
});

/** Sends `n` CREATEs naming `onionKey` at once; resolves with how many got CREATED (with keys that check out) and how many DESTROY(PROTOCOL). */
async function creates(link: Link, onionKey: Buffer, n: number, firstCircId: number) {
  const got: Cell[] = [];
  link.on({
    cells: (cells) => got.push(...cells.filter((c) => c.circId >= firstCircId && c.circId < firstCircId + n)),
  });
  const states = new Map<number, ReturnType<typeof ntorClientStart>['state']>();
  for (let i = 0; i < n; i++) {
    const { onionskin, state } = ntorClientStart(relay.id, onionKey);
    states.set(firstCircId + i, state);
    link.send(firstCircId + i, CellCommand.CREATE, encodeCreate(HandshakeType.NTOR_X25519_SHA256, onionskin));
  }
  await waitFor('every CREATE is answered', () => got.length >= n, { timeoutMs: 15_000 });
  let created = 0;
  let refused = 0;
  for (const c of got) {
    if (c.command === CellCommand.CREATED) {
      ntorClientFinish(states.get(c.circId)!, decodeCreated(c.body).hdata); // throws unless the relay held the key
      created++;
    } else if (c.command === CellCommand.DESTROY && decodeDestroy(c.body).reason === DestroyReason.PROTOCOL) {
      refused++;
    }
  }
  return { created, refused };
}

async function publishedOnionKey(): Promise<string> {
  const res = await fetch(`${netw.directory.url}/v1/relays/${relay.idHex}`);
  return ((await res.json()) as { onionKey: string }).onionKey;
}

test('the old onion key answers through its grace period and is refused after it; the new one is published', {
  timeout: 30_000,
}, async () => {
  const oldKey = relay.onionKey.publicKey;
  assert.equal(await publishedOnionKey(), oldKey.toString('base64'));
  const link = await connectLink({
    host: '127.0.0.1',
    port: relay.port,
    relayId: relay.id,
    me: { identity: null },
  });

  await waitFor('the relay rotates its onion key', () => relay.stats.onionKeyRotations >= 1, {
    timeoutMs: LIFETIME_MS + 5000,
  });
  const rotatedAt = Date.now();
  const newKey = relay.onionKey.publicKey;
  assert.notDeepEqual(newKey, oldKey);
  await waitFor(
    'the directory lists the new key',
    async () => (await publishedOnionKey()) === newKey.toString('base64'),
    { timeoutMs: 15_000 },
  );

  // Within the grace period both keys answer, inline and on the worker thread.
  assert.deepEqual(await creates(link, oldKey, 6, 0x80000100), { created: 6, refused: 0 });
  assert.deepEqual(await creates(link, newKey, 6, 0x80000200), { created: 6, refused: 0 });
  assert.ok(relay.handshakes.answeredByWorkers > 0, 'some answers came from the worker thread');
  assert.ok(Date.now() - rotatedAt < GRACE_MS, 'the checks above ran inside the grace period');

  // After it, only the new key does.
  await sleep(Math.max(0, rotatedAt + GRACE_MS + 300 - Date.now())); // the grace period is a time
  assert.deepEqual(await creates(link, oldKey, 6, 0x80000300), { created: 0, refused: 6 });
  assert.deepEqual(await creates(link, newKey, 6, 0x80000400), { created: 6, refused: 0 });
  link.close();
});
