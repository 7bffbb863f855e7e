// Slow and stalled connections to every listening port of a real network (directory, its metrics, the
// client's SOCKS port, HTTP proxy, dashboard and metrics): 1 byte/s headers, 1 byte/s bodies, and more
// idle connections than a port's cap. Each port closes them at its timeout (408 on HTTP ports) and
// refuses those past its cap, while a client keeps fetching a file byte for byte through the network.
import assert from 'node:assert/strict';
import net from 'node:net';
import { buffer } from 'node:stream/consumers';
import { after, before, test } from 'node:test';
import { streamGet } from '../../src/net/http-fetch.js';
import { DEFAULT_HTTP_LIMITS } from '../../src/net/http-limits.js';
import { socksConnect } from '../../src/net/socks-client.js';
import { Testnet } from '../../src/testnet/testnet.js';
import { makeFiles, sha256, startHttpServer, type WebServer } from '../helpers/web.js';

interface Port {
  name: string;
  host: string;
  port: number;
  http: boolean;
  /** A body sent slowly is held to the request timeout (not forwarded to a destination). */
  bodyTimeout: boolean;
}

let tn: Testnet;
let web: WebServer;
let ports: Port[] = [];
const files = makeFiles();

function hostPort(s: string): { host: string; port: number } {
  const u = new URL(s.includes('://') ? s : `http://${s}`);
  return { host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port) };
}

before(async () => {
  web = await startHttpServer(files);
  tn = await Testnet.start({
    relays: 3,
    exits: 1,
    directoryArgs: ['--metrics', '127.0.0.1:0'],
    clientArgs: ['--http-proxy', '127.0.0.1:0', '--dashboard', '127.0.0.1:0', '--metrics', '127.0.0.1:0'],
  });
  const dir = tn.processes.find((p) => p.name === 'directory')!.ready;
  const client = tn.processes.find((p) => p.name === 'client')!.ready;
  ports = [
    { name: 'directory', ...hostPort(dir.url), http: true, bodyTimeout: true },
    { name: 'directory metrics', ...hostPort(dir.metrics), http: true, bodyTimeout: true },
    { name: 'client SOCKS', ...hostPort(client.socks), http: false, bodyTimeout: false },
    { name: 'client HTTP proxy', ...hostPort(client.http), http: true, bodyTimeout: false },
    { name: 'client dashboard', ...hostPort(client.dashboard), http: true, bodyTimeout: true },
    { name: 'client metrics', ...hostPort(client.metrics), http: true, bodyTimeout: true },
  ];
});

after(async () => {
  await tn?.stop();
  await web?.close();
});

/** Fetches /random1m through the network (SOCKS) until `done()`, checking every byte; returns latencies. */
async function bystander(done: () => boolean): Promise<number[]> {
  const times: number[] = [];
  const u = new URL(web.url);
  // Bounded: at most 200 downloads.
  while (!done() && times.length < 200) {
    const t0 = performance.now();
    const res = await streamGet(`${web.url}/random1m`, {
      connect: (host, port) =>
        socksConnect({
          proxyHost: tn.socksHost,
          proxyPort: tn.socksPort,
          host,
          port: port || Number(u.port),
        }),
    });
    assert.equal(sha256(await buffer(res)), sha256(files['/random1m']));
    times.push(performance.now() - t0);
  }
  return times;
}

interface Held {
  /** The first bytes the server answered ('' if it closed without a byte). */
  answer: string;
  heldMs: number;
  /** Bytes we had sent when it closed. */
  sent: number;
  /** We gave up first: the port held the connection for all of maxSeconds. */
  gaveUp: boolean;
}

/**
 * Connects and sends `head` (all at once), then `trickle` at 1 byte a second. Resolves when the server
 * closes the connection; after `maxSeconds` bytes it gives up (the port failed to close it).
 */
function slowConnection(p: Port, head: string, trickle: string, maxSeconds = 60): Promise<Held> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const s = net.connect(p.port, p.host);
    let answer = '';
    let sent = 0;
    let timer: NodeJS.Timeout | undefined;
    let gaveUp = false;
    const giveUp = setTimeout(() => {
      gaveUp = true;
      s.destroy();
    }, maxSeconds * 1000);
    s.on('connect', () => {
      if (head) s.write(head);
      sent = head.length;
      if (!trickle) return;
      timer = setInterval(() => {
        const i = sent - head.length;
        if (i < trickle.length) {
          s.write(trickle[i]);
          sent++;
        }
      }, 1000);
    });
    s.on('data', (d) => {
      if (answer.length < 200) answer += d.toString('latin1');
    });
    s.on('error', () => {});
    s.on('close', () => {
      clearInterval(timer);
      clearTimeout(giveUp);
      resolve({ answer: answer.split('\r\n')[0], heldMs: performance.now() - t0, sent, gaveUp });
    });
  });
}

test('1 byte/s headers and bodies: every port closes them at its timeout while a client keeps downloading', async () => {
  const slowHeaders = `GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ${'a'.repeat(200)}`;
  const body = 'b'.repeat(200);
  const bodyHead = `POST /v1/relays HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`;
  let finished = false;
  const downloads = bystander(() => finished);
  const runs = ports.flatMap((p) => {
    const out: Promise<[string, Held]>[] = [];
    // SOCKS: a greeting offering 255 methods, one byte a second; HTTP: the request line and headers.
    const trickle = p.http ? slowHeaders : `\x05\xff${'\x00'.repeat(255)}`;
    out.push(slowConnection(p, '', trickle).then((h) => [`${p.name}, slow headers`, h]));
    if (p.bodyTimeout) out.push(slowConnection(p, bodyHead, body).then((h) => [`${p.name}, slow body`, h]));
    return out;
  });
  const results = await Promise.all(runs);
  finished = true;
  const times = await downloads;
  for (const [what, h] of results) {
    console.log(
      `  ${what}: closed after ${(h.heldMs / 1000).toFixed(1)} s, ${h.sent} bytes sent, answer "${h.answer}"`,
    );
  }
  console.log(
    `  bystander: ${times.length} downloads of 1 MiB, each byte checked; slowest ${Math.round(Math.max(...times))} ms`,
  );
  assert.ok(times.length > 0);
  for (const [what, h] of results) {
    // The sender would have taken over 200 s; the port closed it long before.
    assert.ok(!h.gaveUp, `${what}: still open after ${h.sent} bytes`);
    if (what.includes('SOCKS')) continue;
    if (what.endsWith('slow headers') || what === 'directory, slow body')
      assert.match(h.answer, /^HTTP\/1\.1 408 /, `${what} answered a timeout`);
  }
});

test('more idle connections than a port takes: those past its cap are refused, the rest closed at the header timeout', async () => {
  const extra = 50;
  const n = DEFAULT_HTTP_LIMITS.maxConnections + extra;
  const httpPorts = ports.filter((p) => p.http && p.name !== 'directory metrics');
  let finished = false;
  const downloads = bystander(() => finished);
  const perPort = await Promise.all(
    httpPorts.map(async (p) => {
      const held = await Promise.all(Array.from({ length: n }, () => slowConnection(p, '', '')));
      const refused = held.filter((h) => h.answer === '').length;
      const timedOut = held.filter((h) => /^HTTP\/1\.1 408 /.test(h.answer)).length;
      return { p, refused, timedOut };
    }),
  );
  finished = true;
  const times = await downloads;
  for (const { p, refused, timedOut } of perPort) {
    console.log(
      `  ${p.name}: ${n} idle connections: ${refused} refused at the cap, ${timedOut} closed with 408`,
    );
    assert.ok(refused >= extra, `${p.name}: at most ${DEFAULT_HTTP_LIMITS.maxConnections} held`);
    assert.ok(timedOut > 0, `${p.name}: the held ones were closed at the header timeout`);
  }
  console.log(`  bystander: ${times.length} downloads, slowest ${Math.round(Math.max(...times))} ms`);
  assert.ok(times.length > 0);
});
