// An entry or middle that seals a stream message (END, CONNECTED, DATA, SENDME) with its own layer for
// a stream of the exit's: the client takes it for what it is, a protocol violation, and destroys the
// circuit. A download in progress fails with an error instead of a clean (short) end of file, and a
// stream still opening fails with a circuit error, not an exit-policy refusal (which would not be retried).
import assert from 'node:assert/strict';
import type { Duplex } from 'node:stream';
import { after, before, test } from 'node:test';
import type { ClientCircuit } from '../src/client/client-circuit.js';
import { streamGet } from '../src/net/http-fetch.js';
import type { Relay } from '../src/relay/relay.js';
import { EndReason, RelayCommand } from '../src/wire/constants.js';
import { encodeCircuitSendme, encodeConnected, encodeEnd } from '../src/wire/relay-messages.js';
import { type InProcessNetwork, startNetwork } from './helpers/network.js';
import { makeFiles, sha256, startHttpServer, type WebServer } from './helpers/web.js';

let net: InProcessNetwork;
let web: WebServer;
const files = makeFiles();

before(async () => {
  web = await startHttpServer(files);
  net = await startNetwork({ relays: 3, exits: 1 });
});
after(async () => {
  await net?.stop();
  await web?.close();
});

interface HostileView {
  circuits: Map<{ peerRelayId: Buffer | null }, Map<number, { circ: HopCircuit; side: 'prev' | 'next' }>>;
  sendBackward(circ: HopCircuit, command: number, streamId: number, data: Buffer): Buffer;
}
interface HopCircuit {
  prev: { link: { peerRelayId: Buffer | null }; circId: number };
  next: { link: { peerRelayId: Buffer | null }; circId: number } | null;
}

/** The path entry, middle, exit through relays 3, 2, 1 (relay1 is the only exit). */
function path() {
  const c = net.client.currentConsensus!;
  const byId = (id: string) => c.relays.find((r) => r.id === id)!;
  return [2, 1, 0].map((i) => byId(net.relays[i].idHex));
}

/** `relay`'s side of the client's circuit `circ` (relay is its entry or its middle). */
function hopCircuit(relay: Relay, circ: ClientCircuit): HopCircuit {
  const view = relay as unknown as HostileView;
  const entry = net.relays[2] as unknown as HostileView;
  let at: HopCircuit | undefined;
  for (const [link, map] of entry.circuits) {
    const e = link.peerRelayId === null ? map.get(circ.circId) : undefined;
    if (e?.side === 'prev') at = e.circ;
  }
  assert.ok(at, 'the entry carries the circuit');
  if (relay === net.relays[2]) return at;
  const next = at.next!;
  for (const [link, map] of view.circuits) {
    if (!link.peerRelayId?.equals(net.relays[2].id)) continue;
    const e = map.get(next.circId);
    if (e?.side === 'prev') return e.circ;
  }
  assert.fail('the middle carries the circuit');
}

/** `relay` seals a relay message with its own layer of `circ` and sends it toward the client. */
function inject(relay: Relay, circ: ClientCircuit, command: number, streamId: number, data: Buffer): void {
  (relay as unknown as HostileView).sendBackward(hopCircuit(relay, circ), command, streamId, data);
}

/** Opens a stream on `circ` for /random10m and reads until some of the body arrived, then stops reading. */
async function downloading(circ: ClientCircuit): Promise<Duplex> {
  const s = await circ.openStream('127.0.0.1', web.port);
  s.write('GET /random10m HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
  let got = 0;
  await new Promise<void>((resolve) => {
    const onData = (chunk: Buffer) => {
      got += chunk.length;
      if (got < 200 * 1024) return;
      s.off('data', onData);
      s.pause();
      resolve();
    };
    s.on('data', onData);
  });
  return s;
}

/** How the application's read of `s` ends: 'eof' or the error. */
function readOutcome(s: Duplex): Promise<'eof' | Error> {
  return new Promise((resolve) => {
    s.on('error', (err) => resolve(err));
    s.on('end', () => resolve('eof'));
    s.resume();
  });
}

const messages: [string, number, (streamId: number) => Buffer][] = [
  ['END(DONE)', RelayCommand.END, () => encodeEnd(EndReason.DONE)],
  ['DATA', RelayCommand.DATA, () => Buffer.from('HTTP/1.1 200 OK\r\n\r\nforged')],
  ['stream SENDME', RelayCommand.SENDME, () => Buffer.alloc(0)],
  ['CONNECTED', RelayCommand.CONNECTED, () => encodeConnected('127.0.0.1')],
];

for (const [hopName, hopIndex] of [
  ['entry', 2],
  ['middle', 1],
] as const) {
  for (const [name, command, body] of messages) {
    test(`${hopName === 'entry' ? 'an' : 'a'} ${hopName} sealing ${name} for a download's stream: the circuit is destroyed and the read fails`, async () => {
      const circ = await net.client.buildCircuit({ path: path() });
      const s = await downloading(circ);
      const outcome = readOutcome(s);
      inject(net.relays[hopIndex], circ, command, (s as unknown as { streamId: number }).streamId, body(0));
      const end = await outcome;
      assert.ok(end instanceof Error, `the application saw ${String(end)}, not an error`);
      assert.equal((end as Error & { code: string }).code, 'ALLIUM_CIRCUIT_DESTROYED');
      assert.equal(circ.closed, true);
      assert.match(circ.closeReason, /not the exit/);
    });
  }

  test(`${hopName === 'entry' ? 'an' : 'a'} ${hopName} sealing a circuit SENDME: the circuit is destroyed`, async () => {
    const circ = await net.client.buildCircuit({ path: path() });
    const s = await downloading(circ);
    const outcome = readOutcome(s);
    inject(
      net.relays[hopIndex],
      circ,
      RelayCommand.SENDME,
      0,
      encodeCircuitSendme({ tag: Buffer.alloc(16), window: 64 }),
    );
    assert.ok((await outcome) instanceof Error);
    assert.match(circ.closeReason, /not the exit/);
  });

  for (const [name, command, body] of [
    ['END(EXITPOLICY)', RelayCommand.END, () => encodeEnd(EndReason.EXITPOLICY)],
    ['CONNECTED', RelayCommand.CONNECTED, () => encodeConnected('127.0.0.1')],
  ] as const) {
    test(`${hopName === 'entry' ? 'an' : 'a'} ${hopName} answering a stream still opening with ${name}: a circuit error, not a refusal`, async () => {
      const circ = await net.client.buildCircuit({ path: path() });
      const opening = circ.openStream('127.0.0.1', web.port);
      // The BEGIN is on its way to the exit; the hostile hop answers first (it is nearer).
      inject(net.relays[hopIndex], circ, command, 1, body()); // a fresh circuit's first stream is 1
      const err = await opening.then(
        () => null,
        (e: Error & { code: string; endReason?: number }) => e,
      );
      assert.ok(err, 'the stream did not open');
      assert.equal(err.code, 'ALLIUM_CIRCUIT_DESTROYED');
      assert.notEqual(err.code, 'ALLIUM_STREAM_REFUSED');
      assert.notEqual(err.endReason, EndReason.EXITPOLICY);
      assert.match(circ.closeReason, /not the exit/);
    });
  }
}

test('a middle refusing an optimistic stream still opening: the stream fails with a circuit error', async () => {
  const circ = await net.client.buildCircuit({ path: path() });
  const s = await circ.openStream('127.0.0.1', web.port, { optimistic: true });
  const outcome = readOutcome(s);
  inject(net.relays[1], circ, RelayCommand.END, 1, encodeEnd(EndReason.EXITPOLICY));
  const err = await s.connected.then(
    () => null,
    (e: Error & { code: string; endReason?: number }) => e,
  );
  assert.ok(err, 'the stream did not connect');
  assert.equal(err.code, 'ALLIUM_CIRCUIT_DESTROYED');
  assert.notEqual(err.endReason, EndReason.EXITPOLICY);
  assert.ok((await outcome) instanceof Error);
});

test('the application retries a stream that a hostile middle tried to refuse, and gets the whole file', async () => {
  // Both relays that can be a middle answer the first BEGIN they carry with an END(EXITPOLICY) of their own.
  let injected = 0;
  const restore: (() => void)[] = [];
  for (const relay of [net.relays[1], net.relays[2]]) {
    const hostile = relay as unknown as HostileView & {
      onForwardOpened(circ: HopCircuit, cell: unknown, opened: { kind: string }): void;
    };
    const original = hostile.onForwardOpened;
    hostile.onForwardOpened = function (this: unknown, circ, cell, opened) {
      original.call(this, circ, cell, opened);
      // A cell passing on toward the exit, at a middle (its previous hop is a relay): the BEGIN.
      if (injected === 0 && opened.kind !== 'mine' && circ.next && circ.prev.link.peerRelayId !== null) {
        injected++;
        hostile.sendBackward(circ, RelayCommand.END, 1, encodeEnd(EndReason.EXITPOLICY));
      }
    };
    restore.push(() => {
      hostile.onForwardOpened = original;
    });
  }
  try {
    const res = await streamGet(`${web.url}/random1m`, {
      connect: (h, p) => net.client.connect(h, p, { isolation: 'retry-after-forged-refusal' }),
    });
    const chunks: Buffer[] = [];
    for await (const c of res) chunks.push(c as Buffer);
    assert.equal(injected, 1, 'a middle forged a refusal');
    assert.equal(sha256(Buffer.concat(chunks)), sha256(files['/random1m']));
  } finally {
    for (const r of restore) r();
  }
});
