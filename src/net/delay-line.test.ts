import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { describe, it } from 'node:test';
import { startDelayLine } from './delay-line.js';

/** An echo server on 127.0.0.1, and a delay line in front of it. */
async function echoBehindLine(delayMs: number, jitterMs: number) {
  const echo = net.createServer((s) => s.pipe(s));
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', () => r()));
  const line = await startDelayLine(
    { host: '127.0.0.1', port: 0 },
    { host: '127.0.0.1', port: (echo.address() as net.AddressInfo).port },
    delayMs,
    jitterMs,
  );
  return {
    line,
    close: async () => {
      await line.close();
      await new Promise<void>((r) => echo.close(() => r()));
    },
  };
}

describe('delay line', () => {
  it('holds data at least the delay each way, and with jitter still delivers every byte in order', async () => {
    const { line, close } = await echoBehindLine(15, 30);
    try {
      const sock = net.connect(line.port, '127.0.0.1');
      await new Promise<void>((r) => sock.once('connect', () => r()));
      const sent = randomBytes(2 * 1024 * 1024);
      const received: Buffer[] = [];
      let got = 0;
      const started = performance.now();
      let firstByteMs = 0;
      const done = new Promise<void>((resolve) => {
        sock.on('data', (d: Buffer) => {
          if (got === 0) firstByteMs = performance.now() - started;
          received.push(d);
          got += d.length;
          if (got >= sent.length) resolve();
        });
      });
      // Many small writes over time, so chunks draw different delays.
      for (let off = 0; off < sent.length; off += 16 * 1024) {
        sock.write(sent.subarray(off, off + 16 * 1024));
        if (off % (256 * 1024) === 0) await new Promise((r) => setTimeout(r, 2));
      }
      await done;
      sock.destroy();
      assert.ok(Buffer.concat(received).equals(sent), 'every byte back, in order');
      assert.ok(
        firstByteMs >= 2 * 15 - 1,
        `the echo took ${firstByteMs.toFixed(1)} ms, at least the delay both ways`,
      );
    } finally {
      await close();
    }
  });
});
