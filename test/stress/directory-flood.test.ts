// The fake-relay flood against a real `allium directory` process: thousands of signed descriptors (real
// Ed25519 keys, 16 KiB each with comment lines and 64 family ids) registered from one address. The
// per-address limit lists a handful; with that limit lifted (an attacker with many addresses) the
// consensus budget refuses the rest with 503 and the consensus stays under its cap. A client fetches
// and verifies the consensus throughout; the directory's RSS, the latencies and the sizes are printed.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import { test } from 'node:test';
import { openConsensusJson, signDescriptor } from '../../src/core/documents.js';
import { IdentityKey } from '../../src/crypto/keys.js';
import { DirectoryClient } from '../../src/net/directory-client.js';
import { Testnet } from '../../src/testnet/testnet.js';
import {
  MAX_CONSENSUS_BYTES,
  MAX_DESCRIPTOR_BYTES,
  MAX_FAMILY_MEMBERS,
  type RelayDescriptor,
  type SignedEnvelope,
} from '../../src/wire/directory-docs.js';
import {
  AlliumProcess,
  directoryArgs,
  DIRECTORY_WITHOUT_LISTING_LIMITS as FLOODABLE,
} from '../helpers/allium-process.js';
import { makeTestRelay } from '../helpers/relay-fixtures.js';
import { tempDir } from '../helpers/temp.js';

const MiB = 1024 * 1024;

function rssMiB(pid: number | undefined): string {
  if (pid === undefined) return '?';
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? `${Math.round(Number(m[1]) / 1024)} MiB` : '?';
}

/**
 * A signed descriptor as large as the directory accepts. `rules`: policy lines that survive
 * normalisation (so the entry stays large in the consensus); otherwise '#' lines the parser skips.
 */
function fakeDescriptor(i: number, opts: { rules: boolean }): SignedEnvelope {
  const identity = IdentityKey.generate();
  const family = Array.from({ length: MAX_FAMILY_MEMBERS }, () => randomBytes(32).toString('hex'));
  const base: Partial<RelayDescriptor> = {
    nickname: `fake${i}`,
    address: '127.0.0.1',
    port: 1 + (i % 65535),
    bandwidth: 1,
    family,
    published: Date.now(),
  };
  const policy: string[] = [];
  // The descriptor without a policy, then rules while they fit (each adds its text, quotes and comma).
  let size = JSON.stringify(
    makeTestRelay({ ...base, exitPolicy: ['reject *:*'] }, identity).descriptor,
  ).length;
  for (let n = 0; n < 255; n++) {
    const line = opts.rules
      ? `reject 10.${n}.${i & 255}.0/24:${1000 + n}-${2000 + n}`
      : `# ${'x'.repeat(100)} ${n}`;
    if (size + line.length + 3 > MAX_DESCRIPTOR_BYTES - 100) break;
    policy.push(line);
    size += line.length + 3;
  }
  const { descriptor } = makeTestRelay({ ...base, exitPolicy: [...policy, 'reject *:*'] }, identity);
  return signDescriptor(identity, descriptor);
}

/**
 * POSTs a JSON body on a connection of its own, closed after the answer. An attacker has no use for
 * keep-alive, and a kept connection that the directory closes after its idle timeout just as the
 * next request goes out (the client's timer late on a busy machine) would fail the request for a
 * reason that is not the directory's.
 */
function postOnNewConnection(url: string, body: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      { method: 'POST', agent: false, headers: { 'content-type': 'application/json', connection: 'close' } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

interface FloodResult {
  statuses: Map<string, number>;
  consensusFetches: number;
  consensusMaxMs: number;
  consensusMaxBytes: number;
  consensusRelaysMax: number;
}

/**
 * Posts `envelopes` (32 at a time) until all are sent or `stopAfter` 503s were seen, while a client
 * fetches and verifies the consensus in a loop. Every consensus fetch must succeed.
 */
async function flood(
  url: string,
  key: Buffer,
  envelopes: SignedEnvelope[],
  opts: { stopAfterFull?: number; pid?: number },
): Promise<FloodResult> {
  const statuses = new Map<string, number>();
  let next = 0;
  let full = 0;
  let done = false;
  const poster = async () => {
    while (next < envelopes.length && full < (opts.stopAfterFull ?? Number.POSITIVE_INFINITY)) {
      const env = envelopes[next++];
      const res = await postOnNewConnection(`${url}/v1/relays`, JSON.stringify(env));
      const body = JSON.parse(res.body) as { error?: { code: string } };
      const k = `${res.status} ${body.error?.code ?? 'listed'}`;
      statuses.set(k, (statuses.get(k) ?? 0) + 1);
      if (res.status === 503) full++;
    }
  };
  const result: FloodResult = {
    statuses,
    consensusFetches: 0,
    consensusMaxMs: 0,
    consensusMaxBytes: 0,
    consensusRelaysMax: 0,
  };
  const bystander = (async () => {
    // Bounded: the flood ends, and at most 500 fetches. The time printed is the directory's answer
    // (request to last byte); verifying a 32 MiB consensus afterwards is the client's own cost.
    while (!done && result.consensusFetches < 500) {
      const t0 = performance.now();
      const res = await fetch(`${url}/v1/consensus`);
      assert.equal(res.status, 200, 'the consensus is served throughout');
      const text = await res.text();
      result.consensusMaxMs = Math.max(result.consensusMaxMs, performance.now() - t0);
      const envelope = JSON.parse(text) as SignedEnvelope;
      const consensus = openConsensusJson(envelope, key);
      result.consensusMaxBytes = Math.max(result.consensusMaxBytes, Buffer.byteLength(envelope.body));
      result.consensusRelaysMax = Math.max(result.consensusRelaysMax, consensus.relays.length);
      result.consensusFetches++;
      // A client fetches now and then, not back to back: pace the loop.
      await new Promise((res) => setTimeout(res, 250));
    }
  })();
  const t0 = performance.now();
  try {
    await Promise.all(Array.from({ length: 32 }, poster));
  } finally {
    done = true;
  }
  console.log(
    `  flood of ${next} registrations took ${Math.round(performance.now() - t0)} ms; directory RSS during: ${rssMiB(opts.pid)}`,
  );
  await bystander;
  return result;
}

function report(r: FloodResult): void {
  console.log(`  answers: ${[...r.statuses].map(([k, n]) => `${k} x${n}`).join(', ')}`);
  console.log(
    `  bystander: ${r.consensusFetches} consensus fetches verified, slowest answer ${Math.round(r.consensusMaxMs)} ms; ` +
      `largest consensus ${(r.consensusMaxBytes / MiB).toFixed(2)} MiB of the ${MAX_CONSENSUS_BYTES / MiB} MiB cap, ` +
      `${r.consensusRelaysMax} relays`,
  );
}

test('2,200 fake relays from one address: the per-address limit lists at most 32, real relays stay listed', async () => {
  const net = await Testnet.start({
    relays: 3,
    exits: 1,
    client: false,
    // Stands in for an attacker who answers link handshakes: the reachability check would stop
    // fakes that do not, which is not the limit under test.
    directoryArgs: ['--no-reachability-check'],
  });
  try {
    const key = Buffer.from(net.directoryKey, 'base64');
    const pid = net.directoryProcess?.pid;
    const envelopes = Array.from({ length: 2200 }, (_, i) => fakeDescriptor(i, { rules: false }));
    console.log(
      `  descriptor size: ${envelopes[0].body.length} bytes of ${MAX_DESCRIPTOR_BYTES}; directory RSS before: ${rssMiB(pid)}`,
    );
    const r = await flood(net.directoryUrl, key, envelopes, { pid });
    report(r);
    const listed = r.statuses.get('201 listed') ?? 0;
    assert.equal(listed, 32 - 3, 'the loopback address had room for 29 more relays beside the 3 real ones');
    assert.equal(r.statuses.get('403 ALLIUM_RELAY_ADDRESS_LIMIT'), envelopes.length - listed);
    const c = await new DirectoryClient({ url: net.directoryUrl, directoryKey: key }).consensus();
    assert.equal(c.relays.length, 32);
    for (const p of net.relays)
      assert.ok(
        c.relays.some((x) => x.nickname === p.name),
        `${p.name} listed`,
      );
    // The '#' lines were not republished.
    assert.ok(c.relays.every((x) => x.exitPolicy.every((l) => !l.startsWith('#'))));
    console.log(`  directory RSS after: ${rssMiB(pid)}`);
  } finally {
    await net.stop();
  }
});

test('with the per-address limit lifted, a flood fills the consensus budget: 503, and the consensus stays under its cap', async () => {
  const dataDir = tempDir('flood');
  const dir = await AlliumProcess.start(
    'directory',
    directoryArgs(dataDir, 0, [...FLOODABLE, '--log-level', 'warn']),
  );
  try {
    assert.ok(dir.running, dir.log);
    const key = Buffer.from(dir.ready.key, 'base64');
    const pid = dir.proc.pid;
    // About 12 KiB of each survives normalisation: some 2,700 fill the 32 MiB cap. Bounded at 3,200.
    const envelopes = Array.from({ length: 3200 }, (_, i) => fakeDescriptor(i, { rules: true }));
    console.log(`  directory RSS before: ${rssMiB(pid)}`);
    const r = await flood(dir.ready.url, key, envelopes, { pid, stopAfterFull: 16 });
    report(r);
    assert.ok((r.statuses.get('503 ALLIUM_DIRECTORY_FULL') ?? 0) > 0, 'the budget refused the flood');
    assert.ok(r.consensusMaxBytes <= MAX_CONSENSUS_BYTES);
    const listed = r.statuses.get('201 listed') ?? 0;
    // A consensus this large is rebuilt at most every ten build times: wait (bounded) for the last one.
    const client = new DirectoryClient({ url: dir.ready.url, directoryKey: key, timeoutMs: 60_000 });
    let relays = 0;
    for (let i = 0; i < 30 && relays !== listed; i++) {
      relays = (await client.consensus()).relays.length;
      if (relays !== listed) await new Promise((res) => setTimeout(res, 1000));
    }
    assert.equal(relays, listed, 'every relay accepted is listed: nothing was dropped');
    console.log(`  directory RSS after: ${rssMiB(pid)}`);
    assert.ok(dir.running, 'the directory is still up');
  } finally {
    await dir.kill();
    rmSync(dataDir, { recursive: true, force: true });
  }
});
