// Three directory authorities and five relays as separate processes: the consensus is signed by all
// three, a client fetches 10 MiB byte for byte, relays serve it as caches, a client refuses a
// consensus a minority signed (and says so), and moves past a cache that altered one byte.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { openTrustedConsensus } from '../src/core/consensus-trust.js';
import { runAllium } from './helpers/allium-process.js';
import {
  type AuthorityNetwork,
  servedConsensus,
  startAuthorityNetwork,
} from './helpers/authority-network.js';
import { makeFiles, sha256, startHttpServer, type WebServer } from './helpers/web.js';

const files = makeFiles();
let net: AuthorityNetwork;
let web: WebServer;
let out: string;
/** A consensus listing the five relays, signed by all three authorities, as served. */
let good: { body: string; signatures: unknown[] };

/** An HTTP server answering every request with `body`, counting them. */
async function serveText(body: string): Promise<{ url: string; hits: () => number; close(): Promise<void> }> {
  let hits = 0;
  const srv = http.createServer((_req, res) => {
    hits++;
    res.writeHead(200, { 'content-type': 'application/json' }).end(body);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}`,
    hits: () => hits,
    close: () =>
      new Promise<void>((r) => {
        srv.closeAllConnections();
        srv.close(() => r());
      }),
  };
}

before(async () => {
  out = mkdtempSync(join(tmpdir(), 'allium-authorities-out-'));
  web = await startHttpServer(files);
  net = await startAuthorityNetwork({ roles: ['process', 'process', 'process'], relays: 5, exits: 2 });
  const trust = { kind: 'authorities' as const, set: net.set };
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const doc = await servedConsensus(net.set.authorities[0].url);
    if (
      doc &&
      doc.signatures.length === 3 &&
      openTrustedConsensus(doc, trust).consensus.relays.length === 5
    ) {
      good = doc;
      break;
    }
    await sleep(200);
  }
  assert.ok(good, 'within 30 s, a consensus of the five relays signed by all three authorities');
});

after(async () => {
  await net?.stop();
  await web?.close();
  rmSync(out, { recursive: true, force: true });
});

describe('three authorities and five relays, as processes', () => {
  it('every authority serves the same consensus, signed by all three', async () => {
    const trust = { kind: 'authorities' as const, set: net.set };
    const serial = openTrustedConsensus(good, trust).consensus.serial;
    for (const a of net.set.authorities) {
      // Bounded: each authority serves the period's consensus once it holds a majority's signatures.
      let doc: { body: string; signatures: unknown[] } | null = null;
      for (let i = 0; i < 50; i++) {
        doc = await servedConsensus(a.url);
        if (doc && openTrustedConsensus(doc, trust).consensus.serial >= serial && doc.signatures.length === 3)
          break;
        await sleep(200);
      }
      assert.ok(doc, `${a.url} serves a consensus`);
      const opened = openTrustedConsensus(doc, trust);
      assert.equal(doc.signatures.length, 3);
      assert.equal(opened.consensus.relays.length, 5);
    }
  });

  it('a client of the set fetches a 10 MiB file byte for byte', async () => {
    const file = join(out, 'big.bin');
    const r = await runAllium(
      ['fetch', `${web.url}/random10m`, '--authorities', net.setFile, '-o', file, '--no-progress'],
      120_000,
    );
    assert.equal(r.code, 0, r.stderr);
    assert.equal(sha256(readFileSync(file)), sha256(files['/random10m']));
  });

  it('each relay serves the consensus as a cache, signed as the authorities signed it', async () => {
    const trust = { kind: 'authorities' as const, set: net.set };
    for (const relay of net.relays) {
      const cache = relay.ready.cache;
      assert.ok(cache, `${relay.name} names its cache in its ready line`);
      // A cache fetches at least every 15 s: bounded wait for one listing the five relays.
      let listed = 0;
      for (let i = 0; i < 150 && listed < 5; i++) {
        const doc = await servedConsensus(`http://${cache}`);
        listed = doc ? openTrustedConsensus(doc, trust).consensus.relays.length : 0;
        if (listed < 5) await sleep(200);
      }
      assert.equal(listed, 5, `${relay.name}'s cache serves a consensus of the five relays`);
    }
  });

  it('a client refuses a consensus only one of three signed, and says "1 of 3 signatures; need 2"', async () => {
    const minority = JSON.stringify({ body: good.body, signatures: good.signatures.slice(0, 1) });
    const fakes = await Promise.all(net.set.authorities.map(() => serveText(minority)));
    try {
      // The same authorities (keys), at addresses that serve only the minority-signed document.
      const liars = join(out, 'liars.json');
      writeFileSync(
        liars,
        JSON.stringify({
          format: 'allium-authorities',
          version: 1,
          authorities: net.set.authorities.map((a, i) => ({ ...a, url: fakes[i].url })),
        }),
      );
      const r = await runAllium(['fetch', `${web.url}/hello`, '--authorities', liars], 60_000);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /1 of 3 signatures; need 2 \(auth2 \([0-9a-f]{8}\): no signature; auth3/);
      assert.match(r.stderr, /ALLIUM_CONSENSUS_SIGNATURE/);
      assert.equal(r.stdout, '', 'nothing fetched');
    } finally {
      await Promise.all(fakes.map((f) => f.close()));
    }
  });

  it('a cache that alters one byte: the client refuses it, fetches from an authority, and the page arrives', async () => {
    const i = good.body.indexOf('"bandwidth":') + '"bandwidth":'.length;
    const altered = JSON.stringify({
      ...good,
      body: `${good.body.slice(0, i)}${good.body[i] === '1' ? '2' : '1'}${good.body.slice(i + 1)}`,
    });
    const bad = await serveText(altered);
    try {
      const r = await runAllium(
        ['fetch', `${web.url}/hello`, '--authorities', net.setFile, '--cache', bad.url],
        60_000,
      );
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, files['/hello'].toString());
      assert.ok(bad.hits() >= 1, 'the altering cache was asked');
      assert.match(r.stderr, /refused the consensus a cache served/);
      assert.match(r.stderr, /0 of 3 signatures; need 2/);
    } finally {
      await bad.close();
    }
  });
});
