import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { makeTestRelay } from '../../test/helpers/relay-fixtures.js';
import { signDescriptor, signWithdraw } from '../core/documents.js';
import { DirectoryError } from './errors.js';
import { PUBLISHED_WINDOW_MS, Registry } from './registry.js';

const T0 = 1_700_000_000_000;

function code(fn: () => unknown, expected: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.equal((err as { code?: string }).code, expected, (err as Error).message);
    return true;
  });
}

function admit(reg: Registry, env: unknown, now: number) {
  const { envelope, descriptor } = reg.check(env, now);
  return reg.commit(envelope, descriptor, now);
}

describe('Registry', () => {
  it('lists, refreshes, and replaces a relay record', () => {
    const reg = new Registry(60_000);
    const r = makeTestRelay({ published: T0 });
    assert.equal(admit(reg, signDescriptor(r.identity, r.descriptor), T0), 'new');
    const v1 = reg.version;
    // Same listing, newer published: a refresh that does not change the consensus.
    assert.equal(
      admit(reg, signDescriptor(r.identity, { ...r.descriptor, published: T0 + 10 }), T0 + 10),
      'refreshed',
    );
    assert.equal(reg.version, v1);
    assert.equal(reg.get(r.descriptor.id, T0 + 10)?.lastSeen, T0 + 10);
    // Restarted relay: same identity, new port and onion key: the record is replaced, not duplicated.
    const moved = {
      ...r.descriptor,
      port: 9100,
      onionKey: makeTestRelay().descriptor.onionKey,
      published: T0 + 20,
    };
    assert.equal(admit(reg, signDescriptor(r.identity, moved), T0 + 20), 'changed');
    assert.ok(reg.version > v1);
    assert.equal(reg.live(T0 + 20).length, 1);
    assert.equal(reg.get(r.descriptor.id, T0 + 20)?.descriptor.port, 9100);
    assert.equal(reg.get(r.descriptor.id, T0 + 20)?.firstSeen, T0);
  });

  it('refuses an older descriptor than the one held, and one outside the clock window', () => {
    const reg = new Registry(60_000);
    const r = makeTestRelay({ published: T0 });
    admit(reg, signDescriptor(r.identity, r.descriptor), T0);
    code(
      () => admit(reg, signDescriptor(r.identity, { ...r.descriptor, published: T0 - 1 }), T0),
      'ALLIUM_DESCRIPTOR_OUTDATED',
    );
    code(
      () =>
        admit(
          reg,
          signDescriptor(r.identity, { ...r.descriptor, published: T0 + PUBLISHED_WINDOW_MS + 1 }),
          T0,
        ),
      'ALLIUM_DESCRIPTOR_CLOCK',
    );
    const fresh = makeTestRelay({ published: T0 - PUBLISHED_WINDOW_MS - 1 });
    code(() => admit(reg, signDescriptor(fresh.identity, fresh.descriptor), T0), 'ALLIUM_DESCRIPTOR_CLOCK');
    code(() => admit(reg, { nope: 1 }, T0), 'ALLIUM_ENVELOPE_INVALID');
  });

  it('expires relays not refreshed within the TTL', () => {
    const reg = new Registry(1000);
    const a = makeTestRelay({ published: T0 });
    const b = makeTestRelay({ published: T0 + 500 });
    admit(reg, signDescriptor(a.identity, a.descriptor), T0);
    admit(reg, signDescriptor(b.identity, b.descriptor), T0 + 500);
    assert.equal(reg.live(T0 + 999).length, 2);
    assert.equal(reg.live(T0 + 1000).length, 1);
    assert.equal(reg.get(a.descriptor.id, T0 + 1000), undefined);
    const v = reg.version;
    const dropped = reg.sweep(T0 + 1000);
    assert.deepEqual(
      dropped.map((r) => r.descriptor.id),
      [a.descriptor.id],
    );
    assert.ok(reg.version > v);
    assert.equal(reg.size, 1);
  });

  it('a relay that comes back after expiring (before any sweep) is new again', () => {
    const reg = new Registry(1000);
    const a = makeTestRelay({ published: T0 });
    admit(reg, signDescriptor(a.identity, a.descriptor), T0);
    const v = reg.version;
    const back = { ...a.descriptor, published: T0 + 5000 };
    assert.equal(admit(reg, signDescriptor(a.identity, back), T0 + 5000), 'new');
    assert.ok(reg.version > v);
    assert.equal(reg.get(a.descriptor.id, T0 + 5000)?.firstSeen, T0 + 5000);
  });

  it('withdraws on a signed request and refuses replays of older descriptors', () => {
    const reg = new Registry(60_000);
    const r = makeTestRelay({ published: T0 });
    const env = signDescriptor(r.identity, r.descriptor);
    admit(reg, env, T0);
    const id = r.descriptor.id;
    const other = makeTestRelay();
    code(
      () => reg.withdraw(id, signWithdraw(other.identity, { id: other.descriptor.id, published: T0 }), T0),
      'ALLIUM_WITHDRAW_SIGNATURE',
    );
    code(
      () => reg.withdraw(id, signWithdraw(r.identity, { id, published: T0 - 1 }), T0),
      'ALLIUM_WITHDRAW_OUTDATED',
    );
    code(
      () => reg.withdraw('00'.repeat(32), signWithdraw(r.identity, { id, published: T0 }), T0),
      'ALLIUM_RELAY_NOT_FOUND',
    );
    reg.withdraw(id, signWithdraw(r.identity, { id, published: T0 + 5 }), T0 + 5);
    assert.equal(reg.get(id, T0 + 5), undefined);
    // The captured registration cannot bring it back...
    code(() => admit(reg, env, T0 + 6), 'ALLIUM_DESCRIPTOR_OUTDATED');
    // ...but a fresh one can.
    assert.equal(
      admit(reg, signDescriptor(r.identity, { ...r.descriptor, published: T0 + 7 }), T0 + 7),
      'new',
    );
  });

  it('errors carry HTTP statuses', () => {
    const reg = new Registry(60_000);
    try {
      reg.withdraw('00'.repeat(32), {}, T0);
      assert.fail('no error');
    } catch (err) {
      assert.ok(err instanceof DirectoryError);
      assert.equal(err.status, 404);
    }
  });

  it('snapshot and load restore the same records', () => {
    const reg = new Registry(60_000);
    const r = makeTestRelay({ published: T0 });
    admit(reg, signDescriptor(r.identity, r.descriptor), T0);
    const snap = reg.snapshot();
    const again = new Registry(60_000);
    again.load({
      serial: 1,
      relays: snap.relays.map((s) => ({ ...s, descriptor: r.descriptor })),
      withdrawn: snap.withdrawn,
    });
    assert.deepEqual(again.live(T0 + 1), reg.live(T0 + 1));
  });
});
