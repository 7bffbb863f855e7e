// Scale: does a flood of CREATEs stall relaying? In one process: 3 relays (so every circuit
// crosses the flooded relay), a 10 MiB download timed alone and then while many links flood a
// non-exit relay with CREATEs (each link within its own rate limit), once with every handshake on the
// relaying thread and once with the worker thread taking what exceeds --inline-handshakes.
// Run: node dist/bench/create-flood.js
import { ntorClientStart } from '../src/crypto/ntor.js';
import { streamGet } from '../src/net/http-fetch.js';
import { connectLink, type Link } from '../src/net/link.js';
import { encodeCreate } from '../src/wire/cell-bodies.js';
import { CellCommand, HandshakeType } from '../src/wire/constants.js';
import { startNetwork } from '../test/helpers/network.js';
import { makeFiles, startHttpServer } from '../test/helpers/web.js';

export interface CreateFloodResult {
  links: number;
  createsSent: number;
  quietMiBps: number;
  /** Download rate during the flood, every handshake on the relaying thread. */
  floodInlineMiBps: number;
  /** Download rate during the flood, a worker thread answering past the inline rate. */
  floodWorkerMiBps: number;
  createsPerSecondInline: number;
  createsPerSecondWorker: number;
}

async function once(threads: number, links: number, perLink: number) {
  const files = makeFiles();
  const web = await startHttpServer(files);
  const netw = await startNetwork({
    relays: 3,
    exits: 1,
    relayOptions: () => ({ limits: { handshakeThreads: threads } }),
  });
  try {
    const relay = netw.relays.find((r) => !r.isExit) ?? netw.relays[0];
    const download = async () => {
      const t0 = performance.now();
      const res = await streamGet(`${web.url}/random10m`, { connect: (h, p) => netw.client.connect(h, p) });
      let bytes = 0;
      for await (const c of res) bytes += (c as Buffer).length;
      return bytes / 1048576 / ((performance.now() - t0) / 1000);
    };
    await download(); // builds the circuit and warms up
    const quiet = await download();
    const conns: Link[] = await Promise.all(
      Array.from({ length: links }, () =>
        connectLink({ host: '127.0.0.1', port: relay.port, relayId: relay.id, me: { identity: null } }),
      ),
    );
    const skins = Array.from(
      { length: links * perLink },
      () => ntorClientStart(relay.id, relay.onionKey.publicKey).onionskin,
    );
    let created = 0;
    for (const l of conns)
      l.on({ cells: (cells) => (created += cells.filter((c) => c.command === CellCommand.CREATED).length) });
    const t0 = performance.now();
    for (let i = 0; i < perLink; i++) {
      for (let k = 0; k < links; k++) {
        conns[k].send(
          (0x80000000 | (i + 1)) >>> 0,
          CellCommand.CREATE,
          encodeCreate(HandshakeType.NTOR_X25519_SHA256, skins[i * links + k]),
        );
      }
    }
    const during = await download();
    const deadline = Date.now() + 60_000;
    while (created < links * perLink && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const createsPerSecond = Math.round((created / (performance.now() - t0)) * 1000);
    for (const l of conns) l.close();
    return { quiet, during, createsPerSecond };
  } finally {
    await netw.stop();
    await web.close();
  }
}

export async function runCreateFloodBench(links = 32, perLink = 400): Promise<CreateFloodResult> {
  const inline = await once(0, links, perLink);
  const worker = await once(1, links, perLink);
  const r1 = (x: number) => Math.round(x * 10) / 10;
  return {
    links,
    createsSent: links * perLink,
    quietMiBps: r1((inline.quiet + worker.quiet) / 2),
    floodInlineMiBps: r1(inline.during),
    floodWorkerMiBps: r1(worker.during),
    createsPerSecondInline: inline.createsPerSecond,
    createsPerSecondWorker: worker.createsPerSecond,
  };
}

export function describeCreateFlood(r: CreateFloodResult): string {
  return (
    `CREATE flood (in one process; ${r.links} links x ${r.createsSent / r.links} CREATEs at one relay of the path, each link within its rate limit): ` +
    `10 MiB download ${r.quietMiBps} MiB/s alone; during the flood ${r.floodInlineMiBps} MiB/s with handshakes on the relaying thread ` +
    `(${r.createsPerSecondInline} CREATEs/s answered), ${r.floodWorkerMiBps} MiB/s with the handshake worker (${r.createsPerSecondWorker}/s)`
  );
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(describeCreateFlood(await runCreateFloodBench()));
}
