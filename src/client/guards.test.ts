import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { listedRelay } from '../../test/helpers/relay-fixtures.js';
import { choosePath, subnetKey } from '../core/path-selection.js';
import { randomFraction } from '../crypto/random.js';
import type { ConsensusRelay } from '../wire/directory-docs.js';
import {
  DEFAULT_GUARD_LIFETIME_MS,
  DEFAULT_GUARD_UNLISTED_MS,
  dropGuard,
  emptyGuards,
  GUARDS_FILE,
  GuardError,
  guardIds,
  loadGuards,
  saveGuards,
  updateGuards,
} from './guards.js';

function relay(n: number, over: Partial<ConsensusRelay> = {}): ConsensusRelay {
  const exit = n <= 2 ? { exitPolicy: ['accept *:*'], flags: ['Running', 'Exit'] } : {};
  return listedRelay(n, { ...exit, ...over });
}
const consensus = Array.from({ length: 10 }, (_, i) => relay(i + 1));
const T0 = 1_700_000_000_000;

const dirs: string[] = [];
async function dataDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'allium-guards-'));
  dirs.push(d);
  return d;
}
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('entry guards', () => {
  it('picks two running non-exit guards in different subnets', () => {
    for (let i = 0; i < 30; i++) {
      const { state, changed } = updateGuards(emptyGuards(), consensus, { now: T0 });
      assert.ok(changed);
      assert.equal(state.guards.length, 2);
      const rs = state.guards.map((g) => consensus.find((r) => r.id === g.id) as ConsensusRelay);
      assert.ok(rs.every((r) => !r.flags.includes('Exit')));
      assert.notEqual(subnetKey(rs[0].address), subnetKey(rs[1].address));
    }
  });

  it('keeps the same guards across a restart (saved 0600, loaded, updated with the same consensus)', async () => {
    const dir = await dataDir();
    assert.deepEqual(await loadGuards(dir), emptyGuards());
    const first = updateGuards(emptyGuards(), consensus, { now: T0 }).state;
    await saveGuards(dir, first);
    assert.equal((await stat(join(dir, GUARDS_FILE))).mode & 0o777, 0o600);
    const loaded = await loadGuards(dir);
    assert.deepEqual(loaded, first);
    const again = updateGuards(loaded, consensus, { now: T0 + 3600_000 });
    assert.equal(again.changed, false);
    assert.deepEqual(guardIds(again.state), guardIds(first));
    // Every path of the restarted client enters through its first guard.
    for (let i = 0; i < 20; i++) {
      assert.equal(
        choosePath(consensus, { length: 3, random: randomFraction, guards: guardIds(again.state) })[0].id,
        guardIds(first)[0],
      );
    }
  });

  it('waits for a guard that left the consensus, then replaces it after a week', () => {
    const start = updateGuards(emptyGuards(), consensus, { now: T0 }).state;
    const [g1, g2] = guardIds(start);
    const without = consensus.filter((r) => r.id !== g1);
    const day1 = updateGuards(start, without, { now: T0 + 24 * 3600_000 });
    assert.ok(day1.changed);
    // g1 is kept (waiting) and a stand-in is added so two guards run.
    assert.deepEqual(guardIds(day1.state).slice(0, 2), [g1, g2]);
    assert.equal(day1.state.guards.length, 3);
    // g1 returns: it is first again, and paths use it.
    const back = updateGuards(day1.state, consensus, { now: T0 + 2 * 24 * 3600_000 }).state;
    assert.equal(guardIds(back)[0], g1);
    assert.equal(
      choosePath(consensus, { length: 3, random: randomFraction, guards: guardIds(back) })[0].id,
      g1,
    );
    // Gone for longer than a week: dropped.
    const gone = updateGuards(day1.state, without, { now: T0 + 24 * 3600_000 + DEFAULT_GUARD_UNLISTED_MS });
    assert.ok(!guardIds(gone.state).includes(g1));
  });

  it('never picks a relay of a release before 0.5.0 (older cell crypto) as a guard', () => {
    const mixed = consensus.map((r, i) => (i % 2 === 0 ? { ...r, version: 'allium/0.4.1' } : r));
    for (let seed = 0; seed < 20; seed++) {
      let a = seed + 1;
      const random = () => {
        a = (a * 16807) % 2147483647;
        return a / 2147483647;
      };
      const { state } = updateGuards(emptyGuards(), mixed, { now: T0, random });
      const byId = new Map(mixed.map((r) => [r.id, r]));
      assert.ok(state.guards.length > 0);
      for (const g of state.guards) assert.equal(byId.get(g.id)!.version, 'allium/0.5.0');
    }
  });

  it('rotates guards after their lifetime', () => {
    const start = updateGuards(emptyGuards(), consensus, { now: T0 }).state;
    const later = updateGuards(start, consensus, { now: T0 + 1.5 * DEFAULT_GUARD_LIFETIME_MS + 1 });
    assert.ok(later.changed);
    for (const g of later.state.guards) assert.equal(g.addedAt, T0 + 1.5 * DEFAULT_GUARD_LIFETIME_MS + 1);
  });

  it('refuses a guard file it did not write, saying how to start over', async () => {
    const dir = await dataDir();
    for (const text of ['not json', '{"version":2,"guards":[]}', '{"version":1,"guards":[{"id":"xyz"}]}']) {
      await writeFile(join(dir, GUARDS_FILE), text);
      await assert.rejects(loadGuards(dir), (err: unknown) => {
        assert.ok(err instanceof GuardError);
        assert.equal(err.code, 'ALLIUM_GUARDS_CORRUPT');
        assert.match(err.message, /delete it to choose new entry guards/);
        return true;
      });
    }
    const saved = await readFile(join(dir, GUARDS_FILE), 'utf8');
    assert.ok(saved.includes('xyz'), 'the bad file is left for the user to look at');
  });
});

describe('guards dropped for path bias', () => {
  it('replaces a dropped guard and does not choose it again until its time is up', () => {
    const first = updateGuards(emptyGuards(), consensus, { now: T0, random: () => 0 }).state;
    const bad = first.guards[0].id;
    const dropped = dropGuard(first, bad, T0, 1000);
    assert.ok(!guardIds(dropped).includes(bad));
    // Choosing with the same (lowest) random draw would pick it first again; it is passed over.
    const next = updateGuards(dropped, consensus, { now: T0 + 1, random: () => 0 });
    assert.equal(next.state.guards.length, first.guards.length);
    assert.ok(!guardIds(next.state).includes(bad));
    assert.deepEqual(
      next.state.dropped?.map((d) => d.id),
      [bad],
    );
    // Once its time is up the record goes (it may be chosen again, as any relay).
    const later = updateGuards(next.state, consensus, { now: T0 + 2000, random: () => 0 });
    assert.equal(later.state.dropped, undefined);
    assert.equal(later.changed, true);
  });

  it('keeps the dropped list across a save and load, and refuses a malformed one', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'allium-guards-'));
    dirs.push(dir);
    const state = dropGuard(updateGuards(emptyGuards(), consensus, { now: T0 }).state, relay(5).id, T0);
    await saveGuards(dir, state);
    assert.deepEqual(await loadGuards(dir), state);
    await writeFile(join(dir, GUARDS_FILE), JSON.stringify({ ...state, dropped: [{ id: 'x', until: 1 }] }));
    await assert.rejects(loadGuards(dir), { code: 'ALLIUM_GUARDS_CORRUPT' });
  });
});
