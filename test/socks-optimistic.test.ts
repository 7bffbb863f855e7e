// The optimistic SOCKS5 port (`allium client --socks-optimistic`): CONNECT is answered once the BEGIN
// is on its way, so the application's first bytes follow it (protocol §4.2). Checked as a user would:
// curl through a testnet of processes gets whole files; a destination the exit cannot reach is a
// reset on this port and a SOCKS error on the plain one. In process: the answer comes before the
// exit's CONNECTED, and the bytes sent after it reach the destination.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import type { CircuitStream } from '../src/core/stream-mux.js';
import { SocksServer } from '../src/net/socks-server.js';
import { Testnet } from '../src/testnet/testnet.js';
import { type InProcessNetwork, startNetwork } from './helpers/network.js';
import { makeFiles, sha256, startHttpServer, type WebServer } from './helpers/web.js';

const run = promisify(execFile);

/** A loopback port nobody listens on. */
async function closedPort(): Promise<number> {
  const tmp = net.createServer();
  await new Promise<void>((r) => tmp.listen(0, '127.0.0.1', () => r()));
  const port = (tmp.address() as net.AddressInfo).port;
  await new Promise<void>((r) => tmp.close(() => r()));
  return port;
}

/** curl's exit status and stdout (as bytes); curl fails with a status, not an exception. */
async function curl(args: string[]): Promise<{ status: number; body: Buffer; stderr: string }> {
  try {
    const r = await run('curl', ['-sS', '--max-time', '30', ...args], {
      encoding: 'buffer',
      maxBuffer: 64 << 20,
    });
    return { status: 0, body: r.stdout, stderr: r.stderr.toString() };
  } catch (err) {
    const e = err as { code?: number; stdout?: Buffer; stderr?: Buffer };
    return { status: e.code ?? -1, body: e.stdout ?? Buffer.alloc(0), stderr: String(e.stderr ?? '') };
  }
}

describe('the optimistic SOCKS5 port of a client process', () => {
  let tn: Testnet;
  let web: WebServer;
  let optimistic = '';
  let plain = '';
  const files = makeFiles();

  before(async () => {
    web = await startHttpServer(files);
    tn = await Testnet.start({ relays: 4, clientArgs: ['--socks-optimistic', '127.0.0.1:0'] });
    const ready = tn.processes.find((p) => p.name === 'client')!.ready;
    optimistic = ready.socksOptimistic;
    plain = `${tn.socksHost}:${tn.socksPort}`;
    assert.match(optimistic, /^127\.0\.0\.1:\d+$/, 'the client announces the optimistic port');
  });
  after(async () => {
    await tn?.stop();
    await web?.close();
  });

  test('curl gets small and large files whole through it, on shared and isolated circuits', async () => {
    for (const [path, user] of [
      ['/hello', ''],
      ['/random10m', ''],
      ['/random1m', 'alice:x'],
      ['/hello', 'bob:y'],
    ] as const) {
      const auth = user ? `${user}@` : '';
      const r = await curl(['--proxy', `socks5h://${auth}${optimistic}`, `${web.url}${path}`]);
      assert.equal(r.status, 0, `curl ${path}: ${r.stderr}`);
      assert.equal(sha256(r.body), sha256(files[path]), `${path} arrived whole`);
    }
  });

  test('an unreachable destination is a reset here and a SOCKS error on the plain port', async () => {
    const port = await closedPort();
    const url = `http://127.0.0.1:${port}/`;
    const early = await curl(['--proxy', `socks5h://${optimistic}`, url]);
    // The reset reaches curl while it receives (56) or, when the exit's refusal is quicker than
    // curl's next step, while it still sends or asks for its peer (55): both are the reset, where a
    // SOCKS error would be 97.
    assert.ok(
      early.status === 56 || (early.status === 55 && /not connected|reset|broken pipe/i.test(early.stderr)),
      `curl reports a reset connection (56, or 55 while sending), got ${early.status}: ${early.stderr}`,
    );
    const usual = await curl(['--proxy', `socks5h://${plain}`, url]);
    assert.equal(usual.status, 97, `curl reports a SOCKS error (97), got ${usual.status}: ${usual.stderr}`);
    // The refusal left the circuit usable: the next request on the port works.
    const r = await curl(['--proxy', `socks5h://${optimistic}`, `${web.url}/hello`]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.body.toString(), files['/hello'].toString());
  });
});

describe('the optimistic SOCKS5 server in process', () => {
  let netw: InProcessNetwork;
  let echo: net.Server;
  let server: SocksServer;
  const opened: { stream: CircuitStream; connected: boolean }[] = [];

  before(async () => {
    netw = await startNetwork({ relays: 3, exits: 1 });
    echo = net.createServer((s) => s.on('data', (d) => s.write(`got ${d}`)));
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', () => r()));
    server = await SocksServer.listen({
      host: '127.0.0.1',
      port: 0,
      optimistic: true,
      connect: async (req) => {
        assert.equal(req.optimistic, true, 'the server asks for an optimistic stream');
        const stream = await netw.client.connect(req.host, req.port, {
          isolation: req.isolation,
          optimistic: req.optimistic,
        });
        const o = { stream, connected: false };
        void stream.connected.then(() => (o.connected = true));
        opened.push(o);
        return stream;
      },
    });
  });
  after(async () => {
    await server?.close();
    echo?.close();
    await netw?.stop();
  });

  test('answers CONNECT before the exit has connected, and the bytes sent then reach the destination', async () => {
    const port = (echo.address() as net.AddressInfo).port;
    const s = net.connect({ host: '127.0.0.1', port: server.port });
    await new Promise<void>((r, j) => s.once('connect', () => r()).once('error', j));
    // Greeting (no auth), then CONNECT 127.0.0.1:port.
    const req = Buffer.from([5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1, port >> 8, port & 0xff]);
    s.write(req);
    let connectedAtAnswer: boolean | null = null;
    const got: Buffer[] = [];
    const answer = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no answer through the optimistic port')), 10_000);
      s.on('data', (c: Buffer) => {
        got.push(c);
        const all = Buffer.concat(got);
        if (connectedAtAnswer === null && all.length >= 12) {
          assert.deepEqual([...all.subarray(0, 4)], [5, 0, 5, 0], 'method accepted, CONNECT succeeded');
          connectedAtAnswer = opened[opened.length - 1].connected;
          s.write('hello');
        }
        if (all.length >= 12 + 'got hello'.length) {
          clearTimeout(timer);
          resolve(all.subarray(12).toString());
        }
      });
    });
    assert.equal(connectedAtAnswer, false, 'the SOCKS answer came before the exit had connected');
    assert.equal(answer, 'got hello');
    s.destroy();
  });
});
