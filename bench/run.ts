// `npm run bench [-- --quick] [-- --with-tor]`: the side-by-side benchmark. Direct loopback,
// an Allium testnet of separate processes and (with --with-tor) a private C Tor network are measured
// in one run with the same curl and the same files; prints a table and writes JSON to bench-results/.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { alliumOnionServicesAvailable, startAllium, startAlliumOnionService } from './allium-net.js';
import { formatAuthoritiesBench, runAuthoritiesBench } from './authorities.js';
import { runConsensusBench } from './consensus.js';
import { describeCreateFlood, runCreateFloodBench } from './create-flood.js';
import { BenchError } from './errors.js';
import { runIdleCircuitsBench } from './idle-circuits.js';
import { describeJitter, describeLongRtt, runJitterLine, runLongRtt } from './long-rtt.js';
import { describeOnion, type OnionSide, onionSide, runOnionLine } from './onion.js';
import { rows, slowTable, table } from './report.js';
import {
  FULL,
  fileSizes,
  type Path,
  type PathResult,
  QUICK,
  runSlowReader,
  runSuite,
  type SlowResult,
  withoutWarmUp,
} from './suite.js';
import { startTor, torAvailable } from './tor-net.js';
import { startWebServer } from './web.js';

const args = new Set(process.argv.slice(2));
for (const a of args)
  if (!['--quick', '--with-tor', '--no-slow', '--no-warm-up'].includes(a)) {
    process.stderr.write(
      `unknown option ${a}\nusage: npm run bench -- [--quick] [--with-tor] [--no-slow] [--no-warm-up]\n`,
    );
    process.exit(2);
  }
const quick = args.has('--quick');
const withTor = args.has('--with-tor');
// --no-warm-up measures every figure on networks that have just started (see warmUp in suite.ts).
const plan = args.has('--no-warm-up') ? withoutWarmUp(quick ? QUICK : FULL) : quick ? QUICK : FULL;
const RELAYS = 5;
const EXITS = 2;
const TOR_BOOTSTRAP_SECONDS = 120;
// A C Tor onion service in a fresh test network publishes its descriptor within tens of seconds.
const ONION_PUBLISH_SECONDS = 120;
// Tuning that helped C Tor here (see the report); recorded in the JSON with every other setting.
const TOR_TUNING: string[] = [];

const log = (s: string) => process.stderr.write(`${s}\n`);
const cleanups: (() => Promise<void>)[] = [];
const cleanup = async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch((e) => log(`cleanup: ${e.message}`));
};

// The whole run is bounded: past the budget everything is stopped and the run fails.
const budgetSeconds = (quick ? 150 : 600) + (quick && withTor ? 240 : 0);
const watchdog = setTimeout(() => {
  log(`bench: over its ${budgetSeconds} s budget; stopping every process`);
  cleanup().finally(() => process.exit(1));
}, budgetSeconds * 1000);
process.on('SIGINT', () => {
  cleanup().finally(() => process.exit(130));
});

// Every path reaches the web server at this same address.
const WEB_HOST = '127.0.0.1';

function version(cmd: string, a: string[]): string {
  try {
    return execFileSync(cmd, a, { encoding: 'utf8' }).split('\n')[0].trim();
  } catch {
    return 'unavailable';
  }
}

function ensureTor(): void {
  if (torAvailable()) return;
  log('tor is not installed: apt-get install -y tor');
  try {
    execFileSync('apt-get', ['install', '-y', 'tor'], {
      stdio: ['ignore', 'ignore', 'inherit'],
      timeout: 180_000,
    });
  } catch (err) {
    throw new BenchError(
      'ALLIUM_BENCH_NO_TOR',
      `--with-tor needs Debian's tor package and installing it failed (${(err as Error).message}); install it (apt-get install tor) and rerun`,
    );
  }
}

async function main(): Promise<void> {
  const t0 = performance.now();
  if (withTor) ensureTor();
  const tmp = mkdtempSync(join(os.tmpdir(), 'allium-bench-'));
  cleanups.push(async () => rmSync(tmp, { recursive: true, force: true }));
  const filesDir = join(tmp, 'files');
  mkdirSync(filesDir);
  for (const [name, size] of Object.entries(fileSizes(plan)))
    writeFileSync(join(filesDir, name), randomBytes(size));
  const web = await startWebServer(filesDir, WEB_HOST, (stop) => cleanups.push(stop));
  const env = { webUrl: web.url, webPid: web.pid, filesDir, log };
  log(`bench (${quick ? 'quick' : 'full'}${withTor ? ', with C Tor' : ''}): web server ${web.url}`);

  const direct: Path = {
    name: 'direct',
    proxy: null,
    processes: [],
    startMs: null,
    takeCircuitBuilds: () => [],
  };
  log('direct loopback');
  const directResult = await runSuite(direct, plan, env);
  const webHostPort = new URL(web.url).host;
  const directOnion = await runOnionLine('direct', webHostPort, null, plan, env);

  log(`Allium: a directory, ${RELAYS} relays (${EXITS} exits) and a client, each a process`);
  const allium = await startAllium(RELAYS);
  cleanups.push(() => allium.stop());
  log(`  [allium] carried its first stream ${Math.round(allium.testnet.readyAfterMs)} ms after launch`);
  // Started with the network, as C Tor's below, so that it publishes while the suite runs.
  const alliumService = alliumOnionServicesAvailable()
    ? startAlliumOnionService({
        testnet: allium.testnet,
        to: webHostPort,
        dataDir: join(tmp, 'allium-onion'),
      })
    : null;
  // A failure is reported by the onion line below; without a handler now it would end the process.
  alliumService?.catch(() => undefined);
  let alliumServiceClosed = false;
  const closeAlliumService = async () => {
    if (alliumServiceClosed) return;
    alliumServiceClosed = true;
    await (await alliumService?.catch(() => null))?.close();
  };
  cleanups.push(closeAlliumService);
  const alliumResult = await runSuite(allium.path, plan, env);
  const alliumOnion: OnionSide = alliumService
    ? await onionSide(
        'allium',
        async () => {
          const s = await alliumService;
          if (!s) throw new BenchError('ALLIUM_BENCH_ONION', 'createService disappeared');
          return s.address;
        },
        allium.path.proxy,
        plan,
        env,
      )
    : { result: null, missing: 'not available yet (this build of the library has no createService)' };
  await closeAlliumService();
  const slow: SlowResult[] = [];
  if (!args.has('--no-slow')) {
    log(
      `  [allium] slow reader: ${plan.slowMiB} MiB read at ${plan.slowRate / 1048576} MiB/s, at most ${plan.slowMaxSeconds} s`,
    );
    slow.push(await runSlowReader(allium.path, plan, env, tmp));
  }
  await allium.stop();

  let torResult: PathResult | null = null;
  let torOnion: OnionSide | null = null;
  let torOnionPublishedMs: number | null = null;
  let torSettings: Record<string, string[]> | null = null;
  if (withTor) {
    log(`C Tor: 3 authorities (also relays), ${EXITS} exits and a client (${version('tor', ['--version'])})`);
    const tor = await startTor({
      onStop: (stop) => cleanups.push(stop),
      relays: EXITS,
      exits: EXITS,
      tuning: TOR_TUNING,
      bootstrapSeconds: TOR_BOOTSTRAP_SECONDS,
      webUrl: web.url,
      log,
      onionServiceTo: webHostPort,
    });
    torSettings = tor.settings;
    log(`  [tor] carried its first stream ${Math.round(tor.path.startMs ?? 0)} ms after launch`);
    torResult = await runSuite(tor.path, plan, env);
    const torService = tor.onion!;
    torOnion = await onionSide(
      'tor',
      async () => {
        torOnionPublishedMs = await torService.published(ONION_PUBLISH_SECONDS * 1000);
        return torService.address;
      },
      tor.path.proxy,
      plan,
      env,
    );
    if (!args.has('--no-slow')) {
      log(`  [tor] slow reader`);
      slow.push(await runSlowReader(tor.path, plan, env, tmp));
    }
    await tor.stop();
  }

  log('Allium with long round trips: a 20 ms delay line each way on every link');
  const longRtt = await runLongRtt(plan, env, RELAYS);
  let jitter: Awaited<ReturnType<typeof runJitterLine>> | null = null;
  if (!quick) {
    log('Allium over jittery links: 20 ms plus up to 20 ms at random each way on every link');
    jitter = await runJitterLine(plan, env, RELAYS);
  }

  log('directory: a consensus of 5,000 relays (build + sign, fetch + verify)');
  const consensus = await runConsensusBench(5000);
  log('authorities: votes and the consensus of 5,000 relays with 3 and with 9 authorities');
  const authorities = [3, 9].map((n) => runAuthoritiesBench(5000, n));
  const idleCount = quick ? 2000 : 10_000;
  log(`relay: ${idleCount} idle circuits on one relay`);
  const idle = await runIdleCircuitsBench(idleCount);
  log('relay: a 10 MiB download during a CREATE flood, handshakes inline and on a worker thread');
  const flood = await runCreateFloodBench(quick ? 16 : 32, 400);

  const r = rows(plan.bigMiB, plan.concurrent, plan.concurrentMiB);
  const machine = {
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cpus: os.cpus().length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    kernel: os.release(),
    node: process.version,
    curl: version('curl', ['--version']),
    tor: withTor ? version('tor', ['--version']) : null,
  };
  const out = [
    '',
    `Allium benchmark (${quick ? '--quick' : 'full'}${withTor ? ' --with-tor' : ''}), ${new Date().toISOString()}`,
    `machine: ${machine.cpus} x ${machine.cpu}, ${machine.memoryGiB} GiB, Linux ${machine.kernel}, Node ${machine.node}`,
    `networks: Allium = directory + ${RELAYS} relays (${EXITS} exits) + client${withTor ? `; C Tor = 3 authorities + ${EXITS} exits + client` : ''}; every process on this machine`,
    '',
    table(directResult, alliumResult, torResult, r),
    '',
    ...describeOnion(plan, directOnion, alliumOnion, torOnion, torOnionPublishedMs),
    '',
    'ratios: x/direct of the same run (times: >1 is slower; MiB/s: <1 is slower); "Allium better by": >1 means Allium wins.',
    plan.warmUpMiB + plan.warmUpRequests + plan.warmUpCircuits > 0
      ? `warm-up on every path, after its first ${plan.bigMiB} MiB download and before the other figures: ${plan.concurrent} x ${plan.warmUpMiB} MiB on isolated circuits, ${plan.warmUpRequests} requests, ${plan.warmUpCircuits} fresh circuits (--no-warm-up: none)`
      : 'no warm-up (--no-warm-up): every figure comes from networks that have just started',
  ];
  for (const s of slow) {
    out.push(
      '',
      `slow reader over ${s.path}: ${s.requestedMiB} MiB at ${s.rateMiBps} MiB/s (stopped after ${s.boundSeconds} s at most); RSS in MiB`,
      slowTable(s),
      `relay RSS growth after the first sample (MiB): ${Object.entries(s.relayRssGrowthMiB)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')}; most bytes in flight (sent by the web server, not yet read): ${s.maxInFlightMiB} MiB`,
    );
  }
  out.push(
    '',
    describeLongRtt(longRtt),
    ...(jitter ? [describeJitter(jitter)] : []),
    '',
    `consensus of 5,000 relays: ${(consensus.consensusBytes / 1e6).toFixed(2)} MB (${consensus.bytesPerRelay} B per relay); build + sign ${consensus.buildSignMs} ms; client fetch + verify ${consensus.fetchVerifyMs} ms`,
    ...authorities.map(formatAuthoritiesBench),
    `idle circuits: one relay holding ${idle.circuits}: ${idle.rssBytesPerCircuit} B RSS per circuit (V8 heap ${idle.heapBytesPerCircuit} B); CREATEs answered at ${idle.createsPerSecond}/s`,
    describeCreateFlood(flood),
  );
  if (torSettings) {
    out.push(
      '',
      'C Tor settings (torrc, besides DataDirectory, Nickname, Log, ports and DirAuthority lines):',
    );
    for (const [k, v] of Object.entries(torSettings)) out.push(`  ${k}: ${v.join('; ')}`);
  }
  const elapsed = (performance.now() - t0) / 1000;
  out.push('', `bench took ${elapsed.toFixed(1)} s`);
  process.stdout.write(`${out.join('\n')}\n`);

  const resultsDir = join(process.cwd(), 'bench-results');
  mkdirSync(resultsDir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const file = join(resultsDir, `bench-${stamp}${quick ? '-quick' : ''}${withTor ? '-tor' : ''}.json`);
  writeFileSync(
    file,
    `${JSON.stringify({ machine, plan, elapsedSeconds: Math.round(elapsed * 10) / 10, direct: directResult, allium: alliumResult, tor: torResult, onion: { direct: directOnion, allium: alliumOnion, tor: torOnion, torPublishedMs: torOnionPublishedMs }, slowReader: slow, longRoundTrips: longRtt, jitteryLinks: jitter, torSettings, consensus, authorities, idleCircuits: idle, createFlood: flood }, null, 2)}\n`,
  );
  process.stdout.write(`results: ${file}\n`);

  // The regression guard CI runs (`--quick`): a figure the Allium network failed to produce means
  // the bench or the network broke, even though no figure is compared against a threshold.
  const missing = r
    .filter((row) => !Number.isFinite(row.get(alliumResult) ?? Number.NaN))
    .map((row) => row.label);
  if (alliumService && !alliumOnion.result) missing.push(`the onion line (${alliumOnion.missing})`);
  if (missing.length > 0) {
    log(`bench incomplete: no Allium figure for ${missing.join('; ')}`);
    process.exitCode = 1;
  }
}

main()
  .catch(async (err) => {
    log(`bench failed: ${err.stack ?? err}`);
    process.exitCode = 1;
  })
  .finally(async () => {
    clearTimeout(watchdog);
    await cleanup();
  });
