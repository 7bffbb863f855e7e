// `node dist/bench/onion-download.js [--runs N] [--mib M] [--relays R] [--onion-only]`: the onion line's download
// on its own, for work on the onion service data path. A testnet of processes (as the bench's), the
// bench's web server, an Allium onion service in this process in front of it (as the bench has it),
// then alternately M MiB through an ordinary 3-hop circuit to the web server and M MiB from the
// service on one joined rendezvous circuit, each N times. ALLIUM_NODE_ARGS reaches the testnet's
// processes (e.g. --cpu-prof); this process (the service) is profiled with node's own flags.
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { startAllium, startAlliumOnionService } from './allium-net.js';
import { curl } from './curl.js';
import { BenchError } from './errors.js';
import { cpuSeconds } from './proc-stats.js';
import { MiB, median, round } from './stats.js';
import { startWebServer } from './web.js';

function option(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  if (i < 0) return fallback;
  const v = Number(process.argv[i + 1]);
  if (!Number.isFinite(v) || v <= 0) throw new BenchError('ALLIUM_BENCH_USAGE', `${name} takes a number`);
  return v;
}

const runs = Math.min(option('--runs', 3), 50);
const mib = Math.min(option('--mib', 10), 200);
const relays = Math.min(option('--relays', 5), 20);
/** Only the service's downloads (a profile then shows the onion path alone). */
const onionOnly = process.argv.includes('--onion-only');
const stops: (() => Promise<void>)[] = [];

async function main(): Promise<void> {
  const tmp = mkdtempSync(join(os.tmpdir(), 'allium-onion-dl-'));
  stops.push(async () => rmSync(tmp, { recursive: true, force: true }));
  const files = join(tmp, 'files');
  mkdirSync(files);
  writeFileSync(join(files, '1k'), randomBytes(1024));
  writeFileSync(join(files, 'big'), randomBytes(mib * MiB));
  const web = await startWebServer(files, '127.0.0.1', (stop) => stops.push(stop));
  const net = await startAllium(relays);
  stops.push(() => net.stop());
  const service = await startAlliumOnionService({
    testnet: net.testnet,
    to: new URL(web.url).host,
    dataDir: join(tmp, 'service'),
  });
  if (!service) throw new BenchError('ALLIUM_BENCH_ONION', 'this library has no createService');
  stops.unshift(() => service.close());
  const proxy = net.path.proxy;
  const get = async (url: string, user: string) => {
    const r = await curl(url, { proxy, user, maxTimeSeconds: 120 });
    if (r.bytes !== mib * MiB && !url.endsWith('/1k'))
      throw new BenchError('ALLIUM_BENCH_ONION', `${url} brought ${r.bytes} bytes`);
    return r;
  };
  // Warm both circuits: the first request builds them (and, to the service, the rendezvous).
  if (!onionOnly) await get(`${web.url}/1k`, 'plain');
  await get(`http://${service.address}/1k`, 'onion');
  const plain: number[] = [];
  const onion: number[] = [];
  // CPU seconds each process spent on the service's downloads: where the onion path's cost lies.
  const procs = [
    { name: 'service (this process)', pid: process.pid },
    { name: 'web server', pid: web.pid },
    ...net.path.processes,
  ];
  const cpu = new Map(procs.map((p) => [p.name, 0]));
  const cpuPlain = new Map(procs.map((p) => [p.name, 0]));
  /** Runs `fetch`, adding each process's CPU seconds meanwhile to `into`. */
  const counted = async <T>(into: Map<string, number>, fetch: () => Promise<T>): Promise<T> => {
    const before = procs.map((p) => cpuSeconds(p.pid) ?? 0);
    const r = await fetch();
    for (const [k, p] of procs.entries())
      into.set(p.name, (into.get(p.name) ?? 0) + (cpuSeconds(p.pid) ?? 0) - before[k]);
    return r;
  };
  for (let i = 0; i < runs; i++) {
    if (!onionOnly) {
      const p = await counted(cpuPlain, () => get(`${web.url}/big`, 'plain'));
      plain.push(round(p.bytes / MiB / p.total, 1));
    }
    const o = await counted(cpu, () => get(`http://${service.address}/big`, 'onion'));
    onion.push(round(o.bytes / MiB / o.total, 1));
    process.stdout.write(`run ${i + 1}: 3-hop ${plain[i] ?? '-'} MiB/s, onion service ${onion[i]} MiB/s\n`);
  }
  const perMiB = (m: Map<string, number>) =>
    [...m]
      .filter(([, s]) => s > 0)
      .map(([name, s]) => `${name} ${round((s * 1000) / (runs * mib), 0)}`)
      .join(', ');
  if (!onionOnly) process.stdout.write(`CPU ms per MiB, 3-hop: ${perMiB(cpuPlain)}\n`);
  process.stdout.write(`CPU ms per MiB, from the service: ${perMiB(cpu)}\n`);
  process.stdout.write(
    `one ${mib} MiB download, median of ${runs}: 3-hop ${onionOnly ? '-' : median(plain)} MiB/s, onion service ${median(onion)} MiB/s\n`,
  );
}

main()
  .catch((err: Error) => {
    process.stderr.write(`${err.stack ?? err.message}\n`);
    process.exitCode = 1;
  })
  .finally(async () => {
    for (const stop of stops) await stop().catch(() => undefined);
  });
