// A relay on a public address refuses to extend a circuit to a private or loopback address: a client
// cannot use it to probe the relay's own network. (No packet leaves this machine: the relay only claims
// a documentation address, TEST-NET-2, and refuses before dialling anything.)
import assert from 'node:assert/strict';
import net from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { X25519Key } from '../src/crypto/keys.js';
import { ntorClientStart } from '../src/crypto/ntor.js';
import { Directory } from '../src/directory/directory.js';
import { Relay } from '../src/relay/relay.js';
import { CellCommand, DestroyReason, HandshakeType, RelayCommand } from '../src/wire/constants.js';
import { decodeTruncated, encodeExtend } from '../src/wire/relay-messages.js';
import { createHop, rawLink } from './helpers/raw-client.js';
import { tempDir } from './helpers/temp.js';
import { sleep } from './helpers/wait.js';

test('a public relay answers EXTEND to a loopback address with TRUNCATED and dials nothing', async () => {
  const dir = tempDir('extend');
  const directory = await Directory.start({ dataDir: join(dir, 'd'), reachabilityCheck: false });
  const relay = await Relay.start({
    dataDir: join(dir, 'r'),
    directoryUrl: directory.url,
    nickname: 'public',
    address: '198.51.100.7',
  });
  let dialled = 0;
  const target = net.createServer((s) => {
    dialled++;
    s.destroy();
  });
  await new Promise<void>((r) => target.listen(0, '127.0.0.1', () => r()));
  try {
    const raw = await rawLink(relay);
    const hop = await createHop(raw, relay, 0x80000001);
    const extend = encodeExtend({
      address: '127.0.0.1',
      port: (target.address() as net.AddressInfo).port,
      relayId: Buffer.alloc(32, 9),
      htype: HandshakeType.NTOR_X25519_SHA256,
      hdata: ntorClientStart(Buffer.alloc(32, 9), X25519Key.generate().publicKey).onionskin,
    });
    hop.send(RelayCommand.EXTEND, 0, extend, CellCommand.RELAY_EARLY);
    const back = hop.read(await hop.take());
    assert.equal(back.command, RelayCommand.TRUNCATED);
    assert.equal(decodeTruncated(back.data).reason, DestroyReason.PROTOCOL);
    // Nothing to wait for: a dial would come within a moment of the answer, so give it one.
    await sleep(200);
    assert.equal(dialled, 0, 'the relay did not connect to the loopback address');
    raw.close();
  } finally {
    target.close();
    await relay.stop();
    await directory.stop();
  }
});
