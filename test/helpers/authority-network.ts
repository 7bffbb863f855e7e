// A network of directory authorities and relays as separate `allium` processes, for the authority
// tests: each authority is a process, down (in the set, never started), or hostile (an in-process
// Directory the test shapes); relays register with every authority and serve as caches.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { openTrustedConsensus } from '../../src/core/consensus-trust.js';
import { Directory, type DirectoryOptions } from '../../src/directory/directory.js';
import { TEST_NETWORK_ONION_SETTINGS } from '../../src/directory/ring-values.js';
import { DirectoryStore } from '../../src/directory/store.js';
import type { AuthoritySet } from '../../src/wire/authority-docs.js';
import type { ConsensusView } from '../../src/wire/directory-docs.js';
import { AlliumProcess, freePort, TEST_ONION_ARGS } from './allium-process.js';

export type AuthorityRole = 'process' | 'down' | 'hostile';

export interface AuthorityNetwork {
  root: string;
  set: AuthoritySet;
  setFile: string;
  /** Per authority: its process, the hostile Directory, or null (down). */
  authorities: (AlliumProcess | Directory | null)[];
  relays: AlliumProcess[];
  stop(): Promise<void>;
}

export const VOTING_INTERVAL_SECONDS = 2;

export async function startAuthorityNetwork(opts: {
  roles: AuthorityRole[];
  relays: number;
  exits: number;
  /** Run once the hostile authority listens, before any relay starts. */
  hostile?: (dir: Directory) => Promise<void>;
  /** Options of the hostile Directory (e.g. a clock that is off). */
  hostileOptions?: Partial<DirectoryOptions>;
  /** Added to every authority process's arguments (e.g. --consensus-valid). */
  authorityArgs?: string[];
  /**
   * The set authority i is given, instead of the set everyone else holds (same ids and keys, say
   * another URL for a peer it must not reach).
   */
  setFor?: (i: number, set: AuthoritySet) => AuthoritySet;
}): Promise<AuthorityNetwork> {
  const root = mkdtempSync(join(tmpdir(), 'allium-authorities-'));
  const set: AuthoritySet = { authorities: [] };
  const ports: number[] = [];
  for (const [i] of opts.roles.entries()) {
    const store = new DirectoryStore(join(root, `auth${i + 1}`));
    await store.init();
    const { key } = await store.loadOrCreateKey();
    const port = await freePort();
    ports.push(port);
    set.authorities.push({
      nickname: `auth${i + 1}`,
      id: key.id.toString('hex'),
      identityKey: key.publicKey.toString('base64'),
      url: `http://127.0.0.1:${port}`,
    });
  }
  const setFile = join(root, 'authorities.json');
  writeFileSync(setFile, JSON.stringify({ format: 'allium-authorities', version: 1, ...set }));
  const setFileOf = (i: number): string => {
    if (!opts.setFor) return setFile;
    const file = join(root, `authorities-of-auth${i + 1}.json`);
    writeFileSync(file, JSON.stringify({ format: 'allium-authorities', version: 1, ...opts.setFor(i, set) }));
    return file;
  };
  const net: AuthorityNetwork = {
    root,
    set,
    setFile,
    authorities: [],
    relays: [],
    stop: async () => {
      await Promise.all(net.relays.map((r) => r.kill()));
      await Promise.all(net.authorities.map((a) => (a instanceof Directory ? a.stop() : a?.kill())));
      rmSync(root, { recursive: true, force: true });
    },
  };
  try {
    net.authorities = await Promise.all(
      opts.roles.map(async (role, i) => {
        const dataDir = join(root, `auth${i + 1}`);
        if (role === 'down') return null;
        if (role === 'hostile') {
          const dir = await Directory.start({
            dataDir,
            port: ports[i],
            authorities: opts.setFor ? opts.setFor(i, set) : set,
            votingIntervalMs: VOTING_INTERVAL_SECONDS * 1000,
            // It lists whatever it likes.
            reachabilityCheck: false,
            onionPeriodSeconds: TEST_NETWORK_ONION_SETTINGS.periodSeconds,
            onionOnlyListedBeforeReveal: TEST_NETWORK_ONION_SETTINGS.onlyListedBeforeReveal,
            ...opts.hostileOptions,
          });
          await opts.hostile?.(dir);
          return dir;
        }
        const p = await AlliumProcess.start(`auth${i + 1}`, [
          'directory',
          '--data-dir',
          dataDir,
          '--port',
          String(ports[i]),
          '--authorities',
          setFileOf(i),
          '--voting-interval',
          String(VOTING_INTERVAL_SECONDS),
          '--log-level',
          'info',
          ...TEST_ONION_ARGS,
          ...(opts.authorityArgs ?? []),
        ]);
        if (!p.running) throw new Error(`auth${i + 1} exited at start:\n${p.log.slice(-3000)}`);
        return p;
      }),
    );
    net.relays = await Promise.all(
      Array.from({ length: opts.relays }, async (_, i) => {
        const nick = `relay${i + 1}`;
        const p = await AlliumProcess.start(
          nick,
          [
            'relay',
            '--authorities',
            setFile,
            '--cache-port',
            '0',
            '--data-dir',
            join(root, nick),
            '--nickname',
            nick,
            '--port',
            '0',
            '--log-level',
            'warn',
            ...(i < opts.exits ? ['--exit', '--allow-private'] : []),
          ],
          60_000,
        );
        if (!p.running) throw new Error(`${nick} exited at start:\n${p.log.slice(-3000)}`);
        return p;
      }),
    );
  } catch (err) {
    await net.stop();
    throw err;
  }
  return net;
}

/** The consensus an authority serves now, as JSON, or null (none yet, or not answering). */
export async function servedConsensus(url: string): Promise<{ body: string; signatures: unknown[] } | null> {
  try {
    const res = await fetch(`${url}/v1/consensus`, { signal: AbortSignal.timeout(5000) });
    return res.status === 200 ? ((await res.json()) as { body: string; signatures: unknown[] }) : null;
  } catch {
    return null;
  }
}

/** Polls an authority (bounded) until it serves a consensus `ok` accepts. */
export async function waitForConsensus(
  net: AuthorityNetwork,
  index: number,
  ok: (c: ConsensusView, signatures: number) => boolean,
  timeoutMs = 40_000,
): Promise<ConsensusView> {
  const trust = { kind: 'authorities' as const, set: net.set };
  const deadline = Date.now() + timeoutMs;
  let last = 'nothing served';
  while (Date.now() < deadline) {
    const doc = await servedConsensus(net.set.authorities[index].url);
    if (doc) {
      try {
        const { consensus } = openTrustedConsensus(doc, trust);
        if (ok(consensus, doc.signatures.length)) return consensus;
        last = `${consensus.relays.length} relays, ${doc.signatures.length} signatures`;
      } catch (err) {
        last = (err as Error).message;
      }
    }
    await sleep(250);
  }
  throw new Error(`no such consensus from auth${index + 1} in ${timeoutMs} ms; last: ${last}`);
}

/** The status page of an authority, polled (bounded) until it matches `re`. */
export async function statusPageMatching(url: string, re: RegExp, timeoutMs = 15_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let page = '';
  while (Date.now() < deadline) {
    try {
      page = await (await fetch(`${url}/`, { signal: AbortSignal.timeout(5000) })).text();
    } catch (err) {
      page = `(no page: ${(err as Error).message})`;
    }
    if (re.test(page)) return page;
    await sleep(250);
  }
  return page;
}

/** The status page's row of one authority (the line naming its id). */
export function authorityRow(page: string, id: string): string {
  return page.split('\n').find((l) => l.includes(`data-authority-id="${id}"`)) ?? '';
}
