// Parsing of option values shared by the commands; every error names the option and the bad value.
import { InvalidArgumentError } from 'commander';
import { CELL_LEN, CIRC_WINDOW_MIN } from '../wire/constants.js';

export function parseHostPort(value: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(value);
  const port = m ? Number(m[3]) : Number.NaN;
  if (!m || port > 65535)
    throw new InvalidArgumentError(`expected HOST:PORT (e.g. 127.0.0.1:9050), got "${value}"`);
  return { host: m[1] ?? m[2], port };
}

export function parsePort(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new InvalidArgumentError(`expected a port 0-65535, got "${value}"`);
  return n;
}

export function parsePositiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1)
    throw new InvalidArgumentError(`expected a positive integer, got "${value}"`);
  return n;
}

export function parseNonNegativeInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0)
    throw new InvalidArgumentError(`expected a whole number >= 0, got "${value}"`);
  return n;
}

/** KiB a client lets be in flight toward it per entry link (protocol §5.1): whole cells, at least one window. */
export function parseReceiveBudget(value: string): number {
  const n = Number(value);
  const min = (CIRC_WINDOW_MIN * CELL_LEN) / 1024;
  if (!Number.isInteger(n) || n < min || n > 1024 * 1024)
    throw new InvalidArgumentError(`expected KiB from ${min} to 1048576 (1 GiB), got "${value}"`);
  return n;
}

/** Milliseconds each way a testnet's delay lines hold every byte: 0 (none) to 10 s. */
export function parseLinkDelay(value: string): number {
  const n = value.trim() === '' ? Number.NaN : Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 10_000)
    throw new InvalidArgumentError(`expected whole milliseconds from 0 to 10000, got "${value}"`);
  return n;
}

/** The receive budget in DATA cells (a cell carries up to 4 KiB). */
export function receiveBudgetCells(kib: number): number {
  return Math.floor((kib * 1024) / CELL_LEN);
}

export function parseKey(value: string): Buffer {
  const b = Buffer.from(value, 'base64');
  if (b.length !== 32)
    throw new InvalidArgumentError(`expected a base64 Ed25519 public key (32 bytes), got "${value}"`);
  return b;
}

/** A directory's URL as `allium directory` prints it: http:// or https://, a host and a port. */
export function parseDirectoryUrl(value: string): string {
  let url: URL | null = null;
  try {
    url = new URL(value);
  } catch {}
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:') || !url.hostname)
    throw new InvalidArgumentError(
      `expected the directory's URL with its scheme, e.g. http://${/^[\w.-]+:\d+$/.test(value) ? value : '127.0.0.1:7000'} (as \`allium directory\` prints it), got "${value}"`,
    );
  return value;
}
