// Scale: one relay holding N idle circuits; prints memory per circuit and CREATE throughput.
// Run: node --expose-gc dist/bench/idle-circuits.js [circuits]
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ntorClientStart } from '../src/crypto/ntor.js';
import { connectLink } from '../src/net/link.js';
import { encodeCreate } from '../src/wire/cell-bodies.js';
import { CellCommand, HandshakeType } from '../src/wire/constants.js';
import { startNetwork } from '../test/helpers/network.js';

const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
const settle = async () => {
  gc();
  await new Promise((r) => setTimeout(r, 300));
  gc();
};

/**
 * Runs the measurement in a fresh process: in the bench's own, the memory its earlier phases give
 * back to the system outweighed 2000 circuits (RSS per circuit came out negative).
 */
export async function runIdleCircuitsBench(count = 10_000): Promise<Record<string, number>> {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['--expose-gc', fileURLToPath(import.meta.url), String(count), '--json'],
    { timeout: 300_000 },
  );
  return JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as Record<string, number>;
}

async function measureIdleCircuits(count: number): Promise<Record<string, number>> {
  // No handshake worker: the figure is memory per circuit, not a worker thread's own footprint.
  const unlimited = { createsPerSecond: 1e9, createBurst: 1e9, circuitsPerLink: 1e9, handshakeThreads: 0 };
  const netw = await startNetwork({ relays: 3, exits: 1, relayOptions: () => ({ limits: unlimited }) });
  try {
    const relay = netw.relays[1];
    const skins = Array.from(
      { length: count },
      () => ntorClientStart(relay.id, relay.onionKey.publicKey).onionskin,
    );
    await settle();
    const before = process.memoryUsage();
    const link = await connectLink({
      host: '127.0.0.1',
      port: relay.port,
      relayId: relay.id,
      me: { identity: null },
    });
    let created = 0;
    link.on({ cells: (cells) => (created += cells.filter((c) => c.command === CellCommand.CREATED).length) });
    const t0 = performance.now();
    for (let i = 0; i < count; i++) {
      link.send(
        (0x80000000 | (i + 1)) >>> 0,
        CellCommand.CREATE,
        encodeCreate(HandshakeType.NTOR_X25519_SHA256, skins[i]),
      );
    }
    const deadline = Date.now() + 120_000;
    while (created < count && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const ms = performance.now() - t0;
    await settle();
    const after = process.memoryUsage();
    link.close();
    return {
      circuits: relay.gauges().circuits,
      createsPerSecond: Math.round((created / ms) * 1000),
      rssBytesPerCircuit: Math.round((after.rss - before.rss) / count),
      heapBytesPerCircuit: Math.round((after.heapUsed - before.heapUsed) / count),
      externalBytesPerCircuit: Math.round((after.external - before.external) / count),
    };
  } finally {
    await netw.stop();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const r = await measureIdleCircuits(Number(process.argv[2] ?? 10_000));
  if (process.argv.includes('--json')) {
    console.log(JSON.stringify(r));
    process.exit(0);
  }
  console.log(
    `idle circuits: ${r.circuits} held; ${r.rssBytesPerCircuit} B RSS per circuit (heap ${r.heapBytesPerCircuit} B, ` +
      `external ${r.externalBytesPerCircuit} B); CREATEs answered at ${r.createsPerSecond}/s (client side in the same process)`,
  );
}
