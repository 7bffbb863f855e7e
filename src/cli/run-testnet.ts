import { join } from 'node:path';
import { text } from 'node:stream/consumers';
import { type DemoWebServer, startDemoWebServer } from '../net/demo-web-server.js';
import { streamGet } from '../net/http-fetch.js';
import { socksConnect } from '../net/socks-client.js';
import { OnionService } from '../service/service.js';
import { Testnet } from '../testnet/testnet.js';
import { announceReady, onShutdown } from './lifecycle.js';
import { checkPortFlags } from './port-flags.js';
import { hostPortArg, progressLine, usageLines } from './testnet-progress.js';
import { resolveTrust } from './trust-flags.js';

export async function runTestnet(o: {
  relays: number;
  authorities: number;
  votingInterval: number;
  exits?: number;
  socks: { host: string; port: number };
  dataDir?: string;
  demo: boolean;
  httpProxy: { host: string; port: number };
  socksOptimistic?: { host: string; port: number };
  httpProxyOptimistic?: { host: string; port: number };
  linkDelay: number;
  linkJitter: number;
  dashboard: { host: string; port: number };
  metrics: boolean;
  logLevel: string;
}) {
  const say = (s: string) => process.stderr.write(`${s}\n`);
  // The client's fixed ports, checked before six processes start (the error names the flag).
  await checkPortFlags([
    ['--socks', o.socks],
    ['--http-proxy', o.httpProxy],
    ['--dashboard', o.dashboard],
    ['--socks-optimistic', o.socksOptimistic],
    ['--http-proxy-optimistic', o.httpProxyOptimistic],
  ]);
  const dirs = o.authorities === 1 ? 'a directory' : `${o.authorities} directory authorities`;
  say(`starting ${dirs}, ${o.relays} relays and a client...`);
  let up = 0;
  const t0 = performance.now();
  const net = await Testnet.start({
    relays: o.relays,
    authorities: o.authorities,
    votingIntervalSeconds: o.votingInterval,
    exits: o.exits,
    socks: o.socks,
    dataDir: o.dataDir,
    logLevel: o.logLevel,
    linkDelayMs: o.linkDelay,
    linkJitterMs: o.linkJitter,
    directoryArgs: o.metrics ? ['--metrics', '127.0.0.1:0'] : [],
    relayArgs: () => (o.metrics ? ['--metrics', '127.0.0.1:0'] : []),
    clientArgs: [
      '--http-proxy',
      hostPortArg(o.httpProxy),
      '--dashboard',
      hostPortArg(o.dashboard),
      ...(o.socksOptimistic ? ['--socks-optimistic', hostPortArg(o.socksOptimistic)] : []),
      ...(o.httpProxyOptimistic ? ['--http-proxy-optimistic', hostPortArg(o.httpProxyOptimistic)] : []),
      ...(o.metrics ? ['--metrics', '127.0.0.1:0'] : []),
    ],
    onReady: (p) => say(progressLine(p, o.relays + o.authorities + 1, ++up, performance.now() - t0)),
  });
  onShutdown(() => net.stop());
  const socks = `${net.socksHost}:${net.socksPort}`;
  const client = net.processes.find((p) => p.name === 'client')?.ready ?? {};
  announceReady({
    socks,
    directory: net.directoryUrl,
    key: net.directoryKey,
    ...(net.authoritiesFile ? { authorities: net.authoritiesFile } : {}),
    ...(client.http ? { http: client.http } : {}),
    ...(client.socksOptimistic ? { socksOptimistic: client.socksOptimistic } : {}),
    ...(client.httpOptimistic ? { httpOptimistic: client.httpOptimistic } : {}),
    ...(client.dashboard ? { dashboard: client.dashboard } : {}),
  });
  say(`network ready in ${Math.round(net.readyAfterMs)} ms`);
  if (o.linkDelay > 0 || o.linkJitter > 0) {
    const jitter = o.linkJitter > 0 ? ` plus up to ${o.linkJitter} ms at random` : '';
    say(
      `  every link to a relay holds data ${o.linkDelay} ms${jitter} each way (a circuit round trip: ~${6 * o.linkDelay} ms${jitter ? ' and more' : ''})`,
    );
  }
  if (net.authoritiesFile) {
    for (const a of net.authorities) say(`  authority: ${a.ready.url} (status page in a browser)`);
    say(`  authority set: ${net.authoritiesFile} (give it as --authorities to relays and clients)`);
    say(`  first authority's key: ${net.directoryKey} (for --directory ${net.directoryUrl} --directory-key)`);
  } else {
    say(`  directory: ${net.directoryUrl} (status page in a browser)`);
    say(`  directory key: ${net.directoryKey}`);
  }
  // The demo stops the network once it has fetched its page: hints to use it would not work.
  for (const line of usageLines(client, { hints: !o.demo })) say(line);
  if (o.demo) {
    const web = await startDemoWebServer();
    say(`\nfetching ${web.url} through the network...`);
    const res = await streamGet(web.url, {
      connect: (host, port) =>
        socksConnect({ proxyHost: net.socksHost, proxyPort: net.socksPort, host, port }),
    });
    const body = await text(res);
    say(
      `HTTP ${res.statusCode}, ${body.length} bytes; the web server saw connections from: ${web.peers.join(', ')}`,
    );
    process.stdout.write(body);
    const onionStatus = await demoOnionService(net, web, say);
    await web.close();
    await net.stop();
    say('the demo stopped the network; `npx allium testnet` keeps one up until Ctrl-C');
    process.exit(res.statusCode === 200 && onionStatus === 200 ? 0 : 1);
  }
  say('press Ctrl-C to stop every process');
}

/**
 * The same site published as an onion service (protocol §8) and fetched at its .allium address: the
 * web server then sees only the service, on 127.0.0.1. Returns the HTTP status.
 */
async function demoOnionService(net: Testnet, web: DemoWebServer, say: (s: string) => void): Promise<number> {
  const trust = await resolveTrust(
    net.authoritiesFile
      ? { authorities: net.authoritiesFile }
      : { directory: net.directoryUrl, directoryKey: Buffer.from(net.directoryKey, 'base64') },
    true,
  );
  const to = new URL(web.url).host;
  say(`\npublishing ${web.url} as an onion service...`);
  const service = await OnionService.start({ ...trust, to, dataDir: join(net.dataDir, 'demo-service') });
  try {
    await service.ready;
    const url = `http://${service.address}/`;
    say(`fetching ${url} through the network (a rendezvous: neither end learns where the other is)...`);
    const seen = web.peers.length;
    const res = await streamGet(url, {
      connect: (host, port) =>
        socksConnect({ proxyHost: net.socksHost, proxyPort: net.socksPort, host, port }),
    });
    const body = await text(res);
    say(
      `HTTP ${res.statusCode}, ${body.length} bytes; the web server saw connections from: ${web.peers.slice(seen).join(', ')} (the onion service)`,
    );
    return res.statusCode ?? 0;
  } finally {
    await service.close();
  }
}
