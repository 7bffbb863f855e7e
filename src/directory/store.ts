// Implements docs/directory-api.md "Data directory": the directory key and relay records on disk.
// Writes are atomic (temp file, fsync, rename), so a crash leaves the old file or the new one, never half.
import { mkdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import * as v from 'valibot';
import { openDescriptor } from '../core/documents.js';
import { IdentityKey } from '../crypto/keys.js';
import { removeStaleTempFiles, writeFileAtomic } from '../storage/atomic-file.js';
import {
  describeIssues,
  isBase64OfLength,
  type RelayDescriptor,
  type SignedEnvelope,
} from '../wire/directory-docs.js';
import { DirectoryError } from './errors.js';
import type { StoredRingValues } from './ring-values.js';

export const KEY_FILE = 'directory-key';
export const STATE_FILE = 'relays.json';
const STATE_FORMAT = 'allium-directory-state';
const STATE_VERSION = 1;

/** One listed relay as kept on disk: the signed envelope (re-verified on load) and when we saw it. */
export interface StoredRelay {
  envelope: SignedEnvelope;
  firstSeen: number;
  lastSeen: number;
  /** The address key the relay registered from (per-address limits); absent in older files. */
  source?: string;
}

/** A withdrawn relay: descriptors published at or before `published` stay refused until `expires`. */
export interface Tombstone {
  id: string;
  published: number;
  expires: number;
}

/** When a relay id was first listed (§8.3), kept a while after it leaves so a restart keeps its place. */
export interface ListedSince {
  id: string;
  since: number;
  /** When it stopped being listed; absent while it is. */
  gone?: number;
}

export interface DirectoryState {
  serial: number;
  relays: StoredRelay[];
  withdrawn: Tombstone[];
  /** Absent in files of directories older than onion services. */
  listedSince?: ListedSince[];
  onion?: StoredRingValues;
}

export interface LoadedRelay extends StoredRelay {
  descriptor: RelayDescriptor;
}

export interface LoadedState {
  serial: number;
  relays: LoadedRelay[];
  withdrawn: Tombstone[];
  listedSince?: ListedSince[];
  onion?: StoredRingValues;
}

const ms = v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(Number.MAX_SAFE_INTEGER));
const ringValueSchema = v.object({
  periodSeconds: v.pipe(v.number(), v.integer(), v.minValue(1)),
  period: ms,
  value: v.pipe(
    v.string(),
    v.check((s) => isBase64OfLength(s, 32), 'must be base64 of 32 bytes'),
  ),
});
const stateSchema = v.object({
  format: v.literal(STATE_FORMAT),
  version: v.literal(STATE_VERSION),
  serial: ms,
  relays: v.array(
    v.object({
      envelope: v.object({ body: v.string(), signature: v.string() }),
      firstSeen: ms,
      lastSeen: ms,
      source: v.optional(v.pipe(v.string(), v.maxLength(64))),
    }),
  ),
  withdrawn: v.array(v.object({ id: v.string(), published: ms, expires: ms })),
  listedSince: v.optional(v.array(v.object({ id: v.string(), since: ms, gone: v.optional(ms) }))),
  onion: v.optional(
    v.object({
      drawn: v.array(ringValueSchema),
      signed: v.array(ringValueSchema),
    }),
  ),
});

function isNotFound(err: unknown): boolean {
  return (err as NodeJS.ErrnoException)?.code === 'ENOENT';
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
}

/** The data directory: the directory's signing key and its relay records. */
export class DirectoryStore {
  readonly dataDir: string;
  readonly keyPath: string;
  readonly statePath: string;

  constructor(dataDir: string) {
    this.dataDir = dataDir;
    this.keyPath = join(dataDir, KEY_FILE);
    this.statePath = join(dataDir, STATE_FILE);
  }

  /** Makes the data directory; returns how many temporary files crashed writes had left in it. */
  async init(): Promise<number> {
    await mkdir(this.dataDir, { recursive: true, mode: 0o700 });
    return (await removeStaleTempFiles(this.statePath)) + (await removeStaleTempFiles(this.keyPath));
  }

  /**
   * Loads the key, or makes one on first start. A missing key beside existing relay records is an
   * error: a new key would silently start a different network that every client rejects.
   */
  async loadOrCreateKey(): Promise<{ key: IdentityKey; created: boolean; loosePermissions: boolean }> {
    let text: string;
    try {
      text = await readFile(this.keyPath, 'utf8');
    } catch (err) {
      if (!isNotFound(err)) {
        throw new DirectoryError(
          'ALLIUM_DIRECTORY_KEY_UNREADABLE',
          0,
          `cannot read the directory key ${this.keyPath}: ${(err as Error).message}`,
          { cause: err },
        );
      }
      if (await exists(this.statePath)) {
        throw new DirectoryError(
          'ALLIUM_DIRECTORY_KEY_MISSING',
          0,
          `${this.statePath} exists but the directory key ${this.keyPath} does not: restore the key file, ` +
            `or move ${STATE_FILE} away to start a new network with a new key`,
        );
      }
      const key = IdentityKey.generate();
      await writeFileAtomic(this.keyPath, `${key.seed().toString('hex')}\n`, 0o600);
      return { key, created: true, loosePermissions: false };
    }
    const hex = text.trim();
    if (!/^[0-9a-f]{64}$/i.test(hex)) {
      throw new DirectoryError(
        'ALLIUM_DIRECTORY_KEY_CORRUPT',
        0,
        `the directory key ${this.keyPath} is not 64 hex digits: restore it from a backup`,
      );
    }
    const st = await stat(this.keyPath);
    return {
      key: IdentityKey.fromSeed(Buffer.from(hex, 'hex')),
      created: false,
      loosePermissions: (st.mode & 0o077) !== 0,
    };
  }

  /** Loads relay records, re-verifying every signature. An unreadable or corrupt file is an error. */
  async loadState(): Promise<LoadedState> {
    let text: string;
    try {
      text = await readFile(this.statePath, 'utf8');
    } catch (err) {
      if (isNotFound(err)) return { serial: 0, relays: [], withdrawn: [] };
      throw new DirectoryError(
        'ALLIUM_DIRECTORY_STORE_UNREADABLE',
        0,
        `cannot read ${this.statePath}: ${(err as Error).message}`,
        { cause: err },
      );
    }
    const corrupt = (why: string, cause?: unknown) =>
      new DirectoryError(
        'ALLIUM_DIRECTORY_STORE_CORRUPT',
        0,
        `${this.statePath} is corrupt (${why}): restore it from a backup, or move it away to start with no relays`,
        { cause },
      );
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (err) {
      throw corrupt('not valid JSON', err);
    }
    const r = v.safeParse(stateSchema, json);
    if (!r.success) {
      const { field, text } = describeIssues(r.issues);
      throw corrupt(`field "${field}" ${text}`);
    }
    const relays: LoadedRelay[] = [];
    for (const [i, rec] of r.output.relays.entries()) {
      let descriptor: RelayDescriptor;
      try {
        descriptor = openDescriptor(rec.envelope);
      } catch (err) {
        throw corrupt(`relay record ${i}: ${(err as Error).message}`, err);
      }
      relays.push({ ...rec, descriptor });
    }
    return {
      serial: r.output.serial,
      relays,
      withdrawn: r.output.withdrawn,
      listedSince: r.output.listedSince,
      onion: r.output.onion,
    };
  }

  async saveState(state: DirectoryState): Promise<void> {
    const doc = {
      format: STATE_FORMAT,
      version: STATE_VERSION,
      serial: state.serial,
      relays: state.relays,
      withdrawn: state.withdrawn,
      ...(state.listedSince ? { listedSince: state.listedSince } : {}),
      ...(state.onion ? { onion: state.onion } : {}),
    };
    await writeFileAtomic(this.statePath, `${JSON.stringify(doc)}\n`, 0o600);
  }
}
