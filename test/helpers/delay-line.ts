// Long round trips on loopback without netem (not available here): a TCP forwarder that holds every
// chunk `delayMs` in each direction before passing it on, in order. A relay listening on one loopback
// address and advertising another, where a delay line listens, gets that delay on every link to it.
import net from 'node:net';
import { Testnet } from '../../src/testnet/testnet.js';

/** Bytes queued toward one side before the other side is paused. */
const MAX_QUEUED = 8 * 1024 * 1024;

function delayedPipe(src: net.Socket, dst: net.Socket, delayMs: number): void {
  const queue: { due: number; chunk: Buffer }[] = [];
  let timer: NodeJS.Timeout | null = null;
  let ended = false;
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
    queue.push({ due: performance.now() + delayMs, chunk });
    if (!timer) timer = setTimeout(pump, delayMs);
  });
  src.on('end', () => {
    ended = true;
    if (queue.length === 0 && !timer) dst.end();
  });
}

export interface DelayLine {
  close(): Promise<void>;
}

/** Listens on `listen` and forwards every connection to `target`, `delayMs` late each way. */
export async function startDelayLine(
  listen: { host: string; port: number },
  target: { host: string; port: number },
  delayMs: number,
): Promise<DelayLine> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((a) => {
    const b = net.connect(target.port, target.host);
    for (const s of [a, b]) {
      s.setNoDelay(true);
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    }
    delayedPipe(a, b, delayMs);
    delayedPipe(b, a, delayMs);
    a.on('error', () => b.destroy());
    b.on('error', () => a.destroy());
    a.on('close', () => b.destroy());
    b.on('close', () => a.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => resolve());
  });
  return {
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/**
 * A testnet of `relays` relays (src/testnet/testnet.ts) behind delay lines: relay i listens on
 * 127.0.1.i and advertises 127.0.2.i, where its delay line listens, so every link to a relay (from
 * the client or another relay) has a round trip of 2 x `oneWayMs`. `stop()` stops both.
 */
export async function startDelayedTestnet(o: {
  relays: number;
  oneWayMs: number;
  clientArgs?: string[];
  logLevel?: string;
}): Promise<{ testnet: Testnet; stop(): Promise<void> }> {
  const lines: DelayLine[] = [];
  const base = 30_000 + Math.floor(Math.random() * 20_000);
  const closeLines = async () => {
    for (const l of lines) await l.close();
  };
  try {
    for (let i = 1; i <= o.relays; i++) {
      const port = base + i;
      lines.push(
        await startDelayLine({ host: `127.0.2.${i}`, port }, { host: `127.0.1.${i}`, port }, o.oneWayMs),
      );
    }
    const testnet = await Testnet.start({
      relays: o.relays,
      logLevel: o.logLevel,
      relayArgs: (i) => [
        '--host',
        `127.0.1.${i + 1}`,
        '--port',
        String(base + i + 1),
        '--address',
        `127.0.2.${i + 1}`,
      ],
      clientArgs: o.clientArgs,
    });
    return {
      testnet,
      stop: async () => {
        await testnet.stop();
        await closeLines();
      },
    };
  } catch (err) {
    await closeLines();
    throw err;
  }
}
