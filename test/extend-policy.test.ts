// A relay on a public address refuses to extend a circuit to a private or loopback address: a client
// cannot use it to probe the relay's own network. (No packet leaves this machine: the relay only claims
// a documentation address, TEST-NET-2, and refuses before dialling anything.)
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { isOrigin } from '../src/crypto/backward-layer.js';
import { circuitHopCrypto, wrapForward } from '../src/crypto/forward-onion.js';
import { X25519Key } from '../src/crypto/keys.js';
import { ntorClientFinish, ntorClientStart } from '../src/crypto/ntor.js';
import { Directory } from '../src/directory/directory.js';
import { connectLink } from '../src/net/link.js';
import { Relay } from '../src/relay/relay.js';
import type { Cell } from '../src/wire/cell.js';
import { decodeCreated, encodeCreate } from '../src/wire/cell-bodies.js';
import { CellCommand, DestroyReason, HandshakeType, RelayCommand } from '../src/wire/constants.js';
import { encodeRelayMessage, readRelayHeader, relayData } from '../src/wire/relay-cell.js';
import { decodeTruncated, encodeExtend } from '../src/wire/relay-messages.js';

test('a public relay answers EXTEND to a loopback address with TRUNCATED and dials nothing', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'allium-extend-'));
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
    const link = await connectLink({
      host: '127.0.0.1',
      port: relay.port,
      relayId: relay.id,
      me: { identity: null },
    });
    const got: Cell[] = [];
    link.on({ cells: (cells) => got.push(...cells) });
    const wait = async (n: number) => {
      const deadline = Date.now() + 10_000;
      while (got.length < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    };
    const { onionskin, state } = ntorClientStart(relay.id, relay.onionKey.publicKey);
    const circId = 0x80000001;
    link.send(circId, CellCommand.CREATE, encodeCreate(HandshakeType.NTOR_X25519_SHA256, onionskin));
    await wait(1);
    const hop = circuitHopCrypto(ntorClientFinish(state, decodeCreated(got[0].body).hdata), {
      firstHop: true,
    });
    const extend = encodeExtend({
      address: '127.0.0.1',
      port: (target.address() as net.AddressInfo).port,
      relayId: Buffer.alloc(32, 9),
      htype: HandshakeType.NTOR_X25519_SHA256,
      hdata: ntorClientStart(Buffer.alloc(32, 9), X25519Key.generate().publicKey).onionskin,
    });
    const { body } = wrapForward(
      [hop.forward],
      encodeRelayMessage(RelayCommand.EXTEND, 0, extend),
      CellCommand.RELAY_EARLY,
    );
    link.send(circId, CellCommand.RELAY_EARLY, body);
    await wait(2);
    const back = hop.backward.peel(got[1].body);
    assert.ok(isOrigin(back), 'a cell from the relay itself');
    assert.equal(readRelayHeader(back).command, RelayCommand.TRUNCATED);
    assert.equal(decodeTruncated(relayData(back)).reason, DestroyReason.PROTOCOL);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(dialled, 0, 'the relay did not connect to the loopback address');
    link.close();
  } finally {
    target.close();
    await relay.stop();
    await directory.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
