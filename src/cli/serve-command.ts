// The `allium serve` command's options; the onion service itself starts in run-serve.ts.
import type { Command } from 'commander';
import { configOption } from './config.js';
import { parsePort, parsePositiveInt } from './options.js';
import { logLevel, withConsensusTrust } from './shared-options.js';

/** Adds `serve` to `program`; `run` receives the parsed options. */
export function addServeCommand(program: Command, run: Parameters<Command['action']>[0]): void {
  withConsensusTrust(program.command('serve'))
    .description(
      'publish a local server as an onion service: reachable at a .allium address through the network, with no open port or public address here',
    )
    .requiredOption('--to <host:port>', 'the local server to publish, e.g. 127.0.0.1:8080')
    .option('--port <port>', 'the port clients name (http://ADDRESS.allium/ is 80)', parsePort, 80)
    .option(
      '--data-dir <dir>',
      'where the service key lives (it IS the address: back it up) and the consensus and guards are kept',
      './allium-service',
    )
    .option('--intro-points <n>', 'introduction points to keep (1-10)', parsePositiveInt, 3)
    .option(
      '--republish <seconds>',
      'store the descriptor again this often though nothing changed (descriptors live 3 hours)',
      parsePositiveInt,
      3600,
    )
    .option(
      '--max-buffer <bytes>',
      'bytes the service holds for its local server, all clients together; past it the stream holding the most is closed (default: a sixteenth of memory, 32-256 MiB)',
      parsePositiveInt,
    )
    .addOption(configOption())
    .addOption(logLevel())
    .action(run);
}
