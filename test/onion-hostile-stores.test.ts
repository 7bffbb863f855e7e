// Descriptor stores turned hostile, over a real in-process network (protocol §8.3-§8.4, §8.9,
// threat-model §4): a service started with createService, a client reaching it, and some or all of
// the relays the ring makes its stores serving bad descriptors for its blinded key (tampered,
// expired, signed by the wrong key, for another key, rewritten to name introduction points of the
// store's choosing). The client refuses each and asks the next store, connects while one honest store
// is left, and fails with the refusal's code (SOCKS 0xF1) when none is, having built no circuit
// beyond the stores. And what every store holds is read back: nothing in it names the service, its
// introduction points or their keys, and two periods' descriptors name unlinkable blinded keys.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { AlliumClient } from '../src/client/client.js';
import type { OnionCircuit } from '../src/client/onion-circuit.js';
import { consensusPeriod, nextPeriod, ringValueFor, storesFor } from '../src/core/onion-ring.js';
import { FETCH_SPREAD, STORE_SPREAD } from '../src/core/onion-stores.js';
import {
  blindPublicKey,
  blindSecret,
  type Period,
  signBlinded,
  subcredential,
} from '../src/crypto/key-blinding.js';
import { IdentityKey, randomBytes, X25519Key } from '../src/crypto/keys.js';
import { parseOnionAddress } from '../src/crypto/onion-address.js';
import { DESCRIPTOR_DOMAIN, openDescriptor, sealDescriptor } from '../src/crypto/onion-descriptor.js';
import type { AlliumError } from '../src/errors.js';
import { type Client, createClient, createService, type OnionService } from '../src/index.js';
import { SocksServer } from '../src/net/socks-server.js';
import type { Relay } from '../src/relay/relay.js';
import { SERVICE_KEY_FILE } from '../src/service/service-key.js';
import { DestroyReason, RelayCommand } from '../src/wire/constants.js';
import type { ConsensusRelay, ConsensusView } from '../src/wire/directory-docs.js';
import {
  DESCRIPTOR_SALT_LEN,
  decodeOuterDescriptor,
  descriptorSignedPart,
  encodeOuterDescriptor,
  type IntroPointEntry,
} from '../src/wire/onion-descriptor.js';
import {
  DescriptorStoreStatus,
  decodeDescriptorStored,
  encodeDescriptorStore,
} from '../src/wire/onion-messages.js';
import { SocksReply } from '../src/wire/socks5.js';
import { type InProcessNetwork, startNetwork } from './helpers/network.js';
import { socksReply } from './helpers/socks-reply.js';
import { waitFor } from './helpers/wait.js';

const PAGE = Buffer.from('reached past the hostile stores\n');
/** Where the outer layer's fields start (§8.4): version, A'_p, revision, expires, salt, ciphertext, signature. */
const AT_KEY = 1;
const AT_SALT = 1 + 32 + 8 + 8;
const AT_CIPHERTEXT = AT_SALT + DESCRIPTOR_SALT_LEN;
const AT_SIGNATURE = AT_CIPHERTEXT + 1040;

let netw: InProcessNetwork;
let web: http.Server;
let service: OnionService;
let client: Client;
let socks: SocksServer;
/**
 * The service's identity key A, and its seed, read from its data directory: the test signs with it
 * where only the service could (an expired descriptor a store replays, a point no consensus lists).
 */
let identityKey: Buffer;
let seed: Buffer;
/** Another key, the hostile stores' own: what they sign and seal with. */
const theirs = IdentityKey.generate();

/** What a hostile store serves for the service's blinded key of `period`, given what it really holds. */
type BadDescriptor = (real: Buffer | null, period: Period) => Buffer | null;
/** Relays (id hex) serving bad descriptors now, and how. */
const hostile = new Map<string, BadDescriptor>();
const counts = { badServed: 0, honestServed: 0 };
/** The last hop of every circuit the client built for onion services (stores, points, rendezvous). */
let lastHops: (string | undefined)[] = [];

function nowS(): number {
  return Math.floor(Date.now() / 1000);
}

function flip(b: Buffer, at: number): Buffer {
  const copy = Buffer.from(b);
  copy[at] ^= 0x01;
  return copy;
}

/** The service's introduction points, as its descriptor names them. */
function servicePoints(): IntroPointEntry[] {
  return service.internals.points!.active.map((p) => ({
    relayId: Buffer.from(p.relay.id, 'hex'),
    authKey: p.authKey.publicKey,
    encKey: p.encKey.publicKey,
  }));
}

/**
 * Introduction points of the hostile stores' choosing: relays of the consensus that are neither the
 * client's stores nor the service's points (so a client that went there would show in lastHops),
 * with keys the hostile stores hold.
 */
function pointsOfTheirChoosing(): IntroPointEntry[] {
  const avoid = new Set([
    ...fetchStores().map((r) => r.id),
    ...servicePoints().map((p) => p.relayId.toString('hex')),
  ]);
  const chosen = netw.relays.filter((r) => !avoid.has(r.id.toString('hex'))).slice(0, 2);
  assert.ok(chosen.length > 0, 'a relay outside the stores and the points to send clients to');
  return chosen.map((r) => ({
    relayId: r.id,
    authKey: IdentityKey.generate().publicKey,
    encKey: X25519Key.generate().publicKey,
  }));
}

/** Far above any revision the service uses, so nothing about it looks older than the real one. */
const HIGH_REVISION = 2 ** 40;

/**
 * The bad descriptors, by name: what the client must answer to each, and what a store answers when
 * someone stores it there (null: a descriptor a store rightly takes, of another key or signed by the
 * real one).
 */
const BAD: { name: string; code: string; stored: DescriptorStoreStatus | null; serve: BadDescriptor }[] = [
  {
    name: 'the real descriptor with a byte of its ciphertext flipped',
    code: 'ALLIUM_ONION_DESCRIPTOR_SIGNATURE',
    stored: DescriptorStoreStatus.INVALID,
    serve: (real) => real && flip(real, AT_CIPHERTEXT + 100),
  },
  {
    name: 'the real descriptor with a byte of its signature flipped',
    code: 'ALLIUM_ONION_DESCRIPTOR_SIGNATURE',
    stored: DescriptorStoreStatus.INVALID,
    serve: (real) => real && flip(real, AT_SIGNATURE + 5),
  },
  {
    name: 'the real descriptor with a byte of its salt flipped',
    code: 'ALLIUM_ONION_DESCRIPTOR_SIGNATURE',
    stored: DescriptorStoreStatus.INVALID,
    serve: (real) => real && flip(real, AT_SALT),
  },
  {
    name: 'the real descriptor with its version byte changed',
    code: 'ALLIUM_ONION_DESCRIPTOR_MALFORMED',
    stored: DescriptorStoreStatus.INVALID,
    serve: (real) => real && flip(real, 0),
  },
  {
    name: 'the real descriptor with its revision past 2^53',
    code: 'ALLIUM_ONION_DESCRIPTOR_MALFORMED',
    stored: DescriptorStoreStatus.INVALID,
    serve: (real) => {
      if (!real) return null;
      const copy = Buffer.from(real);
      copy[AT_KEY + 32] = 0xff;
      return copy;
    },
  },
  {
    name: 'the real descriptor with a byte of its blinded key flipped',
    code: 'ALLIUM_ONION_DESCRIPTOR_KEY',
    stored: DescriptorStoreStatus.INVALID,
    serve: (real) => real && flip(real, AT_KEY + 3),
  },
  {
    // A store replaying a descriptor the service really sealed, past its life.
    name: 'a descriptor sealed with the real blinded key, expired',
    code: 'ALLIUM_ONION_DESCRIPTOR_EXPIRED',
    stored: DescriptorStoreStatus.EXPIRED,
    serve: (_, period) =>
      sealDescriptor({
        identityKey,
        blindedSecret: blindSecret(seed, period),
        revision: HIGH_REVISION,
        expires: nowS() - 60,
        introPoints: servicePoints(),
      }),
  },
  {
    name: 'a descriptor sealed with the real blinded key, claiming a day of life',
    code: 'ALLIUM_ONION_DESCRIPTOR_EXPIRED',
    stored: DescriptorStoreStatus.EXPIRED,
    serve: (_, period) =>
      sealDescriptor({
        identityKey,
        blindedSecret: blindSecret(seed, period),
        revision: HIGH_REVISION,
        expires: nowS() + 24 * 3600,
        introPoints: servicePoints(),
      }),
  },
  {
    name: 'the real descriptor re-signed by another key',
    code: 'ALLIUM_ONION_DESCRIPTOR_SIGNATURE',
    stored: DescriptorStoreStatus.INVALID,
    serve: (real, period) => {
      if (!real) return null;
      const outer = decodeOuterDescriptor(real);
      const signature = signBlinded(
        blindSecret(theirs.seed(), period),
        DESCRIPTOR_DOMAIN,
        descriptorSignedPart(outer),
      );
      return encodeOuterDescriptor({ ...outer, signature });
    },
  },
  {
    // What a store can make of its own: a valid descriptor, but of its key, naming its points.
    name: "a descriptor rewritten under the store's own blinded key, naming points of its choosing",
    code: 'ALLIUM_ONION_DESCRIPTOR_KEY',
    stored: null,
    serve: (_, period) =>
      sealDescriptor({
        identityKey: theirs.publicKey,
        blindedSecret: blindSecret(theirs.seed(), period),
        revision: HIGH_REVISION,
        expires: nowS() + 3600,
        introPoints: pointsOfTheirChoosing(),
      }),
  },
  {
    // It cannot sign for the real A'_p: it claims it, and signs with its own.
    name: 'a descriptor claiming the real blinded key, naming points of its choosing, signed by the store',
    code: 'ALLIUM_ONION_DESCRIPTOR_SIGNATURE',
    stored: DescriptorStoreStatus.INVALID,
    serve: (real, period) => {
      if (!real) return null;
      const own = decodeOuterDescriptor(
        sealDescriptor({
          identityKey: theirs.publicKey,
          blindedSecret: blindSecret(theirs.seed(), period),
          revision: HIGH_REVISION,
          expires: nowS() + 3600,
          introPoints: pointsOfTheirChoosing(),
        }),
      );
      const forged = { ...own, blindedKey: decodeOuterDescriptor(real).blindedKey };
      const signature = signBlinded(
        blindSecret(theirs.seed(), period),
        DESCRIPTOR_DOMAIN,
        descriptorSignedPart(forged),
      );
      return encodeOuterDescriptor({ ...forged, signature });
    },
  },
  {
    // The real header and signature around an inner layer of its own.
    name: "the real signature over the store's own inner layer naming points of its choosing",
    code: 'ALLIUM_ONION_DESCRIPTOR_SIGNATURE',
    stored: DescriptorStoreStatus.INVALID,
    serve: (real, period) => {
      if (!real) return null;
      const own = decodeOuterDescriptor(
        sealDescriptor({
          identityKey: theirs.publicKey,
          blindedSecret: blindSecret(theirs.seed(), period),
          revision: HIGH_REVISION,
          expires: nowS() + 3600,
          introPoints: pointsOfTheirChoosing(),
        }),
      );
      return encodeOuterDescriptor({ ...decodeOuterDescriptor(real), ciphertext: own.ciphertext });
    },
  },
  {
    // Only a holder of the service's key can make this one: signed by the real A'_p, its inner
    // layer sealed for another address, so only the client's decryption catches it.
    name: 'a descriptor signed by the real blinded key whose inner layer is for another address',
    code: 'ALLIUM_ONION_DESCRIPTOR_DECRYPT',
    stored: null,
    serve: (_, period) =>
      sealDescriptor({
        identityKey: theirs.publicKey,
        blindedSecret: blindSecret(seed, period),
        revision: HIGH_REVISION,
        expires: nowS() + 3600,
        introPoints: servicePoints(),
      }),
  },
];

/** The period of the client's consensus, and the stores it asks for the service's descriptor. */
function clientPeriod(): Period {
  return consensusPeriod(client.raw.currentConsensus!)!;
}

function fetchStores(): ConsensusRelay[] {
  const period = clientPeriod();
  return storesFor(
    client.raw.currentConsensus!,
    blindPublicKey(identityKey, period),
    period,
    FETCH_SPREAD,
  )!.flat();
}

/** The relays whose DescriptorStore serves the service's blinded keys through `serve` from now on. */
function makeHostile(ids: string[], serve: BadDescriptor): void {
  hostile.clear();
  for (const id of ids) hostile.set(id, serve);
}

/**
 * Wraps every relay's DescriptorStore.fetch (what HS_DESC_FETCH answers with): for the service's
 * blinded key of a period around now, a hostile relay serves its bad descriptor instead.
 */
function wrapStores(): void {
  const period = clientPeriod();
  const keys = new Map<string, Period>();
  for (let n = period.number - 1; n <= period.number + 2; n++) {
    const p = { number: n, length: period.length };
    keys.set(blindPublicKey(identityKey, p).toString('hex'), p);
  }
  for (const relay of netw.relays) {
    const store = relay.descriptors;
    const realFetch = store.fetch.bind(store);
    store.fetch = (blindedKey: Buffer) => {
      const real = realFetch(blindedKey);
      const p = keys.get(blindedKey.toString('hex'));
      const serve = hostile.get(relay.id.toString('hex'));
      if (!p || !serve) {
        if (p && real) counts.honestServed++;
        return real;
      }
      const bad = serve(real, p);
      if (bad) counts.badServed++;
      return bad;
    };
  }
}

/** Records the last hop of every onion circuit the client builds (a relay of its consensus, or not). */
function recordCircuits(c: AlliumClient): void {
  const build = c.buildOnionCircuit.bind(c);
  c.buildOnionCircuit = (last: ConsensusRelay, opts?: { isolation?: string; exclude?: Set<string> }) => {
    lastHops.push(last?.id);
    return build(last, opts) as Promise<OnionCircuit>;
  };
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    const stream = await p;
    (stream as { destroy?: () => void }).destroy?.();
  } catch (err) {
    return (err as AlliumError).code ?? (err as Error).message;
  }
  return 'no error';
}

let isolations = 0;
/** A fresh connection: no cached descriptor, no joined circuit to reuse. */
function freshIsolation(): string {
  client.raw.onion.cache.drop(identityKey.toString('hex'));
  return `hostile-${isolations++}`;
}

async function fetchPage(): Promise<Buffer> {
  const res = await client.fetch(`http://${service.address}/`, { isolation: freshIsolation() });
  assert.equal(res.status, 200);
  return Buffer.from(await res.arrayBuffer());
}

before(async () => {
  netw = await startNetwork({ relays: 10, exits: 1 });
  web = http.createServer((_, res) => res.end(PAGE));
  await new Promise<void>((r) => web.listen(0, '127.0.0.1', () => r()));
  const dataDir = join(netw.dataDir, 'service');
  service = await createService({
    directory: netw.directory.url,
    directoryKey: netw.directory.publicKey,
    to: `127.0.0.1:${(web.address() as net.AddressInfo).port}`,
    dataDir,
  });
  await service.ready;
  seed = readFileSync(join(dataDir, SERVICE_KEY_FILE));
  identityKey = parseOnionAddress(service.address);
  assert.deepEqual(IdentityKey.fromSeed(seed).publicKey, identityKey);
  client = await createClient({ directory: netw.directory.url, directoryKey: netw.directory.publicKey });
  socks = await SocksServer.listen({
    host: '127.0.0.1',
    port: 0,
    connect: (req) => client.raw.connect(req.host, req.port, { isolation: freshIsolation() }),
  });
  wrapStores();
  recordCircuits(client.raw);
});

after(async () => {
  await socks?.close();
  await client?.close();
  await service?.close();
  web?.close();
  await netw?.stop();
});

/** The bytes every relay holds, as it holds them (its private map: what an operator's memory dump shows). */
function heldBy(relay: Relay): Map<string, Buffer> {
  const held = (relay.descriptors as unknown as { held: Map<string, { bytes: Buffer }> }).held;
  return new Map([...held].map(([key, h]) => [key, h.bytes]));
}

/** Has the service store its descriptors now, as it does every hour and on a new period. */
function republish(): void {
  (service as unknown as { republish(): void }).republish();
}

/** Asserts no 8-byte run of `secret` appears in `held`. */
function assertAbsent(held: Buffer, secret: Buffer, what: string): void {
  for (let i = 0; i + 8 <= secret.length; i++) {
    assert.equal(
      held.indexOf(secret.subarray(i, i + 8)),
      -1,
      `${what} (bytes ${i}-${i + 8}) is in what a store holds`,
    );
  }
}

describe('descriptor stores cannot read what they hold', () => {
  it("holds at every store of both replicas the service's descriptor, in which nothing names the service, its points or their keys", async () => {
    const consensus = service.internals.client!.currentConsensus!;
    const period = consensusPeriod(consensus)!;
    const blindedKey = blindPublicKey(identityKey, period);
    const replicas = storesFor(consensus, blindedKey, period, STORE_SPREAD)!;
    assert.equal(replicas.length, 2);
    const storeIds = new Set(replicas.flat().map((r) => r.id));
    // `ready` promises one store of each replica; a store that missed the first round gets the next.
    const everyStoreHolds = () =>
      netw.relays.every(
        (r) => !storeIds.has(r.id.toString('hex')) || heldBy(r).has(blindedKey.toString('hex')),
      );
    if (!everyStoreHolds()) republish();
    await waitFor('every store of both replicas holds the descriptor', everyStoreHolds, {
      timeoutMs: 30_000,
    });
    const points = servicePoints();
    const secrets: [string, Buffer][] = [
      ['the identity key A', identityKey],
      ['the address', Buffer.from(service.address)],
      ['the address without its suffix, upper case', Buffer.from(service.address.slice(0, 56).toUpperCase())],
      ['the subcredential N_p', subcredential(identityKey, blindedKey)],
      ...points.flatMap((p, i): [string, Buffer][] => [
        [`introduction point ${i}'s relay id`, p.relayId],
        [`introduction point ${i}'s auth key`, p.authKey],
        [`introduction point ${i}'s encryption key`, p.encKey],
      ]),
    ];
    let stores = 0;
    for (const relay of netw.relays) {
      const held = heldBy(relay).get(blindedKey.toString('hex'));
      if (!storeIds.has(relay.id.toString('hex'))) {
        assert.equal(held, undefined, 'a relay that is no store of the service holds nothing of it');
        continue;
      }
      assert.ok(held, 'every store of both replicas holds the descriptor');
      stores++;
      // It is the service's own: whoever knows the address opens it and finds those points.
      const opened = openDescriptor(held, { identityKey, period, now: nowS() });
      assert.deepEqual(
        opened.introPoints.map((p) => p.relayId.toString('hex')).sort(),
        points.map((p) => p.relayId.toString('hex')).sort(),
      );
      for (const [what, secret] of secrets) assertAbsent(held, secret, what);
      // Nor anywhere else it holds (another period's descriptor, if the service stored one there).
      for (const bytes of heldBy(relay).values())
        for (const [what, secret] of secrets) assertAbsent(bytes, secret, what);
    }
    assert.equal(stores, STORE_SPREAD * 2);
  });

  it("names unlinkable blinded keys in two periods' descriptors (the next one stored as the service does after the reveal)", async () => {
    // The test plays the directory's reveal for the service alone: its consensus carries the next
    // period's ring value, and the service stores its next descriptor on that period's ring.
    const svcClient = service.internals.client!;
    const real = svcClient.currentConsensus!;
    const period = consensusPeriod(real)!;
    const next = nextPeriod(period);
    const nextValue = randomBytes(32).toString('base64');
    const own = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(svcClient), 'currentConsensus')!.get!;
    Object.defineProperty(svcClient, 'currentConsensus', {
      configurable: true,
      get: () => {
        const c = own.call(svcClient) as ConsensusView | null;
        if (!c?.onion || ringValueFor(c, next)) return c;
        const ringValues = [...c.onion.ringValues, { period: next.number, value: nextValue }];
        return { ...c, onion: { ...c.onion, ringValues } };
      },
    });
    try {
      republish();
      const nowKey = blindPublicKey(identityKey, period);
      const nextKey = blindPublicKey(identityKey, next);
      const nextStores = storesFor(svcClient.currentConsensus!, nextKey, next, STORE_SPREAD)!.flat();
      const held = await waitFor(
        "every store of the next period holds the service's next descriptor",
        () => {
          const got = nextStores.map((r) => heldBy(netw.relays.find((x) => x.id.toString('hex') === r.id)!));
          return got.every((h) => h.has(nextKey.toString('hex'))) ? got : null;
        },
        { timeoutMs: 30_000 },
      );
      const nowDescriptor = heldBy(
        netw.relays.find(
          (r) => r.id.toString('hex') === storesFor(real, nowKey, period, STORE_SPREAD)![0][0].id,
        )!,
      ).get(nowKey.toString('hex'))!;
      const nextDescriptor = held[0].get(nextKey.toString('hex'))!;
      // Both are the service's: each opens with the address for its own period only.
      openDescriptor(nextDescriptor, { identityKey, period: next, now: nowS() });
      assert.throws(
        () => openDescriptor(nextDescriptor, { identityKey, period, now: nowS() }),
        (err: AlliumError) => err.code === 'ALLIUM_ONION_DESCRIPTOR_KEY',
      );
      assert.deepEqual(decodeOuterDescriptor(nowDescriptor).blindedKey, nowKey);
      assert.deepEqual(decodeOuterDescriptor(nextDescriptor).blindedKey, nextKey);
      // Unlinkable: the keys differ and share no run of bytes, neither descriptor carries the other's
      // key or the identity key, and their salts, ciphertexts and signatures share no run of bytes.
      assert.notDeepEqual(nowKey, nextKey);
      assertAbsent(nextDescriptor, nowKey, "the current period's blinded key");
      assertAbsent(nowDescriptor, nextKey, "the next period's blinded key");
      for (const d of [nowDescriptor, nextDescriptor]) assertAbsent(d, identityKey, 'the identity key A');
      const random = (d: Buffer) => d.subarray(AT_SALT);
      for (let i = 0; i + 8 <= random(nowDescriptor).length; i += 4) {
        assert.equal(
          random(nextDescriptor).indexOf(random(nowDescriptor).subarray(i, i + 8)),
          -1,
          'the two descriptors share a run of bytes past their header',
        );
      }
      // And the next period's stores learn nothing more of the service than the current one's.
      for (const h of held) {
        for (const [what, secret] of [
          ['the identity key A', identityKey],
          ['the subcredential N_p+1', subcredential(identityKey, nextKey)],
          ...servicePoints().flatMap((p): [string, Buffer][] => [
            ['a relay id', p.relayId],
            ['an auth key', p.authKey],
            ['an encryption key', p.encKey],
          ]),
        ] as [string, Buffer][]) {
          assertAbsent(h.get(nextKey.toString('hex'))!, secret, what);
        }
      }
    } finally {
      delete (svcClient as unknown as { currentConsensus?: unknown }).currentConsensus;
    }
  });
});

describe('a client facing hostile descriptor stores', () => {
  it('connects while one store it asks is honest: each bad descriptor is refused and the next store asked', async () => {
    for (const bad of BAD) {
      const honest = fetchStores()[0];
      makeHostile(
        netw.relays.map((r) => r.id.toString('hex')).filter((id) => id !== honest.id),
        bad.serve,
      );
      // Stores are asked in random order: connect until a hostile one was asked before the honest one.
      const before = counts.badServed;
      for (let attempt = 0; attempt < 12 && counts.badServed === before; attempt++) {
        const honestBefore = counts.honestServed;
        assert.deepEqual(await fetchPage(), PAGE, bad.name);
        assert.equal(counts.honestServed, honestBefore + 1, `${bad.name}: the honest store served it`);
      }
      assert.ok(counts.badServed > before, `${bad.name}: a hostile store was asked first, and refused`);
    }
    hostile.clear();
  });

  it("fails with the refusal's code (SOCKS 0xF1) when every store is hostile, and dials nothing but the stores", async () => {
    for (const bad of BAD) {
      makeHostile(
        netw.relays.map((r) => r.id.toString('hex')),
        bad.serve,
      );
      const stores = new Set(fetchStores().map((r) => r.id));
      const introductions = service.stats().introductions.received;
      const rendezvous = client.raw.onion.counts.rendezvous;
      const served = counts.badServed;
      lastHops = [];
      assert.equal(
        await codeOf(client.connect(service.address, 80, { isolation: freshIsolation() })),
        bad.code,
        bad.name,
      );
      assert.equal(
        counts.badServed - served,
        stores.size,
        `${bad.name}: every store was asked, each refused`,
      );
      assert.equal(
        await socksReply(socks.port, service.address),
        SocksReply.ONION_DESCRIPTOR_INVALID,
        bad.name,
      );
      assert.ok(lastHops.length > 0);
      for (const hop of lastHops) {
        assert.ok(
          hop && stores.has(hop),
          `${bad.name}: a circuit went to ${hop}, which is none of the stores`,
        );
      }
      assert.equal(client.raw.onion.counts.rendezvous, rendezvous, 'no rendezvous');
      assert.equal(
        service.stats().introductions.received,
        introductions,
        'no introduction reached the service',
      );
    }
    hostile.clear();
    assert.deepEqual(await fetchPage(), PAGE, 'the honest stores serve again');
  });

  it('skips introduction points its consensus does not list: it never dials where the directory did not vouch', async () => {
    const unlisted: IntroPointEntry = {
      relayId: randomBytes(32),
      authKey: IdentityKey.generate().publicKey,
      encKey: X25519Key.generate().publicKey,
    };
    // Signed and sealed with the service's key (no store can): only the client's own consensus stands
    // between it and a relay id the directory never listed.
    const naming =
      (points: IntroPointEntry[]): BadDescriptor =>
      (_, period) =>
        sealDescriptor({
          identityKey,
          blindedSecret: blindSecret(seed, period),
          revision: HIGH_REVISION,
          expires: nowS() + 3600,
          introPoints: points,
        });
    const all = netw.relays.map((r) => r.id.toString('hex'));
    const listed = new Set(client.raw.currentConsensus!.relays.map((r) => r.id));
    assert.ok(!listed.has(unlisted.relayId.toString('hex')));

    // Unlisted points first and last around the real ones: the client reaches the service through these.
    makeHostile(all, naming([unlisted, ...servicePoints(), { ...unlisted, relayId: randomBytes(32) }]));
    for (let i = 0; i < 3; i++) {
      lastHops = [];
      assert.deepEqual(await fetchPage(), PAGE);
      for (const hop of lastHops)
        assert.ok(hop && listed.has(hop), `a circuit went to ${hop}, which the consensus does not list`);
    }

    // Only unlisted points: nothing to dial at all.
    makeHostile(all, naming([unlisted]));
    const stores = new Set(fetchStores().map((r) => r.id));
    lastHops = [];
    assert.equal(
      await codeOf(client.connect(service.address, 80, { isolation: freshIsolation() })),
      'ALLIUM_ONION_SERVICE_UNREACHABLE',
    );
    assert.ok(lastHops.length > 0);
    for (const hop of lastHops)
      assert.ok(hop && stores.has(hop), `a circuit went to ${hop}, which is none of the stores`);
    hostile.clear();
  });
});

describe("the service's stores facing hostile senders", () => {
  it('refuse the bad descriptors stored at them over the network, and keep serving the real one', async () => {
    const period = clientPeriod();
    const key = blindPublicKey(identityKey, period).toString('hex');
    const stores = fetchStores();
    const relayOf = (r: ConsensusRelay) => netw.relays.find((x) => x.id.toString('hex') === r.id)!;
    const before = stores.map((r) => heldBy(relayOf(r)).get(key)!);
    for (const bad of BAD) {
      if (bad.stored === null) continue;
      for (const [i, store] of stores.entries()) {
        const descriptor = bad.serve(before[i], period)!;
        const circuit = await client.raw.buildOnionCircuit(store, { isolation: freshIsolation() });
        try {
          const status = decodeDescriptorStored(
            await circuit.request(
              RelayCommand.HS_DESC_STORE,
              encodeDescriptorStore(descriptor),
              RelayCommand.HS_DESC_STORED,
            ),
          );
          assert.equal(status, bad.stored, `${bad.name}: the store answered ${status}`);
        } finally {
          circuit.destroy(DestroyReason.FINISHED, 'the test stored its descriptor');
        }
      }
    }
    stores.forEach((r, i) => {
      assert.deepEqual(heldBy(relayOf(r)).get(key), before[i], 'the store holds the real descriptor still');
    });
    assert.deepEqual(await fetchPage(), PAGE);
  });
});
