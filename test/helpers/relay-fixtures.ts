// Relay identities and descriptors a directory accepts (docs/protocol.md §6), for tests.
import { IdentityKey, X25519Key } from '../../src/crypto/keys.js';
import type { RelayDescriptor } from '../../src/wire/directory-docs.js';

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
