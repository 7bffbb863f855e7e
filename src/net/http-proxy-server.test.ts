import assert from 'node:assert/strict';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { Duplex } from 'node:stream';
import { test } from 'node:test';
import { StreamError } from '../core/stream-mux.js';
import { EndReason } from '../wire/constants.js';
import {
  HttpProxyServer,
  isolationFromAuth,
  parseAuthority,
  statusForStreamError,
} from './http-proxy-server.js';

test('CONNECT authorities: names, IPv4 and bracketed IPv6; anything else is refused', () => {
  assert.deepEqual(parseAuthority('example.org:443'), { host: 'example.org', port: 443 });
  assert.deepEqual(parseAuthority('127.0.0.1:8080'), { host: '127.0.0.1', port: 8080 });
  assert.deepEqual(parseAuthority('[::1]:443'), { host: '::1', port: 443 });
  for (const bad of [
    'example.org',
    'example.org:0',
    'example.org:70000',
    '::1:443',
    'http://x:1',
    'a b:1',
    '',
  ])
    assert.equal(parseAuthority(bad), null, bad);
});

test('Proxy-Authorization credentials become isolation keys; none means the shared default', () => {
  const basic = (s: string) => `Basic ${Buffer.from(s).toString('base64')}`;
  assert.equal(isolationFromAuth(undefined), '');
  assert.equal(isolationFromAuth(basic('alice:x')), 'http-proxy:alice:x');
  assert.notEqual(isolationFromAuth(basic('alice:x')), isolationFromAuth(basic('bob:x')));
  assert.notEqual(isolationFromAuth(basic('alice:x')), isolationFromAuth(basic('alice:y')));
});

test('stream failures map to the HTTP status a proxy client expects', () => {
  const e = (r: number) => new StreamError('ALLIUM_STREAM_REFUSED', 'x', r);
  assert.equal(statusForStreamError(e(EndReason.EXITPOLICY)).status, 403);
  assert.equal(statusForStreamError(e(EndReason.CONNECTREFUSED)).status, 502);
  assert.equal(statusForStreamError(e(EndReason.TIMEOUT)).status, 504);
  assert.equal(statusForStreamError(new Error('no circuit')).status, 502);
  const onion = Object.assign(new Error('no store had a descriptor'), {
    code: 'ALLIUM_ONION_DESCRIPTOR_NOT_FOUND',
  });
  assert.deepEqual(statusForStreamError(onion), {
    status: 502,
    why: 'no store had a descriptor (ALLIUM_ONION_DESCRIPTOR_NOT_FOUND)',
  });
});

test('a bodiless request whose first path went silent is sent again once; a POST is not', async () => {
  const origin = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => res.end(`${req.method} ${req.url} ${body}`));
  });
  await new Promise<void>((r) => origin.listen(0, '127.0.0.1', () => r()));
  const originPort = (origin.address() as AddressInfo).port;
  let calls = 0;
  // The first stream never answers (the exit's silence, as the client reports it); later ones reach the origin.
  const silent = () =>
    new Duplex({
      read() {},
      write(_chunk, _enc, cb) {
        cb();
        setImmediate(() =>
          this.destroy(new StreamError('ALLIUM_STREAM_TIMEOUT', 'no answer', EndReason.TIMEOUT)),
        );
      },
    });
  const proxy = await HttpProxyServer.listen({
    host: '127.0.0.1',
    port: 0,
    connect: async (r) => {
      calls++;
      return calls % 2 === 1 ? silent() : net.connect(r.port, r.host);
    },
  });
  const ask = (method: string, body?: string) =>
    new Promise<{ status: number; text: string }>((resolve, reject) => {
      const q = http.request(
        {
          host: '127.0.0.1',
          port: proxy.port,
          method,
          path: `http://127.0.0.1:${originPort}/x`,
          agent: false,
        },
        (res) => {
          let text = '';
          res.on('data', (d) => (text += d));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
        },
      );
      q.on('error', reject);
      q.end(body);
    });
  try {
    const get = await ask('GET');
    assert.equal(get.status, 200);
    assert.equal(get.text, 'GET /x ');
    assert.equal(calls, 2, 'sent again on a second stream');
    const post = await ask('POST', 'once');
    assert.equal(post.status, 504, 'a request with a body is not sent twice');
    assert.equal(calls, 3);
  } finally {
    await proxy.close();
    origin.closeAllConnections();
    origin.close();
  }
});
