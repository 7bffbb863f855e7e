// What `allium` prints when a command fails: Node's raw system errors (a port in use, a path that
// cannot be written) turned into what happened, to which flag's value, and what to do; Allium's own
// errors as their message, then their code with the catalogue's advice (the text of docs/errors.md).
import type { Command } from 'commander';
import { ERROR_CATALOGUE, isAlliumCode } from '../error-codes.js';
import { AlliumError } from '../errors.js';

type SystemError = Error & {
  code?: string;
  syscall?: string;
  path?: string;
  address?: string;
  port?: number;
};

const PATH_ADVICE: Record<string, (path: string) => string> = {
  EACCES: (p) => `permission denied for ${p}: run as a user who may write there, or choose another path`,
  EPERM: (p) => `operation not permitted on ${p}: run as a user who may write there, or choose another path`,
  ENOENT: (p) =>
    `${p} does not exist (or a directory on its way is missing): create the directory first (mkdir -p), or choose another path`,
  EEXIST: (p) => `${p} exists and is not a directory: move it away, or choose another path`,
  ENOTDIR: (p) => `a part of ${p} is a file, not a directory: choose another path`,
  EISDIR: (p) => `${p} is a directory: give a file name`,
  EROFS: (p) => `${p} is on a read-only file system: choose another path`,
  ENOSPC: (p) => `no space left on the device holding ${p}: free some, or choose another path`,
};

/** The long flag whose value is this port (a HOST:PORT option, or --port), if any. */
function flagForPort(cmd: Command | undefined, port: number): string | undefined {
  if (!cmd) return undefined;
  const values = cmd.opts() as Record<string, unknown>;
  for (const opt of cmd.options) {
    const v = values[opt.attributeName()];
    if (v === port || (typeof v === 'object' && v !== null && (v as { port?: unknown }).port === port))
      return opt.long;
  }
  return undefined;
}

/** The long flag whose value is this path or a directory above it (--data-dir, --output, ...). */
function flagForPath(cmd: Command | undefined, path: string): string | undefined {
  if (!cmd) return undefined;
  const values = cmd.opts() as Record<string, unknown>;
  const norm = (p: string) => p.replace(/^\.\//, '').replace(/\/+$/, '');
  for (const opt of cmd.options) {
    const v = values[opt.attributeName()];
    if (typeof v !== 'string' || v === '') continue;
    const [a, b] = [norm(path), norm(v)];
    if (a === b || a.startsWith(`${b}/`) || b.startsWith(`${a}/`)) return opt.long;
  }
  return undefined;
}

/** What to print after "allium: " for an error that ended a command. */
export function explainError(err: unknown, cmd?: Command): string {
  if (err instanceof AlliumError && isAlliumCode(err.code)) {
    return `${err.message}\n  what to do (${err.code}): ${ERROR_CATALOGUE[err.code].remedy}`;
  }
  const e = err as SystemError;
  if (
    e?.syscall === 'listen' &&
    typeof e.port === 'number' &&
    (e.code === 'EADDRINUSE' || e.code === 'EACCES')
  ) {
    const flag = flagForPort(cmd, e.port);
    const where = `${e.address?.includes(':') ? `[${e.address}]` : e.address}:${e.port}`;
    const why =
      e.code === 'EADDRINUSE'
        ? 'the address is already in use (another allium, or another program: see `ss -ltnp`)'
        : 'permission denied (ports below 1024 need privileges)';
    return `cannot listen on ${where}${flag ? ` (${flag})` : ''}: ${why}; pick another ${flag ?? 'port'}, or port 0 for any free port`;
  }
  if (typeof e?.path === 'string' && e.code && PATH_ADVICE[e.code]) {
    const flag = flagForPath(cmd, e.path);
    return `${PATH_ADVICE[e.code](e.path)}${flag ? ` (${flag})` : ''}`;
  }
  return e?.message ?? String(err);
}
