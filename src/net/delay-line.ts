// Long round trips on loopback without netem: a TCP forwarder that holds every chunk `delayMs` in each
// direction before passing it on, in order. A relay listening on one loopback address and advertising
// another, where a delay line listens, gets that delay on every link to it (`allium testnet
// --link-delay`, the long-round-trip test and bench line). Timers make it ~1 ms coarse. With jitter,
// each chunk waits up to `jitterMs` more, at random, and never overtakes the one before it (a FIFO
// link whose delay varies: one late chunk holds back those behind it, as on a busy Wi-Fi hop).
import net from 'node:net';
import { randomFraction } from '../crypto/random.js';

/** Bytes queued toward one side before the other side is paused. */
const MAX_QUEUED = 8 * 1024 * 1024;

function delayedPipe(src: net.Socket, dst: net.Socket, delayMs: number, jitterMs: number): void {
  const queue: { due: number; chunk: Buffer }[] = [];
  let timer: NodeJS.Timeout | null = null;
  let ended = false;
  let lastDue = 0;
  const pump = () => {
    timer = null;
    const now = performance.now();
    while (queue.length > 0 && queue[0].due <= now) dst.write(queue.shift()!.chunk);
    if (queue.length > 0) timer = setTimeout(pump, Math.max(0, queue[0].due - now));
    else if (ended) dst.end();
    if (dst.writableLength > MAX_QUEUED) src.pause();
  };
  dst.on('drain', () => src.resume());
  src.on('data', (chunk: Buffer) => {
    const now = performance.now();
    const due = Math.max(lastDue, now + delayMs + randomFraction() * jitterMs);
    lastDue = due;
    queue.push({ due, chunk });
    if (!timer) timer = setTimeout(pump, due - now);
  });
  src.on('end', () => {
    ended = true;
    if (queue.length === 0 && !timer) dst.end();
  });
}

export interface DelayLine {
  /** The port it listens on. */
  port: number;
  close(): Promise<void>;
}

/**
 * Listens on `listen` (port 0: any free port) and forwards every connection to `target`, `delayMs`
 * (plus up to `jitterMs` at random) late each way; the target's port is the line's own unless given.
 */
export async function startDelayLine(
  listen: { host: string; port: number },
  target: { host: string; port?: number },
  delayMs: number,
  jitterMs = 0,
): Promise<DelayLine> {
  const sockets = new Set<net.Socket>();
  let port = 0;
  const server = net.createServer((a) => {
    const b = net.connect(target.port ?? port, target.host);
    for (const s of [a, b]) {
      s.setNoDelay(true);
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    }
    delayedPipe(a, b, delayMs, jitterMs);
    delayedPipe(b, a, delayMs, jitterMs);
    a.on('error', () => b.destroy());
    b.on('error', () => a.destroy());
    a.on('close', () => b.destroy());
    b.on('close', () => a.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => resolve());
  });
  port = (server.address() as net.AddressInfo).port;
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
