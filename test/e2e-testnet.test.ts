// End to end, as a user would: `allium testnet` processes, curl through the SOCKS port, `allium fetch`.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { socksConnect } from '../src/net/socks-client.js';
import { CLI_PATH, Testnet } from '../src/testnet/testnet.js';
import { curlViaSocks } from './helpers/curl.js';
import { createHop, rawLink } from './helpers/raw-client.js';
import { missingIPv6Loopback, skipUnlessAvailable } from './helpers/requirements.js';
import { tempDir } from './helpers/temp.js';
import { waitFor } from './helpers/wait.js';
import {
  makeCertificate,
  makeFiles,
  sha256,
  startHttpServer,
  startHttpsServer,
  type WebServer,
} from './helpers/web.js';

const run = promisify(execFile);
const NO_IPV6 = skipUnlessAvailable(await missingIPv6Loopback());

/** Writes `bytes` to 127.0.0.1:port; resolves with what came back and whether the server closed first. */
function sendGarbage(port: number, bytes: Buffer): Promise<{ answer: string; closedByServer: boolean }> {
  return new Promise((resolve) => {
    let answer = '';
    let ours = false;
    const s = net.connect({ host: '127.0.0.1', port }, () => s.write(bytes));
    s.setEncoding('latin1');
    s.on('data', (d) => (answer += d));
    s.on('error', () => {});
    const timer = setTimeout(() => {
      ours = true;
      s.destroy();
    }, 15_000);
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ answer, closedByServer: !ours });
    });
  });
}

/** A TCP server that accepts connections and holds them open, saying nothing. */
async function holdServer(): Promise<{ port: number; close(): void }> {
  const held: net.Socket[] = [];
  const server = net.createServer((s) => {
    s.on('error', () => {});
    held.push(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    close() {
      for (const s of held) s.destroy();
      server.close();
    },
  };
}

describe('a testnet of a directory and 5 relay processes', () => {
  let tn: Testnet;
  let web: WebServer;
  let secure: WebServer;
  const files = makeFiles();
  const tls = makeCertificate();
  const out = tempDir('e2e');

  before(async () => {
    web = await startHttpServer(files);
    secure = await startHttpsServer(files, tls);
    tn = await Testnet.start({ relays: 5, clientArgs: ['--dashboard', '127.0.0.1:0'] });
  });
  after(async () => {
    await tn?.stop();
    await web?.close();
    await secure?.close();
  });

  const socks = () => `${tn.socksHost}:${tn.socksPort}`;
  const dashboard = () => tn.processes.find((p) => p.name === 'client')!.ready.dashboard.replace(/\/$/, '');
  const publishedOnionKey = async (id: string) => {
    const res = await fetch(`${tn.directoryUrl}/v1/relays/${id}`);
    return Buffer.from(((await res.json()) as { onionKey: string }).onionKey, 'base64');
  };
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
    await curlViaSocks(socks(), `${web.url}/random10m`, { output: file, maxTimeS: 120 });
    const got = readFileSync(file);
    assert.equal(got.length, files['/random10m'].length);
    assert.equal(sha256(got), sha256(files['/random10m']));
    assertOnlyExitsConnected();
  });

  test('curl fetches a page from an HTTPS server (TLS end to end, verified with --cacert)', async () => {
    const { stdout } = await curlViaSocks(socks(), `https://localhost:${secure.port}/hello`, {
      args: ['--cacert', tls.certPath],
    });
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

  test('garbage bytes to a relay port, the SOCKS port and the directory: each closes that connection and goes on serving', async () => {
    const garbage = Buffer.from('\x16\x03\x01 this is not a protocol \x00\xff'.repeat(50), 'latin1');
    const relay = tn.relays[0];
    const dirPort = Number(new URL(tn.directoryUrl).port);
    const [toRelay, toSocks, toDirectory] = await Promise.all(
      [Number(relay.ready.port), tn.socksPort, dirPort].map((port) => sendGarbage(port, garbage)),
    );
    // Each server closed the connection itself (none was left hanging until our deadline).
    assert.ok(toRelay.closedByServer, 'the relay closed the connection');
    assert.ok(toSocks.closedByServer, 'the SOCKS port closed the connection');
    assert.ok(toDirectory.closedByServer, 'the directory closed the connection');
    // The directory answers HTTP 400; the relay and the SOCKS port send nothing a client could act on.
    assert.match(toDirectory.answer, /^HTTP\/1\.1 400/);
    for (const p of tn.processes) {
      assert.equal(p.proc.exitCode, null, `${p.name} exited`);
      assert.equal(p.proc.signalCode, null, `${p.name} was killed`);
    }
    // The relay still accepts links: a new one completes its handshake and a circuit is created on it.
    const target = {
      port: Number(relay.ready.port),
      id: Buffer.from(relay.ready.id, 'hex'),
      onionKey: { publicKey: await publishedOnionKey(relay.ready.id) },
    };
    const raw = await rawLink(target);
    try {
      await createHop(raw, target, 0x80000001);
    } finally {
      raw.close();
    }
    // The SOCKS port still serves, through the whole network.
    const { stdout } = await curlViaSocks(socks(), `${web.url}/hello`);
    assert.equal(stdout, files['/hello'].toString());
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

  test('an IPv6 destination ([::1]) is reached through the network', { skip: NO_IPV6 }, async () => {
    const v6 = await startHttpServer(files, '::1');
    try {
      const { stdout } = await curlViaSocks(socks(), `http://[::1]:${v6.port}/hello`);
      assert.equal(stdout, files['/hello'].toString());
    } finally {
      await v6.close();
    }
  });

  test('SOCKS credentials isolate: two users get two circuits, and one user the same circuit for every stream', async () => {
    // Three connections held open at once, so the client's dashboard lists each stream on its circuit:
    // alice to A, bob to B, alice again to C.
    const holders = await Promise.all([holdServer(), holdServer(), holdServer()]);
    const who = [
      { username: 'alice', password: 'x' },
      { username: 'bob', password: 'y' },
      { username: 'alice', password: 'x' },
    ];
    const sockets: net.Socket[] = [];
    try {
      for (let i = 0; i < 3; i++) {
        sockets.push(
          await socksConnect({
            proxyHost: tn.socksHost,
            proxyPort: tn.socksPort,
            host: '127.0.0.1',
            port: holders[i].port,
            ...who[i],
          }),
        );
      }
      const targets = holders.map((h) => `127.0.0.1:${h.port}`);
      const circuitOf = await waitFor('the dashboard lists all three streams', async () => {
        const { circuits } = (await (await fetch(`${dashboard()}/api/circuits`)).json()) as {
          circuits: { serial: number; streams: { target: string }[] }[];
        };
        const found = targets.map((t) => circuits.find((c) => c.streams.some((s) => s.target === t))?.serial);
        return found.every((s) => s !== undefined) ? (found as number[]) : null;
      });
      assert.notEqual(circuitOf[1], circuitOf[0], 'bob shares a circuit with alice');
      assert.equal(circuitOf[2], circuitOf[0], "alice's second stream went on another circuit");
    } finally {
      for (const s of sockets) s.destroy();
      for (const h of holders) h.close();
    }
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

  /** curl through the SOCKS port must fail with the SOCKS reply "not allowed by ruleset" (2). */
  const refusedByRuleset = (url: string) =>
    assert.rejects(
      curlViaSocks(`${tn.socksHost}:${tn.socksPort}`, url, {
        maxTimeS: 30,
        failOnHttpError: false,
        args: ['-v'],
      }),
      (err: Error & { stderr: string }) => {
        assert.match(err.stderr, /\(2\)|not allowed by ruleset/i);
        return true;
      },
    );

  test('a name that resolves to 127.0.0.1 is refused by the exit: SOCKS "not allowed by ruleset"', async () => {
    await refusedByRuleset(`http://localhost:${web.port}/hello`);
    assert.equal(web.peers.length, 0, 'the web server was never contacted');
  });

  test('a loopback literal is refused the same way', async () => {
    await refusedByRuleset(`http://127.0.0.1:${web.port}/hello`);
  });
});
