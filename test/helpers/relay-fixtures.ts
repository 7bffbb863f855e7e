// Relay identities and descriptors a directory accepts (docs/protocol.md §6), for tests.
import { IdentityKey, X25519Key } from '../../src/crypto/keys.js';
import type { ConsensusRelay, RelayDescriptor } from '../../src/wire/directory-docs.js';

export interface TestRelay {
  identity: IdentityKey;
  onion: X25519Key;
  descriptor: RelayDescriptor;
}

/** A fresh relay identity and a descriptor for it that a directory accepts at `published`. */
export function makeTestRelay(
  overrides: Partial<RelayDescriptor> = {},
  identity = IdentityKey.generate(),
): TestRelay {
  const onion = X25519Key.generate();
  const descriptor: RelayDescriptor = {
    nickname: 'testrelay',
    id: identity.id.toString('hex'),
    identityKey: identity.publicKey.toString('base64'),
    onionKey: onion.publicKey.toString('base64'),
    address: '127.0.0.1',
    port: 9001,
    exitPolicy: ['accept 127.0.0.0/8:*', 'reject *:*'],
    bandwidth: 1_000_000,
    version: 'allium/0.5.0',
    published: Date.now(),
    ...overrides,
  };
  return { identity, onion, descriptor };
}

/**
 * Relay `n` as a consensus lists it (no keys behind it: for tests of choices over a relay list):
 * id n in hex, address 10.n.0.1, running, no exit unless `over` says so.
 */
export function listedRelay(n: number, over: Partial<ConsensusRelay> = {}): ConsensusRelay {
  return {
    nickname: `r${n}`,
    id: n.toString(16).padStart(64, '0'),
    identityKey: Buffer.alloc(32, n).toString('base64'),
    onionKey: Buffer.alloc(32, n + 1).toString('base64'),
    address: `10.${n}.0.1`,
    port: 9001,
    exitPolicy: ['reject *:*'],
    bandwidth: 1000,
    version: 'allium/0.5.0',
    published: 1,
    flags: ['Running'],
    ...over,
  };
}
