import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { makeTestRelay } from '../../test/helpers/relay-fixtures.js';
import { openSignedConsensus } from '../core/authority-documents.js';
import { signDescriptor } from '../core/documents.js';
import { consensusPeriod, storesFor } from '../core/onion-ring.js';
import { FETCH_SPREAD } from '../core/onion-stores.js';
import { DirectoryClient } from '../net/directory-client.js';
import type { AuthorityConsensus, AuthoritySet } from '../wire/authority-docs.js';
import { Directory } from './directory.js';
import { TEST_NETWORK_ONION_SETTINGS } from './ring-values.js';
import { DirectoryStore } from './store.js';

const INTERVAL_MS = 1000;
const dirs: string[] = [];
after(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

/** Data directories with keys made, and the set naming them. */
async function makeAuthorities(
  n: number,
): Promise<{ set: AuthoritySet; dataDirs: string[]; ports: number[] }> {
  const dataDirs: string[] = [];
  const ports: number[] = [];
  const set: AuthoritySet = { authorities: [] };
  for (let i = 0; i < n; i++) {
    const dataDir = await mkdtemp(join(tmpdir(), 'allium-auth-test-'));
    dirs.push(dataDir);
    const store = new DirectoryStore(dataDir);
    await store.init();
    const { key } = await store.loadOrCreateKey();
    const port = await freePort();
    dataDirs.push(dataDir);
    ports.push(port);
    set.authorities.push({
      nickname: `auth${i + 1}`,
      id: key.id.toString('hex'),
      identityKey: key.publicKey.toString('base64'),
      url: `http://127.0.0.1:${port}`,
    });
  }
  return { set, dataDirs, ports };
}

function startAuthority(set: AuthoritySet, dataDir: string, port: number): Promise<Directory> {
  return Directory.start({
    dataDir,
    port,
    reachabilityCheck: false,
    authorities: set,
    votingIntervalMs: INTERVAL_MS,
    onionPeriodSeconds: TEST_NETWORK_ONION_SETTINGS.periodSeconds,
    onionOnlyListedBeforeReveal: TEST_NETWORK_ONION_SETTINGS.onlyListedBeforeReveal,
  });
}

const relays = Array.from({ length: 4 }, (_, i) => makeTestRelay({ nickname: `honest${i}`, port: 9100 + i }));

async function registerAll(dir: Directory, which = relays): Promise<void> {
  const c = new DirectoryClient({ url: dir.url, timeoutMs: 5000 });
  for (const r of which) {
    await c.register(signDescriptor(r.identity, { ...r.descriptor, published: Date.now() }));
  }
}

async function fetchJson(url: string): Promise<unknown> {
  const res = await fetch(url);
  return res.status === 200 ? res.json() : null;
}

/** Polls an authority until it serves a consensus `ok` accepts; returns it with its signers. */
async function waitForConsensus(
  dir: Directory,
  set: AuthoritySet,
  ok: (c: AuthorityConsensus, signers: string[]) => boolean,
  timeoutMs = 15_000,
): Promise<{ consensus: AuthorityConsensus; signers: string[]; json: unknown }> {
  const deadline = Date.now() + timeoutMs;
  let last = 'nothing served';
  while (Date.now() < deadline) {
    const json = await fetchJson(`${dir.url}/v1/consensus`);
    if (json) {
      try {
        const { consensus, signers } = openSignedConsensus(json, set);
        if (ok(consensus, signers)) return { consensus, signers, json };
        last = `serial ${consensus.serial}: ${consensus.relays.length} relays, ${signers.length} signatures`;
      } catch (err) {
        last = (err as Error).message;
      }
    }
    await sleep(100);
  }
  throw new Error(`no such consensus in ${timeoutMs} ms; last: ${last}`);
}

describe('directory authorities (in one process, over real HTTP)', () => {
  it('three authorities: every one serves the same consensus, signed by all three; relays only one lists are left out', async () => {
    const { set, dataDirs, ports } = await makeAuthorities(3);
    const auths = await Promise.all(dataDirs.map((d, i) => startAuthority(set, d, ports[i])));
    try {
      for (const a of auths) await registerAll(a);
      // The third authority also lists relays nobody else has seen (a hostile authority's own).
      const own = Array.from({ length: 10 }, (_, i) =>
        makeTestRelay({ nickname: `mine${i}`, port: 9200 + i }),
      );
      await registerAll(auths[2], own);
      const got = await waitForConsensus(auths[0], set, (c, s) => c.relays.length >= 4 && s.length === 3);
      assert.deepEqual(
        got.consensus.relays.map((r) => r.id).sort(),
        relays.map((r) => r.descriptor.id).sort(),
        'exactly the relays a majority voted for',
      );
      assert.deepEqual(got.consensus.authorities, set.authorities.map((a) => a.id).sort());
      for (const a of auths.slice(1)) {
        const other = await waitForConsensus(a, set, (c) => c.serial >= got.consensus.serial);
        if (other.consensus.serial === got.consensus.serial) {
          assert.equal((other.json as { body: string }).body, (got.json as { body: string }).body);
        }
      }
      // The honest authorities' pages say where the third one's vote differs (bounded wait: the
      // current period's consensus may still be forming).
      let page = '';
      for (let i = 0; i < 50 && !/10 of its relays not in the consensus/.test(page); i++) {
        page = await (await fetch(`${auths[0].url}/`)).text();
        if (!/10 of its relays not in the consensus/.test(page)) await sleep(100);
      }
      assert.match(page, /10 of its relays not in the consensus \(fewer than 2 authorities voted for them\)/);
      assert.match(page, /<table id="authorities">/);
      for (const a of set.authorities) assert.match(page, new RegExp(`data-authority-id="${a.id}"`));
    } finally {
      await Promise.all(auths.map((a) => a.stop()));
    }
  });

  it('three authorities serve the same onion fields, from which a client finds the stores, and keep the value across periods', async () => {
    const { set, dataDirs, ports } = await makeAuthorities(3);
    const auths = await Promise.all(dataDirs.map((d, i) => startAuthority(set, d, ports[i])));
    try {
      for (const a of auths) await registerAll(a);
      const withStores = (c: AuthorityConsensus, s: string[]) =>
        s.length === 3 && c.relays.length === 4 && c.relays.every((r) => r.listedSince !== undefined);
      const got = await waitForConsensus(auths[0], set, withStores);
      const onion = got.consensus.onion;
      assert.ok(onion, 'the consensus carries onion fields');
      assert.equal(onion.periodSeconds, TEST_NETWORK_ONION_SETTINGS.periodSeconds);
      assert.equal(onion.onlyListedBeforeReveal, false);
      const p = consensusPeriod(got.consensus);
      assert.ok(p);
      assert.ok(onion.ringValues.some((v) => v.period === p.number));
      const stores = storesFor(got.consensus, Buffer.alloc(32, 9), p, FETCH_SPREAD);
      assert.ok(
        stores && stores.length === 2 && stores.flat().length === 4,
        'every relay is a store of a 4-relay ring',
      );
      // Every authority signs and serves the same fields: the same body when the same period.
      for (const a of auths.slice(1)) {
        const other = await waitForConsensus(
          a,
          set,
          (c, s) => withStores(c, s) && c.serial >= got.consensus.serial,
        );
        const theirs: string | undefined = other.consensus.onion?.ringValues.find(
          (v) => v.period === p.number,
        )?.value;
        assert.equal(theirs, onion.ringValues.find((v) => v.period === p.number)?.value);
      }
      // A later voting period of the same onion period publishes the same value, even after an
      // authority restarts (it keeps the value it saw signed, and its own contribution).
      await auths[2].stop();
      auths[2] = await startAuthority(set, dataDirs[2], ports[2]);
      const later = await waitForConsensus(
        auths[2],
        set,
        (c, s) => s.length === 3 && c.serial > got.consensus.serial + INTERVAL_MS,
      );
      const laterValue = later.consensus.onion?.ringValues.find((v) => v.period === p.number)?.value;
      if (consensusPeriod(later.consensus)?.number === p.number || laterValue !== undefined) {
        assert.equal(laterValue, onion.ringValues.find((v) => v.period === p.number)?.value);
      }
    } finally {
      await Promise.all(auths.map((a) => a.stop()));
    }
  });

  it('one authority of three down: the other two form a consensus, and say which vote is missing and why', async () => {
    const { set, dataDirs, ports } = await makeAuthorities(3);
    const auths = await Promise.all(dataDirs.slice(0, 2).map((d, i) => startAuthority(set, d, ports[i])));
    try {
      for (const a of auths) await registerAll(a);
      const got = await waitForConsensus(auths[1], set, (c, s) => c.relays.length === 4 && s.length === 2);
      assert.deepEqual(got.signers.sort(), [set.authorities[0].id, set.authorities[1].id].sort());
      const status = auths[0].voting?.status();
      const down = status?.authorities.find((a) => a.id === set.authorities[2].id);
      assert.equal(down?.vote.held, false);
      assert.match(down?.vote.problem ?? '', /unreachable: cannot reach the directory/);
      const page = await (await fetch(`${auths[0].url}/`)).text();
      assert.match(page, /missing: unreachable/);
    } finally {
      await Promise.all(auths.map((a) => a.stop()));
    }
  });

  it('one authority of three alone computes nothing, and says it has 1 of 3 votes', async () => {
    const { set, dataDirs, ports } = await makeAuthorities(3);
    const alone = await startAuthority(set, dataDirs[0], ports[0]);
    try {
      await sleep(INTERVAL_MS * 1.6);
      const res = await fetch(`${alone.url}/v1/consensus`);
      assert.equal(res.status, 503);
      const body = (await res.json()) as { error: { code: string; message: string } };
      assert.equal(body.error.code, 'ALLIUM_CONSENSUS_UNAVAILABLE');
      assert.match(body.error.message, /1 of 3 votes for the period from .*; need 2/);
    } finally {
      await alone.stop();
    }
  });

  it('a set of one is a single directory that votes alone and signs alone', async () => {
    const { set, dataDirs, ports } = await makeAuthorities(1);
    const one = await startAuthority(set, dataDirs[0], ports[0]);
    try {
      await registerAll(one);
      const got = await waitForConsensus(one, set, (c) => c.relays.length === 4);
      assert.deepEqual(got.signers, [set.authorities[0].id]);
    } finally {
      await one.stop();
    }
  });

  it('refuses to start with a set that does not name its own key', async () => {
    const { set, ports } = await makeAuthorities(2);
    const stranger = await mkdtemp(join(tmpdir(), 'allium-auth-test-'));
    dirs.push(stranger);
    await assert.rejects(startAuthority(set, stranger, ports[0]), { code: 'ALLIUM_AUTHORITY_SET_INVALID' });
  });
});
