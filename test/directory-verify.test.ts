// `allium directory verify` against three authorities and three relays as processes: the consensus
// served matches what the published votes give by the rule of protocol.md §6.8; a vote with one
// byte changed is refused (and the rest no longer give that consensus); votes re-signed by two
// authorities without one relay give a consensus without it, and the check names the relay.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openVote, signVote } from '../src/core/authority-documents.js';
import { loadOrCertifySigner } from '../src/directory/authority-keys.js';
import { DirectoryStore } from '../src/directory/store.js';
import { runAllium } from './helpers/allium-process.js';
import {
  type AuthorityNetwork,
  servedConsensus,
  startAuthorityNetwork,
  waitForConsensus,
} from './helpers/authority-network.js';

let net: AuthorityNetwork;
let consensusFile: string;
let votes: { body: string; signature: string; certificate: unknown }[];
let validAfter: number;

before(async () => {
  net = await startAuthorityNetwork({ roles: ['process', 'process', 'process'], relays: 3, exits: 1 });
  await waitForConsensus(net, 0, (c, sigs) => c.relays.length === 3 && sigs === 3);
  const doc = await servedConsensus(net.set.authorities[0].url);
  assert.ok(doc);
  validAfter = (JSON.parse(doc.body) as { validAfter: number }).validAfter;
  consensusFile = join(net.root, 'consensus.json');
  writeFileSync(consensusFile, JSON.stringify(doc));
  const res = await fetch(`${net.set.authorities[0].url}/v1/authority/votes/${validAfter}`);
  votes = ((await res.json()) as { votes: typeof votes }).votes;
  assert.equal(votes.length, 3, 'auth1 holds the three votes of the period it serves');
});
after(async () => {
  await net?.stop();
});

function writeVotes(name: string, v: unknown[]): string {
  const file = join(net.root, name);
  writeFileSync(file, JSON.stringify({ votes: v }));
  return file;
}

describe('allium directory verify', () => {
  it('fetched from an authority: the consensus matches its votes', async () => {
    const r = await runAllium(['directory', 'verify', '--authorities', net.setFile]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /3 relays, 3 of 3 signatures; need 2/);
    assert.match(r.stdout, /^match: the consensus is what these 3 votes give/m);
  });

  it('from files: the same', async () => {
    const r = await runAllium([
      'directory',
      'verify',
      '--authorities',
      net.setFile,
      '--consensus',
      consensusFile,
      '--votes',
      writeVotes('votes.json', votes),
    ]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^match:/m);
  });

  it('a vote with one byte changed is refused, and the rest do not give the consensus', async () => {
    const tampered = votes.map((v, i) =>
      i === 1
        ? { ...v, body: v.body.replace(/"bandwidth":(\d)/, (_m, d) => `"bandwidth":${(Number(d) + 1) % 10}`) }
        : v,
    );
    assert.notEqual(tampered[1].body, votes[1].body);
    const r = await runAllium([
      'directory',
      'verify',
      '--authorities',
      net.setFile,
      '--consensus',
      consensusFile,
      '--votes',
      writeVotes('votes-tampered.json', tampered),
    ]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /^vote 2: refused: the vote of auth\d \([0-9a-f]+\) does not verify/m);
    assert.match(
      r.stdout,
      /^mismatch: the consensus is not what these votes give: computed from the votes of /m,
    );
  });

  it('votes re-signed by two authorities without one relay: the check names it', async () => {
    const opened = votes.map((v) => openVote(v, net.set, { now: validAfter }));
    const dropped = opened[0].relays[0];
    const resigned = await Promise.all(
      votes.map(async (v, i) => {
        const vote = opened[i];
        if (vote.authority === net.set.authorities[0].id) return v;
        const index = net.set.authorities.findIndex((a) => a.id === vote.authority);
        const dataDir = join(net.root, `auth${index + 1}`);
        const { key } = await new DirectoryStore(dataDir).loadOrCreateKey();
        const { signer } = await loadOrCertifySigner(dataDir, key, Date.now());
        return signVote(signer, { ...vote, relays: vote.relays.filter((r) => r.id !== dropped.id) });
      }),
    );
    const r = await runAllium([
      'directory',
      'verify',
      '--authorities',
      net.setFile,
      '--consensus',
      consensusFile,
      '--votes',
      writeVotes('votes-resigned.json', resigned),
    ]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(
      r.stdout,
      new RegExp(
        `^mismatch: .*lists 1 relays the votes do not: ${dropped.nickname} \\(${dropped.id.slice(0, 8)}\\)`,
        'm',
      ),
    );
  });
});
