// An introduction flood (protocol §8.5, §8.8, §8.10): an attacker who knows a service's address builds
// valid INTRODUCE1s from its descriptor and sends far more of them through one introduction point
// than the point's burst allows, one per circuit (the protocol's rule) over hand-built 3-hop circuits,
// as fast as it can. The point answers INTRODUCE_ACK(3) past its token bucket and passes the service
// no more than the bucket allows; the service builds no more rendezvous circuits at once than its
// bound; and an honest client still reaches the service: the flood stops one hop before it.
import assert from 'node:assert/strict';
import http from 'node:http';
import type net from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DEFAULT_INTRO_BURST, DEFAULT_INTRO_RATE } from '../src/core/intro-rate-limiter.js';
import { consensusPeriod } from '../src/core/onion-ring.js';
import { clientIntroduce } from '../src/crypto/hs-ntor.js';
import { blindPublicKey, subcredential } from '../src/crypto/key-blinding.js';
import { randomBytes } from '../src/crypto/keys.js';
import { parseOnionAddress } from '../src/crypto/onion-address.js';
import { type Client, createClient, createService, type OnionService } from '../src/index.js';
import { MAX_RENDEZVOUS_BUILDING } from '../src/service/introductions.js';
import { RelayCommand } from '../src/wire/constants.js';
import { decodeIntroduceAck, encodeIntroduce, IntroduceAckStatus } from '../src/wire/onion-messages.js';
import { type InProcessNetwork, startNetwork } from './helpers/network.js';
import { type RawCircuit, type RawClient, rawClient } from './helpers/raw-circuit.js';
import { waitFor } from './helpers/wait.js';

const PAGE = Buffer.from('the service, still up\n');
/** Twice the point's burst: half of it past the bucket even if the whole flood took a few seconds. */
const FLOOD = 2 * DEFAULT_INTRO_BURST;
/** Raw links the attacker spreads its circuits over: each relay's CREATE bucket is per link. */
const LINKS = 4;
/** Circuits built at once while the attacker prepares. */
const BUILD_AT_ONCE = 40;

let netw: InProcessNetwork;
let web: http.Server;
let service: OnionService;
const rawClients: RawClient[] = [];
const clients: Client[] = [];

before(async () => {
  netw = await startNetwork({ relays: 8, exits: 1 });
  web = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-length': PAGE.length }).end(PAGE);
  });
  await new Promise<void>((r) => web.listen(0, '127.0.0.1', () => r()));
  service = await createService({
    directory: netw.directory.url,
    directoryKey: netw.directory.publicKey,
    to: `127.0.0.1:${(web.address() as net.AddressInfo).port}`,
    dataDir: join(netw.dataDir, 'service'),
  });
  await service.ready;
});

after(async () => {
  for (const c of rawClients) c.close();
  for (const c of clients) await c.close();
  await service?.close();
  web?.close();
  await netw?.stop();
});

describe('an introduction flood through one introduction point', () => {
  it('is rate limited at the point, bounded at the service, and an honest client still gets in', async () => {
    const { points, introductions } = service.internals;
    const point = [...points!.active][0];
    const pointRelay = netw.relays.find((r) => r.idHex === point.relay.id)!;
    const others = netw.relays.filter((r) => r !== pointRelay);

    // What the attacker reads from the descriptor: the point's keys, and the subcredential from the
    // address. Each INTRODUCE1 is valid (its MAC checks at the service) with a fresh client key, so the
    // replay cache does not stop it, and names a listed relay as rendezvous point, so the service
    // really builds a circuit for every one it admits.
    const identityKey = parseOnionAddress(service.address);
    const period = consensusPeriod(netw.client.currentConsensus!)!;
    const sub = subcredential(identityKey, blindPublicKey(identityKey, period));
    const bodies = Array.from({ length: FLOOD }, () =>
      encodeIntroduce(
        clientIntroduce({ authKey: point.authKey.publicKey, encKey: point.encKey.publicKey }, sub, {
          cookie: randomBytes(32),
          rendezvousId: others[0].id,
        }).message,
      ),
    );

    // One circuit per INTRODUCE1, all ending at the point, built before the flood so that the flood
    // itself is as fast as cells go. Entries and middles vary so no relay link carries more CREATEs
    // than its per-link bucket.
    for (let i = 0; i < LINKS; i++) rawClients.push(await rawClient(others[i]));
    const circuits: RawCircuit[] = [];
    let circId = 0x80000100;
    for (let start = 0; start < FLOOD; start += BUILD_AT_ONCE) {
      const batch = Array.from({ length: Math.min(BUILD_AT_ONCE, FLOOD - start) }, (_, j) => {
        const i = start + j;
        const entry = others[i % LINKS];
        const middle = others[LINKS + (i % (others.length - LINKS))];
        return rawClients[i % LINKS].circuit(circId++, [entry, middle, pointRelay]);
      });
      circuits.push(...(await Promise.all(batch)));
    }

    const relayBefore = pointRelay.onionLoad();
    const serviceBefore = { ...introductions!.counts };

    // The flood: every INTRODUCE1 at once, then every answer.
    const started = performance.now();
    for (let i = 0; i < FLOOD; i++) circuits[i].send(RelayCommand.INTRODUCE1, 0, bodies[i]);
    const acks = new Map<number, number>();
    await Promise.all(
      circuits.map(async (c) => {
        const got = c.peel(await c.nextCell());
        assert.equal(got.command, RelayCommand.INTRODUCE_ACK);
        const status = decodeIntroduceAck(got.data);
        acks.set(status, (acks.get(status) ?? 0) + 1);
      }),
    );
    const elapsedSeconds = (performance.now() - started) / 1000;
    const passed = acks.get(IntroduceAckStatus.SUCCESS) ?? 0;
    const limited = acks.get(IntroduceAckStatus.RATE_LIMITED) ?? 0;
    // The bucket starts full and refills at `rate` for as long as the flood lasted (one token of slack
    // for the clock's rounding).
    const allowed = DEFAULT_INTRO_BURST + DEFAULT_INTRO_RATE * elapsedSeconds + 1;
    console.log(
      `flood of ${FLOOD} over ${elapsedSeconds.toFixed(3)} s: ${passed} passed, ${limited} rate limited (allowed ${allowed.toFixed(1)})`,
    );
    assert.equal(passed + limited, FLOOD, 'every INTRODUCE1 was either passed on or rate limited');
    assert.ok(passed >= Math.min(FLOOD, DEFAULT_INTRO_BURST), 'the burst passes');
    assert.ok(passed <= allowed, `${passed} passed, at most ${allowed} allowed`);
    assert.ok(limited >= FLOOD - allowed, 'the rest were refused with INTRODUCE_ACK(3)');

    // The relay's own counts agree, and the service received exactly what the point passed.
    const relayAfter = pointRelay.onionLoad();
    assert.equal(relayAfter.introductions - relayBefore.introductions, passed);
    assert.equal(relayAfter.introductionsRefused - relayBefore.introductionsRefused, limited);
    await waitFor('the service took every INTRODUCE2 the point passed', () =>
      introductions!.counts.received - serviceBefore.received === passed ? true : null,
    );
    await waitFor('the rendezvous circuits the flood started are done', () =>
      introductions!.building === 0 ? true : null,
    );
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(
      introductions!.counts.received - serviceBefore.received,
      passed,
      'nothing more reached the service',
    );
    const delta = (k: keyof typeof serviceBefore) => introductions!.counts[k] - serviceBefore[k];
    console.log(
      `service: received ${delta('received')}, rendezvous built ${delta('joined')} + failed ${delta('rendezvousFailed')}, busy ${delta('busy')}, rate limited ${delta('rateLimited')}, refused ${delta('refused')}, replays ${delta('replays')}; peak building ${introductions!.peakBuilding}`,
    );
    assert.equal(
      delta('refused') + delta('replays') + delta('unknownRelay'),
      0,
      'every introduction was valid',
    );
    assert.equal(
      delta('joined') + delta('rendezvousFailed') + delta('busy') + delta('rateLimited'),
      passed,
      'every introduction accounted for',
    );
    assert.ok(introductions!.peakBuilding <= MAX_RENDEZVOUS_BUILDING, 'at most the bound building at once');
    assert.ok(delta('busy') > 0, 'introductions past the bound were dropped, not queued');
    assert.ok(
      delta('joined') + delta('rendezvousFailed') >= MAX_RENDEZVOUS_BUILDING,
      'the bound was reached',
    );

    // The honest client, right after the flood: the service is up, and within a bounded number of
    // tries (the buckets refill at `rate`) it is reached.
    const honest = await createClient({
      directory: netw.directory.url,
      directoryKey: netw.directory.publicKey,
      onionConnectTimeoutMs: 10_000,
    });
    clients.push(honest);
    let page: Buffer | null = null;
    for (let attempt = 0; attempt < 3 && page === null; attempt++) {
      try {
        const res = await honest.fetch(`http://${service.address}/`, { isolation: `honest-${attempt}` });
        page = Buffer.from(await res.arrayBuffer());
      } catch (err) {
        console.log(`honest attempt ${attempt}: ${(err as Error).message}`);
      }
    }
    assert.deepEqual(page, PAGE);
  });
});
