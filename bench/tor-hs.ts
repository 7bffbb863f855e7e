// The C Tor onion service of the bench's private C Tor network (tor-net.ts): its settings, and how the
// bench learns its address and that it has published its descriptor.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BenchError } from './errors.js';
import { sleep } from './stats.js';
import { type Control, logTail, type TorProc, torDied } from './tor-control.js';

/**
 * A C Tor instance running a v3 onion service (HiddenServiceDir) on its own, as a server would: no
 * SOCKS port, not a relay. Its intro points, descriptor stores and rendezvous points are the
 * network's relays (every relay gets the HSDir flag from the authorities, TOR_AUTHORITY).
 */
export const TOR_ONION_SERVICE = [
  'SocksPort 0',
  // As for the client: a fixed build timeout, or the learned one times out every circuit at the
  // first busy moment on loopback.
  'LearnCircuitBuildTimeout 0',
  'CircuitBuildTimeout 30',
];

export interface TorOnionService {
  /** `<56 base32>.onion`, from the service's hostname file. */
  address: string;
  /** Not among the path's processes: the suite's CPU and memory figures leave it out. */
  pid: number;
  /**
   * Resolves once the service has stored a descriptor with at least one store and no upload is still
   * pending (HS_DESC events on its control port), with the milliseconds since the network's launch
   * (the service is launched with it); rejects past `deadlineMs` after that launch.
   */
  published(deadlineMs: number): Promise<number>;
}

/**
 * Watches the service's descriptor uploads (HS_DESC UPLOAD, then UPLOADED or FAILED per store) and
 * reads its address from the hostname file Tor writes when it makes the service's keys at start.
 */
export async function watchOnionService(
  c: Control,
  hsDir: string,
  p: TorProc,
  launchedAt: number,
  deadline: number,
): Promise<TorOnionService> {
  const pending = new Map<string, number>();
  let uploaded = 0;
  let failed = 0;
  let publishedAt: number | null = null;
  c.listeners.push((e) => {
    const m = /^HS_DESC (UPLOAD|UPLOADED|FAILED) \S+ \S+ (\S+)/.exec(e);
    if (!m) return;
    const [, action, hsdir] = m;
    const n = pending.get(hsdir) ?? 0;
    if (action === 'UPLOAD') pending.set(hsdir, n + 1);
    else {
      if (n <= 1) pending.delete(hsdir);
      else pending.set(hsdir, n - 1);
      if (action === 'UPLOADED') uploaded++;
      else failed++;
    }
    if (publishedAt === null && uploaded > 0 && pending.size === 0) publishedAt = performance.now();
  });
  const hostname = join(hsDir, 'hostname');
  while (!existsSync(hostname)) {
    if (performance.now() > deadline)
      throw new BenchError('ALLIUM_BENCH_TOR_ONION', `the onion service wrote no ${hostname}`);
    if (p.proc.exitCode !== null) throw torDied(p);
    await sleep(100);
  }
  const address = readFileSync(hostname, 'utf8').trim();
  return {
    address,
    pid: p.proc.pid!,
    published: async (deadlineMs) => {
      while (publishedAt === null) {
        if (p.proc.exitCode !== null) throw torDied(p);
        if (performance.now() - launchedAt > deadlineMs)
          throw new BenchError(
            'ALLIUM_BENCH_TOR_ONION',
            `the C Tor onion service ${address} stored no descriptor within ${Math.round(deadlineMs / 1000)} s of its launch (${uploaded} stored, ${failed} failed, ${pending.size} pending); its log:\n${logTail(p.dir)}`,
          );
        await sleep(250);
      }
      return publishedAt - launchedAt;
    },
  };
}
