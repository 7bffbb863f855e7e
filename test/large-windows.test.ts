// Windows past 4 MiB (protocol §5, release 0.4.0): a client names circuit windows past 1024 cells
// only to an exit of 0.4.0 or later, which takes them, and tells only such an exit (BEGIN flags,
// §4.2) that it takes them too; the download arrives whole either way. (Stream windows and the
// exit's budget grow only on long round trips: test/long-round-trips.test.ts.)
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { buffer } from 'node:stream/consumers';
import { after, before, describe, test } from 'node:test';
import type { AlliumClient } from '../src/client/client.js';
import { ClientCircuit } from '../src/client/client-circuit.js';
import { streamGet } from '../src/net/http-fetch.js';
import { LEGACY_CIRC_WINDOW_MAX, RelayCommand, STREAM_WINDOW_START } from '../src/wire/constants.js';
import { BeginFlag, decodeBegin } from '../src/wire/relay-messages.js';
import { type InProcessNetwork, startNetwork } from './helpers/network.js';
import { sha256, startHttpServer, type WebServer } from './helpers/web.js';

const body = randomBytes(40 * 1024 * 1024);
let net: InProcessNetwork;
let web: WebServer;

before(async () => {
  web = await startHttpServer({ '/big': body });
  // A 32 MiB receive budget, so one circuit's share is past 1024 cells even on loopback.
  net = await startNetwork({ relays: 3, exits: 1, clientOptions: { receiveBudgetCells: 8192 } });
});
after(async () => {
  await net?.stop();
  await web?.close();
});

/** entry, middle, exit; the exit's consensus entry with `exitVersion` if given. */
function pathOf(client: AlliumClient, exitVersion?: string) {
  const [exit, entry, middle] = net.relays; // relay1 is the only exit
  const byId = (id: string) => client.currentConsensus!.relays.find((r) => r.id === id)!;
  const exitEntry = byId(exit.idHex);
  return [
    byId(entry.idHex),
    byId(middle.idHex),
    exitVersion ? { ...exitEntry, version: exitVersion } : exitEntry,
  ];
}

/** The flags of every BEGIN the client sends while `fn` runs. */
async function beginFlags<T>(fn: () => Promise<T>): Promise<number[]> {
  const flags: number[] = [];
  // biome-ignore lint/suspicious/noExplicitAny: a private method, wrapped to read what it sends
  const proto = ClientCircuit.prototype as any;
  const sendRelay = proto.sendRelay;
  proto.sendRelay = function (
    this: ClientCircuit,
    hop: number,
    command: number,
    streamId: number,
    data: Buffer,
    ...rest: unknown[]
  ) {
    if (command === RelayCommand.BEGIN) flags.push(decodeBegin(data).flags);
    return sendRelay.call(this, hop, command, streamId, data, ...rest);
  };
  try {
    await fn();
  } finally {
    proto.sendRelay = sendRelay;
  }
  return flags;
}

describe('circuit windows past 4 MiB', () => {
  test('an exit of this release takes them and learns the client does, and a 40 MiB download arrives whole', async () => {
    const circ = await net.client.buildCircuit({ path: pathOf(net.client) });
    const flags = await beginFlags(async () => {
      const res = await streamGet(`${web.url}/big`, { connect: (h, p) => circ.openStream(h, p) });
      assert.equal(sha256(await buffer(res)), sha256(body));
    });
    assert.deepEqual(flags, [BeginFlag.LARGE_WINDOWS], 'the BEGIN told the exit');
    assert.ok(!circ.closed, 'the exit kept the circuit');
    assert.ok(
      circ.largestWindows.circuit > LEGACY_CIRC_WINDOW_MAX,
      `named ${circ.largestWindows.circuit} cells at most`,
    );
    // One machine: the reader's rate times a round trip of a few ms is far under 4 MiB.
    assert.equal(circ.largestWindows.stream, STREAM_WINDOW_START);
  });

  test('an exit before 0.4.0 is never named more than 1024 cells, nor sent BEGIN flags', async () => {
    const circ = await net.client.buildCircuit({ path: pathOf(net.client, 'allium/0.3.0') });
    const flags = await beginFlags(async () => {
      const res = await streamGet(`${web.url}/big`, { connect: (h, p) => circ.openStream(h, p) });
      assert.equal(sha256(await buffer(res)), sha256(body));
    });
    assert.deepEqual(flags, [0], 'a BEGIN such an exit can read: no flags');
    assert.equal(circ.largestWindows.circuit, LEGACY_CIRC_WINDOW_MAX);
  });
});
