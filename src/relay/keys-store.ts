// Keys and state in a data directory: key files are created 0600, and a key file others can read is
// refused, since a leaked identity key lets anyone impersonate the relay.
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { IdentityKey, X25519Key } from '../crypto/keys.js';
import { AlliumError } from '../errors.js';

export class KeyFileError extends AlliumError {}

/** Refuses a key file that others than its owner may read. */
export function checkKeyFileMode(path: string): void {
  const mode = statSync(path).mode & 0o777;
  if (mode & 0o077) {
    throw new KeyFileError(
      'ALLIUM_KEY_PERMISSIONS',
      `key file ${path} is readable by others (mode ${mode.toString(8)}); run: chmod 600 ${path}`,
    );
  }
}

/** The 32-byte secret in `path` (64 hex digits), or null if there is no such file. */
export function readSecret(path: string): Buffer | null {
  if (!existsSync(path)) return null;
  checkKeyFileMode(path);
  const hex = readFileSync(path, 'utf8').trim();
  if (!/^[0-9a-f]{64}$/.test(hex)) {
    throw new KeyFileError(
      'ALLIUM_KEY_FILE',
      `key file ${path} is not 64 hex digits; move it away to make a new key`,
    );
  }
  return Buffer.from(hex, 'hex');
}

function writeSecret(path: string, secret: Buffer): void {
  writeFileSync(path, secret.toString('hex') + '\n', { mode: 0o600 });
  chmodSync(path, 0o600);
}

export function ensureDataDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
}

/** Loads the Ed25519 key in `dir/name`, creating it on first start. */
export function loadOrCreateIdentity(dir: string, name = 'identity.key'): IdentityKey {
  ensureDataDir(dir);
  const path = join(dir, name);
  const seed = readSecret(path);
  if (seed) return IdentityKey.fromSeed(seed);
  const key = IdentityKey.generate();
  writeSecret(path, key.seed());
  return key;
}

/** Loads the X25519 key in `dir/name`, creating it on first start. */
export function loadOrCreateX25519(dir: string, name: string): X25519Key {
  ensureDataDir(dir);
  const path = join(dir, name);
  const secret = readSecret(path);
  if (secret) return X25519Key.fromSecret(secret);
  const key = X25519Key.generate();
  writeSecret(path, key.secret());
  return key;
}
