import { text } from 'node:stream/consumers';
import { startDemoWebServer } from '../net/demo-web-server.js';
import { streamGet } from '../net/http-fetch.js';
import { socksConnect } from '../net/socks-client.js';
import { Testnet } from '../testnet/testnet.js';
import { announceReady, onShutdown } from './lifecycle.js';

export async function runTestnet(o: {
  relays: number;
  exits?: number;
  socks: { host: string; port: number };
  dataDir?: string;
  demo: boolean;
  logLevel: string;
}) {
  const say = (s: string) => process.stderr.write(`${s}\n`);
  say(`starting a directory, ${o.relays} relays and a client...`);
  const net = await Testnet.start({
    relays: o.relays,
    exits: o.exits,
    socks: o.socks,
    dataDir: o.dataDir,
    logLevel: o.logLevel,
  });
  onShutdown(() => net.stop());
  const socks = `${net.socksHost}:${net.socksPort}`;
  announceReady({ socks, directory: net.directoryUrl, key: net.directoryKey });
  say(`network ready in ${Math.round(net.readyAfterMs)} ms`);
  say(`  directory: ${net.directoryUrl} (status page in a browser)`);
  for (const r of net.relays)
    say(`  ${r.ready.nickname}: ${r.ready.address}:${r.ready.port}${r.ready.exit === '1' ? ' (exit)' : ''}`);
  say(`  SOCKS5 proxy: ${socks}`);
  say(`try: curl --socks5-hostname ${socks} http://example.com/   (exits here allow loopback destinations)`);
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
    await web.close();
    await net.stop();
    process.exit(res.statusCode === 200 ? 0 : 1);
  }
  say('press Ctrl-C to stop every process');
}
