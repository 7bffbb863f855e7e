// The OnionPerf-style measurements, run the same way over every path (direct loopback,
// Allium, C Tor): curl fetches the same files from the same web server; only the proxy differs.
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { type CurlResult, curl, type SocksProxy } from './curl.js';
import { memory, reapedChildrenCpuSeconds, totalCpuSeconds, watchPrivateMemory } from './proc-stats.js';
import { GiB, MiB, median, round, sleep } from './stats.js';

export interface NamedPid {
  name: string;
  pid: number;
  /** 'relay' processes appear in the slow-reader memory line. */
  kind: 'relay' | 'client' | 'directory' | 'web';
}

/** One way to reach the web server: directly, or through a network's SOCKS port. */
export interface Path {
  name: string;
  proxy: SocksProxy | null;
  /** The network's processes (empty for direct). */
  processes: NamedPid[];
  /** Milliseconds from launching the network until it carried its first stream. */
  startMs: number | null;
  /** The network's HTTP proxy, when it has one that forwards plain http:// requests. */
  httpProxy?: SocksProxy | null;
  /** A SOCKS port that answers CONNECT before the exit has (Allium's --socks-optimistic). */
  optimisticProxy?: SocksProxy | null;
  /** Circuit build times (ms) the network reported since the last call; emptied by the call. */
  takeCircuitBuilds(): number[];
}

export interface Plan {
  quick: boolean;
  ttfbRuns: number;
  pacedGapMs: number;
  freshRuns: number;
  smallRuns: number;
  fiveMiBRuns: number;
  bigMiB: number;
  bigRuns: number;
  concurrent: number;
  concurrentMiB: number;
  slowMiB: number;
  slowRate: number;
  slowMaxSeconds: number;
  slowSampleSeconds: number;
  /** Warm-up before the figures: MiB per isolated circuit, `concurrent` at once (0: no warm-up). */
  warmUpMiB: number;
  /** Warm-up: 1 KiB requests on the built circuit, back to back. */
  warmUpRequests: number;
  /** Warm-up: 1 KiB requests on fresh circuits, one after another. */
  warmUpCircuits: number;
  /** Onion line (onion.ts): 1 KiB requests on the joined rendezvous circuit, and as many on new ones. */
  onionRuns: number;
  /** Onion line: the one download's size. */
  onionMiB: number;
}

export const FULL: Plan = {
  quick: false,
  ttfbRuns: 20,
  pacedGapMs: 100,
  freshRuns: 10,
  smallRuns: 5,
  fiveMiBRuns: 3,
  bigMiB: 50,
  bigRuns: 2,
  concurrent: 8,
  concurrentMiB: 10,
  slowMiB: 1024,
  slowRate: 1 * MiB,
  slowMaxSeconds: 60,
  slowSampleSeconds: 5,
  warmUpMiB: 64,
  warmUpRequests: 200,
  warmUpCircuits: 20,
  onionRuns: 10,
  onionMiB: 10,
};

export const QUICK: Plan = {
  quick: true,
  ttfbRuns: 5,
  pacedGapMs: 50,
  freshRuns: 3,
  smallRuns: 3,
  fiveMiBRuns: 1,
  bigMiB: 50,
  bigRuns: 1,
  concurrent: 8,
  concurrentMiB: 10,
  slowMiB: 40,
  slowRate: 4 * MiB,
  slowMaxSeconds: 20,
  slowSampleSeconds: 2,
  warmUpMiB: 10,
  warmUpRequests: 20,
  warmUpCircuits: 3,
  onionRuns: 3,
  onionMiB: 10,
};

/** The same plan with no warm-up: every figure then comes from a network that has just started. */
export function withoutWarmUp(plan: Plan): Plan {
  return { ...plan, warmUpMiB: 0, warmUpRequests: 0, warmUpCircuits: 0 };
}

/** Files the web server serves, by name, and their sizes. */
export function fileSizes(plan: Plan): Record<string, number> {
  return {
    '1k': 1024,
    '50k': 50 * 1024,
    '1m': MiB,
    '5m': 5 * MiB,
    [`${plan.concurrentMiB}m`]: plan.concurrentMiB * MiB,
    [`${plan.bigMiB}m`]: plan.bigMiB * MiB,
    [`${plan.onionMiB}m`]: plan.onionMiB * MiB,
    ...(plan.warmUpMiB > 0 ? { [`${plan.warmUpMiB}m`]: plan.warmUpMiB * MiB } : {}),
  };
}

export interface PathResult {
  path: string;
  startMs: number | null;
  ttfbBuiltPacedMs: number;
  ttfbBuiltBackToBackMs: number;
  ttfbFreshMs: number;
  /** Back to back through the HTTP proxy (requests sent optimistically); direct: the same as back to back. */
  ttfbHttpProxyBackToBackMs: number | null;
  /** Through the optimistic SOCKS port; direct: the same as the plain figures; null: no such port. */
  ttfbOptimisticPacedMs: number | null;
  ttfbOptimisticBackToBackMs: number | null;
  /** Median of builds made before the downloads: one at a time, on an idle network. */
  circuitBuildQuietMs: number | null;
  /** Median of every build in the suite, including those made under load and in bursts. */
  circuitBuildMs: number | null;
  circuitBuildSamplesMs: number[];
  download50KiBMs: number;
  download1MiBMs: number;
  download5MiBMs: number;
  bigMiBps: number;
  bigRunsMiBps: number[];
  /** The network's first bulk transfer: one download of the large file right after start. */
  firstBigMiBps: number;
  /** CPU-seconds per GiB of the network's processes during that first download. */
  firstBigCpuSecondsPerGiBNetwork: number | null;
  /** MiB downloaded to warm the network up before the other figures (0: none). */
  warmUpMiB: number;
  /** One upload of the large file (PUT), after the downloads, outside their CPU window and memory peaks. */
  bigUploadMiBps: number;
  concurrentAggregateMiBps: number;
  /** Median TTFB of 1 KiB on another circuit while the concurrent downloads run (null: none finished). */
  ttfbUnderLoadMs: number | null;
  ttfbUnderLoadSamplesMs: number[];
  concurrentSlowestS: number;
  cpuSecondsPerGiBAll: number;
  cpuSecondsPerGiBNetwork: number | null;
  bulkGiB: number;
  peakRssMiB: Record<string, number>;
  /** Peak private (anonymous) memory, sampled every 50 ms: RSS without the shared executable's pages. */
  peakPrivateMiB: Record<string, number>;
}

export interface Env {
  webUrl: string;
  webPid: number;
  /** Where the bench's files are (the upload line sends the large one). */
  filesDir: string;
  log: (s: string) => void;
}

const ms = (r: CurlResult[], f: (r: CurlResult) => number) => round(median(r.map(f)) * 1000, 2);

async function repeat(n: number, gapMs: number, fn: (i: number) => Promise<CurlResult>) {
  const out: CurlResult[] = [];
  for (let i = 0; i < n; i++) {
    out.push(await fn(i));
    if (gapMs) await sleep(gapMs);
  }
  return out;
}

/**
 * Brings a network to the state it spends its life in before it is measured: a process's JIT
 * compiler (V8's TurboFan for Allium) optimises the hot path only after some hundred MiB, and a
 * relay runs for days (docs/performance.md, "Warm-up"). Bulk downloads on isolated circuits, small
 * requests and fresh circuits, the same for every path. Returns the MiB downloaded.
 */
async function warmUp(
  plan: Plan,
  env: Env,
  name: string,
  get: (file: string, user: string, maxTimeSeconds?: number) => Promise<CurlResult>,
  tag: string,
  warm: string,
): Promise<number> {
  if (plan.warmUpMiB + plan.warmUpRequests + plan.warmUpCircuits === 0) return 0;
  env.log(
    `  [${name}] warm-up: ${plan.concurrent} x ${plan.warmUpMiB} MiB, ${plan.warmUpRequests} requests, ${plan.warmUpCircuits} fresh circuits`,
  );
  const bulk =
    plan.warmUpMiB > 0
      ? await Promise.all(
          Array.from({ length: plan.concurrent }, (_, i) =>
            get(`${plan.warmUpMiB}m`, `warmup-${tag}-${i}`, 120),
          ),
        )
      : [];
  await repeat(plan.warmUpRequests, 0, () => get('1k', warm));
  await repeat(plan.warmUpCircuits, 0, (i) => get('1k', `warmup-fresh-${tag}-${i}`));
  return bulk.reduce((a, r) => a + r.bytes, 0) / MiB;
}

export async function runSuite(path: Path, plan: Plan, env: Env): Promise<PathResult> {
  const url = (f: string) => `${env.webUrl}/${f}`;
  const privateMemory = watchPrivateMemory(path.processes);
  const tag = `${path.name}-${process.pid}-${Date.now()}`;
  const get = (file: string, user: string, maxTimeSeconds = 30) =>
    curl(url(file), { proxy: path.proxy, user: path.proxy ? user : undefined, maxTimeSeconds });
  const warm = `warm-${tag}`;
  const pids = path.processes.map((p) => p.pid);
  await repeat(2, 0, () => get('1k', warm));
  env.log(`  [${path.name}] the network's first ${plan.bigMiB} MiB download`);
  const firstNet0 = totalCpuSeconds(pids);
  const first = await get(`${plan.bigMiB}m`, `first-${tag}`, 120);
  const firstNetCpu = totalCpuSeconds(pids) - firstNet0;
  const warmedMiB = await warmUp(plan, env, path.name, get, tag, warm);
  env.log(`  [${path.name}] time to first byte`);
  // Circuits built while the network started or warmed up are not part of the figure.
  path.takeCircuitBuilds();
  const paced = await repeat(plan.ttfbRuns, plan.pacedGapMs, () => get('1k', warm));
  const b2b = await repeat(plan.ttfbRuns, 0, () => get('1k', warm));
  let viaHttp: CurlResult[] | null = null;
  if (path.httpProxy) {
    const getHttp = () =>
      curl(url('1k'), { httpProxy: path.httpProxy, user: `http-${tag}`, maxTimeSeconds: 30 });
    await repeat(2, 0, getHttp);
    viaHttp = await repeat(plan.ttfbRuns, 0, getHttp);
  }
  let optimisticPaced: CurlResult[] | null = null;
  let optimisticB2b: CurlResult[] | null = null;
  if (path.optimisticProxy) {
    const getOptimistic = () =>
      curl(url('1k'), { proxy: path.optimisticProxy, user: warm, maxTimeSeconds: 30 });
    await repeat(2, 0, getOptimistic);
    optimisticPaced = await repeat(plan.ttfbRuns, plan.pacedGapMs, getOptimistic);
    optimisticB2b = await repeat(plan.ttfbRuns, 0, getOptimistic);
  }
  env.log(`  [${path.name}] fresh circuits`);
  const fresh = await repeat(plan.freshRuns, plan.pacedGapMs, (i) => get('1k', `fresh-${tag}-${i}`));
  // Builds so far came one or two at a time on an otherwise idle network (OnionPerf's setting);
  // the ones that follow compete with downloads and with each other (8 isolated circuits at once).
  // A fresh request takes a circuit built ahead (both clients keep some); the one built to replace
  // it may still be under way, so wait for it: otherwise a run can see no build at all.
  await sleep(1000);
  const quietBuilds = path.takeCircuitBuilds();
  env.log(`  [${path.name}] 50 KiB, 1 MiB, 5 MiB`);
  const d50k = await repeat(plan.smallRuns, 0, () => get('50k', warm));
  const d1m = await repeat(plan.smallRuns, 0, () => get('1m', warm));
  const d5m = await repeat(plan.fiveMiBRuns, 0, () => get('5m', warm, 60));

  // Circuits for the concurrent downloads exist before the CPU window opens, so the window holds
  // the bulk transfer only.
  const users = Array.from({ length: plan.concurrent }, (_, i) => `iso-${tag}-${i}`);
  const prober = `probe-${tag}`;
  await Promise.all([...users, prober].map((u) => get('1k', u)));
  const cpu0 = totalCpuSeconds([...pids, env.webPid]) + reapedChildrenCpuSeconds();
  const net0 = totalCpuSeconds(pids);
  env.log(`  [${path.name}] ${plan.bigMiB} MiB x${plan.bigRuns}`);
  const big = await repeat(plan.bigRuns, 0, () => get(`${plan.bigMiB}m`, warm, 120));
  env.log(`  [${path.name}] ${plan.concurrent} x ${plan.concurrentMiB} MiB on isolated circuits`);
  const t0 = performance.now();
  let concDone = false;
  const concP = Promise.all(users.map((u) => get(`${plan.concurrentMiB}m`, u, 120))).finally(() => {
    concDone = true;
  });
  // What a user browsing beside those downloads waits: 1 KiB on a circuit of its own (built above),
  // a request every 100 ms (each on its own, not waiting for the last) for as long as they run.
  const probes: Promise<CurlResult>[] = [];
  const probing = (async () => {
    for (await sleep(100); !concDone; await sleep(100)) probes.push(get('1k', prober));
  })();
  const conc = await concP;
  const concS = (performance.now() - t0) / 1000;
  await probing;
  const underLoad = await Promise.all(probes);
  const cpu1 = totalCpuSeconds([...pids, env.webPid]) + reapedChildrenCpuSeconds();
  const net1 = totalCpuSeconds(pids);
  const bulkBytes = [...big, ...conc].reduce((a, r) => a + r.bytes, 0);

  // Every 3-hop circuit built during the suite, on demand or (C Tor) ahead of demand.
  const builds = [...quietBuilds, ...path.takeCircuitBuilds()];
  const peak: Record<string, number> = {};
  for (const p of path.processes) {
    const m = memory(p.pid);
    if (m) peak[p.name] = round(m.peakMiB, 1);
  }
  const peakPrivate = Object.fromEntries(
    Object.entries(privateMemory.stop()).map(([name, mib]) => [name, round(mib, 1)]),
  );
  // After the memory peaks are read, so they stay those of the downloads, comparable across runs.
  env.log(`  [${path.name}] one ${plan.bigMiB} MiB upload`);
  const upload = await curl(url('upload'), {
    proxy: path.proxy,
    user: path.proxy ? warm : undefined,
    maxTimeSeconds: 120,
    upload: join(env.filesDir, `${plan.bigMiB}m`),
  });
  const bigRunsMiBps = big.map((r) => round(r.bytes / MiB / r.total, 1));
  return {
    path: path.name,
    startMs: path.startMs === null ? null : round(path.startMs, 0),
    ttfbBuiltPacedMs: ms(paced, (r) => r.ttfb),
    ttfbBuiltBackToBackMs: ms(b2b, (r) => r.ttfb),
    ttfbFreshMs: ms(fresh, (r) => r.ttfb),
    ttfbHttpProxyBackToBackMs: viaHttp
      ? ms(viaHttp, (r) => r.ttfb)
      : path.proxy
        ? null
        : ms(b2b, (r) => r.ttfb),
    ttfbOptimisticPacedMs: optimisticPaced
      ? ms(optimisticPaced, (r) => r.ttfb)
      : path.proxy
        ? null
        : ms(paced, (r) => r.ttfb),
    ttfbOptimisticBackToBackMs: optimisticB2b
      ? ms(optimisticB2b, (r) => r.ttfb)
      : path.proxy
        ? null
        : ms(b2b, (r) => r.ttfb),
    circuitBuildQuietMs: quietBuilds.length ? round(median(quietBuilds), 2) : null,
    circuitBuildMs: builds.length ? round(median(builds), 2) : null,
    circuitBuildSamplesMs: builds.map((b) => round(b, 2)),
    download50KiBMs: ms(d50k, (r) => r.total),
    download1MiBMs: ms(d1m, (r) => r.total),
    download5MiBMs: ms(d5m, (r) => r.total),
    bigMiBps: round(median(bigRunsMiBps), 1),
    bigRunsMiBps,
    firstBigMiBps: round(first.bytes / MiB / first.total, 1),
    firstBigCpuSecondsPerGiBNetwork: pids.length ? round(firstNetCpu / (first.bytes / GiB), 2) : null,
    warmUpMiB: round(warmedMiB, 0),
    bigUploadMiBps: round(upload.bytes / MiB / upload.total, 1),
    concurrentAggregateMiBps: round(conc.reduce((a, r) => a + r.bytes, 0) / MiB / concS, 1),
    ttfbUnderLoadMs: underLoad.length ? ms(underLoad, (r) => r.ttfb) : null,
    ttfbUnderLoadSamplesMs: underLoad.map((r) => round(r.ttfb * 1000, 1)),
    concurrentSlowestS: round(Math.max(...conc.map((r) => r.total)), 2),
    cpuSecondsPerGiBAll: round((cpu1 - cpu0) / (bulkBytes / GiB), 2),
    cpuSecondsPerGiBNetwork: pids.length ? round((net1 - net0) / (bulkBytes / GiB), 2) : null,
    bulkGiB: round(bulkBytes / GiB, 3),
    peakRssMiB: peak,
    peakPrivateMiB: peakPrivate,
  };
}

export interface SlowSample {
  t: number;
  /** MiB the reader has received. */
  readMiB: number;
  /** MiB the web server handed to the kernel: sent minus read is what sits in buffers on the way. */
  sentMiB: number;
  rssMiB: Record<string, number>;
}

export interface SlowResult {
  path: string;
  requestedMiB: number;
  rateMiBps: number;
  boundSeconds: number;
  samples: SlowSample[];
  /** Largest minus smallest RSS of each relay after the first sample (flat means bounded). */
  relayRssGrowthMiB: Record<string, number>;
  maxInFlightMiB: number;
}

/** A big download read slowly by curl; prints every relay's (and the client's) RSS over time. */
export async function runSlowReader(path: Path, plan: Plan, env: Env, tmp: string): Promise<SlowResult> {
  const id = `slow-${path.name}-${Date.now()}`;
  const out = join(tmp, `${id}.bin`);
  const bytes = plan.slowMiB * MiB;
  const watched = path.processes.filter((p) => p.kind === 'relay' || p.kind === 'client');
  const samples: SlowSample[] = [];
  const t0 = performance.now();
  let finished = false;
  const done = curl(`${env.webUrl}/stream?bytes=${bytes}&id=${id}`, {
    proxy: path.proxy,
    user: path.proxy ? id : undefined,
    maxTimeSeconds: plan.slowMaxSeconds,
    limitRate: plan.slowRate,
    output: out,
  }).finally(() => {
    finished = true;
  });
  const sample = async () => {
    let sent = 0;
    try {
      const r = await fetch(`${env.webUrl}/stats`);
      const st = (await r.json()) as Record<string, { sent: number }>;
      sent = st[id]?.sent ?? 0;
    } catch {
      // The stats request is best effort; a missing figure shows as 0.
    }
    let read = 0;
    try {
      read = statSync(out).size;
    } catch {
      // Nothing written yet.
    }
    const rss: Record<string, number> = {};
    for (const p of watched) {
      const m = memory(p.pid);
      if (m) rss[p.name] = round(m.rssMiB, 1);
    }
    const s = {
      t: round((performance.now() - t0) / 1000, 1),
      readMiB: round(read / MiB, 1),
      sentMiB: round(sent / MiB, 1),
      rssMiB: rss,
    };
    samples.push(s);
    env.log(
      `  [${path.name}] slow reader t=${s.t}s read=${s.readMiB} MiB sent=${s.sentMiB} MiB rss: ${Object.entries(
        rss,
      )
        .map(([k, v]) => `${k}=${v}`)
        .join(' ')}`,
    );
  };
  await sample();
  // Bounded twice: curl's --max-time, and this loop's count.
  const maxSamples = Math.ceil(plan.slowMaxSeconds / plan.slowSampleSeconds) + 2;
  for (let i = 0; i < maxSamples && !finished; i++) {
    await Promise.race([sleep(plan.slowSampleSeconds * 1000), done.catch(() => undefined)]);
    await sample();
  }
  await done.catch((err) => env.log(`  [${path.name}] slow reader: ${err.message}`));
  const growth: Record<string, number> = {};
  for (const p of watched.filter((w) => w.kind === 'relay')) {
    const xs = samples
      .slice(1)
      .map((s) => s.rssMiB[p.name])
      .filter((x) => x !== undefined);
    if (xs.length) growth[p.name] = round(Math.max(...xs) - Math.min(...xs), 1);
  }
  return {
    path: path.name,
    requestedMiB: plan.slowMiB,
    rateMiBps: plan.slowRate / MiB,
    boundSeconds: plan.slowMaxSeconds,
    samples,
    relayRssGrowthMiB: growth,
    maxInFlightMiB: round(Math.max(0, ...samples.map((s) => s.sentMiB - s.readMiB)), 1),
  };
}
