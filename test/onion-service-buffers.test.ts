// An onion service bounds what it holds for its local server across all circuits (protocol §8.10,
// maxBufferBytes), as an exit does across its destinations: clients on different circuits upload to a
// local server that does not read, the service's total stays within the bound, the streams it closes
// reach their clients as END RESOURCELIMIT, and a later client's request is still answered. Which
// stream goes first (the one holding the most) is core/stream-buffers.test.ts's: here each upload
// alone passes the bound once the kernel's share of its connection counts.
import assert from 'node:assert/strict';
import net from 'node:net';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import type { StreamError } from '../src/core/stream-mux.js';
import { type Client, createClient, createService, type OnionService } from '../src/index.js';
import { EndReason, RELAY_DATA_MAX } from '../src/wire/constants.js';
import { type InProcessNetwork, startNetwork } from './helpers/network.js';
import { waitFor } from './helpers/wait.js';

const MiB = 1024 * 1024;
const KiB = 1024;
const LIMIT = 1 * MiB;
const CHUNK = Buffer.alloc(16 * KiB, 0x61);
/** Past what the kernel's buffers of one loopback connection take (tcp_wmem's largest: 4 MiB). */
const UPLOAD = 8 * MiB;

let netw: InProcessNetwork;
let local: net.Server;
let service: OnionService;
let client: Client;
const localSockets = new Set<net.Socket>();

/**
 * The local server: a connection whose first bytes are PING is answered PONG; any other is read no
 * further after its first chunk, so what its client sends piles up at the service.
 */
function localServer(): net.Server {
  return net.createServer((socket) => {
    localSockets.add(socket);
    socket.on('close', () => localSockets.delete(socket));
    socket.on('error', () => {});
    socket.once('data', (chunk) => {
      if (chunk.subarray(0, 4).toString() === 'PING') socket.end('PONG\n');
      else socket.pause();
    });
  });
}

/**
 * Writes `bytes` to `s` with backpressure; stops at the first error (the stream closed under it) or
 * at `deadline` (a service that holds everything stalls the upload). True if all was written.
 */
async function upload(s: Duplex, bytes: number, deadline: number): Promise<boolean> {
  let sent = 0;
  for (; sent < bytes && !s.destroyed && Date.now() < deadline; sent += CHUNK.length) {
    if (!s.write(CHUNK)) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, Math.max(0, deadline - Date.now()));
        function done() {
          clearTimeout(timer);
          s.off('drain', done);
          s.off('close', done);
          resolve();
        }
        s.on('drain', done);
        s.on('close', done);
      });
    }
  }
  return sent >= bytes && !s.destroyed;
}

before(async () => {
  netw = await startNetwork({ relays: 8, exits: 1 });
  local = localServer();
  await new Promise<void>((r) => local.listen(0, '127.0.0.1', () => r()));
  const port = (local.address() as net.AddressInfo).port;
  service = await createService({
    directory: netw.directory.url,
    directoryKey: netw.directory.publicKey,
    to: `127.0.0.1:${port}`,
    dataDir: join(netw.dataDir, 'service'),
    maxBufferBytes: LIMIT,
  });
  await service.ready;
  client = await createClient({ directory: netw.directory.url, directoryKey: netw.directory.publicKey });
});

after(async () => {
  await client?.close();
  await service?.close();
  for (const s of localSockets) s.destroy();
  local?.close();
  await netw?.stop();
});

describe('an onion service holds at most maxBufferBytes for its local server, all circuits together', () => {
  it('closes the stream holding the most with END RESOURCELIMIT and keeps serving', async () => {
    const streams = service.internals.streams;
    assert.ok(streams);
    const buffers = streams.buffers;
    assert.equal(buffers.limit, LIMIT);
    // The total after every change, once the service has acted on it (the outermost call: closing a
    // stream passes through states between its buffers' release and its kernel share's).
    let settledPeak = 0;
    let depth = 0;
    const note = buffers.note.bind(buffers);
    buffers.note = (delta: number) => {
      depth++;
      try {
        note(delta);
      } finally {
        depth--;
      }
      if (depth === 0 && buffers.total > settledPeak) settledPeak = buffers.total;
    };

    const errors = new Map<string, StreamError>();
    const open = async (key: string): Promise<Duplex> => {
      const s = await client.connect(service.address, 80, { isolation: key });
      s.on('error', (err) => errors.set(key, err as StreamError));
      return s;
    };

    // Three clients, each on its own circuit, upload more than the kernel's buffers take (so what
    // the service holds, counted with the kernel's share, grows) and together far more than the bound.
    const keys = ['first', 'second', 'third'];
    const uploads = await Promise.all(keys.map((k) => open(k)));
    const deadline = Date.now() + 20_000;
    const written = await Promise.all(uploads.map((s) => upload(s, UPLOAD, deadline)));
    assert.ok(
      settledPeak <= LIMIT + RELAY_DATA_MAX,
      `held ${settledPeak} bytes at most, the bound is ${LIMIT} (and a cell)`,
    );
    await waitFor(
      'every upload either written or closed by the service',
      () => keys.every((k, i) => written[i] || errors.has(k)),
      { timeoutMs: 5_000 },
    );

    assert.ok(service.stats().streamsShed >= 1, 'a stream was closed to keep within the bound');
    assert.ok(errors.size >= 1);
    for (const [key, err] of errors) {
      assert.equal(err.code, 'ALLIUM_STREAM_END', `${key}: ${err.message}`);
      assert.equal(err.endReason, EndReason.RESOURCELIMIT, key);
    }
    assert.ok(service.stats().bufferedPeakBytes > LIMIT, 'the uploads did reach past the bound');
    assert.ok(settledPeak <= LIMIT + RELAY_DATA_MAX, `held ${settledPeak} bytes at most`);
    assert.equal(service.stats().bufferedBytes, buffers.total);

    // Another client is still served.
    const ping = await client.connect(service.address, 80, { isolation: 'later' });
    const answer = await new Promise<string>((resolve, reject) => {
      let got = '';
      ping.on('data', (d: Buffer) => (got += d.toString()));
      ping.on('end', () => resolve(got));
      ping.on('error', reject);
      ping.write('PING\n');
      setTimeout(() => reject(new Error(`no PONG in 10 s (got ${JSON.stringify(got)})`)), 10_000).unref();
    });
    assert.equal(answer, 'PONG\n');
    for (const s of uploads) s.destroy();
  });
});
