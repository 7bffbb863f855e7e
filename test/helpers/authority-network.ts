// A network of directory authorities and relays as separate `allium` processes, for the authority
// tests: each authority is a process, down (in the set, never started), or hostile (an in-process
// Directory the test shapes); relays register with every authority and serve as caches.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Directory } from '../../src/directory/directory.js';
import { DirectoryStore } from '../../src/directory/store.js';
import type { AuthoritySet } from '../../src/wire/authority-docs.js';
import { AlliumProcess, freePort } from './allium-process.js';

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
            authorities: set,
            votingIntervalMs: VOTING_INTERVAL_SECONDS * 1000,
            // It lists whatever it likes.
            reachabilityCheck: false,
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
          setFile,
          '--voting-interval',
          String(VOTING_INTERVAL_SECONDS),
          '--log-level',
          'info',
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
