// A private C Tor test network on loopback for the side-by-side figures (docs/performance.md): 3 directory
// authorities (v3 keys from tor-gencert), relays and exits that accept 127.0.0.1, one client with a
// SOCKS port and, when asked, a v3 onion service in front of the web server. Everything lives in a
// temporary directory removed by stop().
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { curl } from './curl.js';
import { BenchError } from './errors.js';
import { sleep } from './stats.js';
import type { NamedPid, Path } from './suite.js';
import { Control, logTail, type TorProc, torDied } from './tor-control.js';
import { TOR_ONION_SERVICE, type TorOnionService, watchOnionService } from './tor-hs.js';

export type { TorOnionService } from './tor-hs.js';

/** Settings every Tor process gets (besides its ports, data directory and the DirAuthority lines). */
export const TOR_COMMON = [
  'TestingTorNetwork 1',
  'RunAsDaemon 0',
  'ShutdownWaitLength 0',
  'SafeLogging 0',
  'AvoidDiskWrites 1',
  // Votes every 20 s instead of TestingTorNetwork's 150-300 s: the first consensus comes sooner.
  'TestingV3AuthInitialVotingInterval 20',
  'TestingV3AuthInitialVoteDelay 4',
  'TestingV3AuthInitialDistDelay 4',
  'V3AuthVotingInterval 20',
  'V3AuthVoteDelay 4',
  'V3AuthDistDelay 4',
];

export const TOR_AUTHORITY = [
  'SocksPort 0',
  'AuthoritativeDirectory 1',
  'V3AuthoritativeDirectory 1',
  'ContactInfo bench@localhost',
  'AssumeReachable 1',
  'ExitPolicy reject *:*',
  // Flags without waiting for bandwidth measurements.
  'TestingDirAuthVoteGuard 127.0.0.0/8',
  'TestingDirAuthVoteHSDir 127.0.0.0/8',
  'TestingMinExitFlagThreshold 0',
  'TestingMinFastFlagThreshold 0',
];

export const TOR_EXIT = [
  'SocksPort 0',
  'AssumeReachable 1',
  'ExitRelay 1',
  'ExitPolicyRejectPrivate 0',
  'ExitPolicyRejectLocalInterfaces 0',
  'ExitPolicy accept 127.0.0.1:*',
  'ExitPolicy reject *:*',
  // Exits otherwise probe the outside resolver (there is none here) and may mark DNS broken.
  'ServerDNSDetectHijacking 0',
  'ServerDNSAllowBrokenConfig 1',
];

export const TOR_CLIENT = [
  'ClientOnly 1',
  // For its onion-service circuits, as the service (TOR_ONION_SERVICE): no second hop found otherwise.
  'VanguardsLiteEnabled 0',
  // A microdescriptor's policy summary drops private addresses: an exit accepting only 127.0.0.1
  // would look like it accepts nothing.
  'UseMicrodescriptors 0',
  // Circuits on loopback build in milliseconds, so the learned build timeout gets so short that
  // the first busy moment times out every circuit (thousands seen failing): use a fixed one.
  'LearnCircuitBuildTimeout 0',
  'CircuitBuildTimeout 30',
];

export interface TorNet {
  path: Path;
  settings: Record<string, string[]>;
  /** The onion service, when startTor was given `onionServiceTo`. */
  onion: TorOnionService | null;
  stop(): Promise<void>;
}

// The web server shares the relays' 127.0.0.1, so the client treats the exits as "exit enclaves"
// of it: it picks such an exit itself and adds a fourth hop. Putting the relays (or the web server)
// on another loopback address avoids that, but then no stream was ever attached to the circuits
// built for it (thousands built, streams closed unattached; also with ConfluxEnabled 0).
const RELAY_HOST = '127.0.0.1';

// Ports for Tor's listeners come from below Linux's ephemeral range (32768-60999 by default): a
// port the kernel picked there was free when checked, but the authorities' own outgoing connections
// could take it before the relay that was given it bound it ("Address already in use").
const PORT_LOW = 20_000;
const PORT_HIGH = 32_767;
const handedOut = new Set<number>();

function tryPort(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, RELAY_HOST, () => s.close(() => resolve(true)));
  });
}

async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = PORT_LOW + Math.floor(Math.random() * (PORT_HIGH - PORT_LOW + 1));
    if (handedOut.has(port) || !(await tryPort(port))) continue;
    handedOut.add(port);
    return port;
  }
  throw new BenchError('ALLIUM_BENCH_TOR_START', `no free port between ${PORT_LOW} and ${PORT_HIGH}`);
}

export async function startTor(opts: {
  relays: number;
  exits: number;
  tuning: string[];
  bootstrapSeconds: number;
  webUrl: string;
  log: (s: string) => void;
  /** Receives stop() before any process starts, so an abort at any point can stop them all. */
  onStop: (stop: () => Promise<void>) => void;
  /** host:port to run an onion service in front of (its port 80), in a tor instance of its own. */
  onionServiceTo?: string;
}): Promise<TorNet> {
  const root = mkdtempSync(join(tmpdir(), 'allium-bench-tor-'));
  const procs: TorProc[] = [];
  let control: Control | null = null;
  let onionControl: Control | null = null;
  const stop = async () => {
    control?.close();
    onionControl?.close();
    await Promise.all(
      procs
        .filter((p) => p.proc.exitCode === null && p.proc.signalCode === null)
        .map(
          (p) =>
            new Promise<void>((resolve) => {
              const t = setTimeout(() => p.proc.kill('SIGKILL'), 3000);
              p.proc.once('exit', () => {
                clearTimeout(t);
                resolve();
              });
              p.proc.kill('SIGTERM');
            }),
        ),
    );
    rmSync(root, { recursive: true, force: true });
  };
  opts.onStop(stop);
  try {
    const resolvConf = join(root, 'resolv.conf');
    writeFileSync(resolvConf, 'nameserver 127.0.0.1\n');
    const auths: { name: string; dir: string; or: number; dirPort: number; line: string }[] = [];
    for (let i = 1; i <= 3; i++) {
      const name = `auth${i}`;
      const dir = join(root, name);
      mkdirSync(join(dir, 'keys'), { recursive: true, mode: 0o700 });
      const or = await freePort();
      const dirPort = await freePort();
      execFileSync(
        'tor-gencert',
        [
          '--create-identity-key',
          '--passphrase-fd',
          '0',
          '-m',
          '12',
          '-a',
          `${RELAY_HOST}:${dirPort}`,
          '-i',
          join(dir, 'keys', 'authority_identity_key'),
          '-s',
          join(dir, 'keys', 'authority_signing_key'),
          '-c',
          join(dir, 'keys', 'authority_certificate'),
        ],
        { input: '\n', stdio: ['pipe', 'ignore', 'pipe'] },
      );
      execFileSync(
        'tor',
        ['--quiet', '--ignore-missing-torrc', '--list-fingerprint', '--orport', '1', '--datadirectory', dir],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      );
      const fp = readFileSync(join(dir, 'fingerprint'), 'utf8').trim().split(/\s+/)[1];
      const cert = readFileSync(join(dir, 'keys', 'authority_certificate'), 'utf8');
      const v3 = /^fingerprint (\S+)/m.exec(cert)?.[1];
      if (!fp || !v3) throw new BenchError('ALLIUM_BENCH_TOR_KEYS', `could not read the keys of ${name}`);
      auths.push({
        name,
        dir,
        or,
        dirPort,
        line: `DirAuthority ${name} orport=${or} no-v2 v3ident=${v3} ${RELAY_HOST}:${dirPort} ${fp}`,
      });
    }
    const dirAuthorities = auths.map((a) => a.line);
    const relayNames = Array.from({ length: opts.relays }, (_, i) =>
      i < opts.exits ? `exit${i + 1}` : `relay${i + 1}`,
    );
    const exitNames = relayNames.filter((n) => n.startsWith('exit'));
    const authority = [...TOR_AUTHORITY, `TestingDirAuthVoteExit ${exitNames.join(',')}`];
    const settings: Record<string, string[]> = {
      common: [...TOR_COMMON, ...opts.tuning],
      authority,
      exit: [...TOR_EXIT, `ServerDNSResolvConfFile ${resolvConf}`],
      relay: ['SocksPort 0', 'AssumeReachable 1', 'ExitRelay 0', 'ExitPolicy reject *:*'],
      client: [...TOR_CLIENT, 'SocksPort 127.0.0.1:PORT IsolateSOCKSAuth', 'ControlPort 127.0.0.1:PORT'],
      ...(opts.onionServiceTo
        ? {
            onion: [
              ...TOR_ONION_SERVICE,
              'HiddenServiceDir DIR',
              'HiddenServiceVersion 3',
              `HiddenServicePort 80 ${opts.onionServiceTo}`,
              'ControlPort 127.0.0.1:PORT',
            ],
          }
        : {}),
    };

    const launch = (name: string, dir: string, kind: NamedPid['kind'], lines: string[]) => {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      const torrc = [
        `DataDirectory ${dir}`,
        `Nickname ${name}`,
        `Log notice file ${join(dir, 'notice.log')}`,
        ...settings.common,
        ...dirAuthorities,
        ...lines,
      ].join('\n');
      writeFileSync(join(dir, 'torrc'), `${torrc}\n`);
      const proc = spawn('tor', ['-f', join(dir, 'torrc')], { stdio: ['ignore', 'pipe', 'pipe'] });
      const p: TorProc = { name, dir, proc, kind, stderr: '' };
      // Tor prints startup errors on stdout, before its log file exists.
      for (const s of [proc.stdout!, proc.stderr!]) {
        s.setEncoding('utf8');
        s.on('data', (d: string) => {
          p.stderr = (p.stderr + d).slice(-4000);
        });
      }
      procs.push(p);
    };

    const started = performance.now();
    for (const a of auths)
      launch(a.name, a.dir, 'relay', [
        `Address ${RELAY_HOST}`,
        `ORPort ${RELAY_HOST}:${a.or}`,
        `DirPort ${RELAY_HOST}:${a.dirPort}`,
        ...authority,
      ]);
    for (const name of relayNames) {
      const or = await freePort();
      const lines = name.startsWith('exit') ? settings.exit : settings.relay;
      launch(name, join(root, name), 'relay', [
        `Address ${RELAY_HOST}`,
        `ORPort ${RELAY_HOST}:${or}`,
        ...lines,
      ]);
    }
    const socksPort = await freePort();
    const controlPort = await freePort();
    launch('client', join(root, 'client'), 'client', [
      ...TOR_CLIENT,
      `SocksPort 127.0.0.1:${socksPort} IsolateSOCKSAuth`,
      `ControlPort 127.0.0.1:${controlPort}`,
    ]);

    // Launched with the network, so that it publishes while the suite runs rather than after it.
    const onionDir = join(root, 'onion');
    const onionControlPort = opts.onionServiceTo ? await freePort() : 0;
    if (opts.onionServiceTo)
      launch('onion', onionDir, 'client', [
        ...TOR_ONION_SERVICE,
        // The service's lines go together and in this order: HiddenServiceVersion and
        // HiddenServicePort belong to the HiddenServiceDir above them.
        `HiddenServiceDir ${join(onionDir, 'hs')}`,
        'HiddenServiceVersion 3',
        `HiddenServicePort 80 ${opts.onionServiceTo}`,
        `ControlPort 127.0.0.1:${onionControlPort}`,
      ]);

    const deadline = started + opts.bootstrapSeconds * 1000;
    const exited = () => procs.find((p) => p.proc.exitCode !== null);
    // A control port opens a moment after launch.
    const connectControl = async (port: number, events: string): Promise<Control> => {
      let c: Control | null = null;
      while (!c) {
        if (performance.now() > deadline) throw new BenchError('ALLIUM_BENCH_TOR_START', 'no control port');
        const dead = exited();
        if (dead) throw torDied(dead);
        c = await Control.connect(port).catch(() => null);
        if (!c) await sleep(200);
      }
      const auth = await c.command('AUTHENTICATE ""');
      if (!auth.at(-1)?.startsWith('250')) throw new BenchError('ALLIUM_BENCH_TOR_CONTROL', auth.join(' '));
      await c.command(`SETEVENTS ${events}`);
      return c;
    };
    control = await connectControl(controlPort, process.env.ALLIUM_BENCH_DEBUG ? 'CIRC STREAM' : 'CIRC');
    let onion: TorOnionService | null = null;
    if (opts.onionServiceTo) {
      // Events before the connection are not missed: the service publishes only after it holds a
      // consensus, which takes the authorities a voting round or more.
      onionControl = await connectControl(onionControlPort, 'HS_DESC');
      onion = await watchOnionService(onionControl, join(onionDir, 'hs'), procs.at(-1)!, started, deadline);
    }
    let lastProgress = '';
    for (;;) {
      if (performance.now() > deadline)
        throw new BenchError(
          'ALLIUM_BENCH_TOR_BOOTSTRAP',
          `the C Tor network did not carry a stream within ${opts.bootstrapSeconds} s (bootstrap ${lastProgress}%); client log:\n${logTail(join(root, 'client'))}`,
        );
      const dead = exited();
      if (dead) throw torDied(dead);
      const r = await control.command('GETINFO status/bootstrap-phase');
      const progress = /PROGRESS=(\d+)/.exec(r.join(' '))?.[1] ?? '?';
      if (progress !== lastProgress) {
        opts.log(`  [tor] bootstrap ${progress}% at ${Math.round((performance.now() - started) / 1000)} s`);
        lastProgress = progress;
      }
      if (progress === '100') {
        const ok = await curl(`${opts.webUrl}/1k`, {
          proxy: { host: '127.0.0.1', port: socksPort },
          user: 'tor-start',
          maxTimeSeconds: 5,
        }).catch(() => null);
        if (ok) break;
      }
      await sleep(250);
    }
    const startMs = performance.now() - started;
    const ctl = control;
    return {
      settings,
      onion,
      path: {
        name: 'tor',
        proxy: { host: '127.0.0.1', port: socksPort },
        processes: procs
          .filter((p) => p.name !== 'onion')
          .map((p) => ({ name: p.name, pid: p.proc.pid!, kind: p.kind })),
        startMs,
        takeCircuitBuilds: () => ctl.builds.splice(0),
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

export function torAvailable(): boolean {
  try {
    execFileSync('tor', ['--version'], { stdio: 'ignore' });
    execFileSync('tor-gencert', ['--help'], { stdio: 'ignore' });
    return true;
  } catch (err) {
    // tor-gencert --help exits non-zero; only a missing binary counts.
    return (err as NodeJS.ErrnoException).code !== 'ENOENT';
  }
}
