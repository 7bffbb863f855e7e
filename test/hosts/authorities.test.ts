// Three directory authorities, each on its own host (a network namespace), five relays (three exits,
// every relay a consensus cache), a client and a web server, built by scripts/netns/allium-netns.sh
// with ALLIUM_NETNS_AUTHORITIES=3: the consensus is signed by all three; cutting one authority's link
// at the bridge (a pulled cable) leaves the network working: the other two go on forming and signing
// the consensus, their status pages say the third cannot be reached, and the client still downloads.
// Needs root; skips with the reason otherwise (fails under CI=true).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { skipUnlessAvailable } from '../helpers/requirements.js';
import { waitFor } from '../helpers/wait.js';
import { cannotRunHosts, Hosts, sha256 } from './harness.js';

const skip = skipUnlessAvailable(cannotRunHosts());
const hosts = new Hosts({
  ALLIUM_NETNS_PREFIX: 'alliumauth-',
  ALLIUM_NETNS_SUBNET: '10.79.0',
  ALLIUM_NETNS_AUTHORITIES: '3',
  ALLIUM_NETNS_RELAYS: '5',
  ALLIUM_NETNS_EXITS: '3',
});

/** The consensus an authority serves, asked from the client host: its body and signature count. */
async function served(url: string): Promise<{ serial: number; relays: number; signatures: number } | null> {
  try {
    const { stdout } = await hosts.inHost('client', [
      'curl',
      '-sS',
      '--fail',
      '--max-time',
      '3',
      `${url}/v1/consensus`,
    ]);
    const doc = JSON.parse(stdout.toString()) as { body: string; signatures: unknown[] };
    const body = JSON.parse(doc.body) as { serial: number; relays: unknown[] };
    return { serial: body.serial, relays: body.relays.length, signatures: doc.signatures.length };
  } catch {
    return null;
  }
}

describe('directory authorities on their own hosts (network namespaces)', { skip }, () => {
  let env: Record<string, string> = {};
  const onSignal = (sig: NodeJS.Signals) => {
    hosts.down();
    process.exit(sig === 'SIGINT' ? 130 : 143);
  };

  before(async () => {
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    await hosts.up(180_000);
    env = hosts.env;
  });

  after(() => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    hosts.down();
    assert.deepEqual(hosts.leftovers(), [], 'namespaces left behind');
  });

  test('each authority runs on its own host, and each serves the consensus of five relays all three signed', async () => {
    for (const a of ['auth1', 'auth2', 'auth3']) {
      assert.equal(env[`AUTH_${a}`], `http://${env[`HOST_${a}`]}:7000`, `${a} listens on its host's address`);
      assert.ok(hosts.pids(a).length > 0, `${a} runs in its own host`);
      await waitFor(
        `${a} serves a consensus of 5 relays with 3 signatures`,
        async () => {
          const c = await served(env[`AUTH_${a}`]);
          return c && c.relays === 5 && c.signatures === 3 ? c : null;
        },
        { timeoutMs: 30_000, everyMs: 500 },
      );
    }
    const r = await hosts.socksCurl('/hello', `${env.STATE}/hello-before`, 60).done;
    assert.equal(r.code, 0, r.stderr);
    assert.match(readFileSync(`${env.STATE}/hello-before`, 'utf8'), /RESPONSE-MARKER-7f3a/);
  });

  test("cutting auth2's link: the other two go on forming the consensus, say why, and the network works", async () => {
    await hosts.cut('auth2');
    try {
      const before = await served(env.AUTH_auth1);
      assert.ok(before);
      // A newer consensus than the one held at the cut, signed by the two that can still talk.
      for (const a of ['auth1', 'auth3']) {
        await waitFor(
          `${a} serves a consensus newer than the cut, signed by two`,
          async () => {
            const c = await served(env[`AUTH_${a}`]);
            return c && c.serial > before.serial && c.relays === 5 && c.signatures === 2 ? c : null;
          },
          { timeoutMs: 30_000, everyMs: 500 },
        );
        const page = await waitFor(
          `${a}'s status page says auth2 cannot be reached`,
          async () => {
            const { stdout } = await hosts.inHost('client', [
              'curl',
              '-sS',
              '--max-time',
              '3',
              `${env[`AUTH_${a}`]}/`,
            ]);
            const row = stdout
              .toString()
              .split('\n')
              .find((l) => l.includes('<td class="nick">auth2</td>'));
            // The vote and, once the period's consensus is computed, the signature.
            return row && /missing: unreachable.*class="signature missing">missing: unreachable/.test(row)
              ? row
              : null;
          },
          { timeoutMs: 20_000, everyMs: 500 },
        );
        assert.match(page, /class="vote missing">missing: unreachable: [^<]*no answer within \d+ ms/);
      }
      const got = `${env.STATE}/got10m`;
      const r = await hosts.socksCurl('/random10m', got, 120).done;
      assert.equal(r.code, 0, r.stderr);
      assert.equal(sha256(readFileSync(got)), sha256(readFileSync(`${env.STATE}/www/random10m`)));
    } finally {
      await hosts.cut('auth2', false);
    }
  });
});
