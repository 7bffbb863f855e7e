import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, test } from 'node:test';

// Short liveness timers for this test file (read when link.ts loads).
process.env.ALLIUM_LINK_KEEPALIVE_MS = '200';
process.env.ALLIUM_LINK_DEAD_AFTER_MS = '800';
const { IdentityKey, X25519Key } = await import('../crypto/keys.js');
const { connectLink, LinkListener } = await import('./link.js');
const { CellCommand } = await import('../wire/constants.js');
type Link = import('./link.js').Link;

const identity = IdentityKey.generate();
const linkKey = X25519Key.generate();
let listener: Awaited<ReturnType<typeof LinkListener.listen>>;
const accepted: Link[] = [];

/** A TCP forwarder that can be told to drop everything (a cut cable that TCP does not notice). */
function forwarder(targetPort: number): Promise<{ port: number; cut(): void; close(): void }> {
  let cut = false;
  const server = net.createServer((a) => {
    const b = net.connect(targetPort, '127.0.0.1');
    a.on('data', (d) => cut || b.write(d));
    b.on('data', (d) => cut || a.write(d));
    a.on('error', () => b.destroy());
    b.on('error', () => a.destroy());
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({
        port: (server.address() as net.AddressInfo).port,
        cut: () => (cut = true),
        close: () => server.close(),
      }),
    ),
  );
}

before(async () => {
  listener = await LinkListener.listen({
    host: '127.0.0.1',
    port: 0,
    me: { identity, linkKey },
    onLink: (l) => accepted.push(l),
  });
});
after(async () => {
  for (const l of accepted) l.close();
  await listener.close();
});

test('a client reaches the relay it meant and cells flow both ways; the relay sees an anonymous peer', async () => {
  const link = await connectLink({
    host: '127.0.0.1',
    port: listener.port,
    relayId: identity.id,
    me: { identity: null },
  });
  assert.deepEqual(link.peerRelayId, identity.id);
  await new Promise((r) => setTimeout(r, 50));
  const server = accepted.at(-1)!;
  assert.equal(server.peerRelayId, null);
  const got = new Promise<Buffer>((resolve) => server.on({ cells: (cells) => resolve(cells[0].body) }));
  link.send(0x80000001, CellCommand.CREATE, Buffer.from('hello'));
  assert.equal((await got).subarray(0, 5).toString(), 'hello');
  link.close();
});

test('reaching a different relay than the one named fails with ALLIUM_LINK_IDENTITY', async () => {
  const other = IdentityKey.generate();
  await assert.rejects(
    connectLink({ host: '127.0.0.1', port: listener.port, relayId: other.id, me: { identity: null } }),
    {
      code: 'ALLIUM_LINK_IDENTITY',
    },
  );
});

test('garbage instead of a handshake closes the connection; the listener keeps serving', async () => {
  const closed = await new Promise<boolean>((resolve) => {
    const s = net.connect(listener.port, '127.0.0.1', () => s.write(Buffer.alloc(300, 0xff)));
    s.on('error', () => {});
    s.on('close', () => resolve(true));
    setTimeout(() => resolve(false), 5000).unref();
  });
  assert.equal(closed, true);
  const link = await connectLink({
    host: '127.0.0.1',
    port: listener.port,
    relayId: identity.id,
    me: { identity: null },
  });
  link.close();
});

test('an idle link stays up on keepalives, and a silent one is closed as dead', async () => {
  const fwd = await forwarder(listener.port);
  const link = await connectLink({
    host: '127.0.0.1',
    port: fwd.port,
    relayId: identity.id,
    me: { identity: null },
  });
  let closedWith: (Error & { code?: string }) | undefined | null = null;
  link.on({ close: (err) => (closedWith = err) });
  await new Promise((r) => setTimeout(r, 2000)); // 2.5x the dead-after time, idle: keepalives keep it up
  assert.equal(link.isClosed, false);
  fwd.cut();
  const deadline = Date.now() + 10_000;
  while (!link.isClosed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  assert.equal(link.isClosed, true);
  assert.equal((closedWith as unknown as { code: string })?.code, 'ALLIUM_LINK_DEAD');
  fwd.close();
});
