// DirectoryService without HTTP: registration (new, refreshed, changed; the reachability check only
// for a relay that is new or moved), withdrawal, the signed consensus and when it is rebuilt, expiry,
// and the state it saves. A clock the test moves; the state in a temporary directory.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { makeTestRelay, type TestRelay } from '../../test/helpers/relay-fixtures.js';
import { openConsensusJson, signDescriptor, signWithdraw } from '../core/documents.js';
import { IdentityKey } from '../crypto/keys.js';
import { silentLogger } from '../log.js';
import type { RelayDescriptor } from '../wire/directory-docs.js';
import { Registry } from './registry.js';
import { DirectoryService } from './service.js';
import { DirectoryStore } from './store.js';

const T0 = 1_900_000_000_000;
const TTL = 60_000;
const FRESH = 10_000;
const VALID = 3_600_000;

const dirs: string[] = [];
const services: DirectoryService[] = [];
after(async () => {
  // Saves still pending would write into a directory being removed.
  for (const s of services) await s.flush();
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function makeService(opts: { check?: (d: RelayDescriptor) => Promise<void>; dataDir?: string } = {}) {
  const dataDir = opts.dataDir ?? (await mkdtemp(join(tmpdir(), 'allium-service-')));
  if (!opts.dataDir) dirs.push(dataDir);
  const store = new DirectoryStore(dataDir);
  await store.init();
  const { key } = await store.loadOrCreateKey();
  const state = await store.loadState();
  const registry = new Registry(TTL);
  registry.load(state);
  const clock = { now: T0 };
  const checked: string[] = [];
  const service = new DirectoryService({
    key,
    registry,
    store,
    serial: state.serial,
    logger: silentLogger,
    freshMs: FRESH,
    validMs: VALID,
    saveDelayMs: 10,
    now: () => clock.now,
    reachabilityCheck: async (d) => {
      checked.push(d.id);
      await opts.check?.(d);
    },
  });
  services.push(service);
  /** The consensus as a client reads it: signature checked against the directory's key, at the clock. */
  const consensus = () =>
    openConsensusJson(JSON.parse(service.consensusJson()), key.publicKey, { now: clock.now });
  return { service, clock, checked, consensus, dataDir, key };
}

/** A relay's signed descriptor published at `at`, with changes. */
function signed(r: TestRelay, at: number, changes: Partial<RelayDescriptor> = {}) {
  return signDescriptor(r.identity, { ...r.descriptor, published: at, ...changes });
}

const relayAt = (at = T0) => makeTestRelay({ published: at });

describe('DirectoryService', () => {
  it('lists a new relay after checking it, refreshes it without checking again, and checks a move', async () => {
    const { service, clock, checked, consensus } = await makeService();
    const r = relayAt();
    assert.deepEqual(await service.register(signed(r, T0)), { id: r.descriptor.id, result: 'new' });
    assert.deepEqual(checked, [r.descriptor.id], 'a new relay is checked before it is listed');
    assert.deepEqual(
      consensus().relays.map((x) => x.id),
      [r.descriptor.id],
    );
    clock.now += 1000;
    assert.equal((await service.register(signed(r, clock.now))).result, 'refreshed');
    assert.equal(checked.length, 1, 'a refresh at the same address is not checked again');
    clock.now += 1000;
    assert.equal((await service.register(signed(r, clock.now, { port: 9002 }))).result, 'changed');
    assert.equal(checked.length, 2, 'a relay that moved is checked again');
    clock.now += 1000;
    const newKey = makeTestRelay().descriptor.onionKey;
    assert.equal(
      (await service.register(signed(r, clock.now, { port: 9002, onionKey: newKey }))).result,
      'changed',
    );
    assert.equal(checked.length, 3, 'a new onion key is checked again');
    assert.deepEqual(service.stats.registrations, { new: 1, changed: 2, refreshed: 1, unreachable: 0 });
    assert.equal(service.relay(r.descriptor.id)?.port, 9002);
  });

  it('does not list a relay that fails the reachability check, and says why', async () => {
    const { service, consensus } = await makeService({
      check: async () => {
        throw new Error('connection refused');
      },
    });
    const r = relayAt();
    await assert.rejects(service.register(signed(r, T0)), (e: Error & { code: string; status?: number }) => {
      assert.equal(e.code, 'ALLIUM_RELAY_UNREACHABLE');
      assert.match(e.message, /connection refused/);
      return true;
    });
    assert.equal(service.relay(r.descriptor.id), undefined);
    assert.deepEqual(consensus().relays, []);
    assert.equal(service.stats.registrations.unreachable, 1);
  });

  it('refuses a relay of a release older than the cells it must read', async () => {
    const { service, checked } = await makeService();
    const r = relayAt();
    await assert.rejects(service.register(signed(r, T0, { version: 'allium/0.4.0' })), {
      code: 'ALLIUM_RELAY_VERSION',
    });
    assert.deepEqual(checked, [], 'refused before anything was dialled');
  });

  it('serves one cached consensus until the listed relays change or it passes freshUntil', async () => {
    const { service, clock, consensus } = await makeService();
    const a = relayAt();
    await service.register(signed(a, T0));
    const first = service.current();
    assert.equal(service.current(), first, 'nothing changed: the same signed document');
    clock.now += 1000;
    await service.register(signed(a, clock.now)); // a refresh lists nothing new
    assert.equal(service.current(), first);
    const b = relayAt(clock.now);
    await service.register(signed(b, clock.now));
    const second = service.current();
    assert.notEqual(second, first);
    assert.ok(second.consensus.serial > first.consensus.serial, 'a higher serial');
    assert.equal(consensus().relays.length, 2);
    clock.now = second.consensus.freshUntil;
    const third = service.current();
    assert.notEqual(third, second, 'rebuilt once it is no longer fresh');
    assert.ok(third.consensus.serial > second.consensus.serial);
    assert.equal(third.consensus.validUntil - third.consensus.validAfter, VALID);
  });

  it('drops a relay not refreshed within the TTL from the consensus', async () => {
    const { service, clock, consensus } = await makeService();
    const stays = relayAt();
    const goes = relayAt();
    await service.register(signed(stays, T0));
    await service.register(signed(goes, T0));
    assert.equal(consensus().relays.length, 2);
    clock.now = T0 + TTL / 2;
    await service.register(signed(stays, clock.now));
    clock.now = T0 + TTL + 1;
    assert.deepEqual(
      consensus().relays.map((r) => r.id),
      [stays.descriptor.id],
    );
    assert.equal(service.relay(goes.descriptor.id), undefined);
  });

  it('withdraws a relay on its signed request, and refuses the descriptor it withdrew', async () => {
    const { service, clock, consensus } = await makeService();
    const r = relayAt();
    await service.register(signed(r, T0));
    clock.now += 1000;
    await service.withdraw(
      r.descriptor.id,
      signWithdraw(r.identity, { id: r.descriptor.id, published: clock.now }),
    );
    assert.deepEqual(consensus().relays, []);
    await assert.rejects(service.register(signed(r, T0)), { code: 'ALLIUM_DESCRIPTOR_OUTDATED' });
    // Someone else's signature does not withdraw a relay.
    const other = relayAt(clock.now);
    await service.register(signed(other, clock.now));
    const stranger = IdentityKey.generate();
    await assert.rejects(
      service.withdraw(
        other.descriptor.id,
        signWithdraw(stranger, { id: stranger.id.toString('hex'), published: clock.now }),
      ),
    );
    assert.equal(consensus().relays.length, 1);
  });

  it('saves what it lists: a new service on the same data directory lists the same relays, with a higher serial', async () => {
    const first = await makeService();
    const r = relayAt();
    await first.service.register(signed(r, T0));
    const serial = first.service.current().consensus.serial;
    await first.service.flush();
    const again = await makeService({ dataDir: first.dataDir });
    assert.deepEqual(again.key.publicKey, first.key.publicKey, 'the same directory key');
    assert.deepEqual(
      again.consensus().relays.map((x) => x.id),
      [r.descriptor.id],
    );
    assert.ok(again.service.current().consensus.serial > serial, 'never an older serial after a restart');
  });
});
