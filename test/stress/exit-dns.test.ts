// Hostile load at an exit's DNS (docs/threat-model.md §2.13): an attacker opens BEGINs for names whose
// DNS never answers, on several circuits at once, while a bystander on its own client keeps fetching
// a file by name through the same exit. Real processes on 127.0.0.1; the exit's DNS server is one
// run here (loopback) that answers the bystander's name and never answers the attacker's.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type DnsServer, startDnsServer } from '../helpers/dns-server.js';
import {
  bystander,
  metric,
  mib,
  percentile,
  rssOf,
  type StressNet,
  startFileServer,
  startStressNet,
  viaSocks,
} from '../helpers/stress-net.js';

const CIRCUITS = 4;
const BEGINS_PER_CIRCUIT = 64;
const PER_CIRCUIT_LIMIT = 32;

test('BEGINs for names whose DNS never answers: lookups stay bounded and other users still resolve', {
  timeout: 170_000,
}, async () => {
  let dns: DnsServer | undefined;
  let net: StressNet | undefined;
  const files = await startFileServer(256 * 1024);
  try {
    dns = await startDnsServer({
      answers: { 'bystander.test': '127.0.0.1' },
      silent: (name) => name.endsWith('.blackhole.test'),
    });
    net = await startStressNet([
      '--dns-server',
      dns.address,
      '--max-dns-lookups-per-circuit',
      String(PER_CIRCUIT_LIMIT),
    ]);
    const exit = net.exit;
    const attacker = await net.startClient('attacker');
    const victim = await net.startClient('bystander');
    const url = `http://bystander.test:${files.port}${files.path}`;

    const baseline = await bystander(victim, url, files.sha256, () => false, 5);
    assert.deepEqual(baseline.failed, [], 'the bystander fetches before the attack');
    const rssBefore = rssOf(exit.proc.pid!);
    const rejectedBefore = await metric(exit, 'allium_relay_limit_rejections_total');

    // The attack: every BEGIN names a different never-answering name, all at once.
    const attempts: Promise<string>[] = [];
    for (let c = 0; c < CIRCUITS; c++) {
      for (let i = 0; i < BEGINS_PER_CIRCUIT; i++) {
        attempts.push(
          viaSocks(attacker, `n${c}-${i}.blackhole.test`, 80, `attacker${c}`).then(
            (s) => {
              s.destroy();
              return 'connected';
            },
            (err: Error) => err.message,
          ),
        );
      }
    }
    let attackOver = false;
    const settled = Promise.all(attempts).finally(() => (attackOver = true));
    let fetchedDuringAttack = 0;
    const during = bystander(
      victim,
      url,
      files.sha256,
      () => {
        if (!attackOver) fetchedDuringAttack++;
        return attackOver;
      },
      400,
    );
    let peakLookups = 0;
    let peakRss = rssBefore;
    let sawLookups = false;
    while (!attackOver) {
      const n = await metric(exit, 'allium_relay_exit_dns_lookups');
      if (n > 0) sawLookups = true;
      peakLookups = Math.max(peakLookups, n);
      peakRss = Math.max(peakRss, rssOf(exit.proc.pid!));
      await new Promise((r) => setTimeout(r, 100));
    }
    const outcomes = await settled;
    const report = await during;
    // Every lookup ends within the resolver's own timeout: wait for the table to empty.
    let left = Number.POSITIVE_INFINITY;
    for (let i = 0; i < 100 && left > 0; i++) {
      left = await metric(exit, 'allium_relay_exit_dns_lookups');
      if (left > 0) await new Promise((r) => setTimeout(r, 200));
    }
    const rssAfter = rssOf(exit.proc.pid!);
    const rejected = (await metric(exit, 'allium_relay_limit_rejections_total')) - rejectedBefore;

    const lat = report.latenciesMs;
    console.log(
      [
        `attack: ${CIRCUITS} circuits x ${BEGINS_PER_CIRCUIT} BEGINs for never-answering names`,
        `  exit DNS lookups in progress: peak ${peakLookups} (limit ${PER_CIRCUIT_LIMIT} per circuit: ${CIRCUITS * PER_CIRCUIT_LIMIT} for the attacker's ${CIRCUITS} circuits + the bystander's 1; 1024 in all), ${left} after`,
        `  BEGINs refused by a limit: ${rejected}; queries the DNS server never answered: ${dns.stats.unanswered}`,
        `  attacker outcomes: ${outcomes.filter((o) => o === 'connected').length} connected, ${outcomes.length} total`,
        `  bystander (by name, 256 KiB, sha256 checked): ${report.ok} ok, ${report.failed.length} failed, ${fetchedDuringAttack} started during the attack`,
        `  bystander latency ms: baseline p50 ${percentile(baseline.latenciesMs, 50).toFixed(0)}, during/after p50 ${percentile(lat, 50).toFixed(0)} p95 ${percentile(lat, 95).toFixed(0)} max ${Math.max(...lat).toFixed(0)}`,
        `  exit RSS: before ${mib(rssBefore)}, peak ${mib(peakRss)}, after ${mib(rssAfter)}`,
      ].join('\n'),
    );

    assert.deepEqual(report.failed, [], 'every bystander fetch by name succeeded, byte for byte');
    assert.ok(fetchedDuringAttack >= 3, 'the bystander fetched while the attack was in progress');
    assert.ok(sawLookups, 'the attack reached the exit resolver');
    // The attacker's circuits at their limit, and the bystander's one lookup at a time.
    assert.ok(peakLookups <= CIRCUITS * PER_CIRCUIT_LIMIT + 1, `peak ${peakLookups} lookups`);
    assert.ok(
      rejected >= CIRCUITS * (BEGINS_PER_CIRCUIT - PER_CIRCUIT_LIMIT),
      `${rejected} BEGINs refused past the per-circuit limit`,
    );
    assert.equal(outcomes.filter((o) => o === 'connected').length, 0, 'no never-answering name connected');
    assert.ok(dns.stats.unanswered > 0, 'the attacker names reached the silent DNS server');
    assert.equal(left, 0, 'every lookup slot was freed');
    assert.ok(exit.running, 'the exit is still running');
  } finally {
    await net?.close();
    await dns?.close();
    await files.close();
  }
});
