// A peer that stops reading its link (a frozen client) makes its guard queue what the exits keep
// sending, up to the circuit windows (512 KiB for a circuit that has not sent a SENDME yet). The
// relay bounds that memory per link (--max-link-queue: the circuits with the most queued are closed,
// then the link once its socket took nothing for --link-stall-timeout) and over all links together
// (--max-total-queue: the link with the most queued is closed), and a client that reads keeps
// downloading through the same relays.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AlliumClient } from '../src/client/client.js';
import type { CircuitStream } from '../src/core/stream-mux.js';
import { streamGet } from '../src/net/http-fetch.js';
import type { Link } from '../src/net/link.js';
import type { RelayLimits } from '../src/relay/limits.js';
import type { Relay } from '../src/relay/relay.js';
import { type InProcessNetwork, startNetwork } from './helpers/network.js';
import { sleep, waitFor } from './helpers/wait.js';
import { makeFiles, sha256, webServerForFile } from './helpers/web.js';

const MiB = 1024 * 1024;
const files = makeFiles();
const site = webServerForFile(files);

/** A second client whose only link (to its guard) is made to stop reading once its requests are out. */
async function stallAClient(netw: InProcessNetwork, circuits: number) {
  const stalled = await AlliumClient.start({
    directoryUrl: netw.directory.url,
    directoryKey: netw.directory.publicKey,
    minRelays: netw.relays.length,
    spareCircuits: 0,
  });
  const streams: CircuitStream[] = [];
  for (let i = 0; i < circuits; i++) {
    const s = await stalled.connect('127.0.0.1', site.server.port, { isolation: `stalled-${i}` });
    s.on('error', () => {});
    streams.push(s);
  }
  // The client keeps one link, to its guard: stop reading it (what a frozen process does).
  const links = (stalled as unknown as { links: Map<string, Promise<Link>> }).links;
  assert.equal(links.size, 1, 'one link, to the guard');
  const [[guardHex, linkPromise]] = [...links];
  const link = await linkPromise;
  freeze(link);
  // One request at a time: each answer's first window (512 KiB) reaches the guard before the next
  // starts, so the queue builds there, not at once in the exit's link toward the middle.
  for (const s of streams) {
    s.write(`GET /random10m HTTP/1.1\r\nHost: 127.0.0.1:${site.server.port}\r\n\r\n`);
    await sleep(40); // pacing, not waiting for a state
  }
  const guard = netw.relays.find((r) => r.idHex === guardHex)!;
  return { stalled, link, guard };
}

type Readable = { pause(): unknown; resume(): unknown };
const thawers = new WeakMap<Link, () => void>();

/** Stops reading a link's socket for good: the link's own pauses between read bursts end in resume(). */
function freeze(link: Link): void {
  const socket = (link as unknown as { socket: Readable }).socket;
  const resume = socket.resume;
  socket.resume = () => socket;
  socket.pause();
  thawers.set(link, () => {
    socket.resume = resume;
    socket.resume();
  });
}

function thaw(link: Link): void {
  thawers.get(link)?.();
}

async function healthyDownload(netw: InProcessNetwork): Promise<string> {
  const res = await streamGet(`${site.server.url}/random10m`, {
    connect: (h, p) => netw.client.connect(h, p, { isolation: 'healthy' }),
  });
  const chunks: Buffer[] = [];
  for await (const c of res) chunks.push(c as Buffer);
  return sha256(Buffer.concat(chunks));
}

/** The links a relay holds now (a look inside it, as an operator's metrics would count them). */
function linksOf(relay: Relay): Link[] {
  return [...(relay as unknown as { circuits: Map<Link, unknown> }).circuits.keys()];
}

/** The links of a client, to its entry guards. */
async function clientLinks(client: AlliumClient): Promise<Link[]> {
  return Promise.all((client as unknown as { links: Map<string, Promise<Link>> }).links.values());
}

async function runStall(limits: Partial<RelayLimits>, queueLimit: number, perLink: boolean) {
  // Three relays and 3-hop paths: every circuit of both clients crosses every relay.
  const netw = await startNetwork({ relays: 3, exits: 1, relayOptions: () => ({ limits }) });
  try {
    const before = new Map(netw.relays.map((r) => [r, r.stats.limitRejections]));
    // Twenty-four circuits' first windows (512 KiB each) are more than the kernel's socket buffers
    // of a link that never carried much hold, so the rest piles up in the guard's queue: about 8 MiB,
    // so a limit of 2 MiB must act for the peak to stay under twice it.
    const { stalled, link, guard } = await stallAClient(netw, 24);
    // The guard's end of the stalled client's link: the one that shares its link secret.
    const stalledAtGuard = linksOf(guard).find((l) => l.linkSecret.equals(link.linkSecret));
    assert.ok(stalledAtGuard, "the guard holds the stalled client's link");
    const bystanders = netw.relays.flatMap((r) => linksOf(r).filter((l) => l !== stalledAtGuard));
    const healthy = healthyDownload(netw);
    await waitFor(
      'the guard refuses the stalled link more',
      () => guard.stats.limitRejections > before.get(guard)!,
      { timeoutMs: 20_000 },
    );
    assert.equal(await healthy, sha256(files['/random10m']), 'the reading client got its file intact');
    // The guard let go of the stalled link's queue at once.
    await waitFor('the guard holds no large queue', () => guard.gauges().queuedBytes < 4 * MiB, {
      timeoutMs: 20_000,
    });
    // The queue did build up to the limit (the limit is what stopped it). A link's own limit is
    // checked on every cell queued, so its queue stays under twice the limit (before the peer counts
    // as not reading) plus the cells of one turn of the loop; the total over all links is added up
    // at most every few milliseconds, so what arrives in between may pass it.
    const peak = guard.gauges().queuePeakBytes;
    console.log(`guard queue peak ${(peak / MiB).toFixed(1)} MiB, limit ${queueLimit / MiB} MiB`);
    assert.ok(peak >= queueLimit, `the queue reached the limit: peak ${peak}`);
    if (perLink) assert.ok(peak <= 2 * queueLimit + MiB, `peak ${peak}`);
    // Which link went: the stalled client's, closed by the guard, and no other link of any relay.
    await waitFor("the guard closed the stalled client's link", () => stalledAtGuard.isClosed);
    const closed = bystanders.filter((l) => l.isClosed);
    assert.equal(closed.length, 0, `${closed.length} other link(s) closed as well`);
    for (const l of await clientLinks(netw.client))
      assert.ok(!l.isClosed, "the reading client's link is open");
    assert.ok(
      netw.client.listCircuits().some((c) => c.isolation === 'healthy' && !c.closed),
      "the reading client's circuit is still up",
    );
    thaw(link);
    await waitFor('the stalled client sees its link closed', () => link.isClosed, { timeoutMs: 20_000 });
    await stalled.close();
    return guard;
  } finally {
    await netw.stop();
  }
}

test('a frozen client costs its guard at most --max-link-queue, and others keep downloading', async () => {
  const guard = await runStall({ linkQueueBytes: 2 * MiB, linkStallMs: 1000 }, 2 * MiB, true);
  // Either the circuits with the most queued went first, or the stall closed the link
  // (test/stress/stalled-reader.test.ts shows the shedding with a longer stall timeout).
  console.log(`circuits shed: ${guard.stats.queueShedCircuits}`);
});

test('over all links, --max-total-queue closes the link with the most queued', async () => {
  await runStall({ totalQueueBytes: 2 * MiB }, 2 * MiB, false);
});
