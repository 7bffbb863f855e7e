import assert from 'node:assert/strict';
import os from 'node:os';
import { describe, it } from 'node:test';
import { defaultStreamBufferBytes } from '../core/stream-buffers.js';
import { parseServiceTarget, serviceSettings } from './service-options.js';

const refused = (fn: () => unknown, code: string) =>
  assert.throws(fn, (err: { code?: string }) => err.code === code);

describe("the service's target", () => {
  it('takes host:port with an IPv4 or bracketed IPv6 address or a host name', () => {
    assert.deepEqual(parseServiceTarget('127.0.0.1:8080'), { host: '127.0.0.1', port: 8080 });
    assert.deepEqual(parseServiceTarget('[::1]:80'), { host: '::1', port: 80 });
    assert.deepEqual(parseServiceTarget('localhost:3000'), { host: 'localhost', port: 3000 });
  });

  it('refuses anything else with ALLIUM_SERVICE_TARGET', () => {
    for (const to of [
      '',
      '127.0.0.1',
      ':80',
      '127.0.0.1:0',
      '127.0.0.1:65536',
      '::1:80',
      '[nothing]:80',
      'a b:80',
      'http://x:80',
    ]) {
      refused(() => parseServiceTarget(to), 'ALLIUM_SERVICE_TARGET');
    }
  });
});

describe("the service's settings", () => {
  const base = { to: '127.0.0.1:8080', dataDir: '/tmp/x' };
  it('default to port 80, 3 introduction points, an hourly republish and an exit-sized buffer', () => {
    assert.deepEqual(serviceSettings(base), {
      target: { host: '127.0.0.1', port: 8080 },
      virtualPort: 80,
      introPoints: 3,
      republishIntervalMs: 3600_000,
      maxBufferBytes: defaultStreamBufferBytes(os.totalmem()),
    });
    assert.equal(serviceSettings({ ...base, maxBufferBytes: 1024 * 1024 }).maxBufferBytes, 1024 * 1024);
  });

  it('refuse out-of-range values', () => {
    refused(() => serviceSettings({ ...base, port: 0 }), 'ALLIUM_CLIENT_OPTIONS');
    refused(() => serviceSettings({ ...base, introPoints: 11 }), 'ALLIUM_CLIENT_OPTIONS');
    refused(() => serviceSettings({ ...base, introPoints: 0 }), 'ALLIUM_CLIENT_OPTIONS');
    refused(() => serviceSettings({ ...base, dataDir: '' }), 'ALLIUM_CLIENT_OPTIONS');
    refused(() => serviceSettings({ ...base, maxBufferBytes: 1000 }), 'ALLIUM_CLIENT_OPTIONS');
    refused(() => serviceSettings({ ...base, maxBufferBytes: 1.5e6 + 0.5 }), 'ALLIUM_CLIENT_OPTIONS');
  });
});
