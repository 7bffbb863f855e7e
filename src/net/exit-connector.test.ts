import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { ExitPolicy } from '../core/exit-policy.js';
import { StreamError } from '../core/stream-mux.js';
import { EndReason } from '../wire/constants.js';
import { type ExitLookup, exitConnect } from './exit-connector.js';
import { ExitResolver } from './exit-resolver.js';

// Answers from the hosts file only: its server (the discard port on loopback) is never asked here.
const hostsOnly = new ExitResolver({
  servers: ['127.0.0.1:9'],
  timeoutMs: 1000,
  maxLookups: 4,
  maxLookupsPerCircuit: 4,
});

/** A DNS that answers `answers` for every name and counts the questions. */
function fakeDns(...answers: string[]): ExitLookup & { asked: number } {
  const f = Object.assign(
    async (_host: string) => {
      f.asked++;
      return answers.map((address) => ({ address, family: net.isIP(address) }));
    },
    { asked: 0 },
  );
  return f;
}

function refusedByPolicy(err: unknown): boolean {
  assert.ok(err instanceof StreamError, `expected StreamError, got ${String(err)}`);
  assert.equal(err.code, 'ALLIUM_EXIT_POLICY');
  assert.equal(err.endReason, EndReason.EXITPOLICY);
  return true;
}

describe('exitConnect: the policy judges the address DNS returned (DNS rebinding)', () => {
  let server: net.Server;
  let port: number;
  let accepted = 0;
  const exitDefault = ExitPolicy.fromLines(['accept *:*'], { allowPrivate: false });

  before(async () => {
    server = net.createServer((s) => {
      accepted++;
      s.destroy();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as net.AddressInfo).port;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  it('refuses a public-looking name that resolves to 127.0.0.1, and never connects', async () => {
    const dns = fakeDns('127.0.0.1');
    const before = accepted;
    await assert.rejects(exitConnect('innocent.example.com', port, exitDefault, dns), refusedByPolicy);
    assert.equal(dns.asked, 1);
    assert.equal(accepted, before, 'the local server saw a connection');
  });

  it('refuses `localhost` as the exit resolves it (hosts file, RFC 6761)', async () => {
    await assert.rejects(
      exitConnect('localhost', port, exitDefault, (h) => hostsOnly.lookup(h, {}), 2000),
      refusedByPolicy,
    );
  });

  it('refuses when every answer is private, loopback, link-local or IPv4-mapped loopback', async () => {
    for (const answers of [
      ['10.0.0.1', '192.168.1.1', '172.16.0.1'],
      ['::1', 'fe80::1', '169.254.169.254'],
      ['::ffff:127.0.0.1'],
      ['0.0.0.0', '::'],
    ]) {
      await assert.rejects(
        exitConnect('rebind.example.com', port, exitDefault, fakeDns(...answers)),
        refusedByPolicy,
      );
    }
  });

  it('connects to the first allowed answer, with one lookup (no second answer can swap in)', async () => {
    // A rebinding DNS answers differently each time; the exit asks once and dials what it checked.
    const policy = ExitPolicy.fromLines(['reject 127.0.0.2:*', `accept 127.0.0.1:${port}`, 'reject *:*'], {
      allowPrivate: true,
    });
    const dns = fakeDns('127.0.0.2', '127.0.0.1');
    const before = accepted;
    const { socket, address } = await exitConnect('two.example.com', port, policy, dns, 2000);
    socket.destroy();
    assert.equal(address, '127.0.0.1');
    assert.equal(dns.asked, 1);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(accepted, before + 1);
  });

  it('with loopback allowed (--allow-private), the same name connects', async () => {
    const allowing = ExitPolicy.fromLines(['accept *:*'], { allowPrivate: true });
    const { socket, address } = await exitConnect(
      'innocent.example.com',
      port,
      allowing,
      fakeDns('127.0.0.1'),
      2000,
    );
    socket.destroy();
    assert.equal(address, '127.0.0.1');
  });

  it('an IP literal is judged without any lookup', async () => {
    const dns = fakeDns('198.51.100.1');
    await assert.rejects(exitConnect('127.0.0.1', port, exitDefault, dns), refusedByPolicy);
    await assert.rejects(exitConnect('::ffff:7f00:1', port, exitDefault, dns), refusedByPolicy);
    assert.equal(dns.asked, 0);
  });

  it('a name that does not resolve ends with RESOLVEFAILED', async () => {
    const failing: ExitLookup = async () => {
      throw Object.assign(new Error('getaddrinfo ENOTFOUND'), { code: 'ENOTFOUND' });
    };
    for (const dns of [failing, fakeDns()]) {
      await assert.rejects(exitConnect('nowhere.invalid', port, exitDefault, dns), (err: unknown) => {
        assert.ok(err instanceof StreamError);
        assert.equal(err.code, 'ALLIUM_EXIT_RESOLVE');
        assert.equal(err.endReason, EndReason.RESOLVEFAILED);
        return true;
      });
    }
  });
});
