import assert from 'node:assert/strict';
import { test } from 'node:test';
import { StreamError } from '../core/stream-mux.js';
import { EndReason } from '../wire/constants.js';
import { isolationFromAuth, parseAuthority, statusForStreamError } from './http-proxy-server.js';

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
  const e = (r: number) => new StreamError('X', 'x', r);
  assert.equal(statusForStreamError(e(EndReason.EXITPOLICY)).status, 403);
  assert.equal(statusForStreamError(e(EndReason.CONNECTREFUSED)).status, 502);
  assert.equal(statusForStreamError(e(EndReason.TIMEOUT)).status, 504);
  assert.equal(statusForStreamError(new Error('no circuit')).status, 502);
});
