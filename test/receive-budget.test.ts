// A client's circuits share one receive budget per entry link, and an exit's per link toward the
// middle (protocol §5.1): however many circuits download (or upload) at once, about the budget is in
// flight toward the receiver, not a full window (4 MiB) per circuit, and everything arrives intact.
// The budget grows with the link's round trip, so the bound is the most it reached while sampled.

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import { test } from 'node:test';
import { DEFAULT_RECEIVE_BUDGET_CELLS } from '../src/core/receive-budget.js';
import type { StreamMux } from '../src/core/stream-mux.js';
import { streamGet } from '../src/net/http-fetch.js';
import type { Relay } from '../src/relay/relay.js';
import { CIRC_SENDME_INCREMENT, CIRC_WINDOW_MAX } from '../src/wire/constants.js';
import { startNetwork } from './helpers/network.js';
import { sleep } from './helpers/wait.js';
import { makeFiles, sha256, webServerForFile } from './helpers/web.js';

const files = makeFiles();
const site = webServerForFile(files);

/** DATA cells the client has sent toward exits and not had acknowledged, over all its circuits. */
function clientInFlight(client: unknown): number[] {
  const circuits = (client as { circuits: Set<{ mux: StreamMux }> }).circuits;
  return [...circuits].map((c) => c.mux.window.inFlight);
}

/**
 * The exit's largest receive budget now, in cells: at least DEFAULT_RECEIVE_BUDGET_CELLS, more where a
 * link's round trip is long (in one process, with every node on one event loop, it is: 10-40 ms).
 */
function exitBudget(exit: Relay): number {
  const r = exit as unknown as {
    circuits: Map<object, unknown>;
    receiveBudgets: { of(link: object): { currentCells: number } };
  };
  let most = DEFAULT_RECEIVE_BUDGET_CELLS;
  for (const link of r.circuits.keys()) most = Math.max(most, r.receiveBudgets.of(link).currentCells);
  return most;
}

/** DATA cells the exit has sent toward clients, over all its circuits. */
function exitSent(exit: Relay): number {
  const circuits = (exit as unknown as { circuits: Map<unknown, Map<number, { circ: { mux?: StreamMux } }>> })
    .circuits;
  let sent = 0;
  for (const map of circuits.values())
    for (const { circ } of map.values())
      if (circ.mux) sent += (circ.mux.window as unknown as { sent: number }).sent;
  return sent;
}

/** DATA cells the client has received, over all its circuits. */
function clientReceived(client: unknown): number {
  const circuits = (client as { circuits: Set<{ mux: StreamMux }> }).circuits;
  let received = 0;
  for (const c of circuits) received += (c.mux.window as unknown as { received: number }).received;
  return received;
}

test('six downloads at once keep about one budget in flight toward the client, and all arrive intact', async () => {
  const netw = await startNetwork({ relays: 3, exits: 1 });
  try {
    const exit = netw.relays[0];
    const downloads = 6;
    const received = new Array<number>(downloads).fill(0);
    const samples: number[] = [];
    let budget = DEFAULT_RECEIVE_BUDGET_CELLS;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        // Once every download is under way, windows named while fewer ran have been replaced.
        if (received.every((n) => n > 2 * 1024 * 1024)) {
          // In flight is what the exit sent and the client has not received: the client acknowledges
          // late (it holds SENDMEs back rather than name small windows, §5.1), so not what is unacknowledged.
          samples.push(exitSent(exit) - clientReceived(netw.client));
          budget = Math.max(budget, netw.client.receiveBudgetCells());
        }
        await sleep(2); // sampling, not waiting for a state
      }
    })();
    const results = await Promise.all(
      Array.from({ length: downloads }, async (_, i) => {
        const res = await streamGet(`${site.server.url}/random10m`, {
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
    // Each circuit may have its share of the client's budget (the most it reached) plus the
    // increment it has not acknowledged yet in flight; six full windows would be 6 x 1024 cells.
    const bound = budget + downloads * CIRC_SENDME_INCREMENT;
    assert.ok(most <= bound, `at most ${most} cells in flight, bound ${bound}`);
    assert.ok(bound < downloads * CIRC_WINDOW_MAX);
  } finally {
    await netw.stop();
  }
});

test('six uploads at once keep about one budget in flight toward the exit, and all arrive intact', async () => {
  // A sink that answers, once the upload ends, with the SHA-256 of what it received.
  const sink = net.createServer((socket) => {
    const hash = createHash('sha256');
    socket.on('data', (d) => hash.update(d));
    socket.on('end', () => socket.end(hash.digest('hex')));
  });
  await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r));
  const port = (sink.address() as net.AddressInfo).port;
  const netw = await startNetwork({ relays: 3, exits: 1 });
  try {
    const uploads = 6;
    const body = randomBytes(10 * 1024 * 1024);
    const streams = await Promise.all(
      Array.from({ length: uploads }, (_, i) =>
        netw.client.connect('127.0.0.1', port, { isolation: `upload-${i}` }),
      ),
    );
    const samples: number[] = [];
    let budget = DEFAULT_RECEIVE_BUDGET_CELLS;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        // Once every upload is under way, windows named while fewer ran have been replaced.
        if (streams.every((s) => s.bytesOut > 2 * 1024 * 1024)) {
          samples.push(clientInFlight(netw.client).reduce((a, b) => a + b, 0));
          budget = Math.max(budget, exitBudget(netw.relays[0]));
        }
        await sleep(2); // sampling, not waiting for a state
      }
    })();
    const digests = await Promise.all(
      streams.map(async (s) => {
        const answer: Buffer[] = [];
        s.on('data', (d: Buffer) => answer.push(d));
        const ended = new Promise((r) => s.on('end', r));
        s.end(body);
        await ended;
        return Buffer.concat(answer).toString();
      }),
    );
    sampling = false;
    await sampler;
    const expected = createHash('sha256').update(body).digest('hex');
    for (const d of digests) assert.equal(d, expected);
    assert.ok(samples.length > 0);
    const most = Math.max(...samples);
    const bound = budget + uploads * CIRC_SENDME_INCREMENT;
    assert.ok(most <= bound, `at most ${most} cells in flight, bound ${bound}`);
    assert.ok(bound < uploads * CIRC_WINDOW_MAX);
  } finally {
    await netw.stop();
    sink.close();
  }
});
