// The listing limits of docs/directory-api.md (POST /v1/relays): relays per address, the consensus
// byte budget, normalised entries, and 5xx for the directory's own failures.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { makeTestRelay } from '../../test/helpers/relay-fixtures.js';
import { DocumentError, signDescriptor } from '../core/documents.js';
import { silentLogger } from '../log.js';
import type { RelayDescriptor } from '../wire/directory-docs.js';
import { consensusEntryBytes, normalizeDescriptor, selectWithinBudget } from './consensus.js';
import { serveDirectoryHttp } from './http.js';
import { Registry } from './registry.js';
import type { DirectoryService } from './service.js';

const T0 = 1_700_000_000_000;

function admit(reg: Registry, over: Partial<RelayDescriptor>, now: number, source?: string) {
  const r = makeTestRelay({ published: now, ...over });
  const env = signDescriptor(r.identity, r.descriptor);
  const { envelope, descriptor } = reg.check(env, now, source);
  return { result: reg.commit(envelope, descriptor, now, source), relay: r };
}

function refusedWith(fn: () => unknown, code: string, status: number): void {
  assert.throws(fn, (err: unknown) => {
    const e = err as { code?: string; status?: number; message: string };
    assert.equal(e.code, code, e.message);
    assert.equal(e.status, status);
    return true;
  });
}

describe('relays per address', () => {
  it('lists two relays per public address, refuses the third, and still refreshes the two', () => {
    const reg = new Registry(60_000);
    const a = admit(reg, { address: '198.51.100.7' }, T0).relay;
    admit(reg, { address: '198.51.100.7' }, T0);
    refusedWith(() => admit(reg, { address: '198.51.100.7' }, T0), 'ALLIUM_RELAY_ADDRESS_LIMIT', 403);
    // Another address is fine; so is a refresh of a listed relay.
    const b = admit(reg, { address: '198.51.100.8' }, T0).relay;
    const again = signDescriptor(a.identity, { ...a.descriptor, published: T0 + 5 });
    const checked = reg.check(again, T0 + 5);
    assert.equal(reg.commit(checked.envelope, checked.descriptor, T0 + 5), 'refreshed');
    // Moving a listed relay onto the full address is refused too.
    const moved = signDescriptor(b.identity, { ...b.descriptor, address: '198.51.100.7', published: T0 + 6 });
    refusedWith(() => reg.check(moved, T0 + 6), 'ALLIUM_RELAY_ADDRESS_LIMIT', 403);
    // IPv6 counts per /64.
    admit(reg, { address: '2001:db8:1:2::1' }, T0);
    admit(reg, { address: '2001:db8:1:2::2' }, T0);
    refusedWith(() => admit(reg, { address: '2001:db8:1:2:ffff::3' }, T0), 'ALLIUM_RELAY_ADDRESS_LIMIT', 403);
  });

  it('counts the registering address too: one host cannot list many relays that claim other addresses', () => {
    const reg = new Registry(60_000, { maxRelaysPerLocalAddress: 3 });
    for (let i = 0; i < 3; i++) admit(reg, { address: `203.0.113.${i + 1}` }, T0, '127.0.0.1');
    refusedWith(
      () => admit(reg, { address: '203.0.113.99' }, T0, '127.0.0.1'),
      'ALLIUM_RELAY_ADDRESS_LIMIT',
      403,
    );
    // Every loopback address is this one machine: 127.0.0.2 and ::1 count with 127.0.0.1. Loopback
    // has the local limit (3 here), not the public one (2), and expired relays free their place.
    refusedWith(
      () => admit(reg, { address: '203.0.113.98' }, T0 + 30_000, '127.0.0.2'),
      'ALLIUM_RELAY_ADDRESS_LIMIT',
      403,
    );
    refusedWith(
      () => admit(reg, { address: '203.0.113.99' }, T0 + 30_000, '::1'),
      'ALLIUM_RELAY_ADDRESS_LIMIT',
      403,
    );
    reg.sweep(T0 + 60_000);
    admit(reg, { address: '203.0.113.99' }, T0 + 60_000, '127.0.0.1');
  });

  it('lets a test network of 32 relays register on loopback by default, and no more', () => {
    const reg = new Registry(60_000);
    for (let i = 0; i < 32; i++) admit(reg, { address: '127.0.0.1', port: 9000 + i }, T0, '127.0.0.1');
    refusedWith(
      () => admit(reg, { address: '127.0.0.1' }, T0, '127.0.0.1'),
      'ALLIUM_RELAY_ADDRESS_LIMIT',
      403,
    );
  });
});

describe('the consensus budget', () => {
  it('refuses new relays with 503 once the listed entries would pass it; refreshes still pass', () => {
    const one = consensusEntryBytes(normalizeDescriptor(makeTestRelay().descriptor));
    const reg = new Registry(60_000, { relaysBudget: 3 * one + 10, maxRelaysPerLocalAddress: 100 });
    const first = admit(reg, {}, T0).relay;
    admit(reg, {}, T0);
    admit(reg, {}, T0);
    refusedWith(() => admit(reg, {}, T0), 'ALLIUM_DIRECTORY_FULL', 503);
    assert.ok(reg.bytes <= reg.relaysBudget);
    const again = signDescriptor(first.identity, { ...first.descriptor, published: T0 + 1 });
    const c = reg.check(again, T0 + 1);
    assert.equal(reg.commit(c.envelope, c.descriptor, T0 + 1), 'refreshed');
    // A relay leaving makes room.
    reg.sweep(T0 + 60_000);
    admit(reg, {}, T0 + 60_000);
  });

  it('an over-budget set keeps the longest-listed relays, in id order, up to the first that does not fit', () => {
    const relays = Array.from({ length: 6 }, (_, i) => ({
      descriptor: makeTestRelay().descriptor,
      firstSeen: T0 + (i % 3) * 1000,
      entryBytes: 100,
    }));
    const { listed, dropped } = selectWithinBudget(relays, 350);
    assert.equal(listed.length, 3);
    assert.equal(dropped.length, 3);
    const byAge = [...relays].sort(
      (a, b) => a.firstSeen - b.firstSeen || (a.descriptor.id < b.descriptor.id ? -1 : 1),
    );
    assert.deepEqual(
      new Set(listed.map((r) => r.descriptor.id)),
      new Set(byAge.slice(0, 3).map((r) => r.descriptor.id)),
    );
    assert.deepEqual(
      listed.map((r) => r.descriptor.id),
      listed.map((r) => r.descriptor.id).sort(),
    );
    assert.equal(selectWithinBudget(relays, 600).dropped.length, 0);
  });
});

describe('normalised entries', () => {
  it('drops comments and blank lines, writes rules canonically, and dedupes the family', () => {
    const d = makeTestRelay({
      exitPolicy: ['# a comment the parser skips', '', '  accept   10.1.2.3/8:80 ', 'reject *:*'],
    }).descriptor;
    const other = makeTestRelay().descriptor.id;
    const n = normalizeDescriptor({ ...d, family: [other, d.id, other] });
    assert.deepEqual(n.exitPolicy, ['accept 10.0.0.0/8:80', 'reject *:*']);
    assert.deepEqual(n.family, [other]);
    assert.ok(consensusEntryBytes(n) < consensusEntryBytes({ ...d, family: [other, d.id, other] }));
  });

  it('a change to comments only is a refresh, not a new consensus', () => {
    const reg = new Registry(60_000);
    const r = admit(reg, { exitPolicy: ['reject *:*'] }, T0).relay;
    const v = reg.version;
    const env = signDescriptor(r.identity, {
      ...r.descriptor,
      exitPolicy: ['# now with a comment', 'reject *:*'],
      published: T0 + 1,
    });
    const c = reg.check(env, T0 + 1);
    assert.equal(reg.commit(c.envelope, c.descriptor, T0 + 1), 'refreshed');
    assert.equal(reg.version, v);
    assert.deepEqual(reg.get(r.descriptor.id, T0 + 1)?.descriptor.exitPolicy, ['reject *:*']);
  });
});

describe('errors of the directory itself', () => {
  it('a consensus that cannot be signed is a 500, not the client fault it used to be reported as', async () => {
    const service = {
      consensusJson: () => {
        throw new DocumentError('ALLIUM_CONSENSUS_INVALID', 'consensus exceeds the 33554432-byte limit');
      },
    } as unknown as DirectoryService;
    const server = await serveDirectoryHttp(service, silentLogger, { host: '127.0.0.1', port: 0 });
    try {
      const res = await fetch(`${server.url}v1/consensus`);
      assert.equal(res.status, 500);
      assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'ALLIUM_INTERNAL');
    } finally {
      await server.close();
    }
  });
});
