// `allium testnet` as a user runs it: one `ready` line naming the SOCKS addresses and the directory, a
// page through each, and on SIGINT or SIGTERM every process it started is gone.
import assert from 'node:assert/strict';
import { execFile, spawn, spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { CLI_PATH } from '../src/testnet/testnet.js';
import { makeFiles, startHttpServer } from './helpers/web.js';

const run = promisify(execFile);

function children(pid: number): number[] {
  const r = spawnSync('ps', ['-o', 'pid=', '--ppid', String(pid)], { encoding: 'utf8' });
  return r.stdout
    .split('\n')
    .map((s) => Number(s.trim()))
    .filter((n) => n > 0);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  test(`allium testnet prints ready, carries a page, and leaves nothing running after ${signal}`, async () => {
    const web = await startHttpServer(makeFiles());
    // One of the two runs puts its relays behind 5 ms delay lines (--link-delay), the other adds an
    // optimistic HTTP proxy.
    const delay = signal === 'SIGTERM' ? ['--link-delay', '5'] : [];
    const httpOptimistic = signal === 'SIGINT' ? ['--http-proxy-optimistic', '127.0.0.1:0'] : [];
    const proc = spawn(
      process.execPath,
      [
        CLI_PATH,
        'testnet',
        '--relays',
        '5',
        '--socks',
        '127.0.0.1:0',
        '--socks-optimistic',
        '127.0.0.1:0',
        ...delay,
        ...httpOptimistic,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    proc.stderr!.on('data', (d) => (stderr += d));
    try {
      const ready = await new Promise<string>((resolve, reject) => {
        let out = '';
        const timer = setTimeout(() => reject(new Error('no ready line in 60 s')), 60_000);
        proc.stdout!.on('data', (d) => {
          out += d;
          const line = out.split('\n').find((l) => l.startsWith('ready '));
          if (line) {
            clearTimeout(timer);
            resolve(line);
          }
        });
        proc.once('exit', (c) => reject(new Error(`testnet exited ${c}`)));
      });
      const socks = /socks=(\S+)/.exec(ready)?.[1];
      assert.ok(socks, ready);
      assert.match(ready, /directory=http:\/\/127\.0\.0\.1:\d+/);
      /** The test page through the proxy that `proxyArgs` name, as curl gets it. */
      const hello = async (proxyArgs: string[]) => {
        const { stdout } = await run('curl', [
          '-sS',
          '--fail',
          '--max-time',
          '60',
          ...proxyArgs,
          `${web.url}/hello`,
        ]);
        assert.match(stdout, /RESPONSE-MARKER/);
      };
      await hello(['--socks5-hostname', socks]);
      const optimistic = /socksOptimistic=(\S+)/.exec(ready)?.[1];
      assert.ok(optimistic, `the ready line names the optimistic SOCKS port: ${ready}`);
      await hello(['--socks5-hostname', optimistic]);
      if (httpOptimistic.length > 0) {
        const via = /httpOptimistic=(\S+)/.exec(ready)?.[1];
        assert.ok(via, `the ready line names the optimistic HTTP proxy: ${ready}`);
        await hello(['-x', `http://${via}`, '--proxytunnel']);
      }
      if (delay.length > 0) {
        assert.match(stderr, /holds data 5 ms each way/);
        // The relays advertise the delay lines' addresses.
        const consensus = await (await fetch(`${/directory=(\S+)/.exec(ready)![1]}/v1/consensus`)).text();
        assert.match(consensus, /127\.0\.2\.\d/);
      }
      const kids = children(proc.pid!);
      assert.equal(kids.length, 9, '3 authorities + 5 relays + client');
      const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
      proc.kill(signal);
      assert.equal(await exited, 0);
      for (const k of kids) assert.equal(alive(k), false, `process ${k} still running`);
    } finally {
      if (proc.exitCode === null) proc.kill('SIGKILL');
      await web.close();
    }
  });
}
