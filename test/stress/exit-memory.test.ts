// Hostile load at an exit's memory (docs/threat-model.md §2.13): an attacker opens many streams to a
// destination that never reads and pushes megabytes into each, on several circuits, while a bystander
// on its own client keeps fetching a file through the same exit; then the attacker leaves. Real
// processes on 127.0.0.1.
import assert from 'node:assert/strict';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { test } from 'node:test';
import {
  bystander,
  kernelQueuedBytesOf,
  kernelTcpBytes,
  MiB,
  metric,
  mib,
  percentile,
  rssOf,
  type StressNet,
  startFileServer,
  startStressNet,
  viaSocks,
} from '../helpers/stress-net.js';
import { sleep, waitFor } from '../helpers/wait.js';

const CIRCUITS = 4;
const STREAMS_PER_CIRCUIT = 24;
const BYTES_PER_STREAM = 6 * MiB;
const CIRCUIT_LIMIT = 4 * MiB;
const TOTAL_LIMIT = 16 * MiB;

/** A destination that accepts connections and never reads from them. */
async function startSink(): Promise<{ port: number; sockets: Set<net.Socket>; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ pauseOnConnect: true }, (s) => {
    sockets.add(s);
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as net.AddressInfo).port,
    sockets,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

test('streams to destinations that never read: the exit holds what its limits say and frees it all', {
  timeout: 170_000,
}, async () => {
  let stress: StressNet | undefined;
  const sink = await startSink();
  const files = await startFileServer(1024 * 1024);
  const streams: Duplex[] = [];
  try {
    stress = await startStressNet([
      '--max-exit-circuit-buffer',
      String(CIRCUIT_LIMIT),
      '--max-exit-buffer',
      String(TOTAL_LIMIT),
    ]);
    const exit = stress.exit;
    const attacker = await stress.startClient('attacker');
    const victim = await stress.startClient('bystander');
    const url = `http://127.0.0.1:${files.port}${files.path}`;

    const baseline = await bystander(victim, url, files.sha256, () => false, 5);
    assert.deepEqual(baseline.failed, []);
    const rssBefore = rssOf(exit.proc.pid!);
    const kernelBefore = kernelTcpBytes();
    const exitKernelBefore = kernelQueuedBytesOf(exit.proc.pid!);

    // The attack: every stream connects to the sink and writes BYTES_PER_STREAM as fast as it goes.
    const payload = Buffer.alloc(BYTES_PER_STREAM, 0x61);
    const opened = await Promise.all(
      Array.from({ length: CIRCUITS * STREAMS_PER_CIRCUIT }, (_, i) =>
        viaSocks(attacker, '127.0.0.1', sink.port, `attacker${i % CIRCUITS}`).then(
          (s) => s,
          (err: Error) => err,
        ),
      ),
    );
    for (const s of opened) {
      if (s instanceof Error) continue;
      s.on('error', () => {});
      s.write(payload);
      streams.push(s);
    }
    assert.equal(streams.length, CIRCUITS * STREAMS_PER_CIRCUIT, 'every attacker stream connected');

    let attackOver = false;
    const during = bystander(victim, url, files.sha256, () => attackOver, 200);
    let peakBuffered = 0;
    let peakRss = rssBefore;
    let peakKernel = kernelBefore;
    let peakExitKernel = exitKernelBefore;
    // The attack runs until what the attacker could push has stopped growing (its windows closed).
    let lastPushed = -1;
    const taken = new Map<Duplex, number>();
    let steady = 0;
    for (let i = 0; i < 160 && !(steady >= 8 && peakBuffered > 0); i++) {
      await sleep(250); // sampling the attack
      peakBuffered = Math.max(peakBuffered, await metric(exit, 'allium_relay_exit_buffered_bytes'));
      peakRss = Math.max(peakRss, rssOf(exit.proc.pid!));
      peakKernel = Math.max(peakKernel, kernelTcpBytes());
      peakExitKernel = Math.max(peakExitKernel, kernelQueuedBytesOf(exit.proc.pid!));
      for (const s of streams) if (!s.destroyed) taken.set(s, BYTES_PER_STREAM - s.writableLength);
      const pushed = [...taken.values()].reduce((a, b) => a + b, 0);
      steady = pushed === lastPushed ? steady + 1 : 0;
      lastPushed = pushed;
    }
    const closedByLimit = await metric(exit, 'allium_relay_exit_streams_closed_by_buffer_limit_total');
    const openDuring = await metric(exit, 'allium_relay_streams_open');

    // The attacker leaves: its client goes away with its circuits, and the exit must let go of
    // everything they held.
    for (const s of streams) s.destroy();
    await attacker.kill('SIGKILL');
    attackOver = true;
    const report = await during;
    const freed = await waitFor(
      'the exit holds nothing for the attack any more',
      async () =>
        (await metric(exit, 'allium_relay_exit_buffered_bytes')) === 0 &&
        (await metric(exit, 'allium_relay_streams_open')) === 0,
      { timeoutMs: 30_000, everyMs: 250 },
    ).catch(() => false);
    const sinkLeft = sink.sockets.size;
    const leftBuffered = await metric(exit, 'allium_relay_exit_buffered_bytes');
    const leftStreams = await metric(exit, 'allium_relay_streams_open');
    const rssAfter = rssOf(exit.proc.pid!);
    const kernelAfter = kernelTcpBytes();
    const exitKernelAfter = kernelQueuedBytesOf(exit.proc.pid!);
    const lat = report.latenciesMs;
    console.log(
      [
        `attack: ${CIRCUITS} circuits x ${STREAMS_PER_CIRCUIT} streams, ${mib(BYTES_PER_STREAM)} each, to a destination that never reads`,
        `  exit buffered for destinations: peak ${mib(peakBuffered)} (limits ${mib(CIRCUIT_LIMIT)} per circuit, ${mib(TOTAL_LIMIT)} in all)`,
        `  streams closed by the total limit: ${closedByLimit}; exit streams open at the end of the attack: ${openDuring}`,
        `  exit RSS: before ${mib(rssBefore)}, peak ${mib(peakRss)}, after ${mib(rssAfter)}`,
        `  kernel queues of the exit's sockets: before ${mib(exitKernelBefore)}, peak ${mib(peakExitKernel)}, after ${mib(exitKernelAfter)}`,
        `  kernel TCP memory (whole machine, the sink's unread data included): before ${mib(kernelBefore)}, peak ${mib(peakKernel)}, after ${mib(kernelAfter)}`,
        `  after the attacker left: buffers and streams freed ${freed} (${mib(leftBuffered)} and ${leftStreams} left), sink connections still open ${sinkLeft} (a sink that never reads never sees the reset)`,
        `  bystander (1 MiB, sha256 checked): ${report.ok} ok, ${report.failed.length} failed; latency ms baseline p50 ${percentile(baseline.latenciesMs, 50).toFixed(0)}, during p50 ${percentile(lat, 50).toFixed(0)} p95 ${percentile(lat, 95).toFixed(0)} max ${Math.max(...lat).toFixed(0)}`,
      ].join('\n'),
    );

    assert.deepEqual(report.failed, [], 'every bystander fetch succeeded, byte for byte');
    assert.ok(report.ok >= 3, 'the bystander fetched during the attack');
    assert.ok(peakBuffered > 0, 'the attack reached the exit');
    assert.ok(peakBuffered <= TOTAL_LIMIT, `peak ${peakBuffered} within the total limit`);
    assert.ok(freed, 'the exit freed every buffer and stream once the attacker left');
    assert.ok(exitKernelAfter <= MiB, `the exit's sockets hold ${exitKernelAfter} bytes in the kernel after`);
    assert.ok(exit.running, 'the exit is still running');
  } finally {
    for (const s of streams) s.destroy();
    await stress?.close();
    await sink.close();
    await files.close();
  }
});
