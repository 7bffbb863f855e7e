import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  type AuthorityConsensus,
  type AuthoritySet,
  isAuthorityUrl,
  MAX_AUTHORITIES,
  MAX_CONSENSUS_SIGNATURES,
  parseAuthorityConsensusBody,
  parseAuthoritySetText,
  parseCertificateBody,
  parseConsensusSignature,
  parseSignedConsensus,
  parseVoteBody,
  parseVoteDocument,
  type SigningKeyCertificate,
  serializeAuthorityConsensus,
  serializeAuthoritySet,
  serializeCertificate,
  serializeVote,
  type Vote,
} from './authority-docs.js';
import { type ConsensusRelay, DirectoryDocError } from './directory-docs.js';

const numRuns = Number(process.env.FUZZ_RUNS ?? 200);
const KEY_A = Buffer.alloc(32, 1).toString('base64');
const KEY_B = Buffer.alloc(32, 2).toString('base64');
const ID_A = 'aa'.repeat(32);
const ID_B = 'bb'.repeat(32);

function relay(id: string, over: Partial<ConsensusRelay> = {}): ConsensusRelay {
  return {
    nickname: 'r1',
    id,
    identityKey: KEY_A,
    onionKey: KEY_B,
    address: '127.0.0.1',
    port: 9001,
    exitPolicy: ['reject *:*'],
    bandwidth: 5,
    version: 'allium/0.5.0',
    published: 10,
    flags: ['Running'],
    ...over,
  };
}

const set: AuthoritySet = {
  authorities: [
    { nickname: 'auth1', id: ID_A, identityKey: KEY_A, url: 'http://127.0.0.1:7000' },
    { nickname: 'auth2', id: ID_B, identityKey: KEY_B, url: 'http://[::1]:7001' },
  ],
};
const cert: SigningKeyCertificate = { identityKey: KEY_A, signingKey: KEY_B, published: 1, expires: 2 };
const vote: Vote = {
  network: 'allium',
  authority: ID_A,
  validAfter: 1000,
  freshUntil: 2000,
  validUntil: 3000,
  relays: [relay(ID_A), relay(ID_B)],
};
const consensus: AuthorityConsensus = {
  network: 'allium',
  serial: 1000,
  validAfter: 1000,
  freshUntil: 2000,
  validUntil: 3000,
  authorities: [ID_A, ID_B],
  relays: [relay(ID_A)],
};
const envelope = { body: 'x', signature: 'y' };

function rejects(fn: () => unknown, code: string, field?: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof DirectoryDocError, `expected DirectoryDocError, got ${String(err)}`);
    assert.equal(err.code, code);
    if (field !== undefined) assert.equal(err.field, field);
    return true;
  });
}

describe('authority set files', () => {
  it('round-trip, with URLs without their trailing slash', () => {
    assert.deepEqual(parseAuthoritySetText(serializeAuthoritySet(set)), set);
    const slashed = serializeAuthoritySet({
      authorities: [{ ...set.authorities[0], url: 'http://127.0.0.1:7000/' }],
    });
    assert.equal(parseAuthoritySetText(slashed).authorities[0].url, 'http://127.0.0.1:7000');
  });
  it('refuse repeats, empty and oversized sets, and URLs with paths', () => {
    const text = (authorities: unknown) =>
      JSON.stringify({ format: 'allium-authorities', version: 1, authorities });
    const a = set.authorities[0];
    rejects(
      () => parseAuthoritySetText(text([a, { ...a, nickname: 'x' }])),
      'ALLIUM_AUTHORITY_SET_INVALID',
      'authorities.1.id',
    );
    rejects(
      () => parseAuthoritySetText(text([a, { ...set.authorities[1], url: `${a.url}/` }])),
      'ALLIUM_AUTHORITY_SET_INVALID',
      'authorities.1.url',
    );
    rejects(() => parseAuthoritySetText(text([])), 'ALLIUM_AUTHORITY_SET_INVALID', 'authorities');
    rejects(
      () => parseAuthoritySetText(text(Array.from({ length: MAX_AUTHORITIES + 1 }, () => a))),
      'ALLIUM_AUTHORITY_SET_INVALID',
      'authorities',
    );
    rejects(
      () => parseAuthoritySetText(text([{ ...a, url: 'http://h:1/v1' }])),
      'ALLIUM_AUTHORITY_SET_INVALID',
      'authorities.0.url',
    );
    rejects(() => parseAuthoritySetText('{'), 'ALLIUM_AUTHORITY_SET_INVALID');
  });
  it('accept only plain http(s) URLs', () => {
    for (const ok of ['http://127.0.0.1:7000', 'https://dir.example.org', 'http://[::1]:80/'])
      assert.ok(isAuthorityUrl(ok), ok);
    for (const bad of ['ftp://h', 'http://h/x', 'http://u:p@h', 'http://h?x=1', 'h:7000', '']) {
      assert.equal(isAuthorityUrl(bad), false, bad);
    }
  });
});

describe('certificates, votes and consensuses', () => {
  it('round-trip through their canonical text', () => {
    assert.deepEqual(parseCertificateBody(serializeCertificate(cert)), cert);
    assert.deepEqual(parseVoteBody(serializeVote(vote)), vote);
    assert.deepEqual(parseAuthorityConsensusBody(serializeAuthorityConsensus(consensus)), consensus);
  });
  it('refuse relays out of order or repeated, authorities out of order, and inverted times', () => {
    rejects(
      () => parseVoteBody(serializeVote({ ...vote, relays: [relay(ID_B), relay(ID_A)] })),
      'ALLIUM_VOTE_INVALID',
      'relays.1.id',
    );
    rejects(
      () => parseVoteBody(serializeVote({ ...vote, relays: [relay(ID_A), relay(ID_A)] })),
      'ALLIUM_VOTE_INVALID',
      'relays.1.id',
    );
    rejects(
      () =>
        parseAuthorityConsensusBody(serializeAuthorityConsensus({ ...consensus, authorities: [ID_B, ID_A] })),
      'ALLIUM_CONSENSUS_INVALID',
      'authorities.1',
    );
    rejects(
      () => parseVoteBody(serializeVote({ ...vote, freshUntil: 4000 })),
      'ALLIUM_VOTE_INVALID',
      'validUntil',
    );
    rejects(
      () => parseCertificateBody(serializeCertificate({ ...cert, expires: 1 })),
      'ALLIUM_CERTIFICATE_INVALID',
    );
  });
  it('cap the signatures a consensus document carries', () => {
    const sig = { authority: ID_A, certificate: envelope, signature: 'z' };
    assert.equal(parseSignedConsensus({ body: 'b', signatures: [sig] }).signatures.length, 1);
    rejects(
      () =>
        parseSignedConsensus({
          body: 'b',
          signatures: Array.from({ length: MAX_CONSENSUS_SIGNATURES + 1 }, () => sig),
        }),
      'ALLIUM_CONSENSUS_INVALID',
      'signatures',
    );
  });
});

describe('authority document parsers on arbitrary input (fast-check)', () => {
  const onlyTyped = (fn: () => unknown) => {
    try {
      fn();
    } catch (err) {
      if (!(err instanceof DirectoryDocError)) throw err;
    }
  };
  const mutated = <T extends object>(base: T) =>
    fc.tuple(fc.constantFrom(...Object.keys(base)), fc.anything()).map(([k, v]) => ({ ...base, [k]: v }));
  const text = <T extends object>(base: T) =>
    fc.oneof(
      fc.string(),
      fc.json(),
      mutated(base).map((o) => JSON.stringify(o)),
    );
  const value = <T extends object>(base: T) => fc.oneof(fc.anything(), mutated(base));
  const setDoc = { format: 'allium-authorities', version: 1, authorities: set.authorities };

  const cases: [string, fc.Arbitrary<unknown>, (x: unknown) => unknown][] = [
    ['parseAuthoritySetText', text(setDoc), (s) => parseAuthoritySetText(s as string)],
    ['parseCertificateBody', text(cert), (s) => parseCertificateBody(s as string)],
    ['parseVoteBody', text(vote), (s) => parseVoteBody(s as string)],
    ['parseAuthorityConsensusBody', text(consensus), (s) => parseAuthorityConsensusBody(s as string)],
    ['parseVoteDocument', value({ ...envelope, certificate: envelope }), parseVoteDocument],
    ['parseSignedConsensus', value({ body: 'b', signatures: [] }), parseSignedConsensus],
    [
      'parseConsensusSignature',
      value({ authority: ID_A, certificate: envelope, signature: 's' }),
      parseConsensusSignature,
    ],
  ];
  for (const [name, arb, parse] of cases) {
    it(`${name} throws only DirectoryDocError`, () => {
      fc.assert(
        fc.property(arb, (x) => onlyTyped(() => parse(x))),
        { numRuns },
      );
    });
  }
  it('a valid vote always round-trips', () => {
    const arb = fc.record({
      validAfter: fc.nat({ max: 1e12 }),
      fresh: fc.nat({ max: 1e6 }),
      valid: fc.nat({ max: 1e6 }),
      relays: fc.uniqueArray(fc.stringMatching(/^[0-9a-f]{64}$/), { maxLength: 5 }),
      bandwidth: fc.nat(),
    });
    fc.assert(
      fc.property(arb, (o) => {
        const v: Vote = {
          network: 'allium',
          authority: ID_B,
          validAfter: o.validAfter,
          freshUntil: o.validAfter + o.fresh,
          validUntil: o.validAfter + o.fresh + o.valid,
          relays: [...o.relays].sort().map((id) => relay(id, { bandwidth: o.bandwidth })),
        };
        assert.deepEqual(parseVoteBody(serializeVote(v)), v);
      }),
      { numRuns },
    );
  });
});
