// Structured logs (pino). Privacy by default: roles log no client address or destination unless the
// operator passes --log-sensitive, and never key material.
import { type Logger, pino } from 'pino';
import { prettyDestination } from './log-pretty.js';

export type { Logger };

export interface LogOptions {
  level?: string;
  name?: string;
  /** Write to this file descriptor (default 2: stderr, so stdout stays for command output). */
  fd?: number;
}

export function createLogger(opts: LogOptions = {}): Logger {
  return pino(
    {
      level: opts.level ?? process.env.ALLIUM_LOG_LEVEL ?? 'info',
      name: opts.name,
      base: { pid: process.pid },
    },
    // On a terminal, readable lines; elsewhere (files, pipes, log shippers) one JSON object a line.
    prettyDestination(opts.fd ?? 2) ?? pino.destination({ fd: opts.fd ?? 2, sync: true }),
  );
}

/** A logger that drops everything: the default inside libraries and tests. */
export const silentLogger: Logger = pino({ level: 'silent' });
