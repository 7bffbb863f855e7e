// Hostile load (docs/threat-model.md §2.13): circuits that carry no stream. A client that uses a
// new isolation key for every request leaves one circuit per key; with a short circuit lifetime
// each request leaves one more. The client closes a circuit without a stream once its lifetime is
// over or it was idle, and a relay destroys, both ways, a circuit that carried no cell for
// --idle-circuit-timeout, for a client that forgets its circuits without a DESTROY. A bystander's
// busy circuit is never closed.
import assert from 'node:assert/strict';
import { text } from 'node:stream/consumers';
import { test } from 'node:test';
import type { ClientCircuit } from '../../src/client/client-circuit.js';
import { streamGet } from '../../src/net/http-fetch.js';
import { metricsOf, startBystander, startProcessNetwork } from '../helpers/process-network.js';
import { waitFor } from '../helpers/wait.js';
import { makeFiles, startHttpServer } from '../helpers/web.js';

const KEYS = 30;
const IDLE_CIRCUIT_S = 4;
const WAIT = { timeoutMs: 60_000, everyMs: 100 };

test('circuits left without a stream are closed by the client, and by the relays for a client that forgets them', async () => {
  const files = makeFiles();
  const web = await startHttpServer(files);
  const netw = await startProcessNetwork(['--idle-circuit-timeout', String(IDLE_CIRCUIT_S)]);
  const open = async () =>
    Promise.all(netw.relays.map(async (p) => (await metricsOf(p)).get('allium_relay_circuits_open') ?? 0));
  const idleClosed = async () =>
    Promise.all(
      netw.relays.map(async (p) => (await metricsOf(p)).get('allium_relay_idle_circuits_closed_total') ?? 0),
    );
  try {
    const { bystander, path } = await startBystander(netw, web, files);

    // One request per isolation key, on a client whose circuits serve new streams for 1.5 s.
    const client = await netw.client({ circuitLifetimeMs: 1500, circuitIdleMs: 2000 });
    for (let i = 0; i < KEYS; i++) {
      const res = await streamGet(`${web.url}/hello`, {
        connect: (h, p) => client.connect(h, p, { isolation: `key-${i}` }),
      });
      assert.match(await text(res), /RESPONSE-MARKER/);
    }
    console.log(
      `after ${KEYS} isolation keys: the client holds ${client.listCircuits().length} circuits, the relays ${await open()}`,
    );
    await waitFor(
      'the client closed every circuit without a stream',
      () => client.listCircuits().length === 0,
      WAIT,
    );
    // Only the bystander's circuit is left at each relay, and no relay had to time one out.
    await waitFor(
      'the relays hold only the bystander circuit',
      async () => (await open()).every((n) => n === 1),
      WAIT,
    );
    assert.deepEqual(
      await idleClosed(),
      [0, 0, 0],
      'the client closed them itself (DESTROY), not the relays',
    );
    console.log(`then: the client holds ${client.listCircuits().length}, the relays ${await open()}`);

    // A client that forgets its circuits (never sends DESTROY): the relays time them out.
    const forgetful = await netw.client({ circuitLifetimeMs: 3600_000, circuitIdleMs: 3600_000 });
    const kept: ClientCircuit[] = [];
    for (let i = 0; i < 10; i++) kept.push(await forgetful.buildCircuit({ path }));
    console.log(`a forgetful client built ${kept.length} circuits: the relays hold ${await open()}`);
    await waitFor(
      'the relays destroyed the idle circuits',
      async () => (await open()).every((n) => n === 1),
      WAIT,
    );
    await waitFor('the forgetful client heard of it', () => kept.every((c) => c.closed), WAIT);
    const timedOut = await idleClosed();
    console.log(
      `the relays timed out ${timedOut} idle circuits (--idle-circuit-timeout ${IDLE_CIRCUIT_S} s)`,
    );
    // The first relay to time a circuit out destroys it both ways: the others hear a DESTROY.
    assert.ok(timedOut[0] + timedOut[1] + timedOut[2] >= kept.length, 'the relays destroyed them');

    const times = await bystander.stop();
    console.log(`bystander: ${bystander.summary()}`);
    assert.equal(bystander.failure, null, `the bystander's fetch failed: ${bystander.failure?.message}`);
    assert.ok(times.length > 0);
  } finally {
    await netw.stop();
    await web.close();
  }
});
