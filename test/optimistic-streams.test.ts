// Optimistic streams (protocol §4.2): what is written goes right behind the BEGIN, before the exit
// has answered; the exit holds it until its TCP connection is up. A refusal still reaches the caller,
// as the stream's error, and leaves the circuit usable.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, test } from 'node:test';
import type { StreamError } from '../src/core/stream-mux.js';
import { EndReason } from '../src/wire/constants.js';
import { type InProcessNetwork, startNetwork } from './helpers/network.js';

let netw: InProcessNetwork;
let echo: net.Server;
let closedPort = 0;

before(async () => {
  netw = await startNetwork({ relays: 3, exits: 1 });
  // Answers each line with "got <line>".
  echo = net.createServer((s) => {
    let buf = '';
    s.on('data', (d) => {
      buf += d.toString();
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        s.write(`got ${buf.slice(0, i)}\n`);
        buf = buf.slice(i + 1);
      }
    });
  });
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', () => r()));
  // A port nobody listens on.
  const tmp = net.createServer();
  await new Promise<void>((r) => tmp.listen(0, '127.0.0.1', () => r()));
  closedPort = (tmp.address() as net.AddressInfo).port;
  await new Promise<void>((r) => tmp.close(() => r()));
});
after(async () => {
  echo?.close();
  await netw?.stop();
});

const port = () => (echo.address() as net.AddressInfo).port;

test('data written to an optimistic stream leaves before the exit answers, and the answer comes back', async () => {
  const s = await netw.client.connect('127.0.0.1', port(), { optimistic: true, isolation: 'opt' });
  let connected = false;
  void s.connected.then(() => (connected = true));
  let sentBeforeConnected: boolean | null = null;
  s.write('hello\n', () => (sentBeforeConnected = !connected));
  const line = await new Promise<string>((resolve) => s.once('data', (d: Buffer) => resolve(d.toString())));
  assert.equal(line, 'got hello\n');
  assert.equal(sentBeforeConnected, true, 'the request went out before CONNECTED came back');
  await s.connected;
  s.destroy();
});

test('a refused optimistic stream fails with the exit answer, and the circuit serves the next stream', async () => {
  const s = await netw.client.connect('127.0.0.1', closedPort, { optimistic: true, isolation: 'opt2' });
  s.write('lost\n');
  const err = await new Promise<StreamError>((resolve) => s.once('error', (e) => resolve(e as StreamError)));
  assert.equal(err.code, 'ALLIUM_STREAM_REFUSED');
  assert.equal(err.endReason, EndReason.CONNECTREFUSED);
  await assert.rejects(s.connected, (e: StreamError) => e.code === 'ALLIUM_STREAM_REFUSED');
  const circuitsBefore = netw.client.stats.circuitsBuilt;
  const next = await netw.client.connect('127.0.0.1', port(), { optimistic: true, isolation: 'opt2' });
  next.write('again\n');
  const line = await new Promise<string>((resolve) =>
    next.once('data', (d: Buffer) => resolve(d.toString())),
  );
  assert.equal(line, 'got again\n');
  assert.equal(netw.client.stats.circuitsBuilt, circuitsBefore, 'the same circuit carried the next stream');
  next.destroy();
});
