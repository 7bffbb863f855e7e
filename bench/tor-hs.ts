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
  // Vanguards-lite takes each onion circuit's second hop from a few layer-2 guards, chosen among
  // Stable relays; a fresh 5-relay network has few, and with the entry and the circuit's target
  // excluded none may be left: the service then logs "Failed to find node for hop #2" and never
  // stores its descriptor with that relay. Allium has no vanguards either, so without them both
  // networks build the same 3-hop paths.
  'VanguardsLiteEnabled 0',
  // As for the client: a fixed build timeout, or the learned one times out every circuit at the
  // first busy moment on loopback.
  'LearnCircuitBuildTimeout 0',
  'CircuitBuildTimeout 30',
];

export interface TorOnionService {
  /** `<56 base32>.onion`, from the service's hostname file. */
  address: string;
  /** The service's notice log. */
  logFile: string;
  /** Not among the path's processes: the suite's CPU and memory figures leave it out. */
  pid: number;
  /**
   * Resolves once the service has stored a descriptor and every upload since is answered or lost
   * (HS_DESC events on its control port), with the milliseconds since the network's launch (the
   * service is launched with it); rejects past `deadlineMs` after that launch, or 10 s after the
   * call if that is later.
   */
  published(deadlineMs: number): Promise<number>;
}

/** An upload unanswered for this long is taken as lost: Tor does not always report a failed one. */
const UPLOAD_LOST_MS = 30_000;

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
  /** Per store, when each unanswered upload was sent (answers come back in order per store). */
  const pending = new Map<string, number[]>();
  let uploaded = 0;
  let failed = 0;
  let publishedAt: number | null = null;
  const settled = () => {
    if (publishedAt !== null || uploaded === 0) return;
    const now = performance.now();
    for (const sent of pending.values()) if (sent.some((t) => now - t < UPLOAD_LOST_MS)) return;
    publishedAt = now;
  };
  c.listeners.push((e) => {
    const m = /^HS_DESC (UPLOAD|UPLOADED|FAILED) \S+ \S+ (\S+)/.exec(e);
    if (!m) return;
    const [, action, hsdir] = m;
    const sent = pending.get(hsdir) ?? [];
    if (action === 'UPLOAD') sent.push(performance.now());
    else {
      sent.shift();
      if (action === 'UPLOADED') uploaded++;
      else failed++;
    }
    if (sent.length) pending.set(hsdir, sent);
    else pending.delete(hsdir);
    settled();
  });
  // Lost uploads settle with time, not with an event.
  const timer = setInterval(() => {
    settled();
    if (publishedAt !== null || p.proc.exitCode !== null) clearInterval(timer);
  }, 250);
  timer.unref();
  p.proc.once('exit', () => clearInterval(timer));
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
    logFile: join(p.dir, 'notice.log'),
    pid: p.proc.pid!,
    published: async (deadlineMs) => {
      const until = Math.max(launchedAt + deadlineMs, performance.now() + 10_000);
      while (publishedAt === null) {
        if (p.proc.exitCode !== null) throw torDied(p);
        if (performance.now() > until)
          throw new BenchError(
            'ALLIUM_BENCH_TOR_ONION',
            `the C Tor onion service ${address} did not store its descriptor within ${Math.round(deadlineMs / 1000)} s of its launch (${uploaded} uploads stored, ${failed} failed, ${[...pending.values()].flat().length} unanswered); its log:\n${logTail(p.dir)}`,
          );
        await sleep(250);
      }
      return publishedAt - launchedAt;
    },
  };
}
