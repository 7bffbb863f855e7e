#!/usr/bin/env -S MALLOC_ARENA_MAX=2 node --max-semi-space-size=1 --initial-old-space-size=24
// The `allium` command: argument parsing only; each command starts a role.
import { Command } from 'commander';
import { ALLIUM_VERSION } from '../version.js';
import { applyConfigFile, configOption, showAllDefaults } from './config.js';
import { explainError } from './explain-error.js';
import {
  parseDirectoryUrl,
  parseHostPort,
  parseLinkDelay,
  parseNonNegativeInt,
  parsePort,
  parsePositiveInt,
  parseReceiveBudget,
} from './options.js';
import { addRelayCommand } from './relay-command.js';
import { followLauncher, relaunchWithRuntimeFlags } from './runtime-flags.js';
import { addServeCommand } from './serve-command.js';
import { logLevel, metrics, withConsensusTrust } from './shared-options.js';

// Each command loads only its own role: a relay never loads the directory's HTTP server, which keeps
// its memory and start-up time down.
type Action = (...args: never[]) => Promise<void>;
const lazy =
  <T extends Action>(load: () => Promise<T>) =>
  async (...args: Parameters<T>) =>
    (await load())(...args);
const runDirectory = lazy(async () => (await import('./run-directory.js')).runDirectory);
const runRelay = lazy(async () => (await import('./run-relay.js')).runRelay);
const runClient = lazy(async () => (await import('./run-client.js')).runClient);
const runFetch = lazy(async () => (await import('./run-fetch.js')).runFetch);
const runTestnet = lazy(async () => (await import('./run-testnet.js')).runTestnet);
const runServe = lazy(async () => (await import('./run-serve.js')).runServe);
const runDirectoryVerify = lazy(async () => (await import('./run-verify.js')).runDirectoryVerify);

const program = new Command();
program
  .name('allium')
  .description('Allium: a small onion-routing network (directory, relays, clients)')
  .version(ALLIUM_VERSION)
  .showHelpAfterError('(run the command with --help for every option)')
  // So that a command's options before a subcommand (`directory ... verify`) are the command's, and
  // after it the subcommand's; the program itself has only --version and --help.
  .enablePositionalOptions();

const directoryCommand = program
  .command('directory')
  .description('run a directory: relays register with it, clients fetch its signed consensus')
  .option('--data-dir <dir>', 'where the directory key and relay records live', './allium-directory')
  .option('--host <host>', 'address to listen on', '127.0.0.1')
  .option('--port <port>', 'port to listen on (0: any free port)', parsePort, 7000)
  .option('--relay-ttl <seconds>', 'drop relays that have not refreshed for this long', parsePositiveInt, 180)
  .option('--consensus-fresh <seconds>', 'rebuild the consensus at least this often', parsePositiveInt, 60)
  .option(
    '--consensus-valid <seconds>',
    'clients accept a consensus this long (how long they ride out a directory outage)',
    parsePositiveInt,
    3 * 3600,
  )
  .option(
    '--no-reachability-check',
    'list relays without first connecting back to them (default: a relay must complete a link handshake at its address)',
  )
  .option(
    '--rate-limit <per-second>',
    'requests per second one client address may make (IPv6: per /64; loopback is exempt); beyond it, 429 (0: no limit)',
    parseNonNegativeInt,
    10,
  )
  .option(
    '--rate-burst <n>',
    'requests one address may make at once before --rate-limit applies',
    parsePositiveInt,
    60,
  )
  .option(
    '--max-relays-per-address <n>',
    'new relays listed per public address (IPv6: per /64), counted by advertised and by registering address',
    parsePositiveInt,
    2,
  )
  .option(
    '--max-relays-per-local-address <n>',
    'the same for loopback and private addresses (a test network runs every relay on one)',
    parsePositiveInt,
    32,
  )
  .option(
    '--authorities <file>',
    'run as one authority of the set in this file (protocol.md §6.5): vote with the others and serve the consensus a majority signed',
  )
  .option(
    '--voting-interval <seconds>',
    'length of a voting period, the same at every authority',
    parsePositiveInt,
    60,
  )
  .option(
    '--onion-period <seconds>',
    'length of an onion-service period (protocol.md §8.3), 60 to 604800; the same at every authority of a set',
    parsePositiveInt,
    86_400,
  )
  .option(
    '--onion-new-relays-on-ring',
    'put relays on the onion-service ring of a period even when listed after its ring value was published (test networks, whose relays are all new)',
  )
  .option(
    '--print-authority <nickname>',
    "print this directory's entry for an authority set file (making its key if it has none) and exit; the URL is --host and --port",
  )
  .addOption(metrics())
  .addOption(configOption())
  .addOption(logLevel())
  .action(runDirectory);

directoryCommand.enablePositionalOptions();
directoryCommand
  .command('verify')
  .description(
    "recompute an authority set's consensus from the published votes by the rule of protocol.md §6.8 and say whether it matches (exit status 1 when not)",
  )
  .requiredOption('--authorities <file>', 'the authority set (protocol.md §6.5)')
  .option(
    '--from <url>',
    'fetch the consensus and its votes from this authority (default: the first of the set)',
    parseDirectoryUrl,
  )
  .option('--consensus <file>', 'read the consensus ({ body, signatures }) from this file instead')
  .option(
    '--votes <file>',
    'read the votes from this file instead: a JSON array of votes, or { "votes": [...] }',
  )
  .action(runDirectoryVerify);

addRelayCommand(program, runRelay);
addServeCommand(program, runServe);

withConsensusTrust(program.command('client').description('run a client with a SOCKS5 proxy'))
  .option('--socks <host:port>', 'SOCKS5 listen address', parseHostPort, parseHostPort('127.0.0.1:9050'))
  .option(
    '--socks-optimistic <host:port>',
    "also serve a SOCKS5 port that answers CONNECT before the exit has connected, so the application's first bytes follow the BEGIN (one circuit round trip less per connection); an exit that cannot reach the destination then shows as a reset connection instead of a SOCKS error",
    parseHostPort,
  )
  .option('--path-length <n>', 'relays per circuit (>= 3)', parsePositiveInt, 3)
  .option(
    '--data-dir <dir>',
    'keep the last verified consensus (used when the directory is down) and the entry guards here',
  )
  .option(
    '--http-proxy <host:port>',
    'also serve an HTTP proxy here (CONNECT for https, e.g. HTTPS_PROXY=http://HOST:PORT; plain http too)',
    parseHostPort,
  )
  .option(
    '--http-proxy-optimistic <host:port>',
    'also serve an HTTP proxy whose CONNECT tunnels answer before the exit has connected, so a TLS handshake starts one circuit round trip sooner; an exit that cannot reach the destination then shows as a reset tunnel instead of a 502',
    parseHostPort,
  )
  .option(
    '--dashboard <host:port>',
    'serve a dashboard of circuits and streams at http://HOST:PORT/',
    parseHostPort,
  )
  .option(
    '--receive-budget <KiB>',
    'least data in flight toward this client per entry relay, shared by its circuits (it grows by itself on long round trips): more fills long round trips sooner, less keeps queues (and the wait beside a download) short',
    parseReceiveBudget,
    2048,
  )
  .option(
    '--no-link-bound-first-hop',
    "run a full ntor handshake with the entry relay too, and wait for its answer before extending: one round trip to the entry more per circuit (by default the entry's keys come from the link's own handshake, docs/protocol.md §3.6)",
  )
  .addOption(metrics())
  .addOption(configOption())
  .addOption(logLevel())
  .action(runClient);

withConsensusTrust(
  program
    .command('fetch')
    .description('GET a URL through the network and write the body to stdout or a file')
    .argument('<url>', 'http:// or https:// URL'),
)
  .option('-o, --output <file>', 'write the body here instead of stdout')
  .option('--cacert <file>', 'extra CA certificate (PEM) to trust for https')
  .option('--path-length <n>', 'relays per circuit (>= 3)', parsePositiveInt, 3)
  .option(
    '--data-dir <dir>',
    'keep the last verified consensus (used when the directory is down) and the entry guards here',
  )
  .option(
    '--progress',
    'always show a progress bar on stderr (default: only when stderr is a terminal and the body is not going to it)',
  )
  .option('--no-progress', 'never show a progress bar')
  .addOption(configOption())
  .addOption(logLevel().default('warn'))
  .action(runFetch);

program
  .command('testnet')
  .description('start directory authorities, N relays and a client as separate processes on 127.0.0.1')
  .option('--relays <n>', 'number of relays (>= 3)', parsePositiveInt, 5)
  .option(
    '--authorities <n>',
    'directory authorities (1-15), each its own process; the consensus needs a strict majority of them (1: a single directory)',
    parsePositiveInt,
    3,
  )
  .option(
    '--voting-interval <seconds>',
    "the authorities' voting period (a new consensus every period)",
    parsePositiveInt,
    2,
  )
  .option('--exits <n>', 'how many of them are exits (default: about half, at least 1)', parsePositiveInt)
  .option(
    '--socks <host:port>',
    'SOCKS5 listen address of the client',
    parseHostPort,
    parseHostPort('127.0.0.1:9050'),
  )
  .option('--data-dir <dir>', 'where the processes keep keys (default: a fresh temporary directory)')
  .option(
    '--socks-optimistic <host:port>',
    'also give the client a SOCKS5 port that answers before the exit has connected (see `allium client --help`)',
    parseHostPort,
  )
  .option(
    '--http-proxy-optimistic <host:port>',
    'also give the client an HTTP proxy whose CONNECT tunnels answer before the exit has connected',
    parseHostPort,
  )
  .option(
    '--link-delay <ms>',
    'hold every byte this long each way on every link to a relay (relays then listen on 127.0.1.N behind delay lines on 127.0.2.N): a network as far apart as the internet, on one machine',
    parseLinkDelay,
    0,
  )
  .option(
    '--link-jitter <ms>',
    'with the delay lines, hold each chunk up to this much longer at random, in order (a link whose delay varies, as over Wi-Fi)',
    parseLinkDelay,
    0,
  )
  .option(
    '--http-proxy <host:port>',
    'HTTP proxy listen address of the client',
    parseHostPort,
    parseHostPort('127.0.0.1:0'),
  )
  .option(
    '--dashboard <host:port>',
    'dashboard listen address of the client',
    parseHostPort,
    parseHostPort('127.0.0.1:0'),
  )
  .option(
    '--metrics',
    'serve Prometheus metrics from every process (each on a free port, listed once ready)',
    false,
  )
  .option(
    '--demo',
    'once ready, fetch a page from a local web server through the network, then again through an onion service in front of it, print it, stop everything and exit',
    false,
  )
  .addOption(logLevel().default('warn'))
  .action(runTestnet);

showAllDefaults(program);

// The long-running roles and fetch carry the runtime flags (runtime-flags.ts): run again with them.
const RELAUNCHED_COMMANDS = new Set(['directory', 'relay', 'client', 'fetch']);
const wantsHelp = process.argv.some((a) => a === '--help' || a === '-h');
if (!(RELAUNCHED_COMMANDS.has(process.argv[2]) && !wantsHelp && relaunchWithRuntimeFlags())) {
  followLauncher();
  try {
    applyConfigFile(program, process.argv);
  } catch (err) {
    console.error(`allium: ${explainError(err)}`);
    process.exit(2);
  }

  program.parseAsync(process.argv).catch((err) => {
    console.error(
      `allium: ${explainError(
        err,
        program.commands.find((c) => c.name() === process.argv[2]),
      )}`,
    );
    process.exit(1);
  });
}
