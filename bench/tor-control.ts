// The bench's pieces of a C Tor process: a minimal control-port connection, and the errors that
// quote a process's output and log.
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { BenchError } from './errors.js';
import type { NamedPid } from './suite.js';

/** A minimal Tor control-port connection: commands, CIRC events timed on arrival, other events to listeners. */
export class Control {
  private buf = '';
  private waiting: ((lines: string[]) => void)[] = [];
  private reply: string[] = [];
  readonly launched = new Map<string, number>();
  readonly builds: number[] = [];
  /** Called with every asynchronous event's text (after `650 `). */
  readonly listeners: ((event: string) => void)[] = [];

  private constructor(private readonly sock: net.Socket) {
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      this.buf += d;
      let i = this.buf.indexOf('\r\n');
      while (i >= 0) {
        this.line(this.buf.slice(0, i));
        this.buf = this.buf.slice(i + 2);
        i = this.buf.indexOf('\r\n');
      }
    });
    sock.on('error', () => undefined);
  }

  static connect(port: number): Promise<Control> {
    return new Promise((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1', () => resolve(new Control(s)));
      s.once('error', reject);
    });
  }

  private line(l: string): void {
    if (l.startsWith('650 ')) {
      this.event(l.slice(4));
      return;
    }
    this.reply.push(l);
    if (/^\d{3} /.test(l)) {
      const lines = this.reply;
      this.reply = [];
      this.waiting.shift()?.(lines);
    }
  }

  private event(e: string): void {
    if (process.env.ALLIUM_BENCH_DEBUG) process.stderr.write(`  [tor control] ${e}\n`);
    for (const l of this.listeners) l(e);
    const m = /^CIRC (\d+) (\w+)(?: (\S+))?(.*)$/.exec(e);
    if (!m) return;
    const [, id, status, path, rest] = m;
    const now = performance.now();
    if (status === 'LAUNCHED') this.launched.set(id, now);
    if (status === 'BUILT') {
      const t = this.launched.get(id);
      const hops = path?.split(',').length ?? 0;
      // Client circuits for exit streams (plain or conflux legs); not one-hop directory fetches,
      // internal (onion service) circuits or circuits extended to a fourth hop.
      const exitCircuit = /PURPOSE=(GENERAL|CONFLUX_UNLINKED)\b/.test(rest) && !rest.includes('IS_INTERNAL');
      if (t !== undefined && hops === 3 && exitCircuit) this.builds.push(now - t);
    }
    if (status === 'BUILT' || status === 'FAILED' || status === 'CLOSED') this.launched.delete(id);
  }

  /** Sends a command; a reply slower than 10 s fails it (a wedged Tor must not hang the bench). */
  command(c: string): Promise<string[]> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.sock.destroy();
        reject(new BenchError('ALLIUM_BENCH_TOR_CONTROL', `no answer to ${c.split(' ')[0]} in 10 s`));
      }, 10_000);
      this.waiting.push((lines) => {
        clearTimeout(timer);
        resolve(lines);
      });
      this.sock.write(`${c}\r\n`);
    });
  }

  close(): void {
    this.sock.destroy();
  }
}

export interface TorProc {
  name: string;
  dir: string;
  proc: ChildProcess;
  kind: NamedPid['kind'];
  /** The tail of what it printed. */
  stderr: string;
}

export function logTail(dir: string): string {
  const log = join(dir, 'notice.log');
  return existsSync(log) ? readFileSync(log, 'utf8').split('\n').slice(-8).join('\n') : '';
}

export function torDied(p: TorProc): BenchError {
  return new BenchError(
    'ALLIUM_BENCH_TOR_EXIT',
    `tor process ${p.name} exited (${p.proc.exitCode}):\n${p.stderr}${logTail(p.dir)}`,
  );
}
