// Options several commands share, made anew for each (commander keeps an option's parsed value on it).
import type { Command } from 'commander';
import { Option } from 'commander';
import { parseDirectoryUrl, parseHostPort, parseKey } from './options.js';
import { parseCacheUrls } from './trust-flags.js';

export const metrics = (): Option =>
  new Option(
    '--metrics <host:port>',
    'serve Prometheus metrics at http://HOST:PORT/metrics (port 0: any free port)',
  ).argParser(parseHostPort);

export const logLevel = (): Option =>
  new Option('--log-level <level>', 'log level')
    .choices(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
    .default('info');

/** Adds to `command` whom it trusts for the consensus and which caches it asks besides (client, fetch, serve). */
export function withConsensusTrust(command: Command): Command {
  return command
    .addOption(
      new Option('--directory <url>', 'directory URL (or --authorities)').argParser(parseDirectoryUrl),
    )
    .addOption(new Option('--directory-key <base64>', "the directory's public key").argParser(parseKey))
    .addOption(
      new Option(
        '--authorities <file>',
        'the directory authorities (a set file, protocol.md §6.5): accept a consensus only when a strict majority of them signed it; instead of --directory',
      ),
    )
    .addOption(
      new Option(
        '--cache <urls>',
        'comma-separated consensus caches to ask besides those the consensus lists, e.g. http://127.0.0.1:7100',
      ).argParser(parseCacheUrls),
    );
}
