// Failures of an authority set, with authorities and relays as processes: one authority down for the
// whole test (the consensus still forms, clients still work, the others say which vote is missing
// and why), and a hostile authority that lists ten relays of its own (no client circuit ever uses
// them, and the honest authorities' status pages report the disagreement).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { AlliumClient } from '../src/client/client.js';
import { signDescriptor } from '../src/core/documents.js';
import { DirectoryClient } from '../src/net/directory-client.js';
import { type AlliumProcess, runAllium } from './helpers/allium-process.js';
import {
  type AuthorityNetwork,
  startAuthorityNetwork,
  statusPageMatching,
  waitForConsensus,
} from './helpers/authority-network.js';
import { makeTestRelay } from './helpers/relay-fixtures.js';
import { makeFiles, startHttpServer, type WebServer } from './helpers/web.js';

const files = makeFiles();
let web: WebServer;
before(async () => {
  web = await startHttpServer(files);
});
after(async () => {
  await web?.close();
});

describe('one authority of three down for the whole test', () => {
  let net: AuthorityNetwork;
  before(async () => {
    net = await startAuthorityNetwork({ roles: ['process', 'process', 'down'], relays: 4, exits: 2 });
  });
  after(async () => {
    await net?.stop();
  });

  it('the other two form a consensus and sign it; a client of the set fetches a page', async () => {
    const c = await waitForConsensus(net, 0, (c, sigs) => c.relays.length === 4 && sigs === 2);
    assert.equal(c.relays.length, 4);
    const r = await runAllium(['fetch', `${web.url}/hello`, '--authorities', net.setFile], 60_000);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, files['/hello'].toString());
  });

  it("the honest authorities' status pages and logs say which vote is missing and why", async () => {
    const down = net.set.authorities[2];
    for (const i of [0, 1]) {
      const page = await statusPageMatching(net.set.authorities[i].url, /missing: unreachable/);
      const row = page.split('\n').find((l) => l.includes(`data-authority-id="${down.id}"`)) ?? '';
      assert.match(row, /missing: unreachable: cannot reach the directory/, `auth${i + 1}'s page`);
      const proc = net.authorities[i] as AlliumProcess;
      await proc.waitForLog(/computed the consensus without this authority's vote/);
    }
  });
});

describe('a hostile authority that lists ten relays of its own', () => {
  let net: AuthorityNetwork;
  const own = Array.from({ length: 10 }, (_, i) =>
    makeTestRelay({ nickname: `mine${i}`, port: 9300 + i, exitPolicy: ['accept *:*'] }),
  );
  const ownIds = new Set(own.map((r) => r.descriptor.id));
  before(async () => {
    net = await startAuthorityNetwork({
      roles: ['process', 'process', 'hostile'],
      relays: 4,
      exits: 2,
      hostile: async (dir) => {
        // Its own relays, listed without any check (they do not even exist).
        const c = new DirectoryClient({ url: dir.url, timeoutMs: 5000 });
        for (const r of own) {
          await c.register(signDescriptor(r.identity, { ...r.descriptor, published: Date.now() }));
        }
      },
    });
  });
  after(async () => {
    await net?.stop();
  });

  it('the consensus lists the four honest relays and none of its ten', async () => {
    const c = await waitForConsensus(net, 0, (c, sigs) => c.relays.length >= 4 && sigs >= 2);
    assert.equal(c.relays.length, 4);
    for (const r of c.relays) assert.ok(!ownIds.has(r.id), `${r.nickname} is one of the hostile's own`);
  });

  it('no client circuit goes through a relay only it listed; a fetch through the network works', async () => {
    const client = await AlliumClient.start({
      authorities: net.set,
      startTimeoutMs: 30_000,
      spareCircuits: 0,
    });
    try {
      for (let i = 0; i < 8; i++) {
        const circ = await client.buildCircuit({ isolation: `probe${i}` });
        for (const hop of circ.hops) {
          assert.ok(!ownIds.has(hop.relay.id), `circuit ${i} went through ${hop.relay.nickname}`);
        }
      }
    } finally {
      await client.close();
    }
    const r = await runAllium(['fetch', `${web.url}/hello`, '--authorities', net.setFile], 60_000);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, files['/hello'].toString());
  });

  it("the honest authorities' status pages and logs report the disagreement", async () => {
    const hostile = net.set.authorities[2];
    for (const i of [0, 1]) {
      const page = await statusPageMatching(
        net.set.authorities[i].url,
        /10 of its relays not in the consensus/,
      );
      const row = page.split('\n').find((l) => l.includes(`data-authority-id="${hostile.id}"`)) ?? '';
      assert.match(
        row,
        /held \(14 relays\); disagrees: 10 of its relays not in the consensus \(fewer than 2 authorities voted for them\)/,
        `auth${i + 1}'s page`,
      );
      await (net.authorities[i] as AlliumProcess).waitForLog(/votes for relays no majority lists/);
    }
  });
});
