// A client that pushes data at a destination that never reads, ends its streams (END DONE) and keeps
// its circuit: the exit must not keep what it holds for those streams, nor the streams, forever.
// In one process, so the test can read the exit's own figures.
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { EXIT_DRAIN_STALL_MS } from '../../src/relay/exit-streams.js';
import { startNetwork } from '../helpers/network.js';

const STREAMS = 8;
const BYTES_PER_STREAM = 3.5 * 1024 * 1024;

test('streams ended by the client toward a destination that never reads are dropped, and their buffers freed', {
  timeout: 120_000,
}, async () => {
  const sockets = new Set<net.Socket>();
  const sink = net.createServer({ pauseOnConnect: true }, (s) => {
    sockets.add(s);
    s.on('error', () => {});
  });
  await new Promise<void>((r) => sink.listen(0, '127.0.0.1', () => r()));
  const port = (sink.address() as net.AddressInfo).port;
  const network = await startNetwork({ relays: 3, exits: 1 });
  try {
    const exit = network.relays[0];
    const streams = await Promise.all(
      Array.from({ length: STREAMS }, () =>
        network.client.connect('127.0.0.1', port, { isolation: 'drain' }),
      ),
    );
    // Within the stream window, so the END right behind the data is not held back at the client.
    for (const s of streams) {
      s.on('error', () => {});
      s.write(Buffer.alloc(BYTES_PER_STREAM, 0x62));
      s.end();
    }
    let peak = 0;
    let open = 0;
    for (let i = 0; i < 40; i++) {
      peak = Math.max(peak, exit.exitLoad().bufferedBytes);
      open = Math.max(open, exit.gauges().streams);
      await new Promise((r) => setTimeout(r, 50));
    }
    const endedAt = performance.now();
    let left = exit.gauges().streams;
    for (let i = 0; i < 200 && (left > 0 || exit.exitLoad().bufferedBytes > 0); i++) {
      await new Promise((r) => setTimeout(r, 250));
      left = exit.gauges().streams;
    }
    console.log(
      `${STREAMS} streams of ${BYTES_PER_STREAM} bytes ended by the client: exit held up to ${peak} bytes (the rest in the kernel); ` +
        `${left} streams and ${exit.exitLoad().bufferedBytes} bytes left ${(performance.now() - endedAt).toFixed(0)} ms later ` +
        `(a destination idle for ${EXIT_DRAIN_STALL_MS} ms after the client's END is dropped)`,
    );
    assert.equal(open, STREAMS, 'the streams reached the exit');
    assert.equal(left, 0, 'the exit dropped the streams');
    assert.equal(exit.exitLoad().bufferedBytes, 0, 'and freed what they held');
  } finally {
    await network.stop();
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => sink.close(() => r()));
  }
});
