// The README, followed as a new user would on a fresh machine: pack the clone, install the tarball
// (the `allium` command into a temporary prefix, the library into a separate project), then run the
// commands of "Run a network on one machine", "Run the parts yourself" and "Use it from Node" as
// written. Only the fixed ports become free ones, the placeholder key and URL become the printed
// ones, and the README's local web server is the test's own.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { tempDir } from './helpers/temp.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const README = readFileSync(join(REPO, 'README.md'), 'utf8');
const VERSION = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')).version as string;
const PAGE = '<!doctype html><title>readme</title><p>through the onion</p>\n';
/** npm may look a package's metadata up once; everything else comes from its cache. */
const NPM_FLAGS = '--prefer-offline --no-audit --no-fund --loglevel=error';

/** The lines of the first fenced block of `lang` under the heading `## title`, without comments. */
export function readmeBlock(title: string, lang = 'sh'): string[] {
  const at = README.indexOf(`\n## ${title}\n`);
  assert.ok(at >= 0, `README has no section "${title}"`);
  const open = README.indexOf(`\`\`\`${lang}\n`, at);
  const close = README.indexOf('\n```', open + 4);
  const body = README.slice(open + lang.length + 4, close);
  if (lang !== 'sh') return body.split('\n');
  return body
    .split('\n')
    .map((l) => l.replace(/\s+#.*$/, '').trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

describe('the README, followed literally', { timeout: 240_000 }, () => {
  let tmp = '';
  let env: NodeJS.ProcessEnv = {};
  let web: Server;
  let webPort = 0;
  const running: ChildProcess[] = [];

  /** Runs one README line with bash in the temporary directory; resolves when it exits. */
  const sh = (line: string, opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}) =>
    new Promise<Ran>((resolve) => {
      const p = spawn('bash', ['-c', line], {
        cwd: opts.cwd ?? tmp,
        env: { ...env, ...opts.env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      p.stdout.on('data', (d) => {
        stdout += d;
      });
      p.stderr.on('data', (d) => {
        stderr += d;
      });
      const timer = setTimeout(() => p.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
      p.on('exit', (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr });
      });
    });

  /** Starts a README line that keeps running; resolves with its `ready` line's fields. */
  const start = (line: string) =>
    new Promise<Record<string, string>>((resolve, reject) => {
      // exec: the allium process itself gets the signals.
      const p = spawn('bash', ['-c', `exec ${line}`], { cwd: tmp, env, stdio: ['ignore', 'pipe', 'pipe'] });
      running.push(p);
      let out = '';
      let err = '';
      const timer = setTimeout(
        () => reject(new Error(`not ready in 60 s: ${line}\n${err.slice(-3000)}`)),
        60_000,
      );
      p.stderr.on('data', (d) => {
        err += d;
      });
      p.stdout.on('data', (d) => {
        out += d;
        const ready = out.split('\n').find((l) => l.startsWith('ready '));
        if (!ready) return;
        clearTimeout(timer);
        p.stdout.removeAllListeners('data');
        p.stdout.resume();
        resolve(
          Object.fromEntries(
            ready
              .slice(6)
              .split(' ')
              .map((kv) => kv.split(/=(.*)/s).slice(0, 2)),
          ),
        );
      });
      p.on('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`exited (${code}) before ready: ${line}\n${err.slice(-3000)}`));
      });
    });

  const stopAll = async () => {
    await Promise.all(
      running.splice(0).map(
        (p) =>
          new Promise<void>((resolve) => {
            if (p.exitCode !== null || p.signalCode !== null) return resolve();
            const t = setTimeout(() => p.kill('SIGKILL'), 10_000);
            p.once('exit', () => {
              clearTimeout(t);
              resolve();
            });
            p.kill('SIGTERM');
          }),
      ),
    );
  };

  before(async () => {
    tmp = tempDir('readme');
    env = {
      ...process.env,
      PATH: `${join(tmp, 'prefix', 'bin')}:${process.env.PATH}`,
      NO_PROXY: '',
      no_proxy: '',
    };
    for (const k of ['HTTP_PROXY', 'HTTPS_PROXY', 'ALL_PROXY', 'http_proxy', 'https_proxy', 'all_proxy'])
      delete env[k];
    web = createHttpServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(PAGE);
    });
    webPort = await new Promise<number>((resolve) =>
      web.listen(0, '127.0.0.1', () => resolve((web.address() as { port: number }).port)),
    );
  });

  after(async () => {
    await stopAll();
    await new Promise((r) => web.close(r));
    rmSync(tmp, { recursive: true, force: true });
  });

  test('Install: pack the clone, install the tarball, `allium --version`', async () => {
    const lines = readmeBlock('Install');
    // The build is npm test's own; `npm ci` here would replace the node_modules the tests run from.
    assert.ok(lines.includes('npm ci && npm run build && npm pack'), lines.join('\n'));
    const pack = await sh(`npm pack --pack-destination ${tmp} --loglevel=error`, { cwd: REPO });
    assert.equal(pack.code, 0, pack.stderr);
    assert.ok(readdirSync(tmp).includes(`allium-${VERSION}.tgz`));
    const install = lines.find((l) => l.startsWith('npm install -g '));
    assert.equal(install, 'npm install -g ./allium-*.tgz');
    // Into a temporary prefix (the README's own fallback), not this machine's global one.
    const r = await sh(`${install} --prefix ${join(tmp, 'prefix')} ${NPM_FLAGS}`, { timeoutMs: 120_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(lines.includes('allium --version'));
    const v = await sh('allium --version');
    assert.equal(v.code, 0, v.stderr);
    assert.equal(v.stdout.trim(), VERSION);
  });

  test('Run a network on one machine: testnet, curl through SOCKS and the HTTP proxy, fetch', async () => {
    const [socks, http] = [await freePort(), await freePort()];
    const lines = readmeBlock('Run a network on one machine').map((l) =>
      l
        .replaceAll('127.0.0.1:9050', `127.0.0.1:${socks}`)
        .replaceAll('127.0.0.1:8118', `127.0.0.1:${http}`)
        .replaceAll('http://127.0.0.1:8000/', `http://127.0.0.1:${webPort}/`),
    );
    const testnet = lines.find((l) => l.startsWith('allium testnet'));
    assert.ok(testnet);
    const ready = await start(testnet);
    assert.equal(ready.socks, `127.0.0.1:${socks}`);
    assert.equal(ready.http, `127.0.0.1:${http}`);
    const curls = lines.filter((l) => l.startsWith('curl '));
    assert.equal(curls.length, 2, 'one curl through SOCKS, one through the HTTP proxy');
    for (const c of curls) {
      const r = await sh(`${c} --silent --show-error --max-time 30`);
      assert.equal(r.code, 0, `${c}: ${r.stderr}`);
      assert.equal(r.stdout, PAGE);
    }
    const fetch = lines.find((l) => l.startsWith('allium fetch'));
    assert.ok(fetch);
    const f = await sh(
      fetch.replaceAll('http://127.0.0.1:PORT', ready.directory).replaceAll('BASE64KEY', ready.key),
    );
    assert.equal(f.code, 0, f.stderr);
    assert.equal(readFileSync(join(tmp, 'page.html'), 'utf8'), PAGE);
    await stopAll();
  });

  let parts: { directory: string; key: string } | null = null;

  test('Run the parts yourself: directory, three relays, a client, curl and fetch', async () => {
    const [dirPort, socks] = [await freePort(), await freePort()];
    let key = 'BASE64KEY';
    const subst = (l: string) =>
      l
        .replaceAll('127.0.0.1:7000', `127.0.0.1:${dirPort}`)
        .replaceAll('--port 7000', `--port ${dirPort}`)
        .replaceAll('127.0.0.1:9050', `127.0.0.1:${socks}`)
        .replaceAll('http://127.0.0.1:8000/', `http://127.0.0.1:${webPort}/`)
        .replaceAll('BASE64KEY', key);
    const lines = readmeBlock('Run the parts yourself');
    const dir = await start(subst(lines[0]));
    assert.match(lines[0], /^allium directory /);
    key = dir.key;
    const relays = lines.filter((l) => l.startsWith('allium relay '));
    assert.equal(relays.length, 3);
    await Promise.all(relays.map((l) => start(subst(l))));
    const client = lines.find((l) => l.startsWith('allium client '));
    assert.ok(client);
    await start(subst(client));
    const curl = lines.find((l) => l.startsWith('curl '));
    assert.ok(curl, 'the recipe shows curl through the client');
    const c = await sh(`${subst(curl)} --silent --show-error --max-time 30`);
    assert.equal(c.code, 0, c.stderr);
    assert.equal(c.stdout, PAGE);
    rmSync(join(tmp, 'page.html'), { force: true });
    const fetch = lines.find((l) => l.startsWith('allium fetch '));
    assert.ok(fetch);
    const f = await sh(subst(fetch));
    assert.equal(f.code, 0, f.stderr);
    assert.equal(readFileSync(join(tmp, 'page.html'), 'utf8'), PAGE);
    parts = { directory: dir.url, key };
  });

  test('Use it from Node: the example, in a project that depends on the tarball', async () => {
    assert.ok(parts, 'needs the network of the previous test');
    const app = join(tmp, 'app');
    mkdirSync(app);
    writeFileSync(
      join(app, 'package.json'),
      JSON.stringify({
        name: 'app',
        private: true,
        type: 'module',
        dependencies: { allium: `file:../allium-${VERSION}.tgz` },
      }),
    );
    writeFileSync(join(app, 'index.mjs'), readmeBlock('Use it from Node', 'js').join('\n'));
    const install = await sh(`npm install ${NPM_FLAGS}`, { cwd: app, timeoutMs: 120_000 });
    assert.equal(install.code, 0, install.stderr);
    const r = await sh('node index.mjs', {
      cwd: app,
      env: {
        ALLIUM_DIRECTORY: parts.directory,
        ALLIUM_DIRECTORY_KEY: parts.key,
        URL: `http://127.0.0.1:${webPort}/`,
      },
    });
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      new RegExp(`^200 text/html ${PAGE.length} bytes\\nagain on another circuit: 200\\n$`),
    );
  });
});
