// Hostile load (docs/threat-model.md §2.13): a client asks for large files on many circuits and
// stops reading its link, so its guard's socket toward it waits to drain while the exits keep
// sending the circuits' first windows. The queue limit is checked on every cell queued, not only
// when the socket drains: the guard closes the circuits with the most queued, so its queue stays
// within the limit (at most twice it before the peer counts as not reading), then closes the
// link once its socket took nothing for --link-stall-timeout. A bystander keeps fetching.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { CircuitStream } from '../../src/core/stream-mux.js';
import type { Link } from '../../src/net/link.js';
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

const CIRCUITS = 48;
const LINK_LIMIT = 4 * MiB;
const STALL_S = 3;

test('a client that stops reading costs its guard at most its link limit, and others keep fetching', async () => {
  const files = makeFiles();
  const web = await startHttpServer(files);
  const netw = await startProcessNetwork([
    '--max-link-queue',
    String(LINK_LIMIT),
    '--link-stall-timeout',
    String(STALL_S),
  ]);
  try {
    const { bystander, path } = await startBystander(netw, web, files);
    const attacker = await netw.client();
    const circuits = await buildCircuits(attacker, path, CIRCUITS);
    const streams: CircuitStream[] = await Promise.all(
      circuits.map((c) => c.openStream('127.0.0.1', web.port)),
    );
    for (const s of streams) s.on('error', () => {});
    const rssBefore = netw.relays.map(rssOf);
    const guardBefore = await metricsOf(netw.guard);

    // The attacker's only link, to its guard: stop reading it, as a frozen process does.
    const link = await [...(attacker as unknown as { links: Map<string, Promise<Link>> }).links.values()][0];
    const socket = (link as unknown as { socket: { pause(): unknown; resume(): unknown } }).socket;
    socket.resume = () => socket;
    socket.pause();
    for (const s of streams) s.write('GET /random10m HTTP/1.0\r\n\r\n');

    const rssPeak = [...rssBefore];
    const deadline = Date.now() + 60_000;
    let closedAfterMs = -1;
    /** The guard's queue as sampled every 100 ms (the peak gauge sees every cell). */
    let sampled = 0;
    const t0 = Date.now();
    while (Date.now() < deadline && bystander.failure === null) {
      netw.relays.forEach((p, i) => {
        rssPeak[i] = Math.max(rssPeak[i], rssOf(p));
      });
      const m = await metricsOf(netw.guard);
      sampled = Math.max(sampled, m.get('allium_relay_queued_bytes') ?? 0);
      if ((m.get('allium_relay_links_open') ?? 0) < (guardBefore.get('allium_relay_links_open') ?? 0)) {
        closedAfterMs = Date.now() - t0;
        break;
      }
      await sleep(100); // sampling
    }
    const fetchesBefore = bystander.times.length;
    await waitFor(
      'the bystander fetched again or failed',
      () => bystander.failure !== null || bystander.times.length > fetchesBefore,
      { timeoutMs: Math.max(0, deadline - Date.now()) },
    ).catch(() => {});
    const times = await bystander.stop();
    const guard = await metricsOf(netw.guard);
    const peak = Math.max(sampled, guard.get('allium_relay_link_queue_peak_bytes') ?? 0);
    const rssAfter = netw.relays.map(rssOf);
    console.log(
      `stalled reader, ${CIRCUITS} circuits: guard queue peak ${mib(peak)} (limit ${mib(LINK_LIMIT)}), circuits shed ${guard.get('allium_relay_queue_shed_circuits_total')}, link closed after ${closedAfterMs} ms (stall timeout ${STALL_S} s)`,
    );
    console.log(`bystander: ${bystander.summary()}`);
    netw.relays.forEach((p, i) => {
      console.log(
        `${p.name} RSS: before ${mib(rssBefore[i])}, peak ${mib(rssPeak[i])}, after ${mib(rssAfter[i])}`,
      );
    });

    assert.equal(bystander.failure, null, `the bystander's fetch failed: ${bystander.failure?.message}`);
    assert.ok(times.length > 0);
    assert.ok(closedAfterMs >= 0, 'the guard closed the stalled link');
    // Checked on every cell: never past twice the limit (plus the cells of one turn of the loop).
    assert.ok(peak <= 2 * LINK_LIMIT + MiB, `the guard's queue reached ${mib(peak)}`);
    assert.ok(
      (guard.get('allium_relay_queue_shed_circuits_total') ?? 0) > 0,
      'the fullest circuits went first',
    );
  } finally {
    await netw.stop();
    await web.close();
  }
});
