// The bench's long-round-trip line: an Allium testnet whose every link passes a delay line (this
// machine has no netem), so each link has a 40 ms round trip and a circuit ~120 ms. What one
// download, eight at once, and a small request beside them get there (docs/performance.md, "Long
// round trips"). Allium only: C Tor's relays would need the same addresses split.
import { join } from 'node:path';
import { Testnet } from '../src/testnet/testnet.js';
import { circuitBuildsFromLog } from './allium-net.js';
import { type CurlResult, curl } from './curl.js';
import { MiB, median, round, sleep } from './stats.js';
import type { Env, Plan } from './suite.js';

export interface LongRttResult {
  oneWayMs: number;
  relays: number;
  ttfbMs: number;
  /** The same through the optimistic SOCKS port. */
  ttfbOptimisticMs: number | null;
  oneDownloadMiB: number;
  /** The first large download on the network: it spends its first ~second growing the budget. */
  oneDownloadMiBps: number;
  /** The same file again on a new circuit of the same link, whose budget has grown. */
  againMiBps: number;
  /** One upload of the same file. */
  uploadMiBps: number;
  concurrent: number;
  concurrentMiB: number;
  aggregateMiBps: number;
  ttfbBesideMs: number | null;
  /** The most the client's receive budget reached (its metric), MiB. */
  budgetMiB: number | null;
  /** Median of the circuit builds before the downloads, ms. */
  buildMs: number | null;
}

export async function runLongRtt(
  plan: Plan,
  env: Env,
  relays: number,
  oneWayMs = 20,
): Promise<LongRttResult> {
  const builds: number[] = [];
  const tn = await Testnet.start({
    relays,
    linkDelayMs: oneWayMs,
    // The client logs each build's duration at debug level (as in allium-net.ts); relays stay at warn.
    logLevel: 'debug',
    relayArgs: () => ['--log-level', 'warn'],
    clientArgs: ['--metrics', '127.0.0.1:0', '--socks-optimistic', '127.0.0.1:0'],
    onLog: circuitBuildsFromLog(builds),
  });
  try {
    const proxy = { host: tn.socksHost, port: tn.socksPort };
    const get = (file: string, user: string) =>
      curl(`${env.webUrl}/${file}`, { proxy, user, maxTimeSeconds: 120 });
    const metrics = tn.processes.find((p) => p.name === 'client')?.ready.metrics;
    const readMetric = async (name: string): Promise<number | null> => {
      if (!metrics) return null;
      const text = await (await fetch(`http://${metrics}/metrics`)).text();
      const m = new RegExp(`^${name} ([0-9.e+-]+)$`, 'm').exec(text);
      return m ? Number(m[1]) : null;
    };
    let budget = 0;
    const readBudget = async () => {
      budget = Math.max(budget, (await readMetric('allium_client_receive_budget_bytes')) ?? 0);
    };
    await get('1k', 'wan');
    // The first builds also open the links (two more round trips each); later ones find them open.
    await sleep(1000);
    builds.splice(0);
    for (let i = 0; i < 4; i++) {
      await get('1k', `wan-fresh-${i}`);
      await sleep(400); // the spare it took is replaced meanwhile
    }
    const idleBuilds = builds.splice(0);
    const ttfb: number[] = [];
    for (let i = 0; i < 5; i++) ttfb.push((await get('1k', 'wan')).ttfb);
    const early = /^(.*):(\d+)$/.exec(
      tn.processes.find((p) => p.name === 'client')?.ready.socksOptimistic ?? '',
    );
    const ttfbOptimistic: number[] = [];
    if (early) {
      const via = { host: early[1], port: Number(early[2]) };
      for (let i = 0; i < 6; i++) {
        const r = await curl(`${env.webUrl}/1k`, { proxy: via, user: 'wan', maxTimeSeconds: 120 });
        if (i > 0) ttfbOptimistic.push(r.ttfb);
      }
    }
    const one = await get(`${plan.bigMiB}m`, 'wan-one');
    await readBudget();
    const again = await get(`${plan.bigMiB}m`, 'wan-again');
    const upload = await curl(`${env.webUrl}/upload`, {
      proxy,
      user: 'wan-up',
      maxTimeSeconds: 120,
      upload: join(env.filesDir, `${plan.bigMiB}m`),
    });
    const users = Array.from({ length: plan.concurrent }, (_, i) => `wan-${i}`);
    await Promise.all([...users, 'wan-probe'].map((u) => get('1k', u)));
    const t0 = performance.now();
    let done = false;
    const all = Promise.all(users.map((u) => get(`${plan.concurrentMiB}m`, u))).finally(() => {
      done = true;
    });
    const beside: CurlResult[] = [];
    await sleep(300);
    while (!done) {
      beside.push(await get('1k', 'wan-probe'));
      await readBudget();
      await sleep(100);
    }
    const results = await all;
    const seconds = (performance.now() - t0) / 1000;
    await readBudget();
    return {
      oneWayMs,
      relays,
      ttfbMs: round(median(ttfb) * 1000, 1),
      ttfbOptimisticMs: ttfbOptimistic.length ? round(median(ttfbOptimistic) * 1000, 1) : null,
      oneDownloadMiB: plan.bigMiB,
      oneDownloadMiBps: round(one.bytes / MiB / one.total, 1),
      againMiBps: round(again.bytes / MiB / again.total, 1),
      uploadMiBps: round(upload.bytes / MiB / upload.total, 1),
      concurrent: plan.concurrent,
      concurrentMiB: plan.concurrentMiB,
      aggregateMiBps: round(results.reduce((a, r) => a + r.bytes, 0) / MiB / seconds, 1),
      ttfbBesideMs: beside.length ? round(median(beside.map((r) => r.ttfb)) * 1000, 1) : null,
      budgetMiB: metrics ? round(budget / MiB, 2) : null,
      buildMs: idleBuilds.length ? round(median(idleBuilds), 1) : null,
    };
  } finally {
    await tn.stop();
  }
}

export function describeLongRtt(r: LongRttResult): string {
  return (
    `long round trips (Allium, ${r.relays} relays, a delay line of ${r.oneWayMs} ms each way on every link: ` +
    `${2 * r.oneWayMs} ms per link, ~${6 * r.oneWayMs} ms per circuit): 3-hop build ${r.buildMs ?? '-'} ms ` +
    `(two round trips: to the middle, to the exit); 1 KiB TTFB ${r.ttfbMs} ms ` +
    `(optimistic SOCKS port: ${r.ttfbOptimisticMs ?? '-'} ms); ` +
    `one ${r.oneDownloadMiB} MiB download ${r.oneDownloadMiBps} MiB/s (the first: the budget grows meanwhile; ` +
    `again on a new circuit ${r.againMiBps} MiB/s), one upload ${r.uploadMiBps} MiB/s; ` +
    `${r.concurrent} isolated x ${r.concurrentMiB} MiB ` +
    `${r.aggregateMiBps} MiB/s together, 1 KiB beside them ${r.ttfbBesideMs ?? '-'} ms; ` +
    `the client's receive budget reached ${r.budgetMiB ?? '-'} MiB (its floor: 2 MiB)`
  );
}

export interface JitterResult {
  oneWayMs: number;
  jitterMs: number;
  fileMiB: number;
  /**
   * The file downloaded three times on one circuit, MiB/s: the first 4 MiB go before delay control
   * has cut the window, so the later downloads show where it settles.
   */
  downloadsMiBps: number[];
}

/**
 * The same network with up to `jitterMs` more at random on every link and direction (in order):
 * kept in the full bench because delay control once read such jitter as queue and cut every
 * circuit to the smallest window (docs/performance.md, "Links whose delay varies").
 */
export async function runJitterLine(
  plan: Plan,
  env: Env,
  relays: number,
  oneWayMs = 20,
  jitterMs = 20,
): Promise<JitterResult> {
  const tn = await Testnet.start({ relays, linkDelayMs: oneWayMs, linkJitterMs: jitterMs, logLevel: 'warn' });
  try {
    const proxy = { host: tn.socksHost, port: tn.socksPort };
    await curl(`${env.webUrl}/1k`, { proxy, user: 'jitter', maxTimeSeconds: 60 });
    const downloadsMiBps: number[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await curl(`${env.webUrl}/${plan.concurrentMiB}m`, {
        proxy,
        user: 'jitter',
        maxTimeSeconds: 120,
      });
      downloadsMiBps.push(round(r.bytes / MiB / r.total, 1));
    }
    return { oneWayMs, jitterMs, fileMiB: plan.concurrentMiB, downloadsMiBps };
  } finally {
    await tn.stop();
  }
}

export function describeJitter(r: JitterResult): string {
  return (
    `jittery links (the same network, each link ${r.oneWayMs} ms plus up to ${r.jitterMs} ms more at random each way, in order): ` +
    `${r.fileMiB} MiB three times on one circuit ${r.downloadsMiBps.join(', ')} MiB/s (before 0.4.1 delay control read this jitter as queue: ~1.5 MiB/s)`
  );
}
