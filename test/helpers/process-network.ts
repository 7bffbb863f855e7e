// A directory and three relays (guard, middle, exit) as separate `allium` processes, each serving
// its metrics, for the hostile-load tests (test/stress/): an attacker and a bystander run as
// in-process clients that choose their paths, and the relays' memory and queues are read from
// outside, as an operator would.
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { RUNTIME_ENV, RUNTIME_NODE_FLAGS } from '../../src/cli/runtime-flags.js';
import { AlliumClient } from '../../src/client/client.js';
import type { ClientCircuit } from '../../src/client/client-circuit.js';
import type { CircuitStream } from '../../src/core/stream-mux.js';
import { streamGet } from '../../src/net/http-fetch.js';
import type { ConsensusRelay } from '../../src/wire/directory-docs.js';
import { AlliumProcess, directoryArgs, relayArgs as relayCommand } from './allium-process.js';
import { tempDir } from './temp.js';
import { type Files, sha256 } from './web.js';

export const MiB = 1024 * 1024;

export interface ProcessNetwork {
  directory: AlliumProcess;
  guard: AlliumProcess;
  middle: AlliumProcess;
  exit: AlliumProcess;
  relays: AlliumProcess[];
  url: string;
  key: Buffer;
  /** A client of this network (no spare circuits), stopped with the network. */
  client(opts?: { circuitLifetimeMs?: number; circuitIdleMs?: number }): Promise<AlliumClient>;
  /** The path guard, middle, exit as the client's consensus lists it. */
  path(client: AlliumClient): ConsensusRelay[];
  stop(): Promise<void>;
}

/** Starts the network; `relayArgs` go to every relay (limits under test). */
export async function startProcessNetwork(relayArgs: string[] = []): Promise<ProcessNetwork> {
  const root = tempDir('stress');
  const procs: AlliumProcess[] = [];
  const clients: AlliumClient[] = [];
  const start = async (name: string, args: string[]) => {
    // As the `allium` bin runs them: the node flags and malloc arenas the memory figures assume.
    const p = await AlliumProcess.start(name, args, 60_000, {
      nodeArgs: RUNTIME_NODE_FLAGS,
      env: { ...RUNTIME_ENV },
    });
    procs.push(p);
    if (!p.running) throw new Error(`${name} exited at start:\n${p.log.slice(-3000)}`);
    return p;
  };
  try {
    const directory = await start(
      'directory',
      directoryArgs(join(root, 'directory'), 0, ['--log-level', 'warn']),
    );
    const url = directory.ready.url;
    const key = directory.ready.key;
    const relay = (nick: string, extra: string[]) =>
      start(
        nick,
        relayCommand({
          directory: url,
          key,
          dataDir: join(root, nick),
          nickname: nick,
          extra: [
            '--port',
            '0',
            '--refresh',
            '1',
            '--metrics',
            '127.0.0.1:0',
            '--log-level',
            'warn',
            ...relayArgs,
            ...extra,
          ],
        }),
      );
    const [guard, middle, exit] = await Promise.all([
      relay('guard', []),
      relay('middle', []),
      relay('exit', ['--exit', '--allow-private']),
    ]);
    const keyBuf = Buffer.from(key, 'base64');
    return {
      directory,
      guard,
      middle,
      exit,
      relays: [guard, middle, exit],
      url,
      key: keyBuf,
      async client(opts = {}) {
        const c = await AlliumClient.start({
          directoryUrl: url,
          directoryKey: keyBuf,
          minRelays: 3,
          spareCircuits: 0,
          ...opts,
        });
        clients.push(c);
        return c;
      },
      path(client) {
        const relays = client.currentConsensus!.relays;
        return [guard, middle, exit].map((p) => relays.find((r) => r.id === p.ready.id)!);
      },
      async stop() {
        for (const c of clients) await c.close().catch(() => {});
        await Promise.all(procs.map((p) => p.kill()));
        rmSync(root, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await Promise.all(procs.map((p) => p.kill()));
    rmSync(root, { recursive: true, force: true });
    throw err;
  }
}

/** Resident memory of a process, in bytes (from /proc). */
export function rssOf(p: AlliumProcess): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${p.proc.pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

/** The relay's metrics (unlabelled samples, and labelled ones as `name{labels}`). */
export async function metricsOf(p: AlliumProcess): Promise<Map<string, number>> {
  const body = await (await fetch(`http://${p.ready.metrics}/metrics`)).text();
  const out = new Map<string, number>();
  for (const line of body.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

/** `count` circuits on `path`, built 16 at a time so a burst of builds stays within a relay's CREATE rate. */
export async function buildCircuits(
  client: AlliumClient,
  path: ConsensusRelay[],
  count: number,
): Promise<ClientCircuit[]> {
  const circuits: ClientCircuit[] = [];
  for (let i = 0; i < count; i += 16) {
    const batch = Math.min(16, count - i);
    circuits.push(...(await Promise.all(Array.from({ length: batch }, () => client.buildCircuit({ path })))));
  }
  return circuits;
}

/**
 * A user beside the attack: a client of its own, fetching /random1m of `web` again and again over
 * one circuit on the network's path (guard, middle, exit). Returns it with that path.
 */
export async function startBystander(
  netw: ProcessNetwork,
  web: { url: string },
  files: Files,
): Promise<{ bystander: Bystander; path: ConsensusRelay[] }> {
  const user = await netw.client();
  const path = netw.path(user);
  const bystander = new Bystander(
    await user.buildCircuit({ path }),
    web.url,
    '/random1m',
    files['/random1m'],
  );
  return { bystander, path };
}

export const mib = (bytes: number) => `${(bytes / MiB).toFixed(1)} MiB`;

/**
 * A user beside the attack: fetches `path` again and again over its own circuit through `route`,
 * checks every byte, and notes how long each fetch took, until stopped (or `maxFetches`).
 */
export class Bystander {
  readonly times: number[] = [];
  failure: Error | null = null;
  private stopped = false;
  private readonly done: Promise<void>;

  constructor(circuit: ClientCircuit, webUrl: string, path: string, expected: Buffer, maxFetches = 10_000) {
    const want = sha256(expected);
    const u = new URL(webUrl);
    this.done = (async () => {
      for (let i = 0; i < maxFetches && !this.stopped; i++) {
        const t0 = performance.now();
        try {
          const res = await streamGet(`${webUrl}${path}`, {
            connect: () => circuit.openStream(u.hostname, Number(u.port)) as Promise<CircuitStream>,
          });
          const chunks: Buffer[] = [];
          for await (const c of res) chunks.push(c as Buffer);
          if (sha256(Buffer.concat(chunks)) !== want) throw new Error(`fetch ${i}: the body differs`);
        } catch (err) {
          this.failure = err as Error;
          return;
        }
        this.times.push(performance.now() - t0);
      }
    })();
  }

  /** Stops after the fetch in progress; resolves with the fetch times (ms). */
  async stop(): Promise<number[]> {
    this.stopped = true;
    await this.done;
    return this.times;
  }

  summary(): string {
    const t = [...this.times].sort((a, b) => a - b);
    if (t.length === 0) return 'no fetch completed';
    const q = (f: number) => t[Math.min(t.length - 1, Math.floor(f * t.length))].toFixed(0);
    return `${t.length} fetches, median ${q(0.5)} ms, p90 ${q(0.9)} ms, max ${t[t.length - 1].toFixed(0)} ms`;
  }
}
