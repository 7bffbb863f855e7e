// One `allium` command as a separate OS process, as an operator would run it: waits for its `ready` line,
// keeps its log lines, and can be killed or waited for. For tests that need to kill and restart parts.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import net from 'node:net';
import { promisify } from 'node:util';
import { RUNTIME_ENV, RUNTIME_NODE_FLAGS } from '../../src/cli/runtime-flags.js';
import { TEST_NETWORK_ONION_SETTINGS } from '../../src/directory/ring-values.js';
import { CLI_PATH } from '../../src/testnet/testnet.js';
import { waitFor } from './wait.js';

const run = promisify(execFile);

export class AlliumProcess {
  readonly lines: string[] = [];
  ready: Record<string, string> = {};
  exitCode: number | null = null;
  exitSignal: string | null = null;
  private readonly exited: Promise<void>;

  private constructor(
    readonly name: string,
    readonly proc: ChildProcess,
  ) {
    this.exited = new Promise((resolve) =>
      proc.once('exit', (code, signal) => {
        this.exitCode = code;
        this.exitSignal = signal;
        resolve();
      }),
    );
    let buf = '';
    proc.stderr!.setEncoding('utf8');
    proc.stderr!.on('data', (d: string) => {
      buf += d;
      const parts = buf.split('\n');
      buf = parts.pop() ?? '';
      this.lines.push(...parts);
      if (this.lines.length > 5000) this.lines.splice(0, this.lines.length - 5000);
    });
  }

  /** Starts `allium <args>`; resolves on its `ready` line, or with the process exited (check exitCode). */
  static start(
    name: string,
    args: string[],
    timeoutMs = 30_000,
    runtime: { nodeArgs?: string[]; env?: Record<string, string> } = {},
  ): Promise<AlliumProcess> {
    // With the runtime flags, as the bin starts it (unless told otherwise): no relaunch, so proc is
    // the allium process itself.
    const proc = spawn(process.execPath, [...(runtime.nodeArgs ?? RUNTIME_NODE_FLAGS), CLI_PATH, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...RUNTIME_ENV, ...process.env, ...runtime.env },
    });
    const p = new AlliumProcess(name, proc);
    return new Promise((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => {
        proc.kill('SIGKILL');
        reject(new Error(`${name} not ready within ${timeoutMs} ms:\n${p.log.slice(-3000)}`));
      }, timeoutMs);
      proc.stdout!.setEncoding('utf8');
      proc.stdout!.on('data', (d: string) => {
        out += d;
        const line = out.split('\n').find((l) => l.startsWith('ready '));
        if (!line) return;
        clearTimeout(timer);
        for (const part of line.slice(6).split(' ')) {
          const i = part.indexOf('=');
          if (i > 0) p.ready[part.slice(0, i)] = part.slice(i + 1);
        }
        proc.stdout!.removeAllListeners('data');
        proc.stdout!.resume();
        resolve(p);
      });
      p.exited.then(() => {
        clearTimeout(timer);
        resolve(p);
      });
    });
  }

  get log(): string {
    return this.lines.join('\n');
  }

  get running(): boolean {
    return this.exitCode === null && this.exitSignal === null;
  }

  /** Resolves when the process has exited (after at most timeoutMs, then SIGKILL). */
  async waitExit(timeoutMs = 15_000): Promise<void> {
    const t = setTimeout(() => this.proc.kill('SIGKILL'), timeoutMs);
    await this.exited;
    clearTimeout(t);
  }

  async kill(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (this.running) this.proc.kill(signal);
    await this.waitExit();
  }

  /** Waits (bounded) for a log line matching `re`. */
  waitForLog(re: RegExp, timeoutMs = 10_000): Promise<string> {
    return waitFor(`${this.name} logs a line matching ${re}`, () => this.lines.find((l) => re.test(l)), {
      timeoutMs,
      everyMs: 50,
    }).catch((err: Error) => {
      throw new Error(`${err.message}:\n${this.log.slice(-3000)}`);
    });
  }
}

/** Runs an `allium` command to completion (e.g. `fetch`); never rejects on a non-zero exit. */
export async function runAllium(
  args: string[],
  timeoutMs = 60_000,
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, [...RUNTIME_NODE_FLAGS, CLI_PATH, ...args], {
      timeout: timeoutMs,
      maxBuffer: 64 << 20,
      env: { ...RUNTIME_ENV, ...process.env },
    });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number | string; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

/** A TCP port on `host` that nothing listens on right now (bound, then released). */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.listen(0, host, resolve);
  });
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** Directory flags for a flood test: no connect-back check, and any number of relays per address. */
export const DIRECTORY_WITHOUT_LISTING_LIMITS = [
  '--no-reachability-check',
  '--max-relays-per-local-address',
  '100000',
];

/** The arguments of `allium directory` keeping its data in `dataDir`, on `port` (0: any free one). */
export function directoryArgs(dataDir: string, port = 0, extra: string[] = []): string[] {
  return ['directory', '--data-dir', dataDir, '--port', String(port), ...TEST_ONION_ARGS, ...extra];
}

/** A test network's onion-service settings (protocol.md §8.3) as `allium directory` flags. */
export const TEST_ONION_ARGS = [
  '--onion-period',
  String(TEST_NETWORK_ONION_SETTINGS.periodSeconds),
  '--onion-new-relays-on-ring',
];

/** The arguments of `allium relay` joining the directory at `directory` (its key, if given). */
export function relayArgs(o: {
  directory: string;
  key?: string;
  dataDir: string;
  nickname?: string;
  extra?: string[];
}): string[] {
  return [
    'relay',
    '--directory',
    o.directory,
    ...(o.key ? ['--directory-key', o.key] : []),
    '--data-dir',
    o.dataDir,
    ...(o.nickname ? ['--nickname', o.nickname] : []),
    ...(o.extra ?? []),
  ];
}
