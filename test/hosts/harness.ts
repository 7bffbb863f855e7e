// The pieces every host test shares: whether this machine can build network namespaces, bringing the
// hosts of scripts/netns/allium-netns.sh up and down, running commands in a host, and tcpdump
// captures on a host's link.
import { type ChildProcess, execFile, spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { sleep, waitFor } from '../helpers/wait.js';

const run = promisify(execFile);
export const SCRIPT = fileURLToPath(new URL('../../../scripts/netns/allium-netns.sh', import.meta.url));

export { sha256 } from '../helpers/web.js';

/** Why this machine cannot run the hosts, or null when it can. */
export function cannotRunHosts(): string | null {
  if (process.platform !== 'linux') return 'network namespaces need Linux';
  if (process.getuid?.() !== 0) return 'needs root to create network namespaces (run as root, as CI does)';
  const probe = `allium-probe-${process.pid}`;
  const r = spawnSync('ip', ['netns', 'add', probe], { encoding: 'utf8' });
  if (r.error) return `cannot run "ip" (install iproute2): ${r.error.message}`;
  if (r.status !== 0) return `"ip netns add" fails here: ${r.stderr.trim()}`;
  spawnSync('ip', ['netns', 'del', probe]);
  for (const cmd of ['curl', 'tcpdump', 'ss'])
    if (spawnSync('sh', ['-c', `command -v ${cmd}`]).status !== 0) return `${cmd} is not installed`;
  return null;
}

/** One harness: a set of hosts under one namespace prefix (`allium-` unless told otherwise). */
export class Hosts {
  env: Record<string, string> = {};

  constructor(private readonly extraEnv: Record<string, string> = {}) {}

  get prefix(): string {
    return this.extraEnv.ALLIUM_NETNS_PREFIX ?? 'allium-';
  }

  ns(host: string): string {
    return `${this.prefix}${host}`;
  }

  private scriptEnv() {
    return { ...process.env, ALLIUM_NETNS_OWNER: String(process.pid), ...this.extraEnv };
  }

  /** Builds the hosts and starts every role; the script's KEY=VALUE lines land in `env`. */
  async up(timeoutMs: number): Promise<void> {
    const { stdout } = await run('bash', [SCRIPT, 'up'], { timeout: timeoutMs, env: this.scriptEnv() }).catch(
      (err) => {
        throw new Error(`allium-netns.sh up failed:\n${err.stderr}`);
      },
    );
    this.env = Object.fromEntries(
      stdout
        .split('\n')
        .filter((l) => /^[A-Za-z_0-9]+=/.test(l))
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
  }

  down(): void {
    spawnSync('bash', [SCRIPT, 'down'], { stdio: 'inherit', timeout: 30_000, env: this.scriptEnv() });
  }

  async cut(host: string, cut = true): Promise<void> {
    await run('bash', [SCRIPT, cut ? 'cut' : 'uncut', host], { timeout: 10_000, env: this.scriptEnv() });
  }

  /** Namespaces of this prefix still on the machine. */
  leftovers(): string[] {
    const re = new RegExp(`^${this.prefix}(br|dir|auth\\d+|relay\\d+|client|web|service)\\b`);
    return spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' })
      .stdout.split('\n')
      .filter((l) => re.test(l));
  }

  /** Runs a command in a host, bounded by `timeoutMs`. */
  inHost(host: string, args: string[], timeoutMs = 30_000) {
    return run('ip', ['netns', 'exec', this.ns(host), ...args], {
      timeout: timeoutMs,
      maxBuffer: 64 * 1024 * 1024,
      encoding: 'buffer',
    });
  }

  /** The pids of every process in a host. */
  pids(host: string): number[] {
    return spawnSync('ip', ['netns', 'pids', this.ns(host)], { encoding: 'utf8' })
      .stdout.trim()
      .split('\n')
      .filter(Boolean)
      .map(Number);
  }

  /** The host whose address is `address`. */
  hostOf(address: string): string | undefined {
    return Object.keys(this.env)
      .find((k) => k.startsWith('HOST_') && this.env[k] === address)
      ?.slice(5);
  }

  /** The relays the directory lists now, asked from the client host. */
  async consensus(): Promise<{ nickname: string; address: string; flags: string[] }[]> {
    const { stdout } = await this.inHost('client', [
      'curl',
      '-sS',
      '--fail',
      '--max-time',
      '5',
      `${this.env.DIR_URL}/v1/consensus`,
    ]);
    return JSON.parse(JSON.parse(stdout.toString()).body).relays;
  }

  /** The client's own debug log (or another role's: `service`), one JSON object a line. */
  clientLog(role = 'client'): {
    msg: string;
    time: number;
    circuit?: number;
    path?: string[];
    why?: string;
    relays?: number;
    ms?: number;
  }[] {
    return readFileSync(`${this.env.STATE}/logs/${role}.err`, 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l));
  }

  builtCircuits(since = 0, role = 'client') {
    return this.clientLog(role).filter((e) => e.msg === 'circuit built' && e.time >= since);
  }

  /**
   * curl through the client's SOCKS port, inside the client host; resolves with curl's result.
   * `path` is on the web host, or a whole URL (an onion service's).
   */
  socksCurl(path: string, out: string, maxTimeS: number) {
    const args = [
      '-sS',
      '--fail',
      '--max-time',
      String(maxTimeS),
      '--socks5-hostname',
      this.env.SOCKS,
      '-o',
      out,
    ];
    const proc = spawn('ip', [
      'netns',
      'exec',
      this.ns('client'),
      'curl',
      ...args,
      /^https?:\/\//.test(path) ? path : `${this.env.WEB_URL}${path}`,
    ]);
    let stderr = '';
    proc.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const done = new Promise<{ code: number | null; stderr: string; ms: number }>((resolve) => {
      const t0 = Date.now();
      proc.on('exit', (code) => resolve({ code, stderr: stderr.trim(), ms: Date.now() - t0 }));
    });
    return { proc, done };
  }

  capture(host: string, filter: string[]): Promise<Capture> {
    return Capture.start(this.ns(host), host, filter);
  }
}

/** A tcpdump on one host's eth0, one line per packet: "IP a.b.c.d.port > e.f.g.h.port: tcp N". */
export class Capture {
  readonly lines: string[] = [];
  private proc: ChildProcess;
  private stderr = '';

  private constructor(ns: string, filter: string[]) {
    this.proc = spawn('ip', [
      'netns',
      'exec',
      ns,
      'tcpdump',
      '-i',
      'eth0',
      '-nn',
      '-l',
      '-q',
      '-t',
      ...filter,
    ]);
    let buf = '';
    this.proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
      buf += d;
      const parts = buf.split('\n');
      buf = parts.pop()!;
      this.lines.push(...parts);
    });
    this.proc.stderr!.setEncoding('utf8').on('data', (d: string) => (this.stderr += d));
  }

  static async start(ns: string, host: string, filter: string[]): Promise<Capture> {
    const c = new Capture(ns, filter);
    await waitFor(
      `tcpdump on ${host} listening`,
      () => {
        if (c.proc.exitCode !== null) throw new Error(`tcpdump on ${host} exited: ${c.stderr}`);
        return c.stderr.includes('listening on');
      },
      { timeoutMs: 10_000, everyMs: 50 },
    );
    return c;
  }

  /** Stops the capture (tcpdump flushes on SIGINT). */
  async stop(): Promise<void> {
    if (this.proc.exitCode !== null) return;
    const exited = new Promise((r) => this.proc.once('exit', r));
    this.proc.kill('SIGINT');
    await Promise.race([exited, sleep(5000)]);
    this.proc.kill('SIGKILL');
  }

  /** Source and destination address of every IPv4 packet seen. */
  packets(): { src: string; dst: string }[] {
    const out: { src: string; dst: string }[] = [];
    for (const l of this.lines) {
      const m = /^IP (\d+\.\d+\.\d+\.\d+)\.\d+ > (\d+\.\d+\.\d+\.\d+)\.\d+:/.exec(l);
      if (m) out.push({ src: m[1], dst: m[2] });
    }
    return out;
  }
}
