import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { blindSecret } from '../crypto/key-blinding.js';
import { IdentityKey, randomBytes } from '../crypto/keys.js';
import { MAX_DESCRIPTOR_LIFETIME_S, sealDescriptor } from '../crypto/onion-descriptor.js';
import { ONION_DESCRIPTOR_LEN } from '../wire/onion-descriptor.js';
import { DescriptorStoreStatus as S } from '../wire/onion-messages.js';
import { DescriptorStore } from './descriptor-store.js';

const period = { number: 20_000, length: 86_400 };
const t0 = (period.number * period.length + 3600) * 1000;
const introPoints = [{ relayId: randomBytes(32), authKey: randomBytes(32), encKey: randomBytes(32) }];

/** A service's descriptor of `period` (a fresh service unless `seed` is given). */
function descriptor(opts: { seed?: Buffer; revision?: number; expires?: number } = {}): {
  bytes: Buffer;
  blindedKey: Buffer;
} {
  const seed = opts.seed ?? randomBytes(32);
  const blindedSecret = blindSecret(seed, period);
  const bytes = sealDescriptor({
    identityKey: IdentityKey.fromSeed(seed).publicKey,
    blindedSecret,
    revision: opts.revision ?? 1000,
    expires: opts.expires ?? t0 / 1000 + MAX_DESCRIPTOR_LIFETIME_S,
    introPoints,
  });
  return { bytes, blindedKey: blindedSecret.publicKey };
}

function store(limits = { count: 10, bytes: 1 << 20 }) {
  const clock = { now: t0 };
  return { clock, store: new DescriptorStore(limits, () => clock.now) };
}

describe('DescriptorStore (§8.4-§8.5)', () => {
  it('stores a valid descriptor under its blinded key and gives it back whole', () => {
    const { store: s } = store();
    const d = descriptor();
    assert.equal(s.store(d.bytes), S.STORED);
    assert.deepEqual(s.fetch(d.blindedKey), d.bytes);
    assert.equal(s.fetch(randomBytes(32)), null);
    assert.equal(s.bytes, ONION_DESCRIPTOR_LEN);
    assert.deepEqual(s.counts, { stored: 1, refused: 0, fetched: 1, notFound: 1, expired: 0 });
  });

  it('refuses a changed descriptor (INVALID: the signature covers every byte) and junk', () => {
    const { store: s } = store();
    const d = descriptor();
    for (const at of [0, 40, 500, ONION_DESCRIPTOR_LEN - 1]) {
      const changed = Buffer.from(d.bytes);
      changed[at] ^= 1;
      assert.equal(s.store(changed), S.INVALID, `byte ${at}`);
    }
    assert.equal(s.store(randomBytes(ONION_DESCRIPTOR_LEN)), S.INVALID);
    assert.equal(s.store(d.bytes.subarray(1)), S.INVALID);
    assert.equal(s.size, 0);
  });

  it('refuses an expired descriptor and one claiming too long a life (EXPIRED)', () => {
    const { store: s } = store();
    assert.equal(s.store(descriptor({ expires: t0 / 1000 - 1 }).bytes), S.EXPIRED);
    assert.equal(
      s.store(descriptor({ expires: t0 / 1000 + MAX_DESCRIPTOR_LIFETIME_S + 3600 }).bytes),
      S.EXPIRED,
    );
    assert.equal(s.size, 0);
  });

  it('keeps only the highest revision per key: a newer one replaces, the same or older is NOT_NEWER', () => {
    const { store: s } = store();
    const seed = randomBytes(32);
    const v2 = descriptor({ seed, revision: 2000 });
    assert.equal(s.store(v2.bytes), S.STORED);
    assert.equal(s.store(descriptor({ seed, revision: 1000 }).bytes), S.NOT_NEWER);
    assert.equal(s.store(descriptor({ seed, revision: 2000 }).bytes), S.NOT_NEWER);
    assert.deepEqual(s.fetch(v2.blindedKey), v2.bytes);
    const v3 = descriptor({ seed, revision: 3000 });
    assert.equal(s.store(v3.bytes), S.STORED);
    assert.deepEqual(s.fetch(v3.blindedKey), v3.bytes);
    assert.equal(s.size, 1);
    assert.equal(s.bytes, ONION_DESCRIPTOR_LEN, 'the replaced descriptor is no longer counted');
  });

  it('serves nothing past its expiry, and the sweep drops it', () => {
    const { clock, store: s } = store();
    const d = descriptor({ expires: t0 / 1000 + 60 });
    const e = descriptor({ expires: t0 / 1000 + 120 });
    s.store(d.bytes);
    s.store(e.bytes);
    clock.now += 60_000;
    assert.equal(s.fetch(d.blindedKey), null);
    assert.equal(s.size, 1);
    clock.now += 60_000;
    s.sweep();
    assert.equal(s.size, 0);
    assert.equal(s.bytes, 0);
    // An expired descriptor of a key is no reason to refuse an older revision that is still valid.
    const seed = randomBytes(32);
    clock.now = t0;
    s.store(descriptor({ seed, revision: 5000, expires: t0 / 1000 + 10 }).bytes);
    clock.now += 10_000;
    assert.equal(s.store(descriptor({ seed, revision: 4000 }).bytes), S.STORED);
  });

  it('is bounded in count and in bytes (FULL), and makes room from expired ones first', () => {
    const byCount = store({ count: 2, bytes: 1 << 20 });
    const a = descriptor({ expires: t0 / 1000 + 30 });
    assert.equal(byCount.store.store(a.bytes), S.STORED);
    assert.equal(byCount.store.store(descriptor().bytes), S.STORED);
    assert.equal(byCount.store.store(descriptor().bytes), S.FULL);
    byCount.clock.now += 30_000;
    assert.equal(byCount.store.store(descriptor().bytes), S.STORED, 'the expired one made room');
    assert.equal(byCount.store.size, 2);

    const byBytes = store({ count: 100, bytes: 2 * ONION_DESCRIPTOR_LEN + 10 });
    const seed = randomBytes(32);
    assert.equal(byBytes.store.store(descriptor({ seed }).bytes), S.STORED);
    assert.equal(byBytes.store.store(descriptor().bytes), S.STORED);
    assert.equal(byBytes.store.store(descriptor().bytes), S.FULL);
    assert.equal(
      byBytes.store.store(descriptor({ seed, revision: 9000 }).bytes),
      S.STORED,
      'a newer revision of a held key replaces it even when full',
    );
    assert.equal(byBytes.store.bytes, 2 * ONION_DESCRIPTOR_LEN);
  });
});
