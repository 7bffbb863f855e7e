// The exit's resolver against DNS servers on 127.0.0.1: names that never answer hold a bounded number
// of lookups (per circuit and in total) and never the libuv thread pool; localhost and hosts-file names
// need no query at all.
import assert from 'node:assert/strict';
import { pbkdf2 } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { StreamError } from '../src/core/stream-mux.js';
import { ExitResolver, parseHosts } from '../src/net/exit-resolver.js';
import { EndReason } from '../src/wire/constants.js';
import { type DnsServer, startDnsServer } from './helpers/dns-server.js';
import { tempDir } from './helpers/temp.js';

const hostsFile = join(tempDir('hosts'), 'hosts');
writeFileSync(
  hostsFile,
  '# test\n127.0.0.1 localhost web.internal\n::1 localhost ip6-localhost\nbogus line\n',
);

function busy(err: unknown): boolean {
  assert.ok(err instanceof StreamError, String(err));
  assert.equal(err.code, 'ALLIUM_EXIT_DNS_BUSY');
  assert.equal(err.endReason, EndReason.RESOURCELIMIT);
  return true;
}

describe('ExitResolver', () => {
  let dns: DnsServer;
  before(async () => {
    dns = await startDnsServer({
      answers: { 'bystander.test': '127.0.0.1' },
      silent: (name) => name.endsWith('.blackhole.test'),
    });
  });
  after(() => dns.close());

  const make = (over: Partial<ConstructorParameters<typeof ExitResolver>[0]> = {}) =>
    new ExitResolver({
      servers: [dns.address],
      timeoutMs: 1500,
      maxLookups: 64,
      maxLookupsPerCircuit: 8,
      hostsFile,
      ...over,
    });

  it('parses a hosts file, IPv4 first', () => {
    const h = parseHosts('::1 a\n10.0.0.1 a b # c\n# x\nnot-an-ip a\n');
    assert.deepEqual(h.get('a'), ['10.0.0.1', '::1']);
    assert.deepEqual(h.get('b'), ['10.0.0.1']);
    assert.equal(h.get('c'), undefined);
  });

  it('answers localhost, *.localhost and hosts-file names without a query', async () => {
    const r = make();
    const before = dns.stats.queries;
    assert.deepEqual(
      (await r.lookup('localhost', {})).map((a) => a.address),
      ['127.0.0.1', '::1'],
    );
    assert.deepEqual(
      (await r.lookup('WEB.internal.', {})).map((a) => a.address),
      ['127.0.0.1'],
    );
    assert.deepEqual(
      (await r.lookup('app.localhost', {})).map((a) => a.address),
      ['127.0.0.1', '::1'],
    );
    assert.equal(dns.stats.queries, before);
  });

  it('resolves through its DNS server; an unknown name fails', async () => {
    const r = make();
    assert.deepEqual(await r.lookup('bystander.test', {}), [{ address: '127.0.0.1', family: 4 }]);
    await assert.rejects(
      r.lookup('nowhere.test', {}),
      (err: NodeJS.ErrnoException) => err.code === 'ENOTFOUND',
    );
  });

  it('refuses lookups past the per-circuit and total limits, and frees them when they time out', async () => {
    const r = make({ maxLookups: 12, maxLookupsPerCircuit: 8 });
    const attacker = {};
    const stuck = Array.from({ length: 8 }, (_, i) =>
      r.lookup(`a${i}.blackhole.test`, attacker).catch((e) => e),
    );
    await assert.rejects(r.lookup('a8.blackhole.test', attacker), busy);
    // Another circuit still has its own allowance, up to the total.
    const other = {};
    const more = Array.from({ length: 4 }, (_, i) => r.lookup(`b${i}.blackhole.test`, other).catch((e) => e));
    await assert.rejects(r.lookup('b4.blackhole.test', {}), busy);
    assert.equal(r.pending, 12);
    assert.equal(r.refused, 2);
    for (const e of await Promise.all([...stuck, ...more])) {
      assert.ok(e instanceof Error && !(e instanceof StreamError), String(e));
    }
    assert.equal(r.pending, 0, 'every slot came back when c-ares gave up');
    assert.deepEqual(await r.lookup('bystander.test', attacker), [{ address: '127.0.0.1', family: 4 }]);
  });

  it('lookups that never answer leave the thread pool and other names alone', async () => {
    const r = make({ timeoutMs: 3000, maxLookups: 256, maxLookupsPerCircuit: 256 });
    const circuit = {};
    let settled = 0;
    const stuck = Array.from({ length: 64 }, (_, i) =>
      r.lookup(`c${i}.blackhole.test`, circuit).then(
        () => settled++,
        () => settled++,
      ),
    );
    // dns.lookup would have put these on libuv's four threads: work queued behind them would wait.
    await Promise.all(
      Array.from(
        { length: 8 },
        () =>
          new Promise<void>((resolve, reject) =>
            pbkdf2('x', 'y', 1, 32, 'sha256', (e) => (e ? reject(e) : resolve())),
          ),
      ),
    );
    assert.deepEqual(await r.lookup('bystander.test', {}), [{ address: '127.0.0.1', family: 4 }]);
    assert.equal(settled, 0, 'the thread pool and another name were served while all 64 were pending');
    assert.equal(r.pending, 64);
    await Promise.all(stuck);
    assert.ok(dns.stats.unanswered >= 64 * 2, 'A and AAAA for each name reached the server');
  });
});
