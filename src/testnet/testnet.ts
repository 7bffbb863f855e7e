// A whole network on this machine: a directory (or a set of directory authorities), N relays and a
// client, each a separate OS process started with the same CLI a user would type.
// Just over 400 lines for a reason: the start order (authorities, relays, client), the arguments each
// process gets and the cleanup on a failed start depend on each other and read best in one place.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RUNTIME_ENV, RUNTIME_NODE_FLAGS } from '../cli/runtime-flags.js';
import { AlliumError } from '../errors.js';
import { type DelayLine, startDelayLine } from '../net/delay-line.js';
import { freePort } from '../net/port-check.js';
import { socksConnect } from '../net/socks-client.js';

export class TestnetError extends AlliumError {}

export const CLI_PATH = fileURLToPath(new URL('../cli/main.js', import.meta.url));

export interface TestnetOptions {
  relays: number;
  /**
   * Directory authorities (default 1: a single directory). With more, each is its own process
   * voting every `votingIntervalSeconds`, and relays and the client are given the set's file.
   */
  authorities?: number;
  /** The authorities' voting period (default 2 s: a consensus forms within seconds). */
  votingIntervalSeconds?: number;
  /** Relays also serve the consensus as caches (default: with more than one authority). */
  caches?: boolean;
  exits?: number;
  socks?: { host: string; port: number };
  dataDir?: string;
  logLevel?: string;
  /** Start the client process (default true). */
  client?: boolean;
  /** Extra arguments per relay index (tests: e.g. a relay without --allow-private). */
  relayArgs?: (index: number) => string[];
  /** Called with each line a process writes to stderr (its log). */
  onLog?: (name: string, line: string) => void;
  relayTtlSeconds?: number;
  /** Exits may reach loopback and private addresses (default true: the test web servers are local). */
  exitsAllowPrivate?: boolean;
  /** Extra arguments for the directory and the client (e.g. --metrics, --http-proxy, --dashboard). */
  directoryArgs?: string[];
  clientArgs?: string[];
  /** Called as each process becomes ready (progress display). */
  onReady?: (p: ProcessInfo) => void;
  /**
   * Milliseconds each way on every link to a relay (default 0): relay i listens on 127.0.1.i and
   * advertises 127.0.2.i, where a delay line (src/net/delay-line.ts) holds every chunk this long.
   * A circuit's round trip is then about 6x this. Loopback has no other way to be far away.
   */
  linkDelayMs?: number;
  /** Up to this many more milliseconds each way, at random per chunk, in order (default 0). */
  linkJitterMs?: number;
}

export interface ProcessInfo {
  name: string;
  proc: ChildProcess;
  ready: Record<string, string>;
}

/** Extra node flags for every process, e.g. ALLIUM_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" to profile. */
const NODE_ARGS = (process.env.ALLIUM_NODE_ARGS ?? '').split(' ').filter(Boolean);

/** Feeds text chunks in, calls `onLine` for every complete line (the unfinished tail waits). */
function lineSplitter(onLine: (line: string) => void): (chunk: string) => void {
  let buf = '';
  return (chunk) => {
    buf += chunk;
    const lines = buf.split('\n');
    buf = lines.pop() ?? '';
    for (const l of lines) onLine(l);
  };
}

function startProcess(
  name: string,
  args: string[],
  onLog?: (name: string, line: string) => void,
  timeoutMs = 30_000,
): Promise<ProcessInfo> {
  const proc = spawn(process.execPath, [...RUNTIME_NODE_FLAGS, ...NODE_ARGS, CLI_PATH, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...RUNTIME_ENV, ...process.env },
  });
  return new Promise((resolve, reject) => {
    let out = '';
    let errText = '';
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(
        new TestnetError(
          'ALLIUM_TESTNET_TIMEOUT',
          `${name} did not become ready in ${timeoutMs} ms: ${errText.slice(-2000)}`,
        ),
      );
    }, timeoutMs);
    proc.stderr!.setEncoding('utf8');
    const errLines = lineSplitter((l) => onLog?.(name, l));
    proc.stderr!.on('data', (d: string) => {
      errText += d;
      if (errText.length > 20_000) errText = errText.slice(-10_000);
      if (onLog) errLines(d);
    });
    proc.stdout!.setEncoding('utf8');
    proc.stdout!.on('data', (d: string) => {
      out += d;
      const line = out.split('\n').find((l) => l.startsWith('ready '));
      if (line) {
        clearTimeout(timer);
        const ready: Record<string, string> = {};
        for (const part of line.slice(6).split(' ')) {
          const i = part.indexOf('=');
          if (i > 0) ready[part.slice(0, i)] = part.slice(i + 1);
        }
        proc.stdout!.removeAllListeners('data');
        // Later output (node's own tracing, e.g. --trace-gc) goes to the log hook too.
        if (onLog)
          proc.stdout!.on(
            'data',
            lineSplitter((l) => onLog(name, l)),
          );
        resolve({ name, proc, ready });
      }
    });
    proc.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(
        new TestnetError(
          'ALLIUM_TESTNET_EXIT',
          `${name} exited (${code ?? signal}) before it was ready: ${errText.slice(-2000)}`,
        ),
      );
    });
  });
}

export class Testnet {
  /** The first authority's (or the directory's) URL and identity key. */
  directoryUrl = '';
  directoryKey = '';
  /** The authority set file given to every process, when there is more than one authority. */
  authoritiesFile = '';
  readonly authorities: ProcessInfo[] = [];
  socksHost = '127.0.0.1';
  socksPort = 0;
  readonly relays: ProcessInfo[] = [];
  private clientProc: ProcessInfo | null = null;
  private readonly delayLines: DelayLine[] = [];
  private ownsDataDir = false;
  readonly dataDir: string;
  startedAt = 0;
  readyAfterMs = 0;

  private constructor(private readonly opts: TestnetOptions) {
    if (opts.dataDir) {
      this.dataDir = opts.dataDir;
      mkdirSync(opts.dataDir, { recursive: true });
    } else {
      this.dataDir = mkdtempSync(join(tmpdir(), 'allium-testnet-'));
      this.ownsDataDir = true;
    }
  }

  static async start(opts: TestnetOptions): Promise<Testnet> {
    if (opts.relays < 3) throw new TestnetError('ALLIUM_TESTNET_RELAYS', 'a testnet needs at least 3 relays');
    const n = opts.authorities ?? 1;
    if (!Number.isInteger(n) || n < 1 || n > 15) {
      throw new TestnetError('ALLIUM_TESTNET_RELAYS', 'a testnet has 1 to 15 directory authorities');
    }
    const t = new Testnet(opts);
    t.startedAt = performance.now();
    try {
      await t.boot();
    } catch (err) {
      await t.stop();
      throw err;
    }
    t.readyAfterMs = performance.now() - t.startedAt;
    return t;
  }

  private get logLevel(): string {
    return this.opts.logLevel ?? 'warn';
  }

  private async boot(): Promise<void> {
    const o = this.opts;
    const dirArgs = [
      '--log-level',
      this.logLevel,
      '--relay-ttl',
      String(o.relayTtlSeconds ?? 180),
      // Every relay of a test network registers from, and listens on, this machine's loopback.
      '--max-relays-per-local-address',
      String(Math.max(32, o.relays)),
      // Short onion-service periods, and every relay on the ring: they are all new (protocol.md §8.3).
      '--onion-period',
      '600',
      '--onion-new-relays-on-ring',
      ...(o.directoryArgs ?? []),
    ];
    const n = o.authorities ?? 1;
    let trustArgs: string[];
    if (n === 1) {
      const dir = await startProcess(
        'directory',
        ['directory', '--data-dir', join(this.dataDir, 'directory'), '--port', '0', ...dirArgs],
        o.onLog,
      );
      this.authorities.push(dir);
      o.onReady?.(dir);
      this.directoryUrl = dir.ready.url;
      this.directoryKey = dir.ready.key;
      trustArgs = ['--directory', this.directoryUrl, '--directory-key', this.directoryKey];
    } else {
      this.authoritiesFile = await this.writeAuthoritySet(n);
      const started = await Promise.allSettled(
        Array.from({ length: n }, (_, i) =>
          startProcess(
            `authority${i + 1}`,
            [
              'directory',
              '--data-dir',
              join(this.dataDir, `authority${i + 1}`),
              '--port',
              String(this.authorityPorts[i]),
              '--authorities',
              this.authoritiesFile,
              '--voting-interval',
              String(o.votingIntervalSeconds ?? 2),
              ...dirArgs,
            ],
            o.onLog,
          ).then((p) => {
            o.onReady?.(p);
            return p;
          }),
        ),
      );
      for (const r of started) if (r.status === 'fulfilled') this.authorities.push(r.value);
      const failed = started.find((r) => r.status === 'rejected');
      if (failed) throw (failed as PromiseRejectedResult).reason;
      this.directoryUrl = this.authorities[0].ready.url;
      this.directoryKey = this.authorities[0].ready.key;
      trustArgs = ['--authorities', this.authoritiesFile];
    }
    const caches = o.caches ?? n > 1;
    const exits = Math.min(o.relays, o.exits ?? Math.max(1, Math.floor(o.relays / 2)));
    const starts: Promise<ProcessInfo>[] = [];
    const delayMs = o.linkDelayMs ?? 0;
    const jitterMs = o.linkJitterMs ?? 0;
    if ((delayMs > 0 || jitterMs > 0) && o.relays > 254) {
      throw new TestnetError('ALLIUM_TESTNET_RELAYS', '--link-delay works for at most 254 relays');
    }
    for (let i = 0; i < o.relays; i++) {
      const nickname = `relay${i + 1}`;
      const exitArgs =
        i < exits ? ['--exit', ...(o.exitsAllowPrivate === false ? [] : ['--allow-private'])] : [];
      let delayArgs: string[] = [];
      if (delayMs > 0 || jitterMs > 0) {
        // The line takes any free port on 127.0.2.N; the relay listens on the same port on 127.0.1.N.
        const line = await startDelayLine(
          { host: `127.0.2.${i + 1}`, port: 0 },
          { host: `127.0.1.${i + 1}` },
          delayMs,
          jitterMs,
        );
        this.delayLines.push(line);
        delayArgs = [
          '--host',
          `127.0.1.${i + 1}`,
          '--port',
          String(line.port),
          '--address',
          `127.0.2.${i + 1}`,
        ];
      }
      const args = [
        'relay',
        ...trustArgs,
        // Behind a delay line the relay's advertised address is the line's, where no cache listens.
        ...(caches && delayArgs.length === 0 ? ['--cache-port', '0'] : []),
        '--data-dir',
        join(this.dataDir, nickname),
        '--nickname',
        nickname,
        '--port',
        '0',
        '--log-level',
        this.logLevel,
        ...exitArgs,
        ...delayArgs,
        ...(o.relayArgs?.(i) ?? []),
      ];
      starts.push(
        startProcess(nickname, args, o.onLog).then((p) => {
          o.onReady?.(p);
          return p;
        }),
      );
    }
    const settled = await Promise.allSettled(starts);
    for (const s of settled) if (s.status === 'fulfilled') this.relays.push(s.value);
    const failed = settled.find((s) => s.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
    if (o.client === false) return;
    const socks = o.socks ?? { host: '127.0.0.1', port: 0 };
    this.clientProc = await startProcess(
      'client',
      [
        'client',
        ...trustArgs,
        '--socks',
        `${socks.host.includes(':') ? `[${socks.host}]` : socks.host}:${socks.port}`,
        '--log-level',
        this.logLevel,
        ...(o.clientArgs ?? []),
      ],
      o.onLog,
    );
    o.onReady?.(this.clientProc);
    const [h, p] = splitHostPort(this.clientProc.ready.socks);
    this.socksHost = h;
    this.socksPort = p;
    // Ready means a stream can be carried: open one through the network to the directory itself.
    if (o.exitsAllowPrivate === false) return;
    const dir = new URL(this.directoryUrl);
    const s = await socksConnect({ proxyHost: h, proxyPort: p, host: dir.hostname, port: Number(dir.port) });
    s.destroy();
  }

  get clientProcess(): ChildProcess | null {
    return this.clientProc?.proc ?? null;
  }

  /** The directory, or the first authority. */
  get directoryProcess(): ChildProcess | null {
    return this.authorities[0]?.proc ?? null;
  }

  get processes(): ProcessInfo[] {
    return [...this.authorities, ...this.relays, this.clientProc].filter((p): p is ProcessInfo => p !== null);
  }

  private authorityPorts: number[] = [];

  /**
   * Makes each authority's key (`allium directory --print-authority`) on a port free now, and writes
   * the set every process is given.
   */
  private async writeAuthoritySet(n: number): Promise<string> {
    const entries: unknown[] = [];
    for (let i = 0; i < n; i++) {
      const port = await freePort('127.0.0.1');
      this.authorityPorts.push(port);
      const { stdout } = await runCli([
        'directory',
        '--data-dir',
        join(this.dataDir, `authority${i + 1}`),
        '--port',
        String(port),
        '--print-authority',
        `auth${i + 1}`,
      ]);
      entries.push(JSON.parse(stdout.trim()));
    }
    const file = join(this.dataDir, 'authorities.json');
    writeFileSync(
      file,
      `${JSON.stringify({ format: 'allium-authorities', version: 1, authorities: entries }, null, 2)}\n`,
    );
    return file;
  }

  /** Stops every process (SIGTERM, then SIGKILL after 3 s) and removes a temporary data directory. */
  async stop(): Promise<void> {
    const procs = this.processes
      .map((p) => p.proc)
      .filter((p) => p.exitCode === null && p.signalCode === null);
    await Promise.all(
      procs.map(
        (p) =>
          new Promise<void>((resolve) => {
            const t = setTimeout(() => p.kill('SIGKILL'), 3000);
            p.once('exit', () => {
              clearTimeout(t);
              resolve();
            });
            p.kill('SIGTERM');
          }),
      ),
    );
    for (const line of this.delayLines.splice(0)) await line.close();
    if (this.ownsDataDir) rmSync(this.dataDir, { recursive: true, force: true });
  }
}

/** One short `allium` command (no ready line), its output. */
function runCli(args: string[]): Promise<{ stdout: string }> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [CLI_PATH, ...args],
      { env: { ...RUNTIME_ENV, ...process.env }, timeout: 30_000 },
      (err, stdout, stderr) => {
        if (err) {
          reject(
            new TestnetError(
              'ALLIUM_TESTNET_EXIT',
              `allium ${args[0]} failed: ${stderr.slice(-2000) || err.message}`,
            ),
          );
        } else resolve({ stdout });
      },
    );
  });
}

function splitHostPort(s: string): [string, number] {
  const i = s.lastIndexOf(':');
  return [s.slice(0, i).replace(/^\[|\]$/g, ''), Number(s.slice(i + 1))];
}
