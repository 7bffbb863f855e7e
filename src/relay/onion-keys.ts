// Implements docs/protocol.md §3.1 "Onion key rotation" at a relay: the current onion key, the one
// before it for a grace period (clients may still hold a consensus that names it), and when each
// changes. Kept in one file written atomically, so a crash leaves the old state or the new one.
import { existsSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { X25519Key } from '../crypto/keys.js';
import { writeFileAtomic } from '../storage/atomic-file.js';
import { checkKeyFileMode, ensureDataDir, KeyFileError, readSecret } from './keys-store.js';

const FILE = 'onion-keys.json';
/** Where earlier versions kept the one onion key: taken over on first start, then removed. */
const LEGACY_FILE = 'onion.key';
const HEX64 = /^[0-9a-f]{64}$/;

export interface OnionKeyPolicy {
  /** How long a key is the current one before a new one replaces it. */
  lifetimeMs: number;
  /** How long the replaced key still answers CREATEs. */
  graceMs: number;
}

export const DEFAULT_ONION_KEY_POLICY: OnionKeyPolicy = {
  lifetimeMs: 7 * 24 * 3600_000,
  graceMs: 24 * 3600_000,
};

/** The keys a CREATE may name right now. */
export interface ActiveOnionKeys {
  onionKey: X25519Key;
  previousOnionKey: X25519Key | null;
}

interface State {
  current: X25519Key;
  currentSince: number;
  previous: X25519Key | null;
  previousUntil: number;
}

export class OnionKeys {
  private constructor(
    private readonly path: string,
    private state: State,
  ) {}

  /** Loads the keys of `dir`, taking over a legacy `onion.key`, or makes the first key. */
  static load(dir: string, now = Date.now()): OnionKeys {
    ensureDataDir(dir);
    const path = join(dir, FILE);
    if (existsSync(path)) return new OnionKeys(path, readState(path));
    const legacy = join(dir, LEGACY_FILE);
    let state: State;
    const legacySecret = readSecret(legacy);
    if (legacySecret) {
      // Its age is the file's: a key kept for months is replaced at the first check.
      state = {
        current: X25519Key.fromSecret(legacySecret),
        currentSince: statSync(legacy).mtimeMs,
        previous: null,
        previousUntil: 0,
      };
    } else {
      state = { current: X25519Key.generate(), currentSince: now, previous: null, previousUntil: 0 };
    }
    writeStateSync(path, state);
    if (existsSync(legacy)) unlinkSync(legacy);
    return new OnionKeys(path, state);
  }

  get current(): X25519Key {
    return this.state.current;
  }

  /** The current key, and the previous one until its grace period ends. */
  active(now = Date.now()): ActiveOnionKeys {
    const s = this.state;
    return { onionKey: s.current, previousOnionKey: s.previous && now < s.previousUntil ? s.previous : null };
  }

  /** When maintain() next has something to do. */
  nextChangeAt(policy: OnionKeyPolicy): number {
    const s = this.state;
    const rotateAt = s.currentSince + policy.lifetimeMs;
    return s.previous ? Math.min(rotateAt, s.previousUntil) : rotateAt;
  }

  /**
   * Replaces the current key once it is `lifetimeMs` old (the old one answers for `graceMs` more),
   * and forgets a previous key whose grace has ended. The new state is on disk before it is used.
   */
  async maintain(policy: OnionKeyPolicy, now = Date.now()): Promise<{ rotated: boolean; dropped: boolean }> {
    const s = this.state;
    let next: State = s;
    let rotated = false;
    let dropped = false;
    if (s.previous && now >= s.previousUntil) {
      next = { ...next, previous: null, previousUntil: 0 };
      dropped = true;
    }
    if (now - s.currentSince >= policy.lifetimeMs) {
      next = {
        current: X25519Key.generate(),
        currentSince: now,
        previous: s.current,
        previousUntil: now + policy.graceMs,
      };
      rotated = true;
    }
    if (next !== s) {
      await writeFileAtomic(this.path, serialize(next));
      this.state = next;
    }
    return { rotated, dropped };
  }
}

function serialize(s: State): string {
  return `${JSON.stringify({
    current: s.current.secret().toString('hex'),
    currentSince: Math.round(s.currentSince),
    previous: s.previous ? s.previous.secret().toString('hex') : null,
    previousUntil: s.previous ? Math.round(s.previousUntil) : null,
  })}\n`;
}

function writeStateSync(path: string, s: State): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, serialize(s), { mode: 0o600 });
  renameSync(tmp, path);
}

function readState(path: string): State {
  checkKeyFileMode(path);
  const bad = (why: string) =>
    new KeyFileError('ALLIUM_KEY_FILE', `${path} is damaged (${why}); move it away to make a new onion key`);
  let j: { current?: unknown; currentSince?: unknown; previous?: unknown; previousUntil?: unknown };
  try {
    j = JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    throw bad('not JSON');
  }
  if (typeof j !== 'object' || j === null) throw bad('not an object');
  if (typeof j.current !== 'string' || !HEX64.test(j.current)) throw bad('"current" is not 64 hex digits');
  if (typeof j.currentSince !== 'number' || !Number.isFinite(j.currentSince))
    throw bad('"currentSince" is not a time');
  const hasPrevious = j.previous !== null && j.previous !== undefined;
  if (hasPrevious && (typeof j.previous !== 'string' || !HEX64.test(j.previous))) {
    throw bad('"previous" is not 64 hex digits');
  }
  if (hasPrevious && (typeof j.previousUntil !== 'number' || !Number.isFinite(j.previousUntil))) {
    throw bad('"previousUntil" is not a time');
  }
  return {
    current: X25519Key.fromSecret(Buffer.from(j.current, 'hex')),
    currentSince: j.currentSince,
    previous: hasPrevious ? X25519Key.fromSecret(Buffer.from(j.previous as string, 'hex')) : null,
    previousUntil: hasPrevious ? (j.previousUntil as number) : 0,
  };
}
