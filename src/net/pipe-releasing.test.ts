import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import net from 'node:net';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { pipeReleasing } from './pipe-releasing.js';

/** A connected loopback socket pair. */
async function socketPair(): Promise<[net.Socket, net.Socket, () => void]> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
  const a = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  await new Promise((r) => a.once('connect', r));
  return [a, await accepted, () => server.close()];
}

test('a slow reader gets every byte in order, the source pauses, and written chunks are freed', async () => {
  const [a, b, close] = await socketPair();
  // 32 MiB: more than the kernel's loopback buffers take in (they grow to a few MiB), so the socket's
  // own queue must fill and the source must wait.
  const chunks = Array.from({ length: 512 }, (_, i) => Buffer.alloc(64 * 1024, i & 0xff));
  const sent = createHash('sha256');
  for (const c of chunks) sent.update(c);
  const source = new Readable({ read() {} });
  for (const c of chunks) source.push(c);
  source.push(null);
  let paused = 0;
  source.on('pause', () => paused++);
  try {
    pipeReleasing(source, a);
    // Nobody reads until the source has paused once (or 5 s have passed: then the assertion says so).
    b.pause();
    for (let i = 0; i < 500 && paused === 0; i++) await new Promise((r) => setTimeout(r, 10));
    // Then read 256 KiB at a time with pauses.
    const got = createHash('sha256');
    let total = 0;
    await new Promise<void>((resolve) => {
      const tick = () => {
        let n = 0;
        while (n < 256 * 1024) {
          const d: Buffer | null = b.read();
          if (d === null) break;
          got.update(d);
          n += d.length;
        }
        total += n;
        if (b.readableEnded) resolve();
        else setTimeout(tick, 2);
      };
      b.once('end', resolve);
      tick();
    });
    for (let d = b.read(); d !== null; d = b.read()) {
      got.update(d);
      total += d.length;
    }
    assert.ok(paused > 0, 'the source was paused while the socket was full');
    assert.equal(total, 512 * 64 * 1024);
    assert.equal(got.digest('hex'), sent.digest('hex'));
    assert.ok(
      chunks.every((c) => c.length === 0),
      'every chunk was released once written',
    );
  } finally {
    a.destroy();
    b.destroy();
    close();
  }
});

test('the destination closing stops the pipe without writing to a destroyed socket', async () => {
  const [a, b, close] = await socketPair();
  const source = new Readable({ read() {} });
  pipeReleasing(source, a);
  source.push(Buffer.alloc(32 * 1024, 1));
  await new Promise((r) => b.once('data', r));
  a.destroy();
  await new Promise((r) => a.once('close', r));
  const late = Buffer.alloc(32 * 1024, 2);
  source.push(late);
  await new Promise((r) => setImmediate(r));
  assert.equal(late.length, 32 * 1024, 'a chunk that was never written is not released');
  assert.equal(source.listenerCount('data'), 0);
  b.destroy();
  close();
});
