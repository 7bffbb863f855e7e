// Link keys and their certificates (protocol §1.1): an initiator refuses a relay whose certificate has
// expired; a relay replaces its link key on schedule, links made with the old key keep working for the
// grace period, and no link outlives its certificate.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { IdentityKey, X25519Key } from '../src/crypto/keys.js';
import { linkBoundHop } from '../src/crypto/link-bound-hop.js';
import { makeLinkCert } from '../src/crypto/link-cert.js';
import { Directory } from '../src/directory/directory.js';
import { connectLink, type Link, LinkListener } from '../src/net/link.js';
import { Relay } from '../src/relay/relay.js';
import type { Cell } from '../src/wire/cell.js';
import { decodeCreated, encodeCreate } from '../src/wire/cell-bodies.js';
import { CellCommand, HandshakeType } from '../src/wire/constants.js';
import { tempDir } from './helpers/temp.js';
import { waitFor } from './helpers/wait.js';

let dir: string;
let directory: Directory;

before(async () => {
  dir = tempDir('linkkeys');
  directory = await Directory.start({ dataDir: join(dir, 'd'), reachabilityCheck: false });
});
after(async () => {
  await directory?.stop();
});

// Certificates count whole seconds (rounded down), so the key lifetimes here are no shorter than 1.5 s.

function clientLinkTo(relay: Relay): Promise<Link> {
  return connectLink({ host: '127.0.0.1', port: relay.port, relayId: relay.id, me: { identity: null } });
}

/** A link-bound CREATE on `link` is answered with the confirmation of this link's secret: the link works. */
async function answersOn(link: Link, circId: number): Promise<void> {
  const got: Cell[] = [];
  link.on({ cells: (cells) => got.push(...cells.filter((c) => c.circId === circId)) });
  const X = randomBytes(32);
  link.send(circId, CellCommand.CREATE, encodeCreate(HandshakeType.LINK_BOUND, X));
  await waitFor(`an answer on circuit ${circId}`, () => got.length > 0, { timeoutMs: 30_000 });
  assert.equal(got[0].command, CellCommand.CREATED);
  assert.deepEqual(decodeCreated(got[0].body).hdata, linkBoundHop(link.linkSecret, X).confirm);
}

test('an initiator refuses a relay whose link certificate has expired', async () => {
  const identity = IdentityKey.generate();
  const linkKey = X25519Key.generate();
  const stale = await LinkListener.listen({
    host: '127.0.0.1',
    port: 0,
    me: { identity, linkKey, linkCert: makeLinkCert(identity, linkKey.publicKey, Date.now() - 1000) },
    onLink: (l) => l.close(),
  });
  try {
    await assert.rejects(
      connectLink({ host: '127.0.0.1', port: stale.port, relayId: identity.id, me: { identity: null } }),
      (err: Error & { code?: string }) => err.code === 'ALLIUM_LINK_CERT_EXPIRED',
    );
  } finally {
    await stale.close();
  }
});

test('a relay past its link key lifetime presents a new key; links made with the old and the new both work', async () => {
  const relay = await Relay.start({
    dataDir: join(dir, 'rotating'),
    directoryUrl: directory.url,
    nickname: 'rotating',
    linkKeyPolicy: { lifetimeMs: 1500, graceMs: 60_000 },
  });
  const links: Link[] = [];
  try {
    const old = await clientLinkTo(relay);
    links.push(old);
    const rotations = relay.stats.linkKeyRotations;
    await waitFor('a link key rotation', () => relay.stats.linkKeyRotations > rotations, {
      timeoutMs: 30_000,
    });
    const fresh = await clientLinkTo(relay);
    links.push(fresh);
    assert.notDeepEqual(fresh.peerStaticKey, old.peerStaticKey, 'the relay presents a new link key');
    assert.ok(fresh.expiresAt > old.expiresAt, 'under a certificate that expires later');
    assert.ok(!old.isClosed, 'the link made with the old key is still open');
    await answersOn(old, 0x80000041);
    await answersOn(fresh, 0x80000042);
  } finally {
    for (const l of links) l.close();
    await relay.stop();
  }
});

test("a link closes when its relay's certificate expires, and links made later still work", async () => {
  const relay = await Relay.start({
    dataDir: join(dir, 'expiring'),
    directoryUrl: directory.url,
    nickname: 'expiring',
    linkKeyPolicy: { lifetimeMs: 1500, graceMs: 3000 },
  });
  const links: Link[] = [];
  try {
    const old = await clientLinkTo(relay);
    links.push(old);
    let closedWith: string | undefined;
    old.on({
      close: (err) => (closedWith = (err as (Error & { code?: string }) | undefined)?.code ?? 'closed'),
    });
    await waitFor('the old link to close', () => old.isClosed, { timeoutMs: 30_000 });
    assert.ok(closedWith, 'the link closed');
    assert.ok(Date.now() >= old.expiresAt, 'it closed once its certificate had expired, not before');
    const later = await clientLinkTo(relay);
    links.push(later);
    await answersOn(later, 0x80000051);
  } finally {
    for (const l of links) l.close();
    await relay.stop();
  }
});

test('a link near its expiry stops taking new circuits before it closes', async () => {
  const identity = IdentityKey.generate();
  const linkKey = X25519Key.generate();
  const listener = await LinkListener.listen({
    host: '127.0.0.1',
    port: 0,
    me: { identity, linkKey, linkCert: makeLinkCert(identity, linkKey.publicKey, Date.now() + 4000) },
    onLink: () => {},
  });
  const link = await connectLink({
    host: '127.0.0.1',
    port: listener.port,
    relayId: identity.id,
    me: { identity: null },
  });
  try {
    assert.ok(link.takesNewCircuits, 'a fresh link takes circuits');
    await waitFor('the link to retire', () => !link.takesNewCircuits, { timeoutMs: 30_000 });
    assert.ok(!link.isClosed, 'it is retired from new circuits while still open for the ones it has');
    await waitFor('the link to close at its expiry', () => link.isClosed, { timeoutMs: 30_000 });
  } finally {
    link.close();
    await listener.close();
  }
});
