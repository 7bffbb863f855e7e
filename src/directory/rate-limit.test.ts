import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Directory } from './directory.js';
import { RateLimiter, rateKey } from './rate-limit.js';

describe('RateLimiter', () => {
  it('allows a burst, then the sustained rate, per address', () => {
    let now = 0;
    const rl = new RateLimiter({ requestsPerSecond: 2, burst: 5, now: () => now });
    for (let i = 0; i < 5; i++) assert.ok(rl.take('192.0.2.1'));
    assert.equal(rl.take('192.0.2.1'), false);
    assert.equal(rl.retryAfterSeconds('192.0.2.1'), 1);
    // Another address is not affected.
    assert.ok(rl.take('192.0.2.2'));
    now += 1000;
    assert.ok(rl.take('192.0.2.1'));
    assert.ok(rl.take('192.0.2.1'));
    assert.equal(rl.take('192.0.2.1'), false);
    assert.equal(rl.limited, 2);
  });

  it('counts a whole IPv6 /64 (and an IPv4-mapped address as its IPv4) as one client', () => {
    assert.equal(rateKey('2001:db8:1:2::1'), rateKey('2001:db8:1:2:ffff::9'));
    assert.notEqual(rateKey('2001:db8:1:2::1'), rateKey('2001:db8:1:3::1'));
    assert.equal(rateKey('::ffff:192.0.2.1'), rateKey('192.0.2.1'));
    const rl = new RateLimiter({ requestsPerSecond: 1, burst: 2, now: () => 0 });
    assert.ok(rl.take('2001:db8::1'));
    assert.ok(rl.take('2001:db8::2'));
    assert.equal(rl.take('2001:db8::3'), false);
  });

  it('tracks at most maxAddresses, forgetting the most idle first', () => {
    const rl = new RateLimiter({ requestsPerSecond: 1, burst: 1, maxAddresses: 100, now: () => 0 });
    for (let i = 0; i < 1000; i++) rl.take(`10.0.${i >> 8}.${i & 255}`);
    assert.equal(rl.tracked, 100);
  });

  it('exempts loopback unless told otherwise', () => {
    const rl = new RateLimiter({ requestsPerSecond: 1, burst: 1, now: () => 0 });
    for (const a of ['127.0.0.1', '::1', '::ffff:127.0.0.1'])
      for (let i = 0; i < 5; i++) assert.ok(rl.take(a));
    assert.equal(rl.tracked, 0);
    const strict = new RateLimiter({ requestsPerSecond: 1, burst: 1, limitLoopback: true, now: () => 0 });
    assert.ok(strict.take('127.0.0.1'));
    assert.equal(strict.take('127.0.0.1'), false);
  });
});

function get(
  url: string,
  localAddress: string,
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { localAddress, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => {
        body += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
  });
}

/** The first bytes answered to `bytes` sent from 127.0.0.1 (the request's body is never sent). */
function rawAnswer(url: string, bytes: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: hostname, port: Number(port), localAddress: '127.0.0.1' });
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error('no answer within 3 s: the server waited for the body'));
    }, 3000);
    s.on('connect', () => s.write(bytes));
    s.once('data', (d) => {
      clearTimeout(timer);
      s.destroy();
      resolve(d.toString('latin1'));
    });
    s.on('error', reject);
  });
}

describe('directory request rate limit (HTTP)', () => {
  const dirs: string[] = [];
  after(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('answers 429 with a JSON error and Retry-After past the burst, per address, and counts it', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'allium-ratelimit-'));
    dirs.push(dataDir);
    const dir = await Directory.start({
      dataDir,
      reachabilityCheck: false,
      rateLimit: { requestsPerSecond: 0.5, burst: 3, limitLoopback: true },
    });
    try {
      for (let i = 0; i < 3; i++) assert.equal((await get(`${dir.url}/v1/key`, '127.0.0.1')).status, 200);
      const refused = await get(`${dir.url}/v1/consensus`, '127.0.0.1');
      assert.equal(refused.status, 429);
      assert.equal(refused.headers['retry-after'], '2');
      const body = JSON.parse(refused.body) as { error: { code: string; message: string } };
      assert.equal(body.error.code, 'ALLIUM_HTTP_RATE_LIMITED');
      assert.match(body.error.message, /at most 0\.5 a second \(bursts of 3\)/);
      // Refused before the body is read: headers announcing a body that never comes get their 429 at once.
      const early = await rawAnswer(
        dir.url,
        'POST /v1/relays HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n',
      );
      assert.match(early, /^HTTP\/1\.1 429 [\s\S]*ALLIUM_HTTP_RATE_LIMITED/);
      // A client at another address is served.
      assert.equal((await get(`${dir.url}/v1/key`, '127.0.0.2')).status, 200);
      assert.equal(dir.rateLimiter?.limited, 2);
    } finally {
      await dir.stop();
    }
  });

  it('can be switched off', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'allium-ratelimit-'));
    dirs.push(dataDir);
    const dir = await Directory.start({ dataDir, reachabilityCheck: false, rateLimit: false });
    try {
      for (let i = 0; i < 30; i++) assert.equal((await get(`${dir.url}/v1/key`, '127.0.0.1')).status, 200);
      assert.equal(dir.rateLimiter, null);
    } finally {
      await dir.stop();
    }
  });
});
