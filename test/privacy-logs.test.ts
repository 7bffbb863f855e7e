// docs/threat-model.md §3 as a test: a whole testnet at debug level fetches a page, then every log
// line of every process is searched for the destination (its name as the BEGIN carries it, its port,
// the BEGIN's bytes), the client's connections and key material (every secret in every file the
// relays and the directory keep).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Testnet } from '../src/testnet/testnet.js';
import { encodeBegin } from '../src/wire/relay-messages.js';
import { curlViaSocks } from './helpers/curl.js';
import { makeFiles, startHttpServer, type WebServer } from './helpers/web.js';

interface Run {
  /** Every line each process wrote, from start to exit. */
  logs: Map<string, string[]>;
  relayNames: string[];
  /** Secrets of every data directory (read before the testnet removed them), by file. */
  secrets: Map<string, string[]>;
  /** Local ports of the client process's TCP connections (to its entry relays) during the fetch. */
  clientPorts: number[];
}

/** The local ports of every established TCP connection of process `pid` (from `ss`). */
function localPortsOf(pid: number): number[] {
  // With a state filter ss leaves out the State column: Recv-Q Send-Q Local:Port Peer:Port Process.
  const r = spawnSync('ss', ['-tnpH', 'state', 'established'], { encoding: 'utf8' });
  const ports: number[] = [];
  for (const line of (r.stdout ?? '').split('\n')) {
    if (!line.includes(`pid=${pid},`)) continue;
    const local = line.trim().split(/\s+/)[2] ?? '';
    const port = Number(local.slice(local.lastIndexOf(':') + 1));
    if (Number.isInteger(port) && port > 0) ports.push(port);
  }
  return ports;
}

/** A number standing alone (not part of a longer number): how a port shows up in a JSON log line. */
const mentions = (line: string, n: number) => new RegExp(`(^|[^0-9])${n}([^0-9]|$)`).test(line);

/**
 * The destination's host name: a name under .localhost, which the exit answers itself (RFC 6761) with
 * 127.0.0.1, so it is the web server here and a string no log line holds by chance.
 */
const DEST_HOST = 'allium-privacy-probe-7c1d.localhost';

/** Every form in which a log line could name the destination `DEST_HOST:port`. */
function destinationForms(port: number): string[] {
  const begin = encodeBegin(DEST_HOST, port); // port(u16) | host: what the exit reads
  return [
    DEST_HOST,
    `${DEST_HOST}:${port}`,
    begin.toString('hex'),
    begin.toString('base64'),
    Buffer.from(DEST_HOST).toString('hex'),
    Buffer.from(DEST_HOST).toString('base64'),
  ];
}

/** Lines of `lines` that hold any of `forms`, case ignored. */
const holding = (lines: string[], forms: string[]) =>
  lines.filter((l) => forms.some((f) => l.toLowerCase().includes(f.toLowerCase())));

async function fetchThroughTestnet(web: WebServer, relayArgs: string[]): Promise<Run> {
  const logs = new Map<string, string[]>();
  const tn = await Testnet.start({
    relays: 4,
    logLevel: 'debug',
    relayArgs: () => relayArgs,
    onLog: (name, line) => {
      const l = logs.get(name) ?? [];
      logs.set(name, l);
      l.push(line);
    },
  });
  const { stdout } = await curlViaSocks(
    `${tn.socksHost}:${tn.socksPort}`,
    `http://${DEST_HOST}:${web.port}/hello`,
  );
  assert.match(stdout, /RESPONSE-MARKER-7f3a/);
  // The client keeps its links to entry relays open after the fetch: those are its connections.
  const clientPid = tn.clientProcess?.pid;
  assert.ok(clientPid);
  const clientPorts = localPortsOf(clientPid).filter((p) => p !== tn.socksPort);
  const secrets = keyMaterial(tn);
  const relayNames = tn.relays.map((r) => r.name);
  // Stopping tears the circuits down, which relays log at debug level: those lines count too.
  await tn.stop();
  return { logs, relayNames, secrets, clientPorts };
}

/** Every file below `dir`. */
function filesBelow(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? filesBelow(p) : [p];
  });
}

/**
 * Every secret the relays and the directory keep on disk (link keys live in memory only), by file, in
 * the forms a careless log line would show it: every 32-byte hex value in every file of every relay's
 * data directory (identity key, current and previous onion keys, whatever else a relay writes) and
 * the directory's key. The directory's relays.json holds only what relays publish.
 */
function keyMaterial(tn: Testnet): Map<string, string[]> {
  const secrets = new Map<string, string[]>();
  const files = [
    ...tn.relays.flatMap((r) => filesBelow(join(tn.dataDir, r.name))),
    join(tn.dataDir, 'directory', 'directory-key'),
  ];
  for (const path of files) {
    const hexes = readFileSync(path, 'utf8').match(/\b[0-9a-f]{64}\b/gi) ?? [];
    hexes.forEach((hex, i) => {
      const raw = Buffer.from(hex, 'hex');
      secrets.set(`${path.slice(tn.dataDir.length + 1)}#${i}`, [
        hex.toLowerCase(),
        hex.toUpperCase(),
        raw.toString('base64'),
        raw.toString('base64url'),
      ]);
    });
  }
  return secrets;
}

describe('what the logs of a whole network hold after a fetch (debug level everywhere)', () => {
  let web: WebServer;
  let plain: Run;

  before(async () => {
    web = await startHttpServer(makeFiles());
    plain = await fetchThroughTestnet(web, []);
  });
  after(async () => {
    await web?.close();
  });

  const relayLines = (r: Run) =>
    [...r.logs].filter(([name]) => name.startsWith('relay')).flatMap(([, l]) => l);

  it('logged at debug level on every relay (the search below is over real output)', () => {
    for (const name of plain.relayNames) {
      const lines = plain.logs.get(name) ?? [];
      assert.ok(lines.length > 0, `${name} logged nothing`);
    }
    assert.ok(
      relayLines(plain).some((l) => l.includes('"level":20')),
      'no debug line from any relay',
    );
  });

  it('no relay log names the destination, nor any connection of the client', () => {
    const lines = relayLines(plain);
    assert.deepEqual(holding(lines, destinationForms(web.port)), [], 'relay log lines name the destination');
    const withDest = lines.filter((l) => mentions(l, web.port));
    assert.deepEqual(withDest, [], `relay log lines name the destination port ${web.port}`);
    assert.ok(plain.clientPorts.length > 0, 'found no connection of the client to look for');
    const withClient = lines.filter((l) => plain.clientPorts.some((p) => mentions(l, p)));
    assert.deepEqual(withClient, [], `relay log lines name a client port (${plain.clientPorts.join(', ')})`);
    // So no line can hold both.
    assert.equal(
      lines.filter((l) => mentions(l, web.port) && plain.clientPorts.some((p) => mentions(l, p))).length,
      0,
    );
  });

  it('no log of any process holds key material (relay identity and onion keys, the directory key)', () => {
    const secrets = plain.secrets;
    // At least an identity key and an onion key per relay, and the directory's key.
    for (const name of plain.relayNames) {
      const own = [...secrets.keys()].filter((k) => k.startsWith(`${name}/`));
      assert.ok(own.length >= 2, `found only ${own.join(', ')} for ${name}`);
    }
    assert.ok([...secrets.keys()].some((k) => k.startsWith('directory/directory-key')));
    for (const [proc, lines] of plain.logs) {
      const text = lines.join('\n');
      for (const [file, forms] of secrets) {
        for (const form of forms)
          assert.ok(!text.includes(form), `${proc}'s log holds the secret of ${file}`);
      }
    }
  });

  it('the same search finds the destination when relays opt in with --log-sensitive (the check can fail)', async () => {
    const sensitive = await fetchThroughTestnet(web, ['--log-sensitive']);
    assert.ok(
      holding(relayLines(sensitive), [DEST_HOST]).length > 0,
      'an exit with --log-sensitive logged no destination name: the search above proves nothing',
    );
    assert.ok(
      relayLines(sensitive).some((l) => mentions(l, web.port)),
      'an exit with --log-sensitive logged no destination port: the search above proves nothing',
    );
  });
});
