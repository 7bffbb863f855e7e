// The mistakes a new user makes in their first hour, each provoked through the `allium` command:
// the message names the flag or path and what to do, and it comes at once, not after a silent wait.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { RUNTIME_ENV, RUNTIME_NODE_FLAGS } from '../src/cli/runtime-flags.js';
import { connectLink } from '../src/net/link.js';
import { CLI_PATH, Testnet } from '../src/testnet/testnet.js';
import { AlliumProcess, directoryArgs, freePort, relayArgs } from './helpers/allium-process.js';
import { tempDir } from './helpers/temp.js';

/** The client's old silent wait before an error: every message here must come well before it. */
const OLD_WAIT_MS = 30_000;

interface Outcome {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Milliseconds until the process exited, or until `until` matched its stderr. */
  ms: number;
}

/** Runs `allium ARGS`; with `until`, stops it (SIGTERM) as soon as its stderr matches. */
function allium(
  args: string[],
  opts: { until?: RegExp; timeoutMs?: number; flags?: boolean; env?: NodeJS.ProcessEnv } = {},
): Promise<Outcome> {
  const t0 = performance.now();
  const pre = opts.flags === false ? [] : RUNTIME_NODE_FLAGS;
  const proc = spawn(process.execPath, [...pre, CLI_PATH, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...(opts.flags === false ? {} : RUNTIME_ENV), ...process.env, ...opts.env },
  });
  let stdout = '';
  let stderr = '';
  let ms: number | null = null;
  proc.stdout.on('data', (d) => {
    stdout += d;
  });
  proc.stderr.on('data', (d) => {
    stderr += d;
    if (ms === null && opts.until?.test(stderr)) {
      ms = performance.now() - t0;
      proc.kill('SIGTERM');
    }
  });
  const timer = setTimeout(() => proc.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
  return new Promise((resolve) =>
    proc.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: ms ?? performance.now() - t0 });
    }),
  );
}

/** A port something listens on for the length of a test. */
async function takenPort(): Promise<{ port: number; close(): Promise<void> }> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return { port: (s.address() as net.AddressInfo).port, close: () => new Promise((r) => s.close(() => r())) };
}

const tmp = tempDir('first-hour');
after(() => rmSync(tmp, { recursive: true, force: true }));

describe('flag mistakes: named at once, without the whole help', () => {
  const KEY = Buffer.alloc(32, 7).toString('base64');

  test('--directory without a scheme is a bad flag value, not an unreachable directory', async () => {
    const r = await allium([
      'fetch',
      'http://127.0.0.1:1/',
      '--directory',
      '127.0.0.1:7000',
      '--directory-key',
      KEY,
    ]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /--directory/);
    assert.match(r.stderr, /http:\/\/127\.0\.0\.1:7000/, 'shows the value as it should be');
    assert.doesNotMatch(r.stderr, /cannot reach|Invalid URL/);
    assert.ok(r.ms < OLD_WAIT_MS / 3, `${r.ms} ms`);
  });

  test('a malformed key prints the error, not 50 lines of help', async () => {
    const r = await allium(['relay', '--directory', 'http://127.0.0.1:1', '--directory-key', 'abc']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /--directory-key.*'abc'.*32 bytes/);
    assert.doesNotMatch(r.stderr, /--max-circuits-per-link/, 'no option list');
    assert.ok(r.stderr.trim().split('\n').length <= 3, r.stderr);
  });

  test('a mistyped flag, and a mistyped config key, get "did you mean"', async () => {
    const r = await allium(['relay', '--directory', 'http://127.0.0.1:1', '--nickame', 'x']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /unknown option '--nickame'[\s\S]*--nickname/);
    const file = join(tmp, 'typo.json');
    writeFileSync(file, JSON.stringify({ directory: 'http://127.0.0.1:1', nickame: 'x' }));
    const c = await allium(['relay', '--config', file]);
    assert.notEqual(c.code, 0);
    assert.match(c.stderr, /unknown key "nickame".*did you mean "nickname"/);
  });

  test('--help shows one default per option, and --no-progress reads plainly', async () => {
    for (const cmd of ['directory', 'relay', 'client', 'fetch', 'testnet']) {
      const r = await allium([cmd, '--help']);
      assert.equal(r.code, 0);
      // Options are separated by lines that start with "  -"; each gets at most one "default".
      for (const opt of r.stdout.split(/\n(?= {2}-)/)) {
        const defaults = opt.match(/default:/g) ?? [];
        assert.ok(defaults.length <= 1, `allium ${cmd}: ${opt}`);
      }
    }
    const fetch = await allium(['fetch', '--help']);
    assert.match(fetch.stdout, /--no-progress\s+never show a progress bar\n/);
  });
});

describe('ports, paths and keys: the flag or path, and what to do', () => {
  test('a directory, relay and client port in use names --port / --socks', async () => {
    const taken = await takenPort();
    try {
      const d = await allium(['directory', '--data-dir', join(tmp, 'd-port'), '--port', String(taken.port)]);
      assert.notEqual(d.code, 0);
      assert.match(
        d.stderr,
        new RegExp(
          `127\\.0\\.0\\.1:${taken.port} \\(--port\\): the address is already in use.*pick another --port`,
        ),
      );
      assert.doesNotMatch(d.stderr, /listen EADDRINUSE/);
      const dir = await AlliumProcess.start('dir', directoryArgs(join(tmp, 'd-ok')));
      try {
        const r = await allium([
          'relay',
          '--directory',
          dir.ready.url,
          '--data-dir',
          join(tmp, 'r-port'),
          '--port',
          String(taken.port),
        ]);
        assert.notEqual(r.code, 0);
        assert.match(r.stderr, /\(--port\): the address is already in use/);
        const c = await allium([
          'client',
          '--directory',
          dir.ready.url,
          '--directory-key',
          dir.ready.key,
          '--socks',
          `127.0.0.1:${taken.port}`,
          '--path-length',
          '3',
        ]);
        // Before the client waits for relays (this directory has none).
        assert.notEqual(c.code, 0);
        assert.match(c.stderr, /\(--socks\): the address is already in use.*pick another --socks/);
        assert.ok(c.ms < OLD_WAIT_MS / 3, `${c.ms} ms`);
      } finally {
        await dir.kill();
      }
      const t0 = performance.now();
      const t = await allium(['testnet', '--relays', '3', '--socks', `127.0.0.1:${taken.port}`]);
      assert.notEqual(t.code, 0);
      assert.match(t.stderr, /\(--socks\): the address is already in use.*pick another --socks/);
      assert.doesNotMatch(t.stderr, /starting a directory/, 'checked before any process starts');
      assert.ok(performance.now() - t0 < OLD_WAIT_MS / 3);
    } finally {
      await taken.close();
    }
  });

  test('a data directory that is a file, and an output path whose directory is missing, are named', async () => {
    const file = join(tmp, 'a-file');
    writeFileSync(file, 'x');
    const r = await allium(['relay', '--directory', 'http://127.0.0.1:1', '--data-dir', file]);
    assert.notEqual(r.code, 0);
    assert.match(
      r.stderr,
      new RegExp(
        `${file} exists and is not a directory: move it away, or choose another path \\(--data-dir\\)`,
      ),
    );
    const d = await allium(['directory', '--data-dir', join(file, 'sub'), '--port', '0']);
    assert.notEqual(d.code, 0);
    assert.match(d.stderr, /a-file\/sub.*(--data-dir)/);
    assert.doesNotMatch(d.stderr + r.stderr, /^Error: E[A-Z]+:/m);
  });

  test('a directory key others can read is refused, as a relay key is', async () => {
    const dataDir = join(tmp, 'd-mode');
    const first = await AlliumProcess.start('dir', directoryArgs(dataDir));
    await first.kill();
    chmodSync(join(dataDir, 'directory-key'), 0o644);
    const r = await allium(['directory', '--data-dir', dataDir, '--port', '0']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /directory-key is readable by others; run: chmod 600 /);
    assert.doesNotMatch(r.stdout, /^ready/m);
  });
});

describe('a directory that is down or wrong', () => {
  test('a client says at once that it is retrying, and what', async () => {
    const port = await freePort();
    const r = await allium(
      [
        'fetch',
        'http://127.0.0.1:1/',
        '--directory',
        `http://127.0.0.1:${port}`,
        '--directory-key',
        Buffer.alloc(32).toString('base64'),
      ],
      { until: /retrying/ },
    );
    assert.match(
      r.stderr,
      new RegExp(`cannot reach the directory at http://127\\.0\\.0\\.1:${port}.*retrying for up to 30 s`),
    );
    assert.ok(r.ms < OLD_WAIT_MS / 3, `said after ${r.ms} ms`);
  });

  test('a relay given a --directory-key that does not match refuses to start, and says so once', async () => {
    const dir = await AlliumProcess.start('dir', directoryArgs(join(tmp, 'd-key')));
    try {
      const wrong = Buffer.alloc(32, 9).toString('base64');
      const r = await allium(
        relayArgs({ directory: dir.ready.url, key: wrong, dataDir: join(tmp, 'r-key') }),
      );
      assert.notEqual(r.code, 0);
      assert.doesNotMatch(r.stdout, /^ready/m);
      const said = r.stderr.match(/does not sign with the --directory-key given/g) ?? [];
      assert.equal(said.length, 1, `said once, even with stderr not a terminal:\n${r.stderr}`);
      assert.match(r.stderr, /copy the key from the directory's `ready \.\.\. key=` line/);
      assert.ok(r.ms < OLD_WAIT_MS / 3, `${r.ms} ms`);
    } finally {
      await dir.kill();
    }
  });
});

describe('through a network of three relays', () => {
  let tn: Testnet;
  let web: ReturnType<typeof createHttpServer>;
  let webUrl = '';
  before(async () => {
    // Its only exit refuses loopback destinations, as a real exit does.
    tn = await Testnet.start({ relays: 3, exits: 1, exitsAllowPrivate: false, client: false });
    web = createHttpServer((_q, res) => res.end('hello\n'));
    await new Promise<void>((r) => web.listen(0, '127.0.0.1', r));
    webUrl = `http://127.0.0.1:${(web.address() as net.AddressInfo).port}/`;
  });
  after(async () => {
    await tn?.stop();
    await new Promise((r) => web?.close(r));
  });
  const base = () => ['--directory', tn.directoryUrl, '--directory-key', tn.directoryKey];

  test('no exit for a loopback destination: the refusal names --allow-private', async () => {
    const r = await allium(['fetch', webUrl, ...base()]);
    assert.notEqual(r.code, 0);
    assert.match(
      r.stderr,
      /no relay in the consensus is an exit that allows 127\.0\.0\.1:\d+: .*--allow-private/,
    );
  });

  test('--path-length 4 with 3 relays: says at once it is waiting, and the final error reads as final', async () => {
    const waiting = await allium(['fetch', webUrl, ...base(), '--path-length', '4'], {
      until: /waiting up to/,
    });
    assert.match(waiting.stderr, /lists 3 relays \(1 exits\); waiting up to 30 s for 4 relays and an exit/);
    assert.ok(waiting.ms < OLD_WAIT_MS / 3, `${waiting.ms} ms`);
    const { AlliumClient } = await import('../src/client/client.js');
    await assert.rejects(
      AlliumClient.start({
        directoryUrl: tn.directoryUrl,
        directoryKey: Buffer.from(tn.directoryKey, 'base64'),
        pathLength: 4,
        startTimeoutMs: 500,
      }),
      (err: Error) => /^gave up after .*: start more relays .*--path-length/.test(err.message),
    );
  });

  test('an output path whose directory is missing is named with the flag', async () => {
    // The destination does not matter: the path is refused before or after the request alike.
    const out = join(tmp, 'no', 'such', 'dir', 'page.html');
    const r = await allium(['fetch', tn.directoryUrl, ...base(), '-o', out]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /no\/such\/dir does not exist.*mkdir -p.*\(--output\)/);
  });
});

describe('an exit that cannot connect', () => {
  let tn: Testnet;
  before(async () => {
    tn = await Testnet.start({ relays: 3, exits: 1, client: false });
  });
  after(() => tn?.stop());

  test('says "could not connect to HOST:PORT (connection refused)" in words', async () => {
    const port = await freePort();
    const r = await allium([
      'fetch',
      `http://127.0.0.1:${port}/`,
      '--directory',
      tn.directoryUrl,
      '--directory-key',
      tn.directoryKey,
    ]);
    assert.notEqual(r.code, 0);
    assert.match(
      r.stderr,
      new RegExp(`the exit could not connect to 127\\.0\\.0\\.1:${port} \\(connection refused`),
    );
    assert.doesNotMatch(r.stderr, /CONNECTREFUSED/);
  });

  test('a relay keeps its port across restarts, and stops within 5 s of SIGTERM', async () => {
    const dataDir = join(tmp, 'r-keep');
    const args = relayArgs({ directory: tn.directoryUrl, key: tn.directoryKey, dataDir });
    const a = await AlliumProcess.start('keep', args);
    assert.ok(a.running, a.log);
    const port = a.ready.port;
    assert.equal(readFileSync(join(dataDir, 'port'), 'utf8').trim(), port);
    // A link from a client and a connection that never handshakes: neither may hold the stop up.
    const link = await connectLink({
      host: '127.0.0.1',
      port: Number(port),
      relayId: Buffer.from(a.ready.id, 'hex'),
      me: { identity: null },
    });
    const idle = net.connect(Number(port), '127.0.0.1');
    idle.on('error', () => {});
    await new Promise((r) => idle.once('connect', r));
    const t0 = performance.now();
    await a.kill('SIGTERM');
    const stopMs = performance.now() - t0;
    link.close();
    idle.destroy();
    assert.doesNotMatch(a.log, /exiting without finishing/, 'stopped by itself, not by the deadline');
    // docs/deploy.md promises it to service managers.
    assert.ok(stopMs < 5000, `stopped after ${stopMs} ms`);
    const b = await AlliumProcess.start('keep', args);
    try {
      assert.equal(b.ready.port, port);
    } finally {
      await b.kill();
    }
  });

  test('run as plain `node main.js`, a relay carries its runtime flags itself: no advice in its log', async () => {
    const r = await allium(
      relayArgs({
        directory: tn.directoryUrl,
        key: tn.directoryKey,
        dataDir: join(tmp, 'r-flags'),
        extra: ['--log-level', 'info'],
      }),
      { flags: false, until: /relay listening/, env: { MALLOC_ARENA_MAX: '' } },
    );
    assert.match(r.stderr, /relay listening/);
    assert.doesNotMatch(r.stderr, /started without/);
  });
});

test('`npm start` (the testnet demo) prints no hint it cannot keep: the network stops after the demo', async () => {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
  const args = (pkg.scripts.start as string).split('main.js ')[1].split(' ');
  assert.ok(args.includes('--demo'), pkg.scripts.start);
  const r = await allium(args, { timeoutMs: 90_000 });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /HTTP 200/);
  // The same page again through an onion service in front of the demo's web server.
  assert.match(r.stderr, /fetching http:\/\/[a-z2-7]{56}\.allium\/ through the network/);
  assert.match(
    r.stderr,
    /HTTP 200, \d+ bytes; the web server saw connections from: 127\.0\.0\.1:\d+ \(the onion service\)/,
  );
  assert.doesNotMatch(r.stderr, /curl /, 'no curl hint for a network that is about to stop');
  assert.match(r.stderr, /the demo stopped the network; `npx allium testnet` keeps one up until Ctrl-C/);
});

test('a client given the wrong --directory-key says so once, at once, with stderr not a terminal', async () => {
  const dir = await AlliumProcess.start('dir', directoryArgs(join(tmp, 'd-wrong')));
  try {
    const wrong = Buffer.alloc(32, 5).toString('base64');
    const r = await allium([
      'fetch',
      'http://127.0.0.1:1/',
      '--directory',
      dir.ready.url,
      '--directory-key',
      wrong,
    ]);
    assert.notEqual(r.code, 0);
    const said = r.stderr.match(/signature does not verify/g) ?? [];
    assert.equal(said.length, 1, r.stderr);
    assert.match(r.stderr, /the wrong --directory-key/);
    assert.ok(r.ms < OLD_WAIT_MS / 3, `${r.ms} ms`);
  } finally {
    await dir.kill();
  }
});
