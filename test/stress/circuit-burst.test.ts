// Hostile load (docs/threat-model.md §2.13): one client opens many circuits through one middle and
// exit and starts a download on each at once. Each circuit's first window (128 cells, 512 KiB)
// leaves the exit before any SENDME, so the burst is circuits x 512 KiB toward the middle, which
// reads as fast as it can: here it is stopped for a moment (SIGSTOP, a scheduling hiccup of a busy
// middle) as the burst leaves, so the burst meets a full socket whatever the machine's speed. The
// exit must not take that for a peer that stopped reading: it stops
// reading the destinations of the circuits with cells waiting instead, and a bystander whose
// circuit shares the exit's link toward the middle keeps fetching, byte for byte.
// Scaled for a 2-core machine: 96 circuits (a 48 MiB burst) against a 16 MiB --max-link-queue,
// the shape of 260 circuits (130 MiB) against the default 64 MiB.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import type { CircuitStream } from '../../src/core/stream-mux.js';
import {
  buildCircuits,
  MiB,
  metricsOf,
  mib,
  rssOf,
  startBystander,
  startProcessNetwork,
} from '../helpers/process-network.js';
import { sleep, waitFor } from '../helpers/wait.js';
import { makeFiles, startHttpServer } from '../helpers/web.js';

/**
 * A web server that holds every request for /burst until `release()`, then answers them all at
 * once with 1 MiB each: the answers leave the exit together.
 */
async function burstServer(body: Buffer) {
  const held: http.ServerResponse[] = [];
  const server = http.createServer((_req, res) => {
    held.push(res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    get waiting() {
      return held.length;
    },
    release() {
      for (const res of held.splice(0)) {
        res.writeHead(200, { 'content-length': body.length }).end(body);
      }
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

const CIRCUITS = 96;
const LINK_LIMIT = 16 * MiB;
const MIDDLE_PAUSE_MS = 1500;

/** Reads a stream to its end; resolves with the bytes read (also when it fails or the deadline passes). */
function drain(s: CircuitStream, deadline: number): Promise<number> {
  return new Promise((resolve) => {
    let n = 0;
    const timer = setTimeout(() => finish(), Math.max(0, deadline - Date.now()));
    const finish = () => {
      clearTimeout(timer);
      resolve(n);
    };
    s.on('data', (c: Buffer) => (n += c.length));
    s.once('end', finish);
    s.once('close', finish);
    s.once('error', finish);
  });
}

test('a burst of circuits all downloading at once through one middle kills no bystander', async () => {
  const files = makeFiles();
  const web = await startHttpServer(files);
  const burst = await burstServer(files['/random1m']);
  const netw = await startProcessNetwork(['--max-link-queue', String(LINK_LIMIT)]);
  try {
    const { bystander, path } = await startBystander(netw, web, files);
    const attacker = await netw.client();
    const circuits = await buildCircuits(attacker, path, CIRCUITS);
    const streams = await Promise.all(circuits.map((c) => c.openStream('127.0.0.1', burst.port)));
    const rssBefore = netw.relays.map(rssOf);
    const fetchesBefore = bystander.times.length;

    // Every request at once: the answers' first windows leave the exit together.
    const rssPeak = [...rssBefore];
    const sampler = setInterval(() => {
      netw.relays.forEach((p, i) => {
        rssPeak[i] = Math.max(rssPeak[i], rssOf(p));
      });
    }, 100);
    for (const s of streams) s.write('GET /burst HTTP/1.0\r\n\r\n');
    await waitFor('every request reached the web server', () => burst.waiting >= CIRCUITS, {
      timeoutMs: 60_000,
    });
    assert.equal(burst.waiting, CIRCUITS);
    process.kill(netw.middle.proc.pid!, 'SIGSTOP');
    burst.release();
    await sleep(MIDDLE_PAUSE_MS); // the middle stays stopped this long
    process.kill(netw.middle.proc.pid!, 'SIGCONT');
    const deadline = Date.now() + 90_000;
    const read = await Promise.all(streams.map((s) => drain(s, deadline)));
    clearInterval(sampler);
    // The bystander finishes at least one more fetch after the burst.
    const after = bystander.times.length;
    await waitFor(
      'the bystander fetched again or failed',
      () => bystander.failure !== null || bystander.times.length > after,
      {
        timeoutMs: Math.max(0, deadline - Date.now()),
      },
    ).catch(() => {});
    const times = await bystander.stop();
    const rssAfter = netw.relays.map(rssOf);

    const exit = await metricsOf(netw.exit);
    const middle = await metricsOf(netw.middle);
    const guard = await metricsOf(netw.guard);
    const complete = read.filter((n) => n >= MiB).length;
    // The attacker reads slower than its own burst arrives (one process decrypts it all): past twice
    // the limit its guard closes the attacker's circuits with the most queued, never the link.
    console.log(
      `burst of ${CIRCUITS} circuits x 512 KiB first window: ${complete}/${CIRCUITS} attacker downloads complete`,
    );
    console.log(
      `bystander: ${bystander.summary()} (${times.length - fetchesBefore} during and after the burst)`,
    );
    for (const [name, m] of [
      ['guard', guard],
      ['middle', middle],
      ['exit', exit],
    ] as const) {
      console.log(
        `${name}: queue peak ${mib(m.get('allium_relay_link_queue_peak_bytes') ?? 0)} (limit ${mib(LINK_LIMIT)}), circuits shed ${m.get('allium_relay_queue_shed_circuits_total')}, limit rejections ${m.get('allium_relay_limit_rejections_total')}`,
      );
    }
    netw.relays.forEach((p, i) => {
      console.log(
        `${p.name} RSS: before ${mib(rssBefore[i])}, peak ${mib(rssPeak[i])}, after ${mib(rssAfter[i])}`,
      );
    });

    assert.equal(bystander.failure, null, `the bystander's fetch failed: ${bystander.failure?.message}`);
    assert.ok(times.length > fetchesBefore, 'the bystander fetched during the burst');
    // The exit held the burst back instead of closing its link toward the middle.
    assert.equal(exit.get('allium_relay_limit_rejections_total'), 0, 'the exit refused nothing');
    assert.ok(
      (exit.get('allium_relay_link_queue_peak_bytes') ?? 0) <= LINK_LIMIT,
      'the exit stayed under the limit',
    );
  } finally {
    if (netw.middle.running) process.kill(netw.middle.proc.pid!, 'SIGCONT');
    await netw.stop();
    await web.close();
    await burst.close();
  }
});
