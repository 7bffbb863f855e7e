// A single directory's onion fields (§8.3): the current period's ring value, the next one's from its
// reveal on, values from the CSPRNG that never change once published (not across a restart either),
// and listedSince kept per relay id. A clock the test moves; the state in a temporary directory.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { makeTestRelay, type TestRelay } from '../../test/helpers/relay-fixtures.js';
import { openConsensusJson, signDescriptor, signWithdraw } from '../core/documents.js';
import { periodAt, periodStartMs, ringValueRevealMs } from '../core/onion-period.js';
import { randomBytes } from '../crypto/keys.js';
import { silentLogger } from '../log.js';
import { Registry } from './registry.js';
import { RingValues, TEST_NETWORK_ONION_SETTINGS } from './ring-values.js';
import { DirectoryService } from './service.js';
import { DirectoryStore } from './store.js';

const LEN = 600;
const P0 = periodAt(1_900_000_000_000, LEN);
// A minute into a period: the next period's reveal is 7.5 minutes on.
const T0 = periodStartMs(P0) + 60_000;
const NEXT = { number: P0.number + 1, length: LEN };
const REVEAL = ringValueRevealMs(NEXT);
const TTL = 60_000;

const dirs: string[] = [];
const services: DirectoryService[] = [];
after(async () => {
  for (const s of services) await s.flush();
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

/** A service as Directory.start makes one, over `dataDir`, with a clock and a random source the test holds. */
async function makeService(opts: { dataDir?: string; at?: number; onlyListedBeforeReveal?: boolean } = {}) {
  const dataDir = opts.dataDir ?? (await mkdtemp(join(tmpdir(), 'allium-ring-')));
  if (!opts.dataDir) dirs.push(dataDir);
  const store = new DirectoryStore(dataDir);
  await store.init();
  const { key } = await store.loadOrCreateKey();
  const state = await store.loadState();
  const registry = new Registry(TTL);
  registry.load(state);
  const drawn: Buffer[] = [];
  const ring = new RingValues(
    { periodSeconds: LEN, onlyListedBeforeReveal: opts.onlyListedBeforeReveal ?? true },
    (n) => {
      const b = randomBytes(n);
      drawn.push(b);
      return b;
    },
  );
  ring.load(state.onion);
  const clock = { now: opts.at ?? T0 };
  const service = new DirectoryService({
    key,
    registry,
    ring,
    store,
    serial: state.serial,
    logger: silentLogger,
    freshMs: 10_000,
    validMs: 3_600_000,
    saveDelayMs: 10,
    now: () => clock.now,
  });
  services.push(service);
  await service.prepareRingValues();
  const consensus = () =>
    openConsensusJson(JSON.parse(service.consensusJson()), key.publicKey, { now: clock.now });
  return { service, clock, consensus, drawn, dataDir };
}

const signed = (r: TestRelay, at: number) => signDescriptor(r.identity, { ...r.descriptor, published: at });
const values = (c: ReturnType<Awaited<ReturnType<typeof makeService>>['consensus']>) =>
  Object.fromEntries((c.onion?.ringValues ?? []).map((v) => [v.period, v.value]));

describe("a single directory's onion fields (§8.3)", () => {
  it("publishes the current period's value, the next one's from its reveal on, each drawn from the CSPRNG", async () => {
    const { clock, consensus, drawn } = await makeService();
    assert.equal(
      new RingValues(TEST_NETWORK_ONION_SETTINGS).random,
      randomBytes,
      'the default source is the CSPRNG',
    );
    const b64 = drawn.map((b) => b.toString('base64'));
    assert.equal(drawn.length, 2, 'this period and the next are drawn (and saved) ahead');
    const first = consensus();
    assert.deepEqual(first.onion, {
      periodSeconds: LEN,
      ringValues: [{ period: P0.number, value: b64[0] }],
      onlyListedBeforeReveal: true,
    });
    clock.now = REVEAL - 1;
    assert.deepEqual(values(consensus()), { [P0.number]: b64[0] }, 'not a millisecond before the reveal');
    clock.now = REVEAL;
    assert.deepEqual(values(consensus()), { [P0.number]: b64[0], [NEXT.number]: b64[1] });
    clock.now = periodStartMs(NEXT) + 1;
    assert.deepEqual(values(consensus()), { [NEXT.number]: b64[1] }, "the next period's value, unchanged");
    assert.equal(drawn.length, 3, 'the period after it is drawn ahead, and not published yet');
  });

  it('a value once published never changes, through many rebuilds and periods (bounded walk)', async () => {
    const { clock, consensus, service } = await makeService();
    const seen = new Map<number, string>();
    const r = makeTestRelay({ published: T0 });
    await service.register(signed(r, T0));
    for (let step = 0; step < 200; step++) {
      clock.now = T0 + step * 17_000;
      if (step % 3 === 0) await service.register(signed(r, clock.now));
      const c = consensus();
      const p = periodAt(c.validAfter, LEN);
      const v = values(c);
      assert.ok(v[p.number], "the current period's value is always there");
      assert.ok(Object.keys(v).length <= 2);
      for (const [period, value] of Object.entries(v)) {
        const before = seen.get(Number(period));
        if (before !== undefined) assert.equal(value, before, `period ${period} changed its value`);
        seen.set(Number(period), value);
      }
    }
    assert.ok(seen.size >= 5, 'the walk crossed several periods');
  });

  it('after a restart publishes the same values and listedSince', async () => {
    const a = await makeService();
    const r = makeTestRelay({ published: T0 });
    await a.service.register(signed(r, T0));
    const before = a.consensus();
    assert.equal(before.relays[0].listedSince, T0);
    // Values are saved when drawn, before any consensus shows them: nothing else needs flushing.
    const b = await makeService({ dataDir: a.dataDir, at: REVEAL });
    await b.service.register(signed(r, REVEAL));
    const after = b.consensus();
    assert.equal(b.drawn.length, 0, 'nothing drawn anew');
    assert.equal(values(after)[P0.number], values(before)[P0.number]);
    assert.equal(values(after)[NEXT.number], a.drawn[1].toString('base64'));
    assert.equal(after.relays[0].listedSince, T0, 'listedSince survives the restart');
  });

  it('a relay that leaves and comes back keeps its listedSince; a new relay gets the time it was listed', async () => {
    const { service, clock, consensus } = await makeService();
    const r = makeTestRelay({ published: T0 });
    await service.register(signed(r, T0));
    // It withdraws, then comes back.
    clock.now = T0 + 1000;
    await service.withdraw(
      r.descriptor.id,
      signWithdraw(r.identity, { id: r.descriptor.id, published: clock.now }),
    );
    clock.now = T0 + 2000;
    await service.register(signed(r, clock.now));
    // It goes silent past its TTL (swept), then comes back.
    clock.now = T0 + 2000 + TTL + 1;
    service.sweep();
    const late = makeTestRelay({ published: clock.now });
    await service.register(signed(late, clock.now));
    await service.register(signed(r, clock.now));
    const byId = new Map(consensus().relays.map((x) => [x.id, x.listedSince]));
    assert.equal(byId.get(r.descriptor.id), T0);
    assert.equal(byId.get(late.descriptor.id), clock.now);
  });
});
