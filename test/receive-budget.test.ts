// A client's circuits share one receive budget per entry link (protocol §5.1): however many of them
// download at once, the exit has about the budget in flight toward the client, not a full window
// (4 MiB) per circuit, and every download still arrives intact.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { DEFAULT_RECEIVE_BUDGET_CELLS } from '../src/client/client.js';
import type { StreamMux } from '../src/core/stream-mux.js';
import { streamGet } from '../src/net/http-fetch.js';
import type { Relay } from '../src/relay/relay.js';
import { CIRC_SENDME_INCREMENT, CIRC_WINDOW_MAX } from '../src/wire/constants.js';
import { startNetwork } from './helpers/network.js';
import { makeFiles, sha256, startHttpServer, type WebServer } from './helpers/web.js';

let web: WebServer;
const files = makeFiles();

before(async () => {
  web = await startHttpServer(files);
});
after(async () => {
  await web?.close();
});

/** DATA cells the exit has sent toward clients and not had acknowledged, over all its circuits. */
function exitInFlight(exit: Relay): number[] {
  const circuits = (exit as unknown as { circuits: Map<unknown, Map<number, { circ: { mux?: StreamMux } }>> })
    .circuits;
  const out: number[] = [];
  for (const map of circuits.values())
    for (const { circ } of map.values()) if (circ.mux) out.push(circ.mux.window.inFlight);
  return out;
}

test('six downloads at once keep about one budget in flight toward the client, and all arrive intact', async () => {
  const netw = await startNetwork({ relays: 3, exits: 1 });
  try {
    const exit = netw.relays[0];
    const downloads = 6;
    const received = new Array<number>(downloads).fill(0);
    const samples: number[] = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        // Once every download is under way, windows named while fewer ran have been replaced.
        if (received.every((n) => n > 2 * 1024 * 1024)) {
          samples.push(exitInFlight(exit).reduce((a, b) => a + b, 0));
        }
        await new Promise((r) => setTimeout(r, 2));
      }
    })();
    const results = await Promise.all(
      Array.from({ length: downloads }, async (_, i) => {
        const res = await streamGet(`${web.url}/random10m`, {
          connect: (h, p) => netw.client.connect(h, p, { isolation: `download-${i}` }),
        });
        const chunks: Buffer[] = [];
        for await (const c of res) {
          chunks.push(c as Buffer);
          received[i] += (c as Buffer).length;
        }
        return sha256(Buffer.concat(chunks));
      }),
    );
    sampling = false;
    await sampler;
    for (const digest of results) assert.equal(digest, sha256(files['/random10m']));
    assert.ok(samples.length > 0, 'sampled while all six downloads ran');
    const most = Math.max(...samples);
    // Each circuit may have its share plus the increment it has not acknowledged yet in flight;
    // six full windows would be 6 x 1024 cells.
    const bound = DEFAULT_RECEIVE_BUDGET_CELLS + downloads * CIRC_SENDME_INCREMENT;
    assert.ok(most <= bound, `at most ${most} cells in flight, bound ${bound}`);
    assert.ok(bound < downloads * CIRC_WINDOW_MAX);
  } finally {
    await netw.stop();
  }
});
