// Implements docs/protocol.md §8.1 (the service keeps the seed of its key A in its data directory): the
// 32-byte Ed25519 seed in `<dataDir>/onion-service.key`, made on first start with mode 0600 and read
// back after, so the address stays the same across restarts. The key IS the address: a file of the
// wrong size, or one others may read, is refused rather than replaced.
import { constants as fsConstants } from 'node:fs';
import { mkdir, open } from 'node:fs/promises';
import { join } from 'node:path';
import { IdentityKey } from '../crypto/keys.js';
import { writeFileAtomic } from '../storage/atomic-file.js';
import { ServiceError } from './service-error.js';

export const SERVICE_KEY_FILE = 'onion-service.key';
const SEED_LEN = 32;

/** The service's identity key from `dataDir`, made (and written atomically, 0600) on first start. */
export async function loadOrCreateServiceKey(dataDir: string): Promise<IdentityKey> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const path = join(dataDir, SERVICE_KEY_FILE);
  const seed = await readSeed(path);
  if (seed) return IdentityKey.fromSeed(seed);
  const key = IdentityKey.generate();
  await writeFileAtomic(path, key.seed(), 0o600);
  return key;
}

/** The seed in `path`, or null when there is no such file. */
async function readSeed(path: string): Promise<Buffer | null> {
  let fh: Awaited<ReturnType<typeof open>>;
  try {
    fh = await open(path, fsConstants.O_RDONLY);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new ServiceError('ALLIUM_SERVICE_KEY', `cannot read ${path}: ${(err as Error).message}`);
  }
  try {
    const { mode, size } = await fh.stat();
    if (mode & 0o077) {
      throw new ServiceError(
        'ALLIUM_SERVICE_KEY',
        `${path} is readable by others (mode ${(mode & 0o777).toString(8)}): it is the service's secret key; run chmod 600 ${path}`,
      );
    }
    if (size !== SEED_LEN) {
      throw new ServiceError(
        'ALLIUM_SERVICE_KEY',
        `${path} is ${size} bytes, not the ${SEED_LEN}-byte key seed; restore it from a backup (deleting it gives the service a new address)`,
      );
    }
    const seed = Buffer.alloc(SEED_LEN);
    await fh.read(seed, 0, SEED_LEN, 0);
    return seed;
  } finally {
    await fh.close();
  }
}
