// Hostile load (docs/threat-model.md §2.13): memory after a flood. Floods of CREATEs and of stalled
// readers raise the relays' resident memory; once the load has ended, a relay gives back what it
// cheaply can (its link slabs and scratch buffers, after its queues have been empty for a while),
// and V8 shrinks its own heap when idle. This prints what each relay holds before, at the peak and
// for a minute after (resident, V8 heap, Buffers outside it), and checks that a repeated flood
// costs no more than the first: what stays is retention, not a leak.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AlliumClient } from '../../src/client/client.js';
import type { CircuitStream } from '../../src/core/stream-mux.js';
import type { Link } from '../../src/net/link.js';
import {
  Bystander,
  MiB,
  metricsOf,
  mib,
  type ProcessNetwork,
  rssOf,
  startProcessNetwork,
} from '../helpers/process-network.js';
import { makeFiles, startHttpServer } from '../helpers/web.js';

const CREATES = 400;
const STALLED_CIRCUITS = 48;
const AFTER_MS = 45_000;

async function memoryOf(netw: ProcessNetwork): Promise<string[]> {
  return Promise.all(
    netw.relays.map(async (p) => {
      const m = await metricsOf(p);
      return `${p.name} ${mib(rssOf(p))} (heap ${mib(m.get('nodejs_heap_size_total_bytes') ?? 0)}, external ${mib(m.get('nodejs_external_memory_bytes') ?? 0)})`;
    }),
  );
}

/** A CREATE flood (circuits built and dropped) and a stalled reader, then every attacker gone. */
async function flood(netw: ProcessNetwork, webPort: number, peak: number[]): Promise<void> {
  const sample = setInterval(() => {
    netw.relays.forEach((p, i) => {
      peak[i] = Math.max(peak[i], rssOf(p));
    });
  }, 100);
  const attackers: AlliumClient[] = [];
  try {
    const creator = await netw.client({ circuitIdleMs: 3600_000 });
    attackers.push(creator);
    const path = netw.path(creator);
    for (let i = 0; i < CREATES; i += 50) {
      await Promise.all(Array.from({ length: 50 }, () => creator.buildCircuit({ path }).catch(() => null)));
    }
    const staller = await netw.client();
    attackers.push(staller);
    const circuits = await Promise.all(
      Array.from({ length: STALLED_CIRCUITS }, () => staller.buildCircuit({ path })),
    );
    const streams: CircuitStream[] = await Promise.all(
      circuits.map((c) => c.openStream('127.0.0.1', webPort)),
    );
    for (const s of streams) s.on('error', () => {});
    const link = await [...(staller as unknown as { links: Map<string, Promise<Link>> }).links.values()][0];
    const socket = (link as unknown as { socket: { pause(): unknown; resume(): unknown } }).socket;
    socket.resume = () => socket;
    socket.pause();
    for (const s of streams) s.write('GET /random10m HTTP/1.0\r\n\r\n');
    await new Promise((r) => setTimeout(r, 3000));
  } finally {
    for (const a of attackers) await a.close();
    clearInterval(sample);
  }
}

test('after a flood the relays give back what they cheaply can, and a second flood costs no more', async () => {
  const files = makeFiles();
  const web = await startHttpServer(files);
  const netw = await startProcessNetwork(['--link-stall-timeout', '2']);
  try {
    const user = await netw.client();
    const bystander = new Bystander(
      await user.buildCircuit({ path: netw.path(user) }),
      web.url,
      '/random1m',
      files['/random1m'],
    );
    console.log(`before: ${(await memoryOf(netw)).join('; ')}`);
    const afterFlood: number[][] = [];
    for (let round = 1; round <= 2; round++) {
      const peak = netw.relays.map(rssOf);
      await flood(netw, web.port, peak);
      console.log(
        `flood ${round} peak RSS: ${netw.relays.map((p, i) => `${p.name} ${mib(peak[i])}`).join('; ')}`,
      );
      if (round === 1) {
        // The bystander fetched through the first flood; it stops so the minute after is quiet.
        const times = await bystander.stop();
        console.log(`bystander during the flood: ${bystander.summary()}`);
        assert.equal(bystander.failure, null, `the bystander's fetch failed: ${bystander.failure?.message}`);
        assert.ok(times.length > 0);
      }
      for (let t = 0; t < AFTER_MS; t += 15_000) {
        await new Promise((r) => setTimeout(r, 15_000));
        if (round === 1 || t + 15_000 >= AFTER_MS) {
          console.log(`flood ${round} + ${(t + 15_000) / 1000} s: ${(await memoryOf(netw)).join('; ')}`);
        }
      }
      afterFlood.push(netw.relays.map(rssOf));
    }
    // Retention, not a leak: the second flood leaves the relays about where the first did.
    netw.relays.forEach((p, i) => {
      assert.ok(
        afterFlood[1][i] < afterFlood[0][i] + 32 * MiB,
        `${p.name} kept growing: ${afterFlood.map((r) => mib(r[i]))}`,
      );
    });
  } finally {
    await netw.stop();
    await web.close();
  }
});
