import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { makeTestRelay } from '../../test/helpers/relay-fixtures.js';
import { IdentityKey } from '../crypto/keys.js';
import { type Consensus, type SignedEnvelope, serializeDescriptor } from '../wire/directory-docs.js';
import {
  DocumentError,
  openConsensus,
  openConsensusJson,
  openDescriptor,
  openWithdraw,
  signConsensus,
  signDescriptor,
  signWithdraw,
} from './documents.js';

const numRuns = Number(process.env.FUZZ_RUNS ?? 200);

function rejects(fn: () => unknown, code: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof DocumentError, `expected DocumentError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return true;
  });
}

/** Flips one bit of the base64 signature's bytes. */
function flipSignature(env: SignedEnvelope): SignedEnvelope {
  const sig = Buffer.from(env.signature, 'base64');
  sig[10] ^= 0x01;
  return { ...env, signature: sig.toString('base64') };
}

describe('descriptors', () => {
  it('sign then open returns the descriptor', () => {
    const { identity, descriptor } = makeTestRelay();
    const env = signDescriptor(identity, descriptor);
    assert.deepEqual(JSON.parse(env.body), descriptor);
    assert.equal(Buffer.from(env.signature, 'base64').length, 64);
    assert.deepEqual(openDescriptor(env), descriptor);
  });

  it('signs "allium-descriptor-v1\\n" | body (§6.1)', () => {
    const { identity, descriptor } = makeTestRelay();
    const env = signDescriptor(identity, descriptor);
    const expected = identity.sign('allium-descriptor-v1\n', Buffer.from(env.body, 'utf8'));
    assert.equal(env.signature, expected.toString('base64'));
  });

  it('refuses a bad signature, a changed body, and a signature of another kind', () => {
    const { identity, descriptor } = makeTestRelay();
    const env = signDescriptor(identity, descriptor);
    rejects(() => openDescriptor(flipSignature(env)), 'ALLIUM_DESCRIPTOR_SIGNATURE');
    const changed = { ...env, body: serializeDescriptor({ ...descriptor, port: descriptor.port + 1 }) };
    rejects(() => openDescriptor(changed), 'ALLIUM_DESCRIPTOR_SIGNATURE');
    const asWithdraw = identity
      .sign('allium-withdraw-v1\n', Buffer.from(env.body, 'utf8'))
      .toString('base64');
    rejects(() => openDescriptor({ ...env, signature: asWithdraw }), 'ALLIUM_DESCRIPTOR_SIGNATURE');
    rejects(() => openDescriptor({ ...env, signature: '' }), 'ALLIUM_DESCRIPTOR_SIGNATURE');
  });

  it('refuses a descriptor whose id is not SHA-256(identityKey), even when validly signed', () => {
    const { identity, descriptor } = makeTestRelay();
    const bad = { ...descriptor, id: 'ab'.repeat(32) };
    const body = serializeDescriptor(bad);
    const env = {
      body,
      signature: identity.sign('allium-descriptor-v1\n', Buffer.from(body, 'utf8')).toString('base64'),
    };
    rejects(() => openDescriptor(env), 'ALLIUM_DESCRIPTOR_INVALID');
    rejects(() => signDescriptor(identity, bad), 'ALLIUM_DESCRIPTOR_INVALID');
  });

  it('refuses an exit policy that does not parse', () => {
    const { identity, descriptor } = makeTestRelay({ exitPolicy: ['allow everything'] });
    rejects(() => signDescriptor(identity, descriptor), 'ALLIUM_DESCRIPTOR_INVALID');
    const body = serializeDescriptor(descriptor);
    const env = {
      body,
      signature: identity.sign('allium-descriptor-v1\n', Buffer.from(body, 'utf8')).toString('base64'),
    };
    assert.throws(() => openDescriptor(env), /exitPolicy/);
  });

  it('refuses to sign with a key the descriptor does not name', () => {
    const { descriptor } = makeTestRelay();
    rejects(() => signDescriptor(IdentityKey.generate(), descriptor), 'ALLIUM_DESCRIPTOR_INVALID');
  });

  it('reports malformed envelopes and bodies as ALLIUM_DESCRIPTOR_INVALID', () => {
    rejects(() => openDescriptor({ body: '{', signature: 'AA==' }), 'ALLIUM_DESCRIPTOR_INVALID');
    rejects(() => openDescriptor(null as unknown as SignedEnvelope), 'ALLIUM_DESCRIPTOR_INVALID');
  });

  it('openDescriptor throws only DocumentError on random envelopes (property)', () => {
    const { identity, descriptor } = makeTestRelay();
    const env = signDescriptor(identity, descriptor);
    const arb = fc.oneof(
      fc.anything(),
      fc.record({ body: fc.string(), signature: fc.string() }),
      fc.record({
        body: fc.constant(env.body),
        signature: fc.base64String({ minLength: 88, maxLength: 88 }),
      }),
    );
    fc.assert(
      fc.property(arb, (v) => {
        try {
          openDescriptor(v as SignedEnvelope);
          assert.fail('a random envelope opened');
        } catch (err) {
          if (!(err instanceof DocumentError)) throw err;
        }
      }),
      { numRuns },
    );
  });
});

describe('consensus', () => {
  const dirKey = IdentityKey.generate();
  const now = 1_700_000_000_000;
  const base = (over: Partial<Consensus> = {}): Consensus => ({
    network: 'allium',
    serial: 10,
    validAfter: now - 1000,
    freshUntil: now + 60_000,
    validUntil: now + 3_600_000,
    directoryKey: dirKey.publicKey.toString('base64'),
    relays: [{ ...makeTestRelay().descriptor, flags: ['Running', 'Exit'] }],
    ...over,
  });

  it('round-trips through sign and open', () => {
    const c = base();
    assert.deepEqual(openConsensus(signConsensus(dirKey, c), dirKey.publicKey, { now }), c);
  });

  it('refuses a forged or unsigned consensus: ALLIUM_CONSENSUS_SIGNATURE', () => {
    const env = signConsensus(dirKey, base());
    rejects(() => openConsensus(flipSignature(env), dirKey.publicKey, { now }), 'ALLIUM_CONSENSUS_SIGNATURE');
    const other = IdentityKey.generate();
    // Signed by someone else who claims to be the directory.
    const forged = signConsensus(other, base({ directoryKey: other.publicKey.toString('base64') }));
    rejects(() => openConsensus(forged, dirKey.publicKey, { now }), 'ALLIUM_CONSENSUS_SIGNATURE');
    rejects(
      () => openConsensus({ body: env.body, signature: '' }, dirKey.publicKey, { now }),
      'ALLIUM_CONSENSUS_SIGNATURE',
    );
    rejects(
      () => openConsensusJson({ body: env.body }, dirKey.publicKey, { now }),
      'ALLIUM_CONSENSUS_SIGNATURE',
    );
    rejects(() => openConsensusJson('nope', dirKey.publicKey, { now }), 'ALLIUM_CONSENSUS_INVALID');
    // A relay added after signing.
    const tampered = JSON.parse(env.body) as Consensus;
    tampered.relays.push({ ...makeTestRelay().descriptor, flags: ['Running'] });
    rejects(
      () => openConsensus({ ...env, body: JSON.stringify(tampered) }, dirKey.publicKey, { now }),
      'ALLIUM_CONSENSUS_SIGNATURE',
    );
  });

  it('refuses an expired or not-yet-valid consensus: ALLIUM_CONSENSUS_EXPIRED', () => {
    const env = signConsensus(dirKey, base());
    rejects(
      () => openConsensus(env, dirKey.publicKey, { now: now + 3_600_000 + 60_001 }),
      'ALLIUM_CONSENSUS_EXPIRED',
    );
    rejects(
      () => openConsensus(env, dirKey.publicKey, { now: now + 3_700_000, skewMs: 0 }),
      'ALLIUM_CONSENSUS_EXPIRED',
    );
    rejects(
      () => openConsensus(env, dirKey.publicKey, { now: now - 1000 - 60_001 }),
      'ALLIUM_CONSENSUS_EXPIRED',
    );
    // Within the skew it is accepted.
    assert.equal(openConsensus(env, dirKey.publicKey, { now: now + 3_600_000 + 59_000 }).serial, 10);
  });

  it('refuses a rollback: ALLIUM_CONSENSUS_ROLLBACK', () => {
    const env = signConsensus(dirKey, base({ serial: 10 }));
    rejects(() => openConsensus(env, dirKey.publicKey, { now, minSerial: 11 }), 'ALLIUM_CONSENSUS_ROLLBACK');
    assert.equal(openConsensus(env, dirKey.publicKey, { now, minSerial: 10 }).serial, 10);
  });

  it('refuses a consensus that names another directory key', () => {
    const other = IdentityKey.generate();
    assert.throws(
      () => signConsensus(dirKey, base({ directoryKey: other.publicKey.toString('base64') })),
      DocumentError,
    );
    const body = JSON.stringify(base({ directoryKey: other.publicKey.toString('base64') }));
    const env = {
      body,
      signature: dirKey.sign('allium-consensus-v1\n', Buffer.from(body)).toString('base64'),
    };
    rejects(() => openConsensus(env, dirKey.publicKey, { now }), 'ALLIUM_CONSENSUS_INVALID');
  });

  it('a validly signed but malformed body is ALLIUM_CONSENSUS_INVALID', () => {
    const body = '{"network":"allium"}';
    const env = {
      body,
      signature: dirKey.sign('allium-consensus-v1\n', Buffer.from(body)).toString('base64'),
    };
    rejects(() => openConsensus(env, dirKey.publicKey, { now }), 'ALLIUM_CONSENSUS_INVALID');
  });
});

describe('withdraw', () => {
  it('round-trips and binds to the relay identity', () => {
    const id = IdentityKey.generate();
    const body = { id: id.id.toString('hex'), published: 123 };
    const env = signWithdraw(id, body);
    assert.deepEqual(openWithdraw(env, id.publicKey), body);
    const other = IdentityKey.generate();
    rejects(() => openWithdraw(env, other.publicKey), 'ALLIUM_WITHDRAW_SIGNATURE');
    rejects(() => signWithdraw(other, body), 'ALLIUM_WITHDRAW_INVALID');
    rejects(() => openWithdraw(flipSignature(env), id.publicKey), 'ALLIUM_WITHDRAW_SIGNATURE');
  });
});
