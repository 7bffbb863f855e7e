// Options several commands share, made anew for each (commander keeps an option's parsed value on it).
import { Option } from 'commander';
import { parseHostPort } from './options.js';

export const metrics = (): Option =>
  new Option(
    '--metrics <host:port>',
    'serve Prometheus metrics at http://HOST:PORT/metrics (port 0: any free port)',
  ).argParser(parseHostPort);

export const logLevel = (): Option =>
  new Option('--log-level <level>', 'log level')
    .choices(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
    .default('info');
