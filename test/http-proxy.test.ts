// The client's HTTP proxy as curl and git use it (HTTPS_PROXY / http.proxy), against a testnet of
// processes: CONNECT tunnels, plain-HTTP forwarding, credentials as isolation keys, clear refusals.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { Testnet } from '../src/testnet/testnet.js';
import { freePort } from './helpers/allium-process.js';
import { type GitServer, startGitServer } from './helpers/git-server.js';
import { tempDir } from './helpers/temp.js';
import {
  makeCertificate,
  makeFiles,
  type Peer,
  sha256,
  startHttpServer,
  startHttpsServer,
  type WebServer,
} from './helpers/web.js';

const run = promisify(execFile);

/** Sends CONNECT `authority` to the proxy at `proxyUrl` and returns all it answers until it closes. */
function rawConnect(proxyUrl: string, authority: string): Promise<string> {
  const { hostname, port } = new URL(proxyUrl);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const s = net.connect(Number(port), hostname, () =>
      s.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`),
    );
    const timer = setTimeout(() => s.destroy(new Error('no answer within 60 s')), 60_000);
    s.on('data', (c) => chunks.push(c));
    s.on('error', reject);
    s.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('latin1'));
    });
  });
}

describe('the HTTP proxy of a client process in a testnet', () => {
  let tn: Testnet;
  let web: WebServer;
  let secure: WebServer;
  let gitHttp: GitServer;
  let gitHttps: GitServer;
  let proxy = '';
  let optimisticProxy = '';
  let dashboard = '';
  const files = makeFiles();
  const tls = makeCertificate();
  const out = tempDir('proxy');

  before(async () => {
    web = await startHttpServer(files);
    secure = await startHttpsServer(files, tls);
    gitHttp = await startGitServer({ content: 'hello over plain http\n' });
    gitHttps = await startGitServer({ content: 'hello over https\n', tls });
    tn = await Testnet.start({
      relays: 5,
      clientArgs: [
        '--http-proxy',
        '127.0.0.1:0',
        '--http-proxy-optimistic',
        '127.0.0.1:0',
        '--dashboard',
        '127.0.0.1:0',
      ],
    });
    const ready = tn.processes.find((p) => p.name === 'client')!.ready;
    proxy = `http://${ready.http}`;
    optimisticProxy = `http://${ready.httpOptimistic}`;
    dashboard = ready.dashboard;
  });
  after(async () => {
    await tn?.stop();
    for (const s of [web, secure, gitHttp, gitHttps]) await s?.close();
  });

  /** Every connection these servers saw came from an exit relay process. */
  const assertOnlyExits = (peers: Peer[]) => {
    const exitPids = new Set(tn.relays.filter((r) => r.ready.exit === '1').map((r) => r.proc.pid));
    assert.ok(peers.length > 0, 'the server saw connections');
    for (const p of peers)
      assert.ok(
        exitPids.has(p.pid ?? -1),
        `connection from ${p.address}:${p.port} (pid ${p.pid}) is not an exit`,
      );
  };
  // No proxy settings from the environment of whoever runs the tests.
  const cleanEnv = () => {
    const env = { ...process.env };
    for (const k of Object.keys(env)) if (/_proxy$/i.test(k)) delete env[k];
    return env;
  };

  /** curl -v of the HTTPS test page with HTTPS_PROXY set to `via` (a CONNECT tunnel). */
  const httpsThrough = (via: string) =>
    run(
      'curl',
      [
        '-sS',
        '-v',
        '--fail',
        '--max-time',
        '60',
        '--cacert',
        tls.certPath,
        `https://localhost:${secure.port}/hello`,
      ],
      { env: { ...cleanEnv(), HTTPS_PROXY: via } },
    );

  test('curl with HTTPS_PROXY fetches an HTTPS page through a CONNECT tunnel (TLS end to end)', async () => {
    const { stdout, stderr } = await httpsThrough(proxy);
    assert.equal(stdout, files['/hello'].toString());
    assert.match(stderr, new RegExp(`CONNECT localhost:${secure.port}`));
    assertOnlyExits(secure.peers);
  });

  test('curl downloads 10 MiB byte for byte through a tunnel and through plain-HTTP forwarding', async () => {
    for (const extra of [['--proxytunnel'], []]) {
      const file = join(out, `10m${extra.length}`);
      await run(
        'curl',
        ['-sS', '--fail', '--max-time', '120', '-x', proxy, ...extra, '-o', file, `${web.url}/random10m`],
        {
          env: cleanEnv(),
        },
      );
      assert.equal(sha256(readFileSync(file)), sha256(files['/random10m']));
    }
    assertOnlyExits(web.peers);
  });

  test('git clone works through the proxy, over HTTPS (CONNECT) and over plain HTTP', async () => {
    for (const [server, content] of [
      [gitHttps, 'hello over https\n'],
      [gitHttp, 'hello over plain http\n'],
    ] as const) {
      const dest = join(out, `clone-${server.port}`);
      await run('git', ['-c', `http.proxy=${proxy}`, 'clone', '-q', server.url, dest], {
        env: {
          ...cleanEnv(),
          GIT_SSL_CAINFO: tls.certPath,
          GIT_TERMINAL_PROMPT: '0',
          GIT_CONFIG_NOSYSTEM: '1',
        },
        timeout: 60_000,
      });
      assert.equal(readFileSync(join(dest, 'README.md'), 'utf8'), content);
      const { stdout } = await run('git', ['-C', dest, 'rev-parse', 'HEAD']);
      assert.equal(stdout.trim(), server.head);
      assertOnlyExits(server.peers);
    }
  });

  test('different Proxy-Authorization credentials get different circuits (seen on the dashboard)', async () => {
    for (const who of ['alice:x', 'bob:y', 'alice:x'])
      await run(
        'curl',
        [
          '-sS',
          '--fail',
          '--max-time',
          '60',
          '-x',
          proxy,
          '--proxy-user',
          who,
          '--proxytunnel',
          `${web.url}/hello`,
        ],
        {
          env: cleanEnv(),
        },
      );
    const res = await fetch(`${dashboard}api/circuits`);
    const { circuits } = (await res.json()) as { circuits: { serial: number; purpose: string }[] };
    const proxied = circuits.filter((c) => c.purpose === 'http-proxy');
    assert.equal(proxied.length, 2, `alice and bob each have one circuit: ${JSON.stringify(circuits)}`);
  });

  test('the proxy explains what it cannot do: closed port 502, not-a-proxy request 400, https absolute form 501', async () => {
    const closed = await freePort();
    const { stdout, stderr } = await run(
      'curl',
      ['-sS', '-i', '--max-time', '60', '-x', proxy, `http://127.0.0.1:${closed}/`],
      {
        env: cleanEnv(),
      },
    ).catch((e) => e as { stdout: string; stderr: string });
    assert.match(stdout, /^HTTP\/1\.1 502/, stderr);
    assert.match(stdout, /refused/);
    const asServer = await fetch(proxy);
    assert.equal(asServer.status, 400);
    assert.match(await asServer.text(), /HTTPS_PROXY=/);
    const { hostname, port } = new URL(proxy);
    const status = await new Promise<{ code: number; body: string }>((resolve, reject) => {
      const req = http.request(
        { host: hostname, port, method: 'GET', path: `https://localhost:${secure.port}/hello` },
        (r) => {
          let body = '';
          r.setEncoding('utf8');
          r.on('data', (d) => (body += d));
          r.on('end', () => resolve({ code: r.statusCode ?? 0, body }));
        },
      );
      req.on('error', reject);
      req.end();
    });
    assert.equal(status.code, 501);
    assert.match(status.body, /CONNECT/);
  });

  test('the optimistic proxy (--http-proxy-optimistic): HTTPS through its tunnels, and a closed port is a reset, not a 502', async () => {
    assert.match(optimisticProxy, /^http:\/\/127\.0\.0\.1:\d+$/, 'the client announces the optimistic proxy');
    const { stdout } = await httpsThrough(optimisticProxy);
    assert.equal(stdout, files['/hello'].toString());
    const big = join(out, 'optimistic-10m');
    await run(
      'curl',
      [
        '-sS',
        '--fail',
        '--max-time',
        '120',
        '-x',
        optimisticProxy,
        '--proxytunnel',
        '-o',
        big,
        `${web.url}/random10m`,
      ],
      {
        env: cleanEnv(),
      },
    );
    assert.equal(sha256(readFileSync(big)), sha256(files['/random10m']));
    // A tunnel to a closed port: the plain proxy answers 502; this one has answered 200 already,
    // so the tunnel is reset.
    const closed = await freePort();
    const viaTunnel = (p: string) =>
      run(
        'curl',
        ['-sS', '-i', '--max-time', '60', '-x', p, '--proxytunnel', `http://127.0.0.1:${closed}/`],
        {
          env: cleanEnv(),
        },
      ).then(
        (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
        (e) => e as { code: number; stdout: string; stderr: string },
      );
    // The plain proxy's answer, read off the socket: curl sometimes reports a CONNECT answered and
    // closed within a few ms as a failed getpeername() instead of printing the status.
    const usual = await rawConnect(proxy, `127.0.0.1:${closed}`);
    assert.match(usual, /^HTTP\/1\.1 502 /, usual);
    const early = await viaTunnel(optimisticProxy);
    assert.notEqual(early.code, 0, 'curl fails');
    assert.match(early.stdout, /^HTTP\/1\.1 200 Connection Established/, 'the tunnel was answered at once');
    assert.match(early.stderr, /reset|Recv failure|Empty reply/i, early.stderr);
  });
});
