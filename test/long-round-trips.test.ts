// A testnet whose every link has a 40 ms round trip (a delay line in front of each relay: loopback has
// no netem here). Downloads and uploads arrive whole, and the client's receive budget grows past its
// 2 MiB floor (protocol §5.1): on a fixed 2 MiB, a circuit round trip of 120 ms capped the client at
// ~17 MiB/s however many circuits it used; an exit's budget for uploads grows the same way. One download grows its windows past the 4 MiB that held
// it to 4 MiB per round trip before release 0.4.0 (protocol §5).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { Testnet } from '../src/testnet/testnet.js';
import { tempDir } from './helpers/temp.js';
import { makeFiles, sha256, startHttpServer, type WebServer } from './helpers/web.js';

const run = promisify(execFile);
const RELAYS = 4;
const ONE_WAY_MS = 20;

describe('long round trips: a 40 ms delay line on every link', () => {
  let tn: Testnet;
  let web: WebServer;
  const files = makeFiles();

  before(async () => {
    web = await startHttpServer(files);
    tn = await Testnet.start({
      relays: RELAYS,
      linkDelayMs: ONE_WAY_MS,
      clientArgs: ['--metrics', '127.0.0.1:0'],
      relayArgs: () => ['--metrics', '127.0.0.1:0'],
    });
  });
  after(async () => {
    await tn?.stop();
    await web?.close();
  });

  test("four isolated downloads arrive whole, and the client's receive budget grows past 2 MiB", async () => {
    const proxy = `${tn.socksHost}:${tn.socksPort}`;
    const bodies = await Promise.all(
      [0, 1, 2, 3].map(async (i) => {
        const r = await run(
          'curl',
          [
            '-sS',
            '--fail',
            '--max-time',
            '120',
            '--proxy',
            `socks5h://u${i}:x@${proxy}`,
            `${web.url}/random10m`,
          ],
          { encoding: 'buffer', maxBuffer: 32 << 20 },
        );
        return r.stdout;
      }),
    );
    for (const b of bodies) assert.equal(sha256(b), sha256(files['/random10m']));
    const metrics = tn.processes.find((p) => p.name === 'client')!.ready.metrics;
    const text = await (await fetch(`http://${metrics}/metrics`)).text();
    const m = /^allium_client_receive_budget_bytes (\d+)/m.exec(text);
    assert.ok(m, 'the client exports its receive budget');
    assert.ok(
      Number(m[1]) > 2 * 1024 * 1024,
      `the budget grew with the round trip: ${m[1]} bytes (the floor is 2 MiB)`,
    );
  });

  test('one download grows its circuit and stream windows past 4 MiB (exits of 0.4.0)', async () => {
    const big = randomBytes(32 * 1024 * 1024);
    const server = await startHttpServer({ '/big': big });
    try {
      const proxy = `${tn.socksHost}:${tn.socksPort}`;
      const r = await run(
        'curl',
        ['-sS', '--fail', '--max-time', '120', '--proxy', `socks5h://one:x@${proxy}`, `${server.url}/big`],
        { encoding: 'buffer', maxBuffer: 64 << 20 },
      );
      assert.equal(sha256(r.stdout), sha256(big));
      const metrics = tn.processes.find((p) => p.name === 'client')!.ready.metrics;
      const text = await (await fetch(`http://${metrics}/metrics`)).text();
      for (const window of ['circuit', 'stream']) {
        const m = new RegExp(`^allium_client_largest_window_bytes\\{window="${window}"\\} (\\d+)`, 'm').exec(
          text,
        );
        assert.ok(m, `the client exports its largest ${window} window`);
        assert.ok(Number(m[1]) > 4 * 1024 * 1024, `the ${window} window grew past 4 MiB: ${m[1]} bytes`);
      }
    } finally {
      await server.close();
    }
  });

  test("four isolated uploads arrive whole, and an exit's receive budget grows past 2 MiB", async () => {
    // A sink that answers each upload with the SHA-256 of what it received.
    const sink = http.createServer((req, res) => {
      const h = createHash('sha256');
      req.on('data', (d: Buffer) => h.update(d));
      req.on('end', () => res.end(h.digest('hex')));
    });
    await new Promise<void>((r) => sink.listen(0, '127.0.0.1', () => r()));
    try {
      const file = join(tempDir('upload'), 'body');
      const body = randomBytes(10 * 1024 * 1024);
      writeFileSync(file, body);
      const url = `http://127.0.0.1:${(sink.address() as AddressInfo).port}/`;
      const proxy = `${tn.socksHost}:${tn.socksPort}`;
      const answers = await Promise.all(
        [0, 1, 2, 3].map(async (i) => {
          const r = await run('curl', [
            '-sS',
            '--fail',
            '--max-time',
            '120',
            '-T',
            file,
            '--proxy',
            `socks5h://up${i}:x@${proxy}`,
            url,
          ]);
          return r.stdout;
        }),
      );
      for (const a of answers) assert.equal(a, sha256(body));
      const budgets = await Promise.all(
        tn.processes
          .filter((p) => p.name.startsWith('relay'))
          .map(async (p) => {
            const text = await (await fetch(`http://${p.ready.metrics}/metrics`)).text();
            const m = /^allium_relay_receive_budget_bytes (\d+)/m.exec(text);
            assert.ok(m, `${p.name} exports its receive budget`);
            return Number(m[1]);
          }),
      );
      assert.ok(
        Math.max(...budgets) > 2 * 1024 * 1024,
        `an exit's budget grew with the round trip: ${budgets.join(', ')} bytes (the floor is 2 MiB)`,
      );
    } finally {
      sink.close();
    }
  });
});
