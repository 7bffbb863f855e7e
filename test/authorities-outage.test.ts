// Two of three authorities down, with authorities and relays as processes and a consensus valid for
// 16 s (--consensus-valid): the client keeps working from the last consensus until it expires, and
// then refuses new circuits with ALLIUM_CLIENT_NO_CONSENSUS, naming the votes that are missing and
// why (the authority left up serves a 503 that says so).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { AlliumClient } from '../src/client/client.js';
import type { AlliumError } from '../src/errors.js';
import { fetchOver } from '../src/net/fetch.js';
import type { AlliumProcess } from './helpers/allium-process.js';
import {
  type AuthorityNetwork,
  startAuthorityNetwork,
  waitForConsensus,
} from './helpers/authority-network.js';
import { makeFiles, startHttpServer, type WebServer } from './helpers/web.js';

const VALID_SECONDS = 16;
const files = makeFiles();
let web: WebServer;
let net: AuthorityNetwork;
let client: AlliumClient | null = null;

before(async () => {
  web = await startHttpServer(files);
  net = await startAuthorityNetwork({
    roles: ['process', 'process', 'process'],
    relays: 4,
    exits: 2,
    authorityArgs: ['--consensus-fresh', '2', '--consensus-valid', String(VALID_SECONDS)],
  });
});
after(async () => {
  await client?.close();
  await net?.stop();
  await web?.close();
});

async function fetchHello(c: AlliumClient, isolation: string): Promise<string> {
  const res = await fetchOver(`${web.url}/hello`, undefined, {
    connect: (host, port) => c.connect(host, port, { isolation }),
  });
  return res.text();
}

describe('two of three authorities down', () => {
  it('the client works from the last consensus until it expires, then says what is missing', async () => {
    await waitForConsensus(net, 0, (c, sigs) => c.relays.length === 4 && sigs === 3);
    // A clock tolerance of 1 s instead of 60, so that expiry comes within the test.
    client = await AlliumClient.start({
      authorities: net.set,
      consensusSkewMs: 1000,
      spareCircuits: 0,
      startTimeoutMs: 30_000,
    });
    assert.equal(await fetchHello(client, 'before'), files['/hello'].toString());

    await Promise.all([1, 2].map((i) => (net.authorities[i] as AlliumProcess).kill()));
    const held = client.currentConsensus;
    assert.ok(held, 'a consensus is held');
    // The last consensus the three signed may be a period newer than the client's: it runs out later.
    const lastSigned = await waitForConsensus(net, 0, () => true, 5000);
    const expiry = Math.max(held.validUntil, lastSigned.validUntil);
    assert.ok(
      expiry - Date.now() > 4000,
      `the consensus is still valid for a while (${expiry - Date.now()} ms)`,
    );

    // Still working: a new circuit, from the consensus held.
    assert.equal(await fetchHello(client, 'during'), files['/hello'].toString());

    await sleep(Math.max(0, expiry + 1000 - Date.now()));
    // Bounded: the client's next refresh (every 1-2 s past freshUntil) learns why there is none.
    const deadline = Date.now() + 15_000;
    let err: AlliumError | null = null;
    while (Date.now() < deadline) {
      err = null;
      try {
        await client.buildCircuit({ isolation: `after${Date.now()}` });
      } catch (e) {
        err = e as AlliumError;
        if (/votes/.test(err.message)) break;
      }
      await sleep(500);
    }
    assert.ok(err, 'no circuit is built once the consensus expired');
    assert.equal(err.code, 'ALLIUM_CLIENT_NO_CONSENSUS');
    assert.match(err.message, /expired at .* have not given a newer one/);
    // What is missing, and why: the authority still up says it holds 1 vote of 3 and needs 2, the
    // two others cannot be reached.
    assert.match(err.message, /1 of 3 votes for the period from [^;]*; need 2/);
    for (const i of [1, 2]) {
      assert.match(err.message, new RegExp(`auth${i + 1} \\([0-9a-f]+\\): unreachable`), err.message);
    }
  });
});
