// An onion service as a user runs one (protocol §8): `allium serve` in front of a local web server on
// a testnet of processes, reached by curl through SOCKS, through the HTTP proxy and with
// `allium fetch`; its errors as SOCKS codes; an introduction point killed; the service stopped and
// started again from its data directory.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { parseExposition } from '../src/core/prometheus.js';
import { IdentityKey } from '../src/crypto/keys.js';
import { onionAddressOf } from '../src/crypto/onion-address.js';
import { socksConnect } from '../src/net/socks-client.js';
import { Testnet } from '../src/testnet/testnet.js';
import { AlliumProcess, runAllium } from './helpers/allium-process.js';
import { curlViaSocks } from './helpers/curl.js';
import { tempDir } from './helpers/temp.js';
import { makeFiles, sha256, startHttpServer, type WebServer } from './helpers/web.js';

const run = promisify(execFile);
const ADDRESS_RE = /^[a-z2-7]{56}\.allium$/;

/** The SOCKS reply the client's proxy gives for `host` (0 when it connects). */
async function socksReply(socks: string, host: string, username: string): Promise<number> {
  const [proxyHost, proxyPort] = socks.split(':');
  try {
    const s = await socksConnect({
      proxyHost,
      proxyPort: Number(proxyPort),
      host,
      port: 80,
      username,
      password: 'x',
      timeoutMs: 90_000,
    });
    s.destroy();
    return 0;
  } catch (err) {
    const reply = (err as { reply?: number }).reply;
    if (reply === undefined) throw err;
    return reply;
  }
}

/** Replaces one base32 character of the address's key part: a typo. */
function typo(address: string): string {
  const i = 10;
  const c = address[i] === 'a' ? 'b' : 'a';
  return `${address.slice(0, i)}${c}${address.slice(i + 1)}`;
}

describe('an onion service process on a testnet', () => {
  let tn: Testnet;
  let web: WebServer;
  let service: AlliumProcess;
  let address = '';
  let socks = '';
  let httpProxy = '';
  const files = makeFiles();
  const dir = tempDir('onion-service');
  const serviceDir = join(dir, 'service');
  let isolation = 0;
  const fresh = () => `isolation-${++isolation}`;
  const clientLines: string[] = [];

  const serveArgs = () => [
    'serve',
    '--to',
    `127.0.0.1:${web.port}`,
    '--directory',
    tn.directoryUrl,
    '--directory-key',
    tn.directoryKey,
    '--data-dir',
    serviceDir,
    '--log-level',
    'debug',
  ];

  before(async () => {
    web = await startHttpServer(files);
    tn = await Testnet.start({
      relays: 6,
      relayArgs: () => ['--metrics', '127.0.0.1:0'],
      clientArgs: ['--http-proxy', '127.0.0.1:0', '--log-level', 'debug'],
      onLog: (name, line) => {
        if (name === 'client') clientLines.push(line);
      },
    });
    socks = `${tn.socksHost}:${tn.socksPort}`;
    httpProxy = tn.processes.find((p) => p.name === 'client')!.ready.http;
    service = await AlliumProcess.start('service', serveArgs(), 120_000);
    assert.ok(service.running, `allium serve exited:\n${service.log.slice(-3000)}`);
    address = service.ready.address;
  });
  after(async () => {
    await service?.kill();
    await tn?.stop();
    await web?.close();
  });

  test('prints its address at start, and keeps its key private (0600)', async () => {
    assert.match(address, ADDRESS_RE);
    assert.ok(
      service.lines.some((l) => l.includes(`onion service ${address} -> 127.0.0.1:${web.port}`)),
      'the address is said on stderr',
    );
    const { stdout } = await run('stat', ['-c', '%a', join(serviceDir, 'onion-service.key')]);
    assert.equal(stdout.trim(), '600');
  });

  test('curl through SOCKS fetches 10 MiB from it byte for byte; the web server sees only the service process', async () => {
    const out = join(dir, 'random10m');
    await curlViaSocks(socks, `http://${address}/random10m`, { output: out, maxTimeS: 120 });
    assert.equal(sha256(readFileSync(out)), sha256(files['/random10m']));
    assert.ok(web.peers.length > 0);
    for (const p of web.peers) {
      assert.equal(p.address, '127.0.0.1');
      assert.equal(p.pid, service.proc.pid, 'every connection to the web server came from `allium serve`');
    }
  });

  test('a page through the HTTP proxy, and with `allium fetch`', async () => {
    const { stdout } = await run('curl', [
      '-sS',
      '--fail',
      '--max-time',
      '90',
      '--proxy',
      `http://${httpProxy}`,
      `http://${address}/hello`,
    ]);
    assert.equal(stdout, files['/hello'].toString());
    // Any case, and a label in front, name the same service.
    const fetched = await runAllium(
      [
        'fetch',
        `http://www.${address.toUpperCase()}/hello`,
        '--directory',
        tn.directoryUrl,
        '--directory-key',
        tn.directoryKey,
      ],
      120_000,
    );
    assert.equal(fetched.code, 0, fetched.stderr);
    assert.equal(fetched.stdout, files['/hello'].toString());
  });

  test('a mistyped address and an address with no service each get their SOCKS code and a clear error', async () => {
    assert.equal(await socksReply(socks, typo(address), fresh()), 0xf6);
    const nobody = onionAddressOf(IdentityKey.generate().publicKey);
    assert.equal(await socksReply(socks, nobody, fresh()), 0xf0);
    // curl says the proxy refused (exit 97) and names the reply.
    const err = await curlViaSocks(socks, `http://${typo(address)}/hello`, { maxTimeS: 60 }).then(
      () => null,
      (e: { code: number; stderr: string }) => e,
    );
    assert.ok(err, 'curl failed');
    assert.equal(err.code, 97, err.stderr);
    // allium fetch names the cause and what to do.
    const typoed = await runAllium(
      [
        'fetch',
        `http://${typo(address)}/`,
        '--directory',
        tn.directoryUrl,
        '--directory-key',
        tn.directoryKey,
      ],
      60_000,
    );
    assert.notEqual(typoed.code, 0);
    assert.match(typoed.stderr, /ALLIUM_ONION_ADDRESS_CHECKSUM/);
    const missing = await runAllium(
      ['fetch', `http://${nobody}/`, '--directory', tn.directoryUrl, '--directory-key', tn.directoryKey],
      120_000,
    );
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /ALLIUM_ONION_DESCRIPTOR_NOT_FOUND/);
  });

  test('one introduction point killed: clients still connect', async () => {
    // The relays that serve as its introduction points now, from their own metrics.
    const introRelays: string[] = [];
    for (const r of tn.relays) {
      const text = await (await fetch(`http://${r.ready.metrics}/metrics`)).text();
      if ((parseExposition(text).get('allium_relay_intro_points') ?? 0) > 0) introRelays.push(r.name);
    }
    assert.ok(introRelays.length >= 2, `introduction points at ${introRelays.join(', ')}`);
    const victim = tn.relays.find((r) => r.name === introRelays[0])!;
    victim.proc.kill('SIGKILL');
    // A new circuit (another isolation), the descriptor the client holds still naming the dead point.
    const { stdout } = await curlViaSocks(`${fresh()}:x@${socks}`, `http://${address}/hello`, {
      maxTimeS: 120,
    });
    assert.equal(stdout, files['/hello'].toString());
  });

  test('stopped, it is unreachable (0xF2); started again from its data directory, the same address is reachable again', async () => {
    await service.kill('SIGTERM');
    assert.equal(await socksReply(socks, address, fresh()), 0xf2);

    const t0 = Date.now();
    service = await AlliumProcess.start('service', serveArgs(), 120_000);
    assert.equal(service.ready.address, address, 'the same key, the same address');
    const readyMs = Date.now() - t0;
    // Once it says it is ready, the first request reaches it: the client's cached descriptor names
    // the old introduction points, so it fetches the new one; the relay killed above is still listed,
    // and a rendezvous point or middle chosen there is replaced, not fatal.
    try {
      const { stdout } = await curlViaSocks(`${fresh()}:x@${socks}`, `http://${address}/hello`, {
        maxTimeS: 90,
      });
      assert.equal(stdout, files['/hello'].toString());
    } catch (err) {
      throw new Error(`${(err as { stderr?: string }).stderr ?? err}\n${clientLines.slice(-40).join('\n')}`);
    }
    process.stderr.write(
      `# restarted service ready (descriptor stored) ${readyMs} ms after its start, reached ${Date.now() - t0} ms after it\n`,
    );
  });
});
