// A relay started before its directory waits for it (as a service manager may start them together),
// and one that cannot reach any directory gives up with a clear message after --directory-wait.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { RUNTIME_ENV, RUNTIME_NODE_FLAGS } from '../src/cli/runtime-flags.js';
import { CLI_PATH } from '../src/testnet/testnet.js';
import { directoryArgs, freePort, relayArgs } from './helpers/allium-process.js';
import { tempDir } from './helpers/temp.js';
import { waitFor } from './helpers/wait.js';

function run(args: string[]): { proc: ChildProcess; out: () => string; err: () => string } {
  // With the runtime flags, as the bin starts it: no relaunch, so a kill reaches the process itself.
  const proc = spawn(process.execPath, [...RUNTIME_NODE_FLAGS, CLI_PATH, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...RUNTIME_ENV, ...process.env },
  });
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (err += d));
  return { proc, out: () => out, err: () => err };
}

test('a relay started before the directory registers once the directory is up', async () => {
  const dir = tempDir('start');
  const port = await freePort();
  const relay = run(
    relayArgs({
      directory: `http://127.0.0.1:${port}`,
      dataDir: join(dir, 'r'),
      nickname: 'early',
      extra: ['--log-level', 'warn'],
    }),
  );
  let directory: ReturnType<typeof run> | null = null;
  try {
    await waitFor('the relay says it is waiting', () => /not answering yet/.test(relay.err()));
    directory = run(directoryArgs(join(dir, 'd'), port, ['--log-level', 'warn']));
    await waitFor('the relay is ready', () => relay.out().startsWith('ready '), { timeoutMs: 30_000 }).catch(
      (err: Error) => assert.fail(`${err.message}: ${relay.err().slice(-500)}`),
    );
    assert.match(relay.out(), /nickname=early/);
  } finally {
    relay.proc.kill('SIGKILL');
    directory?.proc.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a relay that reaches no directory within --directory-wait exits with a clear error', async () => {
  const dir = tempDir('start');
  const port = await freePort();
  const relay = run(
    relayArgs({
      directory: `http://127.0.0.1:${port}`,
      dataDir: join(dir, 'r'),
      extra: ['--directory-wait', '2', '--log-level', 'warn'],
    }),
  );
  try {
    const code = await new Promise<number | null>((resolve) => relay.proc.once('exit', resolve));
    assert.equal(code, 1);
    assert.match(relay.err(), /cannot reach the directory/i);
  } finally {
    relay.proc.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});
