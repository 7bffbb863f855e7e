import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { makeTestRelay } from '../../test/helpers/relay-fixtures.js';
import { signDescriptor } from '../core/documents.js';
import { DirectoryClient, DirectoryClientError } from '../net/directory-client.js';
import { Relay } from '../relay/relay.js';
import { Directory } from './directory.js';

/** A port on 127.0.0.1 that nothing listens on (bound, then released). */
async function unusedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

describe('the directory connects back to a relay before listing it (default on)', () => {
  let root: string;
  let dir: Directory;
  let client: DirectoryClient;
  let relay: Relay;
  let rude: net.Server;

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'allium-reach-'));
    dir = await Directory.start({ dataDir: join(root, 'dir') });
    client = new DirectoryClient({ url: dir.url, directoryKey: dir.publicKey, timeoutMs: 15_000 });
    relay = await Relay.start({
      dataDir: join(root, 'relay'),
      directoryUrl: dir.url,
      directoryKey: dir.publicKey,
      nickname: 'reachable',
    });
    // Accepts TCP, then hangs up: something that is not a relay.
    rude = net.createServer((s) => s.destroy());
    await new Promise<void>((r) => rude.listen(0, '127.0.0.1', r));
  });
  after(async () => {
    await relay?.stop();
    await dir?.stop();
    await new Promise((r) => rude?.close(r));
    await rm(root, { recursive: true, force: true });
  });

  async function refused(port: number, address = '127.0.0.1'): Promise<string> {
    const r = makeTestRelay({ port, address });
    let message = '';
    await assert.rejects(client.register(signDescriptor(r.identity, r.descriptor)), (err: unknown) => {
      assert.ok(err instanceof DirectoryClientError);
      assert.equal(err.status, 400);
      assert.equal(err.remoteCode, 'ALLIUM_RELAY_UNREACHABLE');
      message = err.remoteMessage ?? '';
      return true;
    });
    await assert.rejects(client.relay(r.descriptor.id), { code: 'ALLIUM_DIRECTORY_NOT_FOUND' });
    return message;
  }

  it('lists a real relay that answers with its identity', async () => {
    const c = await client.consensus();
    assert.deepEqual(
      c.relays.map((r) => [r.nickname, r.port]),
      [['reachable', relay.port]],
    );
  });

  it('refuses a port nobody listens on, and says so', async () => {
    const port = await unusedPort();
    const msg = await refused(port);
    assert.match(
      msg,
      new RegExp(
        `^not reachable from the directory at 127\\.0\\.0\\.1:${port}: TCP connection failed \\(.*ECONNREFUSED`,
      ),
    );
  });

  it('refuses a descriptor naming a port where another relay answers', async () => {
    const msg = await refused(relay.port);
    assert.match(msg, /a different relay answers there \(reached a relay with id [0-9a-f]{64} instead of/);
    assert.ok(msg.includes(relay.idHex));
  });

  it('refuses a port where something other than a relay listens', async () => {
    const msg = await refused((rude.address() as net.AddressInfo).port);
    assert.match(msg, /the link handshake failed/);
  });

  it('keeps only reachable relays in the consensus', async () => {
    const c = await client.consensus();
    assert.deepEqual(
      c.relays.map((r) => r.id),
      [relay.idHex],
    );
  });
});
