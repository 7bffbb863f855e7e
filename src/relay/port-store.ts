// The relay's listening port, kept in its data directory: a restarted relay listens where the
// consensus (and every client holding it) says it does, instead of on a new random port.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const PORT_FILE = 'port';

/** The port this data directory's relay listened on last time, or undefined (none or unreadable). */
export function readStoredPort(dataDir: string): number | undefined {
  let text: string;
  try {
    text = readFileSync(join(dataDir, PORT_FILE), 'utf8');
  } catch {
    return undefined;
  }
  const n = Number(text.trim());
  return Number.isInteger(n) && n > 0 && n <= 65535 ? n : undefined;
}

export function storePort(dataDir: string, port: number): void {
  writeFileSync(join(dataDir, PORT_FILE), `${port}\n`, { mode: 0o600 });
}
