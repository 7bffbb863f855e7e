// The bench's onion-service line: time to first byte to an onion service the client has never
// reached, then with its descriptor known, then on its joined rendezvous circuit, and one download,
// through Allium's and C Tor's onion services in front of the same web server. The floor is the same
// requests sent straight to the web server in the same run.
import { type CurlResult, curl, type SocksProxy } from './curl.js';
import { BenchError } from './errors.js';
import { type Row, table } from './report.js';
import { MiB, median, round } from './stats.js';
import type { Env, Plan } from './suite.js';

export interface OnionResult {
  path: string;
  /** The service's address (`.allium` or `.onion`); direct: the web server's host:port. */
  address: string;
  /**
   * The client's first request to the service: descriptor fetch from a store, circuit to an
   * introduction point, INTRODUCE, the service's circuit to the rendezvous point, then the stream.
   * One sample per run (a client reaches a service for the first time once).
   */
  firstContactMs: number;
  /**
   * A new SOCKS username each time (isolated, so no circuit is shared): the descriptor is cached,
   * but each request makes a new introduction and rendezvous. Median.
   */
  newRendezvousMs: number;
  newRendezvousSamplesMs: number[];
  /** The same SOCKS username again: a stream on the rendezvous circuit already joined. Median. */
  builtRendezvousMs: number;
  builtRendezvousSamplesMs: number[];
  downloadMiB: number;
  /** One download of `downloadMiB` on the joined rendezvous circuit. */
  downloadMiBps: number;
}

/**
 * Runs the onion line through `client` (a SOCKS port; null: straight to `address`, the floor).
 * `address` is the service's host name (`<56 base32>.allium` or `.onion`) and the service's port 80
 * must lead to the bench's web server. The client must never have reached the service before: the
 * first request is the first-contact figure.
 */
export async function runOnionLine(
  name: string,
  address: string,
  client: SocksProxy | null,
  plan: Plan,
  env: Env,
): Promise<OnionResult> {
  const tag = `onion-${name}-${process.pid}-${Date.now()}`;
  const get = (file: string, user: string, maxTimeSeconds = 60) =>
    curl(`http://${address}/${file}`, { proxy: client, user: client ? user : undefined, maxTimeSeconds });
  const ms = (rs: CurlResult[]) => rs.map((r) => round(r.ttfb * 1000, 2));
  env.log(`  [${name}] onion service ${address}: first contact`);
  const first = await get('1k', `${tag}-warm`, 120);
  const built: CurlResult[] = [];
  for (let i = 0; i < plan.onionRuns; i++) built.push(await get('1k', `${tag}-warm`));
  env.log(`  [${name}] onion service: ${plan.onionRuns} new rendezvous`);
  const fresh: CurlResult[] = [];
  for (let i = 0; i < plan.onionRuns; i++) fresh.push(await get('1k', `${tag}-new-${i}`));
  env.log(`  [${name}] onion service: one ${plan.onionMiB} MiB download`);
  const big = await get(`${plan.onionMiB}m`, `${tag}-warm`, 120);
  if (big.bytes !== plan.onionMiB * MiB)
    throw new BenchError(
      'ALLIUM_BENCH_ONION',
      `${name}: the onion service's ${plan.onionMiB} MiB download brought ${big.bytes} bytes`,
    );
  const builtMs = ms(built);
  const freshMs = ms(fresh);
  return {
    path: name,
    address,
    firstContactMs: round(first.ttfb * 1000, 2),
    newRendezvousMs: round(median(freshMs), 2),
    newRendezvousSamplesMs: freshMs,
    builtRendezvousMs: round(median(builtMs), 2),
    builtRendezvousSamplesMs: builtMs,
    downloadMiB: plan.onionMiB,
    downloadMiBps: round(big.bytes / MiB / big.total, 1),
  };
}

export function onionRows(plan: Plan): Row<OnionResult>[] {
  return [
    {
      label: '1 KiB TTFB, first contact: descriptor + intro + rendezvous (ms)',
      higherIsBetter: false,
      get: (r) => r.firstContactMs,
    },
    {
      label: '1 KiB TTFB, descriptor cached, new intro + rendezvous (ms)',
      higherIsBetter: false,
      get: (r) => r.newRendezvousMs,
    },
    {
      label: '1 KiB TTFB, joined rendezvous circuit (ms)',
      higherIsBetter: false,
      get: (r) => r.builtRendezvousMs,
    },
    {
      label: `one ${plan.onionMiB} MiB download from the service (MiB/s)`,
      higherIsBetter: true,
      get: (r) => r.downloadMiBps,
    },
  ];
}

/** What the onion line's report says about one side that has no figures, and why. */
export interface OnionMissing {
  path: string;
  reason: string;
}

/** One side of the onion line: its figures, or why it has none. */
export interface OnionSide {
  result: OnionResult | null;
  /** Why there are no figures: the side is not available, its service did not come up, or the line failed. */
  missing: string | null;
}

/**
 * The onion line for one network, with its failure recorded instead of thrown: a C Tor onion service
 * that never publishes must not cost the rest of the bench.
 */
export async function onionSide(
  name: string,
  service: () => Promise<string>,
  client: SocksProxy | null,
  plan: Plan,
  env: Env,
): Promise<OnionSide> {
  try {
    const address = await service();
    return { result: await runOnionLine(name, address, client, plan, env), missing: null };
  } catch (err) {
    const message = (err as Error).message;
    env.log(`  [${name}] onion line failed: ${message}`);
    return { result: null, missing: `failed: ${message}` };
  }
}

/** The onion line's part of the report: what each row measures, its table, and any side without figures. */
export function describeOnion(
  plan: Plan,
  direct: OnionResult,
  allium: OnionSide,
  tor: OnionSide | null,
  torPublishedMs: number | null,
): string[] {
  const out = [
    `onion services: a service in front of the same web server, reached through each network's client (direct: the same requests straight to the web server). First contact: the client's first request to the service, one sample; descriptor cached: ${plan.onionRuns} requests on new SOCKS usernames (each a new introduction and rendezvous); joined rendezvous circuit: ${plan.onionRuns} more on the first request's username; then the download on that circuit.`,
    table(direct, allium.result, tor ? tor.result : null, onionRows(plan)),
  ];
  if (allium.missing) out.push(`Allium onion service: ${allium.missing}`);
  if (tor?.missing) out.push(`C Tor onion service: ${tor.missing}`);
  if (torPublishedMs !== null)
    out.push(
      `C Tor onion service: descriptor stored ${(torPublishedMs / 1000).toFixed(1)} s after the network's launch (launched with it)`,
    );
  return out;
}
