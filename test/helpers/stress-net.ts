// A small network of `allium` processes on 127.0.0.1 for the hostile-load tests: a directory, two
// middles and one exit (so every circuit leaves through the exit under test), clients started on
// demand, and a bystander that keeps fetching a file by name through its own client, byte for byte.
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { DirectoryClient } from '../../src/net/directory-client.js';
import { streamGet } from '../../src/net/http-fetch.js';
import { socksConnect } from '../../src/net/socks-client.js';
import { AlliumProcess, directoryArgs, relayArgs } from './allium-process.js';
import { tempDir } from './temp.js';
import { waitFor } from './wait.js';

export interface StressNet {
  root: string;
  directory: AlliumProcess;
  exit: AlliumProcess;
  procs: AlliumProcess[];
  startClient(name: string): Promise<AlliumProcess>;
  close(): Promise<void>;
}

export async function startStressNet(exitArgs: string[]): Promise<StressNet> {
  const root = tempDir('stress');
  const procs: AlliumProcess[] = [];
  const start = async (name: string, args: string[]) => {
    const p = await AlliumProcess.start(name, [...args, '--log-level', 'warn'], 60_000);
    procs.push(p);
    if (!p.running) throw new Error(`${name} did not start:\n${p.log}`);
    return p;
  };
  const directory = await start('directory', directoryArgs(join(root, 'directory')));
  const relay = (nick: string, extra: string[]) =>
    start(
      nick,
      relayArgs({
        directory: directory.ready.url,
        key: directory.ready.key,
        dataDir: join(root, nick),
        nickname: nick,
        extra,
      }),
    );
  const [exit] = await Promise.all([
    relay('exit', ['--exit', '--allow-private', '--metrics', '127.0.0.1:0', ...exitArgs]),
    relay('mid1', []),
    relay('mid2', []),
  ]);
  // The directory lists a relay once it has checked it; clients need all three.
  const dirClient = new DirectoryClient({
    url: directory.ready.url,
    directoryKey: Buffer.from(directory.ready.key, 'base64'),
    timeoutMs: 5000,
  });
  await waitFor(
    'the directory lists the three relays',
    () =>
      dirClient
        .consensus()
        .then((c) => c.relays.length >= 3)
        .catch(() => false),
    { timeoutMs: 30_000, everyMs: 200 },
  );
  return {
    root,
    directory,
    exit,
    procs,
    startClient: (name) =>
      start(name, [
        'client',
        '--directory',
        directory.ready.url,
        '--directory-key',
        directory.ready.key,
        '--socks',
        '127.0.0.1:0',
      ]),
    close: async () => {
      await Promise.all(procs.map((p) => p.kill('SIGTERM')));
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/** A stream to host:port through `client`'s SOCKS port, on the circuit of isolation `user`. */
export function viaSocks(client: AlliumProcess, host: string, port: number, user: string): Promise<Duplex> {
  const at = client.ready.socks.lastIndexOf(':');
  return socksConnect({
    proxyHost: client.ready.socks.slice(0, at),
    proxyPort: Number(client.ready.socks.slice(at + 1)),
    host,
    port,
    username: user,
    password: 'x',
    timeoutMs: 60_000,
  });
}

/** Resident memory of a process, bytes (Linux). */
export function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

/** Memory the kernel gives TCP sockets on this machine, bytes (all processes: a rough figure). */
export function kernelTcpBytes(): number {
  const m = /TCP: .* mem (\d+)/.exec(readFileSync('/proc/net/sockstat', 'utf8'));
  return m ? Number(m[1]) * 4096 : 0;
}

/**
 * Bytes queued in the kernel on the TCP sockets of process `pid`: send queues (not yet taken by the
 * peer) plus receive queues (not yet read), from `ss`.
 */
export function kernelQueuedBytesOf(pid: number): number {
  const r = spawnSync('ss', ['-tnpH'], { encoding: 'utf8' });
  let sum = 0;
  for (const line of (r.stdout ?? '').split('\n')) {
    if (!line.includes(`pid=${pid},`)) continue;
    const cols = line.trim().split(/\s+/);
    sum += Number(cols[1]) + Number(cols[2]);
  }
  return sum;
}

/** One value of the exit's Prometheus metrics. */
export async function metric(exit: AlliumProcess, name: string): Promise<number> {
  const body = await (await fetch(`http://${exit.ready.metrics}/metrics`)).text();
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(body);
  return m ? Number(m[1]) : Number.NaN;
}

export const MiB = 1024 * 1024;
export const mib = (n: number) => `${(n / MiB).toFixed(1)} MiB`;

/** An HTTP server on 127.0.0.1 with one random file. */
export async function startFileServer(size: number): Promise<{
  port: number;
  path: string;
  sha256: string;
  close(): Promise<void>;
}> {
  const body = randomBytes(size);
  const server = http.createServer((req, res) => {
    if (req.url !== '/file') {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-length': body.length }).end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as AddressInfo).port,
    path: '/file',
    sha256: createHash('sha256').update(body).digest('hex'),
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

export interface BystanderReport {
  ok: number;
  failed: string[];
  latenciesMs: number[];
}

/**
 * Fetches `url` through `client` (a new circuit isolation per run of the loop is not needed: one
 * user) until `stop()` is true or `maxFetches` are done, checking each body's sha256.
 */
export async function bystander(
  client: AlliumProcess,
  url: string,
  sha256: string,
  stop: () => boolean,
  maxFetches = 500,
): Promise<BystanderReport> {
  const report: BystanderReport = { ok: 0, failed: [], latenciesMs: [] };
  for (let i = 0; i < maxFetches && !stop(); i++) {
    const t0 = performance.now();
    try {
      const res = await streamGet(url, {
        connect: (h, p) => viaSocks(client, h, p, 'bystander'),
        timeoutMs: 30_000,
      });
      const hash = createHash('sha256');
      for await (const chunk of res) hash.update(chunk as Buffer);
      const got = hash.digest('hex');
      if (got !== sha256) report.failed.push(`fetch ${i}: sha256 ${got}`);
      else report.ok++;
    } catch (err) {
      report.failed.push(`fetch ${i}: ${(err as Error).message}`);
    }
    report.latenciesMs.push(performance.now() - t0);
  }
  return report;
}

export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}
