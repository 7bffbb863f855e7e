// End to end, as a user would: `allium testnet` processes, curl through the SOCKS port, `allium fetch`.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { CLI_PATH, Testnet } from '../src/testnet/testnet.js';
import {
  makeCertificate,
  makeFiles,
  sha256,
  startHttpServer,
  startHttpsServer,
  type WebServer,
} from './helpers/web.js';

const run = promisify(execFile);

describe('a testnet of a directory and 5 relay processes', () => {
  let tn: Testnet;
  let web: WebServer;
  let secure: WebServer;
  const files = makeFiles();
  const tls = makeCertificate();
  const out = mkdtempSync(join(tmpdir(), 'allium-e2e-'));

  before(async () => {
    web = await startHttpServer(files);
    secure = await startHttpsServer(files, tls);
    tn = await Testnet.start({ relays: 5 });
  });
  after(async () => {
    await tn?.stop();
    await web?.close();
    await secure?.close();
  });

  const socks = () => `${tn.socksHost}:${tn.socksPort}`;
  /** Every connection the web servers saw came from an exit relay process: nothing went around the network. */
  const assertOnlyExitsConnected = () => {
    const exitPids = new Set(tn.relays.filter((r) => r.ready.exit === '1').map((r) => r.proc.pid));
    const peers = [...web.peers, ...secure.peers];
    assert.ok(peers.length > 0);
    for (const p of peers)
      assert.ok(
        exitPids.has(p.pid ?? -1),
        `connection from ${p.address}:${p.port} (pid ${p.pid}) is not an exit relay`,
      );
  };

  test('curl downloads a 10 MiB file byte for byte through the SOCKS port', async () => {
    const file = join(out, 'curl-10m');
    await run('curl', [
      '-sS',
      '--fail',
      '--max-time',
      '120',
      '--socks5-hostname',
      socks(),
      '-o',
      file,
      `${web.url}/random10m`,
    ]);
    const got = readFileSync(file);
    assert.equal(got.length, files['/random10m'].length);
    assert.equal(sha256(got), sha256(files['/random10m']));
    assertOnlyExitsConnected();
  });

  test('curl fetches a page from an HTTPS server (TLS end to end, verified with --cacert)', async () => {
    const { stdout } = await run('curl', [
      '-sS',
      '--fail',
      '--max-time',
      '60',
      '--socks5-hostname',
      socks(),
      '--cacert',
      tls.certPath,
      `https://localhost:${secure.port}/hello`,
    ]);
    assert.equal(stdout, files['/hello'].toString());
    assertOnlyExitsConnected();
  });

  test('allium fetch writes the 10 MiB file with -o, and an HTTPS page to stdout', async () => {
    const file = join(out, 'fetch-10m');
    const base = ['--directory', tn.directoryUrl, '--directory-key', tn.directoryKey];
    await run(process.execPath, [CLI_PATH, 'fetch', `${web.url}/random10m`, '-o', file, ...base], {
      timeout: 120_000,
    });
    assert.equal(sha256(readFileSync(file)), sha256(files['/random10m']));
    const { stdout } = await run(
      process.execPath,
      [CLI_PATH, 'fetch', `https://localhost:${secure.port}/hello`, '--cacert', tls.certPath, ...base],
      {
        timeout: 60_000,
      },
    );
    assert.equal(stdout, files['/hello'].toString());
    assertOnlyExitsConnected();
  });

  test('allium fetch of a missing page reports the HTTP status and exits non-zero', async () => {
    const base = ['--directory', tn.directoryUrl, '--directory-key', tn.directoryKey];
    await assert.rejects(
      run(process.execPath, [CLI_PATH, 'fetch', `${web.url}/nope`, ...base], { timeout: 60_000 }),
      (err: Error & { stderr: string; code: number }) => {
        assert.match(err.stderr, /HTTP 404/);
        assert.equal(err.code, 22);
        return true;
      },
    );
  });

  test('garbage bytes to a relay port, the SOCKS port and the directory get a closed connection or an error, and service goes on', async () => {
    const garbage = Buffer.from('\x16\x03\x01 this is not a protocol \x00\xff'.repeat(50), 'latin1');
    const relayPort = Number(tn.relays[0].ready.port);
    const dirPort = Number(new URL(tn.directoryUrl).port);
    const answers = await Promise.all(
      [relayPort, tn.socksPort, dirPort].map(
        (port) =>
          new Promise<string>((resolve) => {
            const s = net.connect({ host: '127.0.0.1', port }, () => s.write(garbage));
            let got = '';
            s.setEncoding('latin1');
            s.on('data', (d) => (got += d));
            s.on('error', () => {});
            s.on('close', () => resolve(got));
            setTimeout(() => s.destroy(), 15_000).unref();
          }),
      ),
    );
    // The directory answers HTTP 400; the relay and SOCKS port just close.
    assert.match(answers[2], /^HTTP\/1\.1 400/);
    // Everyone still serves: a full download still works.
    const { stdout } = await run('curl', [
      '-sS',
      '--fail',
      '--max-time',
      '60',
      '--socks5-hostname',
      socks(),
      `${web.url}/hello`,
    ]);
    assert.equal(stdout, files['/hello'].toString());
    for (const p of tn.processes) assert.equal(p.proc.exitCode, null, `${p.name} is still running`);
  });

  test('allium fetch refuses a consensus signed by another key, with a clear error', async () => {
    const wrongKey = Buffer.alloc(32, 7).toString('base64');
    await assert.rejects(
      run(
        process.execPath,
        [CLI_PATH, 'fetch', `${web.url}/hello`, '--directory', tn.directoryUrl, '--directory-key', wrongKey],
        { timeout: 60_000 },
      ),
      (err: Error & { stderr: string }) => {
        assert.match(err.stderr, /signature/i);
        return true;
      },
    );
  });

  test('an IPv6 destination ([::1]) is reached through the network', async () => {
    const v6 = await startHttpServer(files, '::1');
    try {
      const { stdout } = await run('curl', [
        '-sS',
        '--fail',
        '--max-time',
        '60',
        '--socks5-hostname',
        socks(),
        `http://[::1]:${v6.port}/hello`,
      ]);
      assert.equal(stdout, files['/hello'].toString());
    } finally {
      await v6.close();
    }
  });

  test('different SOCKS credentials get different circuits (different source ports at the exit side)', async () => {
    const before = web.peers.length;
    await run('curl', ['-sS', '--fail', '--socks5-hostname', `alice:x@${socks()}`, `${web.url}/hello`]);
    await run('curl', ['-sS', '--fail', '--socks5-hostname', `bob:y@${socks()}`, `${web.url}/hello`]);
    assert.equal(web.peers.length, before + 2);
  });
});

describe('a testnet whose exit does not allow loopback destinations', () => {
  let tn: Testnet;
  let web: WebServer;
  before(async () => {
    web = await startHttpServer(makeFiles());
    tn = await Testnet.start({ relays: 3, exits: 1, exitsAllowPrivate: false });
  });
  after(async () => {
    await tn?.stop();
    await web?.close();
  });

  test('a name that resolves to 127.0.0.1 is refused by the exit: SOCKS "not allowed by ruleset"', async () => {
    await assert.rejects(
      run('curl', [
        '-sS',
        '--max-time',
        '30',
        '-v',
        '--socks5-hostname',
        `${tn.socksHost}:${tn.socksPort}`,
        `http://localhost:${web.port}/hello`,
      ]),
      (err: Error & { stderr: string }) => {
        assert.match(err.stderr, /\(2\)|not allowed by ruleset/i);
        return true;
      },
    );
    assert.equal(web.peers.length, 0, 'the web server was never contacted');
  });

  test('a loopback literal is refused the same way', async () => {
    await assert.rejects(
      run('curl', [
        '-sS',
        '--max-time',
        '30',
        '-v',
        '--socks5-hostname',
        `${tn.socksHost}:${tn.socksPort}`,
        `http://127.0.0.1:${web.port}/hello`,
      ]),
      (err: Error & { stderr: string }) => {
        assert.match(err.stderr, /\(2\)|not allowed by ruleset/i);
        return true;
      },
    );
  });
});
