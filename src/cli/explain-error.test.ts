import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Command } from 'commander';
import { ERROR_CATALOGUE } from '../error-codes.js';
import { AlliumError } from '../errors.js';
import { explainError } from './explain-error.js';
import { parseHostPort } from './options.js';

function command(args: string[]): Command {
  const cmd = new Command('relay')
    .exitOverride()
    .option('--data-dir <dir>', 'data', './allium-relay')
    .option('--socks <host:port>', 'socks', parseHostPort)
    .option('-o, --output <file>', 'output');
  cmd.parse(args, { from: 'user' });
  return cmd;
}

const sysErr = (fields: Record<string, unknown>) => Object.assign(new Error('raw'), fields);

describe('explainError', () => {
  it('a path that cannot be written names the path, the flag and what to do', () => {
    const cmd = command(['--data-dir', '/srv/allium/relay']);
    const msg = explainError(sysErr({ code: 'EACCES', syscall: 'mkdir', path: '/srv/allium/relay' }), cmd);
    assert.equal(
      msg,
      'permission denied for /srv/allium/relay: run as a user who may write there, or choose another path (--data-dir)',
    );
    // A file inside it, and the directory an output file would go in.
    assert.match(
      explainError(sysErr({ code: 'EACCES', syscall: 'open', path: '/srv/allium/relay/identity.key' }), cmd),
      /\(--data-dir\)$/,
    );
    const out = command(['-o', '/tmp/none/page.html']);
    assert.match(
      explainError(sysErr({ code: 'ENOENT', syscall: 'access', path: '/tmp/none' }), out),
      /^\/tmp\/none does not exist .*mkdir -p.*\(--output\)$/,
    );
  });

  it('a port in use names the flag whose value it is', () => {
    const cmd = command(['--socks', '127.0.0.1:9050']);
    const msg = explainError(
      sysErr({ code: 'EADDRINUSE', syscall: 'listen', address: '127.0.0.1', port: 9050 }),
      cmd,
    );
    assert.match(msg, /^cannot listen on 127\.0\.0\.1:9050 \(--socks\): the address is already in use/);
    assert.match(msg, /pick another --socks, or port 0/);
  });

  it("Allium's own errors keep their message and add their code with the catalogue's advice", () => {
    const err = new AlliumError('ALLIUM_KEY_PERMISSIONS', 'key file r1/identity.key is readable by others');
    const [first, second, ...rest] = explainError(err).split('\n');
    assert.equal(first, 'key file r1/identity.key is readable by others');
    assert.equal(
      second,
      `  what to do (ALLIUM_KEY_PERMISSIONS): ${ERROR_CATALOGUE.ALLIUM_KEY_PERMISSIONS.remedy}`,
    );
    assert.deepEqual(rest, []);
  });

  it('anything else is its own message', () => {
    assert.equal(explainError(new Error('plain')), 'plain');
  });
});
