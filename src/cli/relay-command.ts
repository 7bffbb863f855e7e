// The `allium relay` command's options; the role itself starts in run-relay.ts.
import type { Command } from 'commander';
import { configOption } from './config.js';
import { parseDirectoryUrl, parseKey, parseNonNegativeInt, parsePort, parsePositiveInt } from './options.js';
import { logLevel, metrics } from './shared-options.js';

/** Adds `relay` to `program`; `run` receives the parsed options. */
export function addRelayCommand(program: Command, run: Parameters<Command['action']>[0]): void {
  program
    .command('relay')
    .description('run a relay (add --exit to let streams leave the network here)')
    .option(
      '--directory <url>',
      'directory URL, e.g. http://127.0.0.1:7000 (or --authorities)',
      parseDirectoryUrl,
    )
    .option('--directory-key <base64>', "the directory's public key (verifies the consensus)", parseKey)
    .option(
      '--authorities <file>',
      'register with every directory authority of the set in this file (protocol.md §6.5), instead of --directory',
    )
    .option(
      '--cache-port <port>',
      'also serve the consensus as a cache on this port at --host (0: any free port), named in the descriptor',
      parsePort,
    )
    .option('--data-dir <dir>', 'where keys live (kept across restarts)', './allium-relay')
    .option('--nickname <name>', 'a name shown in the consensus', 'relay')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option(
      '--port <port>',
      'port to listen on (0: any free port) (default: the port this --data-dir had last time, else any free port, kept for next time)',
      parsePort,
    )
    .option('--address <ip>', 'public address to advertise (default: ask the directory)')
    .option('--exit', 'act as an exit (policy "accept *:*" unless --exit-policy is given)', false)
    .option('--exit-policy <rules>', 'comma-separated exit rules, e.g. "accept *:80,accept *:443,reject *:*"')
    .option(
      '--allow-private',
      'let streams reach private, loopback and link-local addresses (test networks)',
      false,
    )
    .option('--family <ids>', 'comma-separated relay ids run by the same operator (never two in one path)')
    .option('--bandwidth <bytes>', 'advertised bandwidth in bytes/s', parsePositiveInt, 100 * 1024 * 1024)
    .option(
      '--directory-wait <seconds>',
      'at start, keep trying a directory that does not answer for this long',
      parsePositiveInt,
      120,
    )
    .option('--refresh <seconds>', 'how often to refresh the directory record', parsePositiveInt, 60)
    .option(
      '--log-sensitive',
      'log destinations and errors that name them (off: relays keep no such record)',
      false,
    )
    .option(
      '--max-circuits-per-link <n>',
      'circuits one link may hold (more CREATEs are refused)',
      parsePositiveInt,
      8192,
    )
    .option(
      '--max-streams-per-circuit <n>',
      'streams one circuit may open at this exit',
      parsePositiveInt,
      512,
    )
    .option(
      '--create-rate <n>',
      'CREATE cells accepted per link per second (ntor costs CPU)',
      parsePositiveInt,
      200,
    )
    .option(
      '--create-burst <n>',
      'CREATE cells a link may send at once above the rate',
      parsePositiveInt,
      400,
    )
    .option('--max-pending-handshakes <n>', 'link handshakes in progress at once', parsePositiveInt, 4096)
    .option(
      '--inline-handshakes <n>',
      'circuit handshakes per second answered on the relaying thread; past that, worker threads answer',
      parsePositiveInt,
      500,
    )
    .option(
      '--handshake-threads <n>',
      'worker threads for circuit handshakes, started on first need (0: none)',
      parseNonNegativeInt,
      1,
    )
    .option(
      '--max-link-queue <bytes>',
      'bytes queued toward one peer: past a quarter an exit stops reading the busiest streams, past it the circuits with the most queued are closed',
      parsePositiveInt,
      64 * 1024 * 1024,
    )
    .option(
      '--link-stall-timeout <seconds>',
      'close a link whose peer took no byte for this long while cells wait for it',
      parsePositiveInt,
      30,
    )
    .option(
      '--idle-circuit-timeout <seconds>',
      'destroy a circuit that carried no cell for this long (at an exit: and has no stream open)',
      parsePositiveInt,
      600,
    )
    .option(
      '--max-total-queue <bytes>',
      'bytes queued toward all peers together; past it the link with the most queued is closed (default: a quarter of memory, 256 MiB-4 GiB)',
      parsePositiveInt,
    )
    .option(
      '--dns-server <servers>',
      'comma-separated DNS servers an exit asks (IP, IP:PORT or [IPv6]:PORT) (default: those of /etc/resolv.conf)',
    )
    .option('--dns-timeout <seconds>', 'how long one DNS lookup may take at an exit', parsePositiveInt, 5)
    .option(
      '--max-dns-lookups <n>',
      'DNS lookups in progress at an exit, all circuits together (more BEGINs by name are refused)',
      parsePositiveInt,
      1024,
    )
    .option(
      '--max-dns-lookups-per-circuit <n>',
      'DNS lookups in progress at an exit for one circuit (more BEGINs by name are refused)',
      parsePositiveInt,
      32,
    )
    .option(
      '--max-exit-circuit-buffer <bytes>',
      "bytes an exit holds for one circuit's destinations before it stops acknowledging the circuit's cells",
      parsePositiveInt,
      4 * 1024 * 1024,
    )
    .option(
      '--max-exit-buffer <bytes>',
      'bytes an exit holds for all destinations together; past it the stream holding the most is closed (default: a sixteenth of memory, 32-256 MiB)',
      parsePositiveInt,
    )
    .option(
      '--onion-key-lifetime <hours>',
      'how long an onion key serves before a new one replaces it (published at once)',
      parsePositiveInt,
      168,
    )
    .option(
      '--onion-key-grace <hours>',
      'how long the replaced onion key still answers, for clients with an older consensus (at most the lifetime)',
      parsePositiveInt,
      24,
    )
    .option(
      '--max-onion-descriptors <n>',
      'onion service descriptors this relay stores at most (past it a new one is answered FULL)',
      parsePositiveInt,
      4096,
    )
    .option(
      '--max-onion-descriptor-bytes <bytes>',
      'bytes of onion service descriptors this relay stores at most',
      parsePositiveInt,
      8 * 1024 * 1024,
    )
    .option(
      '--max-intro-rate <n>',
      'introductions per second one onion service may ask this relay to pass on, as introduction point (past it: refused)',
      parsePositiveInt,
      200,
    )
    .option(
      '--max-intro-burst <n>',
      'introductions one onion service may have passed on at once above --max-intro-rate',
      parsePositiveInt,
      1600,
    )
    .option(
      '--max-rendezvous-cookies <n>',
      'clients waiting for a service at this relay as rendezvous point at once (more are refused)',
      parsePositiveInt,
      4096,
    )
    .option(
      '--idle-link-timeout <seconds>',
      'close a link that carries no circuit for this long',
      parsePositiveInt,
      180,
    )
    .addOption(metrics())
    .addOption(configOption())
    .addOption(logLevel())
    .action(run);
}
