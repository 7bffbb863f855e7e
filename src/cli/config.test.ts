// Config files as an operator meets them: errors name the key and value, flags override the file,
// required options may come from the file, and --help shows every option's default.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { CLI_PATH } from '../testnet/testnet.js';
import { RUNTIME_ENV, RUNTIME_NODE_FLAGS } from './runtime-flags.js';

/** Temporary directories of this file, removed after its tests. */
const made: string[] = [];
function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  made.push(dir);
  return dir;
}
after(() => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
});

const run = promisify(execFile);

async function allium(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, [CLI_PATH, ...args], { timeout: 30_000 });
    return { code: 0, ...r };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

function configFile(json: unknown): string {
  const dir = tempDir('allium-config-');
  const file = join(dir, 'config.json');
  writeFileSync(file, typeof json === 'string' ? json : JSON.stringify(json));
  return file;
}

/** Starts `allium directory` and resolves with its ready line, then stops it. */
function directoryReady(args: string[]): Promise<string> {
  const p = spawn(process.execPath, [...RUNTIME_NODE_FLAGS, CLI_PATH, 'directory', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...RUNTIME_ENV, ...process.env },
  });
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => p.kill('SIGKILL'), 20_000);
    p.stdout.on('data', (d) => {
      out += d;
      if (out.includes('\n')) p.kill('SIGTERM');
    });
    p.stderr.on('data', (d) => (err += d));
    p.on('exit', () => {
      clearTimeout(timer);
      if (out.startsWith('ready ')) resolve(out);
      else reject(new Error(`directory did not start: ${err}`));
    });
  });
}

describe('--config FILE', () => {
  test('a bad value names the key, the value and what was expected', async () => {
    const r = await allium([
      'relay',
      '--config',
      configFile({ directory: 'http://127.0.0.1:1', port: 'seventy' }),
    ]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /key "port" has value "seventy"/);
    assert.match(r.stderr, /port 0-65535/);
  });

  test('a value of the wrong type and an unknown key are named, with a suggestion', async () => {
    const wrongType = await allium(['relay', '--config', configFile({ directory: 'http://x', exit: 'yes' })]);
    assert.match(wrongType.stderr, /key "exit" has value "yes"; expected true or false/);
    const unknown = await allium(['directory', '--config', configFile({ 'data-dir': '/tmp/x' })]);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown key "data-dir".*did you mean "dataDir"/);
    const badLevel = await allium(['client', '--config', configFile({ logLevel: 'loud' })]);
    assert.match(badLevel.stderr, /key "logLevel" has value "loud"; expected one of fatal, error/);
    const notJson = await allium(['client', '--config', configFile('{ port: 1 ')]);
    assert.match(notJson.stderr, /is not valid JSON/);
    const missing = await allium(['client', '--config', '/nonexistent/allium.json']);
    assert.match(missing.stderr, /cannot read config file \/nonexistent\/allium\.json: ENOENT/);
  });

  test('the file sets options, and flags on the command line override it', async () => {
    const a = tempDir('allium-cfg-a-');
    const b = tempDir('allium-cfg-b-');
    const file = configFile({ dataDir: a, port: 0, relayTtl: 30, logLevel: 'warn', metrics: '127.0.0.1:0' });
    const fromFile = await directoryReady(['--config', file]);
    assert.match(fromFile, /metrics=127\.0\.0\.1:\d+/, 'metrics from the file');
    assert.ok(existsSync(join(a, 'directory-key')), 'dataDir from the file');
    await directoryReady(['--config', file, '--data-dir', b]);
    assert.ok(existsSync(join(b, 'directory-key')), 'the --data-dir flag won over the file');
  });

  test('required options may come from the file', async () => {
    const key = Buffer.alloc(32, 1).toString('base64');
    const r = await allium([
      'fetch',
      'http://127.0.0.1:1/',
      '--config',
      configFile({ directory: 'http://127.0.0.1:1', directoryKey: key, logLevel: 'silent' }),
    ]);
    assert.notEqual(r.code, 0);
    assert.doesNotMatch(r.stderr, /required option/);
  });
});

describe('--help', () => {
  test('every option of every role shows its default (or that it is required)', async () => {
    for (const cmd of ['directory', 'relay', 'client', 'fetch', 'testnet']) {
      const { stdout } = await allium([cmd, '--help']);
      const lines = stdout.split('\n').filter((l) => /^\s+-/.test(l));
      // An option's description may wrap: join continuation lines to their option.
      const text = stdout.replace(/\n\s{20,}/g, ' ');
      const options = text.split('\n').filter((l) => /^\s+(-\w, )?--/.test(l) && !/--help/.test(l));
      assert.ok(lines.length > 3, `${cmd} lists options`);
      for (const o of options) {
        // A --no-X beside its --X: the default is shown once, at --X.
        const negated = /^\s+--no-([\w-]+)/.exec(o)?.[1];
        if (negated && options.some((x) => new RegExp(`^\\s+--${negated}\\b`).test(x))) continue;
        assert.match(o, /\((.*; )?(default: [^)]+|required)\)/, `${cmd}: ${o.trim()}`);
      }
    }
    const { stdout } = await allium(['client', '--help']);
    assert.match(stdout.replace(/\n\s{20,}/g, ' '), /--socks <host:port>.*default: 127\.0\.0\.1:9050/);
    assert.match(stdout, /--config <file>/);
  });
});
