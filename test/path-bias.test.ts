// A hostile guard that kills (TRUNCATED or DESTROY) most circuits it is asked to extend, so the client
// blames the relays it was extending to and steers toward others: the client counts the builds that got
// past each guard (path bias), reports the guard (log, metric) and, past the threshold, stops using it.
// A guard whose circuits fail at a network's normal rate is kept.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pino } from 'pino';
import { clientFamilies } from '../src/client/metrics.js';
import { ClientMonitor } from '../src/client/monitor.js';
import type { Relay } from '../src/relay/relay.js';
import { DestroyReason, RelayCommand } from '../src/wire/constants.js';
import { encodeTruncated } from '../src/wire/relay-messages.js';
import { type InProcessNetwork, startNetwork } from './helpers/network.js';

interface ExtendingRelay {
  onExtend(circ: { prev: { link: { peerRelayId: Buffer | null } } }, data: Buffer): void;
  sendBackward(circ: unknown, command: number, streamId: number, data: Buffer): Buffer;
  teardown(circ: unknown, reason: number, from: null): void;
}

/**
 * Makes `relay`, as a client's entry, refuse every extend but one in `passEvery`: by TRUNCATED and by
 * DESTROY in turn (its refusals as a middle would count against other guards, so it keeps those honest).
 */
function failExtends(relay: Relay, passEvery: number): { killed: number } {
  const r = relay as unknown as ExtendingRelay;
  const extend = r.onExtend;
  const seen = { n: 0, killed: 0 };
  r.onExtend = function (this: ExtendingRelay, circ, data) {
    if (circ.prev.link.peerRelayId !== null || seen.n++ % passEvery === 0)
      return extend.call(this, circ, data);
    seen.killed++;
    if (seen.killed % 2 === 1) {
      this.sendBackward(circ, RelayCommand.TRUNCATED, 0, encodeTruncated(DestroyReason.CONNECTFAILED));
    } else this.teardown(circ, DestroyReason.CONNECTFAILED, null);
  };
  return seen;
}

async function withNetwork(run: (net: InProcessNetwork, logs: string[]) => Promise<void>): Promise<void> {
  const logs: string[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => logs.push(line) });
  const net = await startNetwork({ relays: 5, exits: 1, clientOptions: { logger } });
  try {
    await run(net, logs);
  } finally {
    await net.stop();
  }
}

/** The client's entry guards, in order of preference (the first is the one paths enter through). */
function guardsOf(net: InProcessNetwork): string[] {
  const client = net.client as unknown as { currentGuards(c: unknown): string[] };
  return client.currentGuards(net.client.currentConsensus);
}

/** Builds up to `count` circuits the way the client chooses them; returns the entries of those built. */
async function build(net: InProcessNetwork, count: number): Promise<{ entries: string[]; failed: number }> {
  const entries: string[] = [];
  let failed = 0;
  for (let i = 0; i < count; i++) {
    try {
      const circ = await net.client.buildCircuit();
      entries.push(circ.hops[0].relay.id);
      circ.destroy(DestroyReason.FINISHED, 'test');
    } catch {
      failed++;
    }
  }
  return { entries, failed };
}

test('a guard that kills most circuits beyond itself is blamed, reported and dropped', async () => {
  await withNetwork(async (net, logs) => {
    const hostileId = guardsOf(net)[0];
    const hostile = net.relays.find((r) => r.idHex === hostileId)!;
    const nickname = net.client.currentConsensus!.relays.find((r) => r.id === hostileId)!.nickname;
    const attack = failExtends(hostile, 5);
    const monitor = new ClientMonitor(net.client);

    // Below the sample the guard is not judged; then its 20% success rate drops it.
    const first = await build(net, 19);
    assert.ok(first.failed >= 15, `the guard killed ${first.failed} of 19`);
    assert.equal(net.client.guardsDropped, 0, 'not judged on fewer builds than the minimum');
    const bias = net.client.pathBiasGuards().find((g) => g.guard === hostileId)!;
    assert.equal(bias.attempts, 19, 'every build got past the guard and counted against it');
    assert.equal(bias.successes, 19 - first.failed);
    await build(net, 1);
    assert.equal(net.client.guardsDropped, 1);
    assert.equal(net.client.pathBiasGuards().find((g) => g.guard === hostileId)?.verdict, 'drop');
    assert.ok(attack.killed >= 16);

    // Reported: a warning naming the guard, and the metrics.
    assert.ok(
      logs.some((l) => /path bias/.test(l) && l.includes(nickname) && /"level":40/.test(l)),
      'a warning names the guard',
    );
    const families = clientFamilies(monitor);
    const dropped = families.find((f) => f.name === 'allium_client_guards_dropped_total')!;
    assert.equal(dropped.collect(), 1);
    const perGuard = families.find((f) => f.name === 'allium_client_guard_circuits')!;
    const samples = perGuard.collect() as { labels: Record<string, string>; value: number }[];
    assert.ok(samples.some((s) => s.labels.guard === nickname && s.labels.result === 'attempted'));
    assert.equal(monitor.guards().find((g) => g.id === hostileId)?.verdict, 'drop');

    // No longer used: every circuit now enters elsewhere, and it is no longer among the guards.
    assert.ok(!guardsOf(net).includes(hostileId));
    const after = await build(net, 10);
    assert.equal(after.failed, 0);
    assert.ok(after.entries.every((id) => id !== hostileId));
  });
});

test('a guard whose circuits fail at a network’s normal rate is kept', async () => {
  await withNetwork(async (net) => {
    const guardId = guardsOf(net)[0];
    // One extend in ten fails: a relay down, a timeout.
    const flaky = net.relays.find((r) => r.idHex === guardId)!;
    const r = flaky as unknown as ExtendingRelay;
    const extend = r.onExtend;
    let n = 0;
    r.onExtend = function (this: ExtendingRelay, circ, data) {
      if (circ.prev.link.peerRelayId !== null || ++n % 10 !== 0) return extend.call(this, circ, data);
      this.sendBackward(circ, RelayCommand.TRUNCATED, 0, encodeTruncated(DestroyReason.CONNECTFAILED));
    };
    const { entries, failed } = await build(net, 60);
    assert.ok(failed >= 5, `${failed} builds failed`);
    assert.equal(net.client.guardsDropped, 0);
    const bias = net.client.pathBiasGuards().find((g) => g.guard === guardId)!;
    assert.equal(bias.verdict, 'ok');
    assert.ok(
      entries.every((id) => id === guardId),
      'every circuit still enters through it',
    );
  });
});
