// Authorities that misbehave, with the honest ones and the relays as processes: one whose clock is ten
// minutes ahead (its vote and signature count for nothing, the others form the consensus and say
// why); one that signs a different consensus than the votes give (no client accepts it, the honest
// pages report it); and two that cannot reach each other (the third passes votes on, a consensus
// forms, the pages say who cannot be reached and why).
import assert from 'node:assert/strict';
import net, { type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { consensusBodyText, openVote, signConsensusBody } from '../src/core/authority-documents.js';
import { openTrustedConsensus } from '../src/core/consensus-trust.js';
import { sha256 } from '../src/crypto/keys.js';
import { loadOrCertifySigner } from '../src/directory/authority-keys.js';
import type { Directory } from '../src/directory/directory.js';
import { DirectoryStore } from '../src/directory/store.js';
import type { AlliumError } from '../src/errors.js';
import { ConsensusSources } from '../src/net/consensus-sources.js';
import type { AuthorityConsensus } from '../src/wire/authority-docs.js';
import { type AlliumProcess, runAllium } from './helpers/allium-process.js';
import {
  type AuthorityNetwork,
  authorityRow,
  servedConsensus,
  startAuthorityNetwork,
  statusPageMatching,
  waitForConsensus,
} from './helpers/authority-network.js';
import { makeFiles, startHttpServer, type WebServer } from './helpers/web.js';

const files = makeFiles();
let web: WebServer;
before(async () => {
  web = await startHttpServer(files);
});
after(async () => {
  await web?.close();
});

async function fetchWorks(setFile: string): Promise<void> {
  const r = await runAllium(['fetch', `${web.url}/hello`, '--authorities', setFile], 60_000);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, files['/hello'].toString());
}

describe('an authority whose clock is ten minutes ahead', () => {
  const OFFSET_MS = 10 * 60_000;
  let n: AuthorityNetwork;
  before(async () => {
    n = await startAuthorityNetwork({
      roles: ['process', 'process', 'hostile'],
      relays: 4,
      exits: 2,
      hostileOptions: { now: () => Date.now() + OFFSET_MS, reachabilityCheck: undefined },
    });
  });
  after(async () => {
    await n?.stop();
  });

  it('the other two form the consensus without it; a fetch works', async () => {
    await waitForConsensus(n, 0, (c, sigs) => c.relays.length === 4 && sigs === 2);
    const doc = await servedConsensus(n.set.authorities[0].url);
    assert.ok(doc);
    const body = JSON.parse(doc.body) as AuthorityConsensus;
    assert.deepEqual(
      [...body.authorities].sort(),
      [n.set.authorities[0].id, n.set.authorities[1].id].sort(),
      'computed from the two honest votes',
    );
    await fetchWorks(n.setFile);
  });

  it('its vote is for a period of its own, under a certificate not yet valid: refused', async () => {
    const off = n.set.authorities[2];
    // Bounded: the period it is in now, as it says, and its vote of it (made as the period starts).
    let own: unknown;
    for (let i = 0; i < 20 && !own; i++) {
      const { current } = (await (await fetch(`${off.url}/v1/authority/votes/0`)).json()) as {
        current: number;
      };
      assert.ok(current > Date.now() + OFFSET_MS / 2, 'its period is ten minutes ahead');
      const { votes } = (await (await fetch(`${off.url}/v1/authority/votes/${current}`)).json()) as {
        votes: { body: string }[];
      };
      own = votes.find((v) => v.body.includes(off.id));
      if (!own) await sleep(100);
    }
    assert.ok(own, 'it published a vote for the period its clock says');
    assert.throws(
      () => openVote(own, n.set, { now: Date.now() }),
      (e: AlliumError) =>
        e.code === 'ALLIUM_CERTIFICATE_INVALID' && /is not valid until .*check the clocks/.test(e.message),
    );
  });

  it("the honest authorities' pages and logs say its clock is off", async () => {
    const off = n.set.authorities[2];
    for (const i of [0, 1]) {
      const page = await statusPageMatching(
        n.set.authorities[i].url,
        /check its clock\)<\/td><td class="signature missing">missing: has computed/,
      );
      const row = authorityRow(page, off.id);
      assert.match(
        row,
        /missing: no vote for this period: its period starts at \S+, ours at \S+ \(check its clock\)/,
        `auth${i + 1}'s page`,
      );
      assert.match(
        row,
        /class="signature missing">missing: has computed no consensus for this period: no vote/,
      );
      await (n.authorities[i] as AlliumProcess).waitForLog(/check its clock.*without this authority's vote/);
    }
  });
});

describe('an authority that signs a different consensus (equivocation)', () => {
  let n: AuthorityNetwork;
  /** The bodies the hostile signed instead of the one the votes give, by digest. */
  const forged = new Set<string>();
  before(async () => {
    n = await startAuthorityNetwork({
      roles: ['process', 'process', 'hostile'],
      relays: 4,
      exits: 2,
      hostile: async (dir: Directory) => {
        const store = new DirectoryStore(dir.dataDir);
        const { key } = await store.loadOrCreateKey();
        const { signer } = await loadOrCertifySigner(dir.dataDir, key, Date.now());
        const voting = dir.voting;
        assert.ok(voting);
        const periods = (voting as unknown as { periods: Map<number, { computed: { body: string } | null }> })
          .periods;
        // Its consensus of a period with the last relay dropped: what it signs for its peers and
        // serves to clients.
        const other = (body: string) => {
          const c = JSON.parse(body) as AuthorityConsensus;
          const text = consensusBodyText({ ...c, relays: c.relays.slice(0, -1) });
          const digest = sha256(Buffer.from(text, 'utf8')).toString('hex');
          forged.add(digest);
          return { text, digest, signature: signConsensusBody(signer, text) };
        };
        voting.signatureFor = (validAfter) => {
          const computed = periods.get(validAfter)?.computed;
          if (!computed) return null;
          const o = other(computed.body);
          return { digest: o.digest, signature: o.signature };
        };
        const honest = voting.served.bind(voting);
        dir.service.consensusJson = () => {
          const served = honest();
          if (!served) return JSON.stringify({ body: '{}', signatures: [] });
          const doc = JSON.parse(served.json) as { body: string; signatures: { authority: string }[] };
          const o = other(doc.body);
          // With the honest signatures beside its own: they are of other bytes, so they fail.
          return JSON.stringify({
            body: o.text,
            signatures: [o.signature, ...doc.signatures.filter((s) => s.authority !== signer.authority)],
          });
        };
      },
    });
  });
  after(async () => {
    await n?.stop();
  });

  it('the honest two sign the consensus of the votes; its own is refused with a minority', async () => {
    await waitForConsensus(n, 0, (c, sigs) => c.relays.length === 4 && sigs === 2);
    const trust = { kind: 'authorities' as const, set: n.set };
    // Its own of the consensus with the four relays (one dropped): until it holds that one, it may
    // still serve the forgery of an earlier, empty consensus, which drops nothing.
    const forgedRelays = (d: typeof doc) =>
      d && d.body !== '{}' ? (JSON.parse(d.body) as { relays: unknown[] }).relays.length : -1;
    // And its peers' signatures gathered: a consensus of a new voting period is served at first with
    // its own signature alone, then with the others' as they come.
    const shaped = (d: typeof doc) => forgedRelays(d) === 3 && d?.signatures.length === 3;
    let doc = await servedConsensus(n.set.authorities[2].url);
    for (let i = 0; i < 40 && !shaped(doc); i++) {
      await sleep(250);
      doc = await servedConsensus(n.set.authorities[2].url);
    }
    assert.equal(forgedRelays(doc), 3, 'it serves the consensus of the four relays with one dropped');
    assert.ok(doc && doc.signatures.length === 3, 'it serves its own with three signatures attached');
    assert.throws(
      () => openTrustedConsensus(doc, trust),
      (e: AlliumError) =>
        e.code === 'ALLIUM_CONSENSUS_SIGNATURE' &&
        /1 of 3 signatures; need 2/.test(e.message) &&
        /auth1 \([0-9a-f]+\): signature does not verify/.test(e.message),
    );
  });

  it('a client asking the authorities in random order never takes its consensus', async () => {
    const trust = { kind: 'authorities' as const, set: n.set };
    for (let i = 0; i < 8; i++) {
      const sources = new ConsensusSources({ trust });
      const got = await sources.fetchConsensus({});
      const digest = sha256(Buffer.from(got.document.body, 'utf8')).toString('hex');
      assert.ok(!forged.has(digest), `fetch ${i} took the forged consensus from ${sources.lastSource}`);
      assert.equal(got.consensus.relays.length, 4);
    }
    await fetchWorks(n.setFile);
  });

  it("the honest authorities' pages and logs report it", async () => {
    const hostile = n.set.authorities[2];
    for (const i of [0, 1]) {
      const page = await statusPageMatching(n.set.authorities[i].url, /signed a different consensus/);
      assert.match(
        authorityRow(page, hostile.id),
        /class="signature missing">missing: signed a different consensus \(SHA-256 [0-9a-f]{16}\.\.\., ours [0-9a-f]{16}\.\.\.\)/,
        `auth${i + 1}'s page`,
      );
      await (n.authorities[i] as AlliumProcess).waitForLog(/an authority signed a different consensus/);
    }
  });
});

describe('two authorities that cannot reach each other', () => {
  let n: AuthorityNetwork;
  let hole: net.Server;
  const held: Socket[] = [];
  before(async () => {
    // A black hole: takes connections and never answers.
    hole = net.createServer((s) => {
      held.push(s);
      s.on('error', () => {});
    });
    await new Promise<void>((r) => hole.listen(0, '127.0.0.1', r));
    const holeUrl = `http://127.0.0.1:${(hole.address() as net.AddressInfo).port}`;
    n = await startAuthorityNetwork({
      roles: ['process', 'process', 'process'],
      relays: 4,
      exits: 2,
      // auth1 reaches auth2 only through the hole, and auth2 auth1; auth3 reaches both.
      setFor: (i, set) => ({
        authorities: set.authorities.map((a, j) =>
          (i === 0 && j === 1) || (i === 1 && j === 0) ? { ...a, url: holeUrl } : a,
        ),
      }),
    });
  });
  after(async () => {
    await n?.stop();
    for (const s of held) s.destroy();
    await new Promise<void>((r) => hole?.close(() => r()));
  });

  it('a consensus of the four relays forms, signed by a majority; a fetch works', async () => {
    await waitForConsensus(n, 2, (c, sigs) => c.relays.length === 4 && sigs >= 2);
    await fetchWorks(n.setFile);
  });

  it('the pages of the two say the other cannot be reached, and why', async () => {
    for (const [i, j] of [
      [0, 1],
      [1, 0],
    ]) {
      const other = n.set.authorities[j];
      const page = await statusPageMatching(
        n.set.authorities[i].url,
        new RegExp(
          `data-authority-id="${other.id}".*unreachable.*class="signature missing">missing: unreachable`,
        ),
      );
      const row = authorityRow(page, other.id);
      assert.match(
        row,
        /class="vote[^"]*">[^<]*unreachable: [^<]*no answer within \d+ ms/,
        `auth${i + 1}'s page says why it lacks auth${j + 1}'s vote from auth${j + 1} itself`,
      );
      assert.match(row, /class="signature missing">missing: unreachable: [^<]*no answer within \d+ ms/);
    }
  });
});
