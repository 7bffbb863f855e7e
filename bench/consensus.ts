// The consensus benchmark line (docs/protocol.md §6.3 at scale): a consensus of 5,000 relays: its size, the
// time to build and sign it, the time for a client to fetch it over HTTP and verify it, and the time for
// the directory to start from a data directory holding that many relays (each record re-verified).
// `node dist/bench/consensus.js [relays]` prints one line; bench/run.ts calls runConsensusBench().
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { openConsensusJson, signConsensus, signDescriptor } from '../src/core/documents.js';
import { IdentityKey, X25519Key } from '../src/crypto/keys.js';
import { buildConsensus } from '../src/directory/consensus.js';
import { Directory } from '../src/directory/directory.js';
import { DirectoryStore } from '../src/directory/store.js';
import { DirectoryClient } from '../src/net/directory-client.js';
import type { RelayDescriptor, SignedEnvelope } from '../src/wire/directory-docs.js';

const ROUNDS = 5;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function timed<T>(f: () => Promise<T> | T): Promise<[T, number]> {
  const t = performance.now();
  const r = await f();
  return [r, performance.now() - t];
}

/** Relays that look like real ones (half exits); addresses from 198.18.0.0/15, the benchmarking range. */
export function makeRelays(
  n: number,
  now: number,
): { descriptor: RelayDescriptor; envelope: SignedEnvelope }[] {
  const out: { descriptor: RelayDescriptor; envelope: SignedEnvelope }[] = [];
  for (let i = 0; i < n; i++) {
    const identity = IdentityKey.generate();
    const descriptor: RelayDescriptor = {
      nickname: `bench${i}`,
      id: identity.id.toString('hex'),
      identityKey: identity.publicKey.toString('base64'),
      onionKey: X25519Key.generate().publicKey.toString('base64'),
      address: `198.${18 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`,
      port: 9001 + (i % 1000),
      exitPolicy: i % 2 === 0 ? ['accept *:80', 'accept *:443', 'reject *:*'] : ['reject *:*'],
      bandwidth: 1_000_000 + i,
      version: 'allium/0.1.0',
      published: now,
    };
    out.push({ descriptor, envelope: signDescriptor(identity, descriptor) });
  }
  return out;
}

export async function runConsensusBench(relays = 5000): Promise<Record<string, number>> {
  const root = await mkdtemp(join(tmpdir(), 'allium-bench-consensus-'));
  try {
    const now = Date.now();
    const made = makeRelays(relays, now);

    // A data directory as a directory that has run for a while would leave it.
    const store = new DirectoryStore(root);
    await store.init();
    const { key } = await store.loadOrCreateKey();
    await store.saveState({
      serial: now,
      relays: made.map((r) => ({ envelope: r.envelope, firstSeen: now, lastSeen: now })),
      withdrawn: [],
    });

    // Build and sign, as the directory does on every change: build, serialise, sign, serialise the envelope.
    const descriptors = made.map((r) => r.descriptor);
    const buildTimes: number[] = [];
    let envelopeJson = '';
    for (let i = 0; i < ROUNDS; i++) {
      const [json, ms] = await timed(() => {
        const c = buildConsensus(descriptors, {
          freshMs: 60_000,
          validMs: 3 * 3600_000,
          serial: now + i,
          now,
          directoryKey: key.publicKey.toString('base64'),
        });
        return JSON.stringify(signConsensus(key, c));
      });
      buildTimes.push(ms);
      envelopeJson = json;
    }

    const [dir, loadMs] = await timed(() =>
      Directory.start({ dataDir: root, reachabilityCheck: false, relayTtlMs: 3600_000 }),
    );
    try {
      const client = new DirectoryClient({ url: dir.url, directoryKey: dir.publicKey, timeoutMs: 60_000 });
      // The first request builds the consensus; the rounds after it measure what every client pays.
      const first = await client.consensus();
      if (first.relays.length !== relays) throw new Error(`consensus lists ${first.relays.length} relays`);
      const fetchTimes: number[] = [];
      for (let i = 0; i < ROUNDS; i++) fetchTimes.push((await timed(() => client.consensus()))[1]);
      const verifyTimes: number[] = [];
      for (let i = 0; i < ROUNDS; i++) {
        verifyTimes.push((await timed(() => openConsensusJson(JSON.parse(envelopeJson), key.publicKey)))[1]);
      }
      const bytes = Buffer.byteLength(envelopeJson);
      return {
        relays,
        consensusBytes: bytes,
        bytesPerRelay: Math.round(bytes / relays),
        buildSignMs: round(median(buildTimes)),
        fetchVerifyMs: round(median(fetchTimes)),
        verifyOnlyMs: round(median(verifyTimes)),
        directoryStartMs: round(loadMs),
      };
    } finally {
      await dir.stop();
    }
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}

export function formatConsensusBench(r: Record<string, number>): string {
  return (
    `consensus with ${r.relays} relays: ${(r.consensusBytes / 1e6).toFixed(2)} MB (${r.bytesPerRelay} B/relay), ` +
    `build+sign ${r.buildSignMs} ms, client fetch+verify ${r.fetchVerifyMs} ms (verify alone ${r.verifyOnlyMs} ms), ` +
    `directory start with ${r.relays} stored relays ${r.directoryStartMs} ms`
  );
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const n = process.argv[2] ? Number(process.argv[2]) : 5000;
  if (!Number.isInteger(n) || n < 1) {
    process.stderr.write('usage: node dist/bench/consensus.js [relays]\n');
    process.exit(2);
  }
  runConsensusBench(n).then(
    (r) => process.stdout.write(`${formatConsensusBench(r)}\n`),
    (err) => {
      process.stderr.write(`consensus bench failed: ${err.stack ?? err}\n`);
      process.exit(1);
    },
  );
}
