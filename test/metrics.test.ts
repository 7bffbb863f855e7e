// Each role's Prometheus endpoint, scraped while a download runs through a testnet of processes: the
// byte counters must grow by at least the bytes downloaded. Also `allium fetch` stays quiet when piped.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { parseExposition } from '../src/core/prometheus.js';
import { CLI_PATH, Testnet } from '../src/testnet/testnet.js';
import { curlViaSocks } from './helpers/curl.js';
import { tempDir } from './helpers/temp.js';
import { sleep } from './helpers/wait.js';
import { makeFiles, sha256, startHttpServer, type WebServer } from './helpers/web.js';

const run = promisify(execFile);
const METRICS = ['--metrics', '127.0.0.1:0'];

async function scrape(hostPort: string): Promise<Map<string, number>> {
  const res = await fetch(`http://${hostPort}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  return parseExposition(await res.text());
}

describe('metrics endpoints of a testnet during a download', () => {
  let tn: Testnet;
  let web: WebServer;
  const files = makeFiles();
  const out = tempDir('metrics');

  before(async () => {
    web = await startHttpServer(files);
    tn = await Testnet.start({
      relays: 5,
      directoryArgs: METRICS,
      relayArgs: () => METRICS,
      clientArgs: METRICS,
    });
  });
  after(async () => {
    await tn?.stop();
    await web?.close();
  });

  test('every role serves its metrics; byte counters grow by at least the 10 MiB downloaded', async () => {
    const endpoint = (name: string) => tn.processes.find((p) => p.name === name)!.ready.metrics;
    const relayNames = tn.relays.map((r) => r.name);
    for (const n of ['directory', 'client', ...relayNames]) assert.ok(endpoint(n), `${n} announced metrics=`);

    const dir = await scrape(endpoint('directory'));
    assert.equal(dir.get('allium_directory_relays_listed'), 5);
    assert.equal(dir.get('allium_directory_registrations_total{result="new"}'), 5);
    assert.ok((dir.get('allium_directory_consensus_fetches_total') ?? 0) >= 1);

    const size = files['/random10m'].length;
    const before = {
      client: await scrape(endpoint('client')),
      relays: await Promise.all(relayNames.map((n) => scrape(endpoint(n)))),
    };
    const clientIn = (m: Map<string, number>) => m.get('allium_client_bytes_total{direction="in"}') ?? 0;
    // Slow enough (4 MB/s) that scrapes land during the download.
    const file = join(out, 'download');
    let finished = false;
    const download = curlViaSocks(`${tn.socksHost}:${tn.socksPort}`, `${web.url}/random10m`, {
      output: file,
      maxTimeS: 120,
      args: ['--limit-rate', '4M'],
    }).finally(() => {
      finished = true;
    });
    const during: number[] = [];
    let openStreamsSeen = 0;
    for (let i = 0; i < 600 && !finished; i++) {
      const m = await scrape(endpoint('client'));
      during.push(clientIn(m) - clientIn(before.client));
      openStreamsSeen = Math.max(openStreamsSeen, m.get('allium_client_streams_open') ?? 0);
      await sleep(100); // scrapes spread over the download
    }
    await download;
    assert.equal(sha256(readFileSync(file)), sha256(files['/random10m']));

    const afterClient = await scrape(endpoint('client'));
    assert.ok(
      clientIn(afterClient) - clientIn(before.client) >= size,
      'client bytes in grew by the download',
    );
    assert.ok(
      during.some((d) => d > 0 && d < size),
      `a scrape during the download saw it part-way: ${during.slice(0, 20).join(',')}`,
    );
    assert.ok(openStreamsSeen >= 1, 'the open stream showed while it was open');
    assert.ok((afterClient.get('allium_client_circuits_built_total') ?? 0) >= 1);
    assert.ok((afterClient.get('allium_client_circuit_build_seconds_count') ?? 0) >= 1);
    assert.equal(
      afterClient.get('allium_client_circuit_build_seconds_bucket{le="+Inf"}'),
      afterClient.get('allium_client_circuit_build_seconds_count'),
    );

    // Entry, middle and exit each moved the download's cells: three relays sent at least 10 MiB more.
    const afterRelays = await Promise.all(relayNames.map((n) => scrape(endpoint(n))));
    const grew = afterRelays.map(
      (m, i) =>
        (m.get('allium_relay_bytes_total{direction="out"}') ?? 0) -
        (before.relays[i].get('allium_relay_bytes_total{direction="out"}') ?? 0),
    );
    assert.ok(grew.filter((g) => g >= size).length >= 3, `relay bytes out grew by ${grew.join(', ')}`);
    const exits = afterRelays.filter((m) => (m.get('allium_relay_streams_opened_total') ?? 0) >= 1);
    assert.ok(exits.length >= 1, 'an exit counted the stream');
    // The download's circuit was built through three relays: the entry took its keys from the client's
    // link (protocol §3.6), the middle and the exit each answered an ntor CREATE on their own thread.
    const inline = afterRelays.map(
      (m) => m.get('allium_relay_circuit_handshakes_total{where="inline"}') ?? 0,
    );
    assert.ok(inline.filter((n) => n >= 1).length >= 2, `inline handshakes per relay: ${inline.join(', ')}`);
    const linkBound = afterRelays.map((m) => m.get('allium_relay_link_bound_creates_total') ?? 0);
    assert.ok(
      linkBound.some((n) => n >= 1),
      `link-bound CREATEs per relay: ${linkBound.join(', ')}`,
    );
    for (const m of afterRelays) {
      assert.ok(m.has('allium_relay_circuit_handshakes_total{where="worker"}'));
      assert.ok(m.has('allium_relay_handshake_failures_total'));
      assert.ok(m.has('allium_relay_queued_bytes'));
      assert.ok((m.get('process_resident_memory_bytes') ?? 0) > 0);
    }
  });

  test('allium fetch piped to a file and a pipe writes no progress bar; --progress forces one', async () => {
    const base = ['--directory', tn.directoryUrl, '--directory-key', tn.directoryKey];
    const file = join(out, 'fetched');
    const quiet = await run(
      process.execPath,
      [CLI_PATH, 'fetch', `${web.url}/random1m`, '-o', file, ...base],
      {
        timeout: 60_000,
      },
    );
    assert.equal(quiet.stderr, '');
    assert.equal(sha256(readFileSync(file)), sha256(files['/random1m']));
    const loud = await run(
      process.execPath,
      [CLI_PATH, 'fetch', `${web.url}/random1m`, '-o', file, '--progress', ...base],
      { timeout: 60_000 },
    );
    assert.match(loud.stderr, /1\.0 MiB \/ 1\.0 MiB/);
    assert.match(loud.stderr, /\/s/);
  });
});
