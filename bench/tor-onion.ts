// `node dist/bench/tor-onion.js`: only the onion line's C Tor side, without the rest of the bench:
// the private C Tor network with its onion service in front of a web server, the onion line through
// it and the same requests straight to the web server. For trying C Tor's onion-service settings in
// a minute or two instead of a whole `npm run bench -- --with-tor`.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { onionRows, runOnionLine } from './onion.js';
import { table } from './report.js';
import { MiB } from './stats.js';
import { QUICK } from './suite.js';
import { startTor, torAvailable } from './tor-net.js';
import { startWebServer } from './web.js';

const ONION_PUBLISH_SECONDS = 120;
const log = (s: string) => process.stderr.write(`${s}\n`);
const cleanups: (() => Promise<void>)[] = [];
const cleanup = async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch((e) => log(`cleanup: ${e.message}`));
};
const watchdog = setTimeout(() => {
  log('tor-onion: over its 300 s budget; stopping every process');
  cleanup().finally(() => process.exit(1));
}, 300_000);
process.on('SIGINT', () => {
  cleanup().finally(() => process.exit(130));
});

async function main(): Promise<void> {
  if (!torAvailable()) throw new Error('tor is not installed (apt-get install tor)');
  const plan = QUICK;
  const tmp = mkdtempSync(join(os.tmpdir(), 'allium-tor-onion-'));
  cleanups.push(async () => rmSync(tmp, { recursive: true, force: true }));
  writeFileSync(join(tmp, '1k'), randomBytes(1024));
  writeFileSync(join(tmp, `${plan.onionMiB}m`), randomBytes(plan.onionMiB * MiB));
  const web = await startWebServer(tmp, '127.0.0.1', (stop) => cleanups.push(stop));
  const env = { webUrl: web.url, webPid: web.pid, filesDir: tmp, log };
  const tor = await startTor({
    onStop: (stop) => cleanups.push(stop),
    relays: 2,
    exits: 2,
    tuning: [],
    bootstrapSeconds: 120,
    webUrl: web.url,
    log,
    onionServiceTo: new URL(web.url).host,
  });
  const onion = tor.onion!;
  log(`  [tor] onion service ${onion.address}; waiting for its descriptor`);
  const publishedMs = await onion.published(ONION_PUBLISH_SECONDS * 1000);
  log(`  [tor] descriptor stored ${Math.round(publishedMs / 1000)} s after the network's launch`);
  const direct = await runOnionLine('direct', new URL(web.url).host, null, plan, env);
  const viaTor = await runOnionLine('tor', onion.address, tor.path.proxy, plan, env);
  process.stdout.write(`${table(direct, null, viaTor, onionRows(plan))}\n`);
  const serviceLog = readFileSync(onion.logFile, 'utf8');
  const noHop = serviceLog.split('\n').filter((l) => l.includes('Failed to find node')).length;
  log(`  [tor] the service's log: ${noHop} "Failed to find node" lines`);
  process.stdout.write(
    `${JSON.stringify({ publishedMs: Math.round(publishedMs), direct, tor: viaTor }, null, 2)}\n`,
  );
}

main()
  .catch((err) => {
    log(`tor-onion failed: ${err.stack ?? err}`);
    process.exitCode = 1;
  })
  .finally(async () => {
    clearTimeout(watchdog);
    await cleanup();
  });
