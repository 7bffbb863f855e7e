import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { IdentityKey } from '../crypto/keys.js';
import type { AuthoritySet, SignedConsensus, Vote } from '../wire/authority-docs.js';
import type { ConsensusRelay } from '../wire/directory-docs.js';
import {
  type AuthoritySigner,
  certifySigningKey,
  consensusBodyText,
  openCertificate,
  openSignedConsensus,
  openVote,
  signConsensusBody,
  signVote,
} from './authority-documents.js';
import { majorityOf, openAuthoritySet, singleAuthoritySet } from './authority-set.js';
import { computeConsensus } from './consensus-rule.js';
import { DocumentError } from './documents.js';

const numRuns = Number(process.env.FUZZ_RUNS ?? 50);
const NOW = 1_700_000_000_000;
const DAY = 86_400_000;

interface TestAuthority {
  identity: IdentityKey;
  signer: AuthoritySigner;
}

function makeAuthority(times = { published: NOW - DAY, expires: NOW + 30 * DAY }): TestAuthority {
  const identity = IdentityKey.generate();
  const signingKey = IdentityKey.generate();
  return {
    identity,
    signer: {
      authority: identity.id.toString('hex'),
      signingKey,
      certificate: certifySigningKey(identity, signingKey.publicKey, times),
    },
  };
}

const five = Array.from({ length: 5 }, () => makeAuthority());

function setOf(auths: TestAuthority[]): AuthoritySet {
  return {
    authorities: auths.map((a, i) => ({
      nickname: `auth${i + 1}`,
      id: a.identity.id.toString('hex'),
      identityKey: a.identity.publicKey.toString('base64'),
      url: `http://127.0.0.1:${7000 + i}`,
    })),
  };
}

const relay: ConsensusRelay = {
  nickname: 'r1',
  id: 'ab'.repeat(32),
  identityKey: Buffer.alloc(32, 1).toString('base64'),
  onionKey: Buffer.alloc(32, 2).toString('base64'),
  address: '127.0.0.1',
  port: 9001,
  exitPolicy: ['reject *:*'],
  bandwidth: 1000,
  version: 'allium/0.5.0',
  published: NOW - 1000,
  flags: ['Running'],
};

function voteOf(a: TestAuthority, over: Partial<Vote> = {}): Vote {
  return {
    network: 'allium',
    authority: a.signer.authority,
    validAfter: NOW,
    freshUntil: NOW + 60_000,
    validUntil: NOW + 3_600_000,
    relays: [relay],
    ...over,
  };
}

/** The consensus of the five, signed by the first `k`. */
function signedBy(k: number): SignedConsensus {
  const { consensus } = computeConsensus({
    authorities: five.map((a) => a.signer.authority),
    votes: five.map((a) => voteOf(a)),
    validAfter: NOW,
  });
  const body = consensusBodyText(consensus);
  return { body, signatures: five.slice(0, k).map((a) => signConsensusBody(a.signer, body)) };
}

function rejects(fn: () => unknown, code: string, message?: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof DocumentError, String(err));
    assert.equal(err.code, code);
    if (message) assert.match(err.message, message);
    return true;
  });
}

describe('authority set', () => {
  it('reads a set file and checks every id against its key', () => {
    const set = setOf(five);
    const text = JSON.stringify({ format: 'allium-authorities', version: 1, ...set });
    assert.deepEqual(openAuthoritySet(text), set);
    const wrong = structuredClone(set);
    wrong.authorities[2].id = wrong.authorities[1].id.replace(/^./, (c) => (c === 'a' ? 'b' : 'a'));
    rejects(
      () => openAuthoritySet(JSON.stringify({ format: 'allium-authorities', version: 1, ...wrong })),
      'ALLIUM_AUTHORITY_SET_INVALID',
      /authorities\.2\.id/,
    );
  });
  it('a single directory is a set of one, needing one signature', () => {
    const s = singleAuthoritySet('http://127.0.0.1:7000/', five[0].identity.publicKey);
    assert.equal(s.authorities[0].id, five[0].signer.authority);
    assert.equal(s.authorities[0].url, 'http://127.0.0.1:7000');
    assert.equal(majorityOf(1), 1);
    assert.equal(majorityOf(2), 2);
    assert.equal(majorityOf(3), 2);
    assert.equal(majorityOf(9), 5);
  });
});

describe('signing-key certificates', () => {
  const set = setOf(five);
  it('open with the identity key while valid', () => {
    const cert = openCertificate(five[0].signer.certificate, set.authorities[0], { now: NOW });
    assert.equal(cert.signingKey, five[0].signer.signingKey.publicKey.toString('base64'));
  });
  it('are refused for another authority, when expired or not yet valid, or altered', () => {
    rejects(
      () => openCertificate(five[0].signer.certificate, set.authorities[1], { now: NOW }),
      'ALLIUM_CERTIFICATE_INVALID',
      /for another identity key/,
    );
    rejects(
      () => openCertificate(five[0].signer.certificate, set.authorities[0], { now: NOW + 31 * DAY }),
      'ALLIUM_CERTIFICATE_INVALID',
      /expired/,
    );
    rejects(
      () => openCertificate(five[0].signer.certificate, set.authorities[0], { now: NOW - 2 * DAY }),
      'ALLIUM_CERTIFICATE_INVALID',
      /not valid until/,
    );
    const c = five[0].signer.certificate;
    const stretched = { ...c, body: c.body.replace(/"expires":\d+/, `"expires":${NOW + 999 * DAY}`) };
    rejects(
      () => openCertificate(stretched, set.authorities[0], { now: NOW }),
      'ALLIUM_CERTIFICATE_INVALID',
      /not signed by its identity key/,
    );
  });
});

describe('votes', () => {
  const set = setOf(five);
  it('round-trip through signing and opening', () => {
    const v = voteOf(five[1]);
    assert.deepEqual(openVote(JSON.parse(JSON.stringify(signVote(five[1].signer, v))), set, { now: NOW }), v);
  });
  it('are refused from an authority outside the set, altered, or naming another authority', () => {
    const stranger = makeAuthority();
    rejects(
      () => openVote(signVote(stranger.signer, voteOf(stranger)), set, { now: NOW }),
      'ALLIUM_VOTE_INVALID',
      /not a configured authority/,
    );
    const doc = signVote(five[1].signer, voteOf(five[1]));
    rejects(
      () => openVote({ ...doc, body: doc.body.replace('"port":9001', '"port":9002') }, set, { now: NOW }),
      'ALLIUM_VOTE_SIGNATURE',
    );
    // auth2's signed vote carried under auth3's certificate: the signature is not auth3's key's.
    rejects(
      () => openVote({ ...doc, certificate: five[2].signer.certificate }, set, { now: NOW }),
      'ALLIUM_VOTE_SIGNATURE',
    );
    assert.throws(() => signVote(five[1].signer, voteOf(five[2])), /not the signing authority/);
  });
});

describe('the client acceptance rule', () => {
  const set = setOf(five);
  it('accepts a consensus signed by a strict majority of the configured authorities', () => {
    for (const k of [3, 4, 5]) {
      const { consensus, signers } = openSignedConsensus(signedBy(k), set, { now: NOW });
      assert.equal(signers.length, k);
      assert.equal(consensus.relays.length, 1);
    }
  });
  it('refuses a minority, naming how many it has, how many it needs, and what is missing', () => {
    rejects(
      () => openSignedConsensus(signedBy(2), set, { now: NOW }),
      'ALLIUM_CONSENSUS_SIGNATURE',
      /^consensus refused: 2 of 5 signatures; need 3 \(auth3 \([0-9a-f]{8}\): no signature; auth4 .*: no signature; auth5 .*: no signature\)$/,
    );
    rejects(
      () => openSignedConsensus({ body: signedBy(1).body, signatures: [] }, set, { now: NOW }),
      'ALLIUM_CONSENSUS_SIGNATURE',
      /unsigned/,
    );
  });
  it('counts each authority once, however often its signature is repeated', () => {
    const doc = signedBy(2);
    const padded = { ...doc, signatures: [...doc.signatures, doc.signatures[0], doc.signatures[1]] };
    rejects(() => openSignedConsensus(padded, set, { now: NOW }), 'ALLIUM_CONSENSUS_SIGNATURE', /2 of 5/);
  });
  it('ignores signatures of authorities not in the set', () => {
    const doc = signedBy(2);
    const strangers = [makeAuthority(), makeAuthority()].map((a) => signConsensusBody(a.signer, doc.body));
    rejects(
      () => openSignedConsensus({ ...doc, signatures: [...doc.signatures, ...strangers] }, set, { now: NOW }),
      'ALLIUM_CONSENSUS_SIGNATURE',
      /2 of 5/,
    );
  });
  it('does not count a signature over other bytes, or one whose certificate expired', () => {
    const doc = signedBy(3);
    const altered = { ...doc, body: doc.body.replace('"port":9001', '"port":9002') };
    rejects(
      () => openSignedConsensus(altered, set, { now: NOW }),
      'ALLIUM_CONSENSUS_SIGNATURE',
      /0 of 5 signatures; need 3 \(auth1 \([0-9a-f]{8}\): signature does not verify/,
    );
    const shortLived = makeAuthority({ published: NOW - DAY, expires: NOW + 1000 });
    const mixed = [...five.slice(0, 2), shortLived];
    const mixedSet = setOf(mixed);
    const body = doc.body;
    const all = { body, signatures: mixed.map((a) => signConsensusBody(a.signer, body)) };
    assert.equal(openSignedConsensus(all, mixedSet, { now: NOW }).signers.length, 3);
    assert.equal(openSignedConsensus(all, mixedSet, { now: NOW + 1000 + 120_000 }).signers.length, 2);
    rejects(
      () => openSignedConsensus(all, setOf([...mixed, makeAuthority()]), { now: NOW + 1000 + 120_000 }),
      'ALLIUM_CONSENSUS_SIGNATURE',
      /2 of 4 signatures; need 3 .*auth3 .*expired/,
    );
  });
  it('keeps the window and rollback checks', () => {
    rejects(
      () => openSignedConsensus(signedBy(3), set, { now: NOW + 3_600_000 + 61_000 }),
      'ALLIUM_CONSENSUS_EXPIRED',
    );
    rejects(
      () => openSignedConsensus(signedBy(3), set, { now: NOW, minSerial: NOW + 1 }),
      'ALLIUM_CONSENSUS_ROLLBACK',
    );
  });
  it('no subset of fewer than a majority of signatures is ever accepted', () => {
    const full = signedBy(5);
    fc.assert(
      fc.property(fc.subarray([0, 1, 2, 3, 4]), fc.boolean(), (keep, dup) => {
        const sigs = keep.map((i) => full.signatures[i]);
        const doc = { body: full.body, signatures: dup ? [...sigs, ...sigs] : sigs };
        if (keep.length >= 3)
          assert.equal(openSignedConsensus(doc, set, { now: NOW }).signers.length, keep.length);
        else
          assert.throws(() => openSignedConsensus(doc, set, { now: NOW }), {
            code: 'ALLIUM_CONSENSUS_SIGNATURE',
          });
      }),
      { numRuns },
    );
  });
});
