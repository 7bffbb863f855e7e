// The Allium side of the benchmark: a testnet of separate processes (src/testnet/testnet.ts), and
// an onion service on it when the library has one.
import * as library from '../src/index.js';
import { Testnet } from '../src/testnet/testnet.js';
import { BenchError } from './errors.js';
import type { NamedPid, Path } from './suite.js';

export interface AlliumNet {
  path: Path;
  testnet: Testnet;
  stop(): Promise<void>;
}

export async function startAllium(relays: number): Promise<AlliumNet> {
  const builds: number[] = [];
  // The client logs each circuit build with its duration at debug level; relays stay at warn so
  // logging costs nothing on their hot path.
  const testnet = await Testnet.start({
    relays,
    logLevel: 'debug',
    relayArgs: () => ['--log-level', 'warn'],
    clientArgs: ['--http-proxy', '127.0.0.1:0', '--socks-optimistic', '127.0.0.1:0'],
    onLog: circuitBuildsFromLog(builds),
  });
  const processes: NamedPid[] = testnet.processes.map((p) => ({
    name: p.name,
    pid: p.proc.pid!,
    kind: p.name === 'client' ? 'client' : p.name === 'directory' ? 'directory' : 'relay',
  }));
  return {
    testnet,
    path: {
      name: 'allium',
      proxy: { host: testnet.socksHost, port: testnet.socksPort },
      httpProxy: addressOf(testnet, 'http'),
      optimisticProxy: addressOf(testnet, 'socksOptimistic'),
      processes,
      startMs: testnet.readyAfterMs,
      takeCircuitBuilds: () => builds.splice(0),
    },
    stop: () => testnet.stop(),
  };
}

/**
 * A testnet log listener that adds each circuit build's duration to `builds`: the client logs them at
 * debug level ('circuit built', with `ms`).
 */
export function circuitBuildsFromLog(builds: number[]): (name: string, line: string) => void {
  return (name, line) => {
    if (name !== 'client' || !line.includes('circuit built')) return;
    try {
      const o = JSON.parse(line) as { msg?: string; ms?: number };
      if (o.msg === 'circuit built' && typeof o.ms === 'number') builds.push(o.ms);
    } catch {
      // Not a JSON log line.
    }
  };
}

/** An address from the client's ready line (`http=127.0.0.1:PORT`, `socksOptimistic=...`). */
function addressOf(testnet: Testnet, key: string): { host: string; port: number } | null {
  const a = testnet.processes.find((p) => p.name === 'client')?.ready[key];
  const m = a ? /^(.*):(\d+)$/.exec(a) : null;
  return m ? { host: m[1].replace(/^\[|\]$/g, ''), port: Number(m[2]) } : null;
}

export interface AlliumOnionService {
  /** `<56 base32>.allium`. */
  address: string;
  close(): Promise<void>;
}

/**
 * An Allium onion service in front of `to` (host:port of the web server) on the testnet, made with
 * the library's createService. null when this build's library has no createService: the report then
 * says the Allium side is not available yet, and the onion line's Allium column stays empty.
 * Measuring starts once the service's `ready` resolves: its descriptor is stored (as the C Tor
 * side waits for its uploads, tor-net.ts).
 */
export async function startAlliumOnionService(opts: {
  testnet: Testnet;
  to: string;
  dataDir: string;
}): Promise<AlliumOnionService | null> {
  // Looked up at run time, so the bench builds against a library with or without onion services.
  const createService = (library as unknown as Record<string, unknown>).createService;
  if (typeof createService !== 'function') return null;
  const service = (await createService({
    to: opts.to,
    dataDir: opts.dataDir,
    directory: opts.testnet.directoryUrl,
    directoryKey: opts.testnet.directoryKey,
  })) as Partial<AlliumOnionService> | null;
  if (typeof service?.address !== 'string' || typeof service.close !== 'function')
    throw new BenchError('ALLIUM_BENCH_ONION', 'createService returned no { address, close }');
  // createService resolves with the address; `ready` once the descriptor is stored.
  await (service as { ready?: Promise<void> }).ready;
  return service as AlliumOnionService;
}

/** Whether this build's library can run the Allium side of the onion line. */
export function alliumOnionServicesAvailable(): boolean {
  return typeof (library as unknown as Record<string, unknown>).createService === 'function';
}
