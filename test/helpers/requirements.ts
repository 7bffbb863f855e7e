// What a test needs from the machine (root, a command, Chromium, IPv6 loopback) and what happens
// when it is missing: outside CI the test is skipped with the reason (scripts/run-tests.mjs lists every
// skip after the run); under CI=true it fails, since CI runs as root with every tool installed.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';

export const CHROMIUM = '/usr/bin/chromium';

/**
 * The `skip` option for a test or suite that cannot run without something: false when `missing` is
 * null; the reason outside CI; under CI=true it throws, so the test file fails and says why.
 */
export function skipUnlessAvailable(missing: string | null): string | false {
  if (missing === null) return false;
  if (process.env.CI === 'true') throw new Error(`CI=true, but this test cannot run: ${missing}`);
  return missing;
}

/** Why this process cannot act as root, or null. */
export function missingRoot(): string | null {
  return process.getuid?.() === 0 ? null : 'needs root';
}

/** The first of `commands` not on the PATH, as a reason, or null when all are. */
export function missingCommands(...commands: string[]): string | null {
  for (const cmd of commands) {
    if (spawnSync('sh', ['-c', `command -v ${cmd}`]).status !== 0) return `${cmd} is not installed`;
  }
  return null;
}

/** Why headless Chromium cannot run here, or null. */
export function missingChromium(): string | null {
  return existsSync(CHROMIUM) ? null : `${CHROMIUM} is missing: apt-get install -y chromium`;
}

/** Why nothing can listen on ::1 here (some containers have no IPv6 loopback), or null. */
export async function missingIPv6Loopback(): Promise<string | null> {
  const s = net.createServer();
  try {
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.listen(0, '::1', resolve);
    });
    return null;
  } catch (err) {
    return `cannot listen on ::1: ${(err as Error).message}`;
  } finally {
    s.close(() => {});
  }
}

/** The first reason of several, or null when none applies. */
export function firstMissing(...reasons: (string | null)[]): string | null {
  return reasons.find((r) => r !== null) ?? null;
}
