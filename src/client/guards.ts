// Entry guards (the client side of path selection, next to docs/protocol.md §7): a client enters the
// network through the same few relays for months, kept in guards.json in its data directory. With
// fresh random entries per circuit, a client would sooner or later use an adversary's entry together
// with an adversary's exit; with guards it either picked a bad guard once or never meets one.
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { bandwidthWeights, compatible, subnetsEnforced } from '../core/path-selection.js';
import { randomFraction } from '../crypto/random.js';
import { AlliumError } from '../errors.js';
import { writeFileAtomic } from '../storage/atomic-file.js';
import { MIN_RELAY_VERSION, versionAtLeast } from '../version.js';
import type { ConsensusRelay } from '../wire/directory-docs.js';

export class GuardError extends AlliumError {}

export const GUARDS_FILE = 'guards.json';
export const DEFAULT_GUARD_COUNT = 2;
/** A guard is replaced after 60-90 days (random within, so a client's guards do not all change at once). */
export const DEFAULT_GUARD_LIFETIME_MS = 60 * 24 * 3600_000;
/** A guard missing from the consensus this long is dropped; until then the client waits for it. */
export const DEFAULT_GUARD_UNLISTED_MS = 7 * 24 * 3600_000;
/** At most this many guards are kept, listed or waiting, so an unstable network cannot grow the file. */
const MAX_KEPT_FACTOR = 3;

export interface GuardEntry {
  /** Relay id (hex). */
  id: string;
  addedAt: number;
  expiresAt: number;
  /** When the consensus was first seen without this relay running; null while it is listed. */
  unlistedSince: number | null;
}

export interface GuardState {
  version: 1;
  /** In order of preference: paths enter through the first listed one they can use. */
  guards: GuardEntry[];
  /** Relays dropped as guards for path bias (src/client/path-bias.ts): not chosen again until `until`. */
  dropped?: { id: string; until: number }[];
}

export interface GuardUpdateOptions {
  /** Guards wanted among the running relays (default 2). */
  count?: number;
  now?: number;
  random?: () => number;
  lifetimeMs?: number;
  unlistedMs?: number;
  /** As PathOptions.enforceSubnets: no two guards in one /16 or /32 (unset: unless all relays share one). */
  enforceSubnets?: boolean;
}

export function emptyGuards(): GuardState {
  return { version: 1, guards: [] };
}

const HEX64 = /^[0-9a-f]{64}$/;

function validState(v: unknown): v is GuardState {
  if (v === null || typeof v !== 'object') return false;
  const s = v as { version?: unknown; guards?: unknown };
  if (s.version !== 1 || !Array.isArray(s.guards) || s.guards.length > 1000) return false;
  const dropped = (v as { dropped?: unknown }).dropped;
  if (dropped !== undefined) {
    if (!Array.isArray(dropped) || dropped.length > 1000) return false;
    const ok = dropped.every((d: unknown) => {
      const e = d as Record<string, unknown> | null;
      return (
        e !== null &&
        typeof e === 'object' &&
        typeof e.id === 'string' &&
        HEX64.test(e.id) &&
        Number.isSafeInteger(e.until)
      );
    });
    if (!ok) return false;
  }
  return s.guards.every((g: unknown) => {
    if (g === null || typeof g !== 'object') return false;
    const e = g as Record<string, unknown>;
    return (
      typeof e.id === 'string' &&
      HEX64.test(e.id) &&
      Number.isSafeInteger(e.addedAt) &&
      Number.isSafeInteger(e.expiresAt) &&
      (e.unlistedSince === null || Number.isSafeInteger(e.unlistedSince))
    );
  });
}

/** Reads dataDir/guards.json; a missing file is no guards yet. */
export async function loadGuards(dataDir: string): Promise<GuardState> {
  const path = join(dataDir, GUARDS_FILE);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return emptyGuards();
    throw new GuardError('ALLIUM_GUARDS_READ', `cannot read ${path}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  if (!validState(json)) {
    // Not silently replaced: choosing new guards is exactly what an attacker who can write here wants.
    throw new GuardError(
      'ALLIUM_GUARDS_CORRUPT',
      `${path} is not a guard list this client wrote; delete it to choose new entry guards`,
    );
  }
  const state: GuardState = { version: 1, guards: json.guards.map((g) => ({ ...g })) };
  if (json.dropped) state.dropped = json.dropped.map((d) => ({ id: d.id, until: d.until }));
  return state;
}

/** Writes dataDir/guards.json atomically, mode 0600 (it says which relays this client enters through). */
export async function saveGuards(dataDir: string, state: GuardState): Promise<void> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  await writeFileAtomic(join(dataDir, GUARDS_FILE), `${JSON.stringify(state, null, 1)}\n`, 0o600);
}

function weightedPick(
  cands: ConsensusRelay[],
  weights: Map<string, number>,
  random: () => number,
): ConsensusRelay {
  const total = cands.reduce((s, r) => s + (weights.get(r.id) ?? 1), 0);
  let x = random() * total;
  for (const r of cands) {
    x -= weights.get(r.id) ?? 1;
    if (x < 0) return r;
  }
  return cands[cands.length - 1];
}

/**
 * Brings the guard list up to date with a consensus: marks guards that left it, drops those gone too
 * long or past their lifetime, and adds new ones (bandwidth-weighted, non-exits preferred, no two in
 * one subnet or family) until `count` of them are running. Returns the new state and whether it
 * changed (save it then).
 */
export function updateGuards(
  state: GuardState,
  relays: ConsensusRelay[],
  opts: GuardUpdateOptions = {},
): { state: GuardState; changed: boolean } {
  const count = opts.count ?? DEFAULT_GUARD_COUNT;
  const now = opts.now ?? Date.now();
  const random = opts.random ?? randomFraction;
  const lifetime = opts.lifetimeMs ?? DEFAULT_GUARD_LIFETIME_MS;
  const unlistedMs = opts.unlistedMs ?? DEFAULT_GUARD_UNLISTED_MS;
  // A relay of a release before MIN_RELAY_VERSION cannot carry this release's cells: as if unlisted.
  const running = relays.filter(
    (r) => r.flags.includes('Running') && versionAtLeast(r.version, MIN_RELAY_VERSION),
  );
  const byId = new Map(running.map((r) => [r.id, r]));
  let changed = false;

  const dropped = (state.dropped ?? []).filter((d) => d.until > now);
  if (dropped.length !== (state.dropped ?? []).length) changed = true;
  const banned = new Set(dropped.map((d) => d.id));
  const kept: GuardEntry[] = [];
  for (const g of state.guards) {
    if (banned.has(g.id)) {
      changed = true;
      continue;
    }
    const listed = byId.has(g.id);
    if (now >= g.expiresAt) {
      changed = true;
      continue;
    }
    if (listed) {
      if (g.unlistedSince !== null) changed = true;
      kept.push({ ...g, unlistedSince: null });
      continue;
    }
    const since = g.unlistedSince ?? now;
    if (now - since >= unlistedMs) {
      changed = true;
      continue;
    }
    if (g.unlistedSince === null) changed = true;
    kept.push({ ...g, unlistedSince: since });
  }

  const subnets = subnetsEnforced(running, opts.enforceSubnets);
  const weights = bandwidthWeights(running);
  const listedGuards = () =>
    kept.filter((g) => g.unlistedSince === null).map((g) => byId.get(g.id) as ConsensusRelay);
  while (listedGuards().length < count && kept.length < count * MAX_KEPT_FACTOR) {
    const current = listedGuards();
    const taken = new Set(kept.map((g) => g.id));
    const cands = running.filter(
      (r) => !taken.has(r.id) && !banned.has(r.id) && current.every((c) => compatible(r, c, subnets)),
    );
    if (cands.length === 0) break;
    const nonExit = cands.filter((r) => !r.flags.includes('Exit'));
    const pick = weightedPick(nonExit.length > 0 ? nonExit : cands, weights, random);
    kept.push({
      id: pick.id,
      addedAt: now,
      expiresAt: now + Math.floor(lifetime * (1 + 0.5 * random())),
      unlistedSince: null,
    });
    changed = true;
  }
  const next: GuardState = { version: 1, guards: kept };
  if (dropped.length > 0) next.dropped = dropped;
  return { state: next, changed };
}

/**
 * Drops guard `id` (path bias: its circuits failed far more than a network's do) and keeps it from
 * being chosen again for `forMs` (default: a guard's lifetime). The next updateGuards picks a new one.
 */
export function dropGuard(
  state: GuardState,
  id: string,
  now: number = Date.now(),
  forMs: number = DEFAULT_GUARD_LIFETIME_MS,
): GuardState {
  const dropped = (state.dropped ?? []).filter((d) => d.id !== id && d.until > now);
  dropped.push({ id, until: now + forMs });
  return { version: 1, guards: state.guards.filter((g) => g.id !== id), dropped };
}

/**
 * The ids to pass as PathOptions.guards, in order of preference. Guards waiting to come back are
 * included: choosePath skips any that is not running, and one that returns is preferred again.
 */
export function guardIds(state: GuardState): string[] {
  return state.guards.map((g) => g.id);
}
