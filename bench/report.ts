// The benchmark's table: every figure beside the direct loopback figure of the same run, and beside
// C Tor when it ran.
import type { PathResult, SlowResult } from './suite.js';

export interface Row<T = PathResult> {
  label: string;
  /** Whether a bigger number is better (throughput) or worse (time, memory, CPU). */
  higherIsBetter: boolean;
  get: (r: T) => number | null;
  /** The direct path has no such figure (circuit build, network start, relay memory). */
  noDirect?: boolean;
}

const maxOf = (o: Record<string, number>, pick: (name: string) => boolean) => {
  const xs = Object.entries(o)
    .filter(([k]) => pick(k))
    .map(([, v]) => v);
  return xs.length ? Math.max(...xs) : null;
};
const isClient = (n: string) => n === 'client';
const isRelay = (n: string) => n !== 'client' && n !== 'directory';

export function rows(bigMiB: number, concurrent: number, concurrentMiB: number): Row[] {
  return [
    {
      label: 'network start until first stream (ms)',
      higherIsBetter: false,
      get: (r) => r.startMs,
      noDirect: true,
    },
    { label: '1 KiB TTFB, built circuit, paced (ms)', higherIsBetter: false, get: (r) => r.ttfbBuiltPacedMs },
    {
      label: '1 KiB TTFB, built circuit, back to back (ms)',
      higherIsBetter: false,
      get: (r) => r.ttfbBuiltBackToBackMs,
    },
    {
      label: '1 KiB TTFB via the HTTP proxy, back to back (ms)',
      higherIsBetter: false,
      get: (r) => r.ttfbHttpProxyBackToBackMs,
    },
    {
      label: '1 KiB TTFB, optimistic SOCKS port, paced (ms)',
      higherIsBetter: false,
      get: (r) => r.ttfbOptimisticPacedMs,
    },
    {
      label: '1 KiB TTFB, optimistic SOCKS port, back to back (ms)',
      higherIsBetter: false,
      get: (r) => r.ttfbOptimisticBackToBackMs,
    },
    { label: '1 KiB TTFB, fresh circuit (ms)', higherIsBetter: false, get: (r) => r.ttfbFreshMs },
    {
      label: '3-hop circuit build, idle network (ms)',
      higherIsBetter: false,
      get: (r) => r.circuitBuildQuietMs,
      noDirect: true,
    },
    {
      label: '3-hop circuit build, every build of the run (ms)',
      higherIsBetter: false,
      get: (r) => r.circuitBuildMs,
      noDirect: true,
    },
    { label: '50 KiB download (ms)', higherIsBetter: false, get: (r) => r.download50KiBMs },
    { label: '1 MiB download (ms)', higherIsBetter: false, get: (r) => r.download1MiBMs },
    { label: '5 MiB download (ms)', higherIsBetter: false, get: (r) => r.download5MiBMs },
    { label: `one ${bigMiB} MiB download (MiB/s)`, higherIsBetter: true, get: (r) => r.bigMiBps },
    {
      label: `the network's first ${bigMiB} MiB download, before the warm-up (MiB/s)`,
      higherIsBetter: true,
      get: (r) => r.firstBigMiBps,
    },
    { label: `one ${bigMiB} MiB upload (MiB/s)`, higherIsBetter: true, get: (r) => r.bigUploadMiBps },
    {
      label: `${concurrent} isolated x ${concurrentMiB} MiB, aggregate (MiB/s)`,
      higherIsBetter: true,
      get: (r) => r.concurrentAggregateMiBps,
    },
    {
      label: `1 KiB TTFB on another circuit during the ${concurrent} downloads (ms)`,
      higherIsBetter: false,
      get: (r) => r.ttfbUnderLoadMs,
      noDirect: true,
    },
    {
      label: 'peak RSS, largest relay (MiB)',
      higherIsBetter: false,
      get: (r) => maxOf(r.peakRssMiB, isRelay),
      noDirect: true,
    },
    {
      label: 'peak RSS, client (MiB)',
      higherIsBetter: false,
      get: (r) => maxOf(r.peakRssMiB, isClient),
      noDirect: true,
    },
    {
      label: 'peak private memory (RssAnon), largest relay (MiB)',
      higherIsBetter: false,
      get: (r) => maxOf(r.peakPrivateMiB, isRelay),
      noDirect: true,
    },
    {
      label: 'peak private memory (RssAnon), client (MiB)',
      higherIsBetter: false,
      get: (r) => maxOf(r.peakPrivateMiB, isClient),
      noDirect: true,
    },
    {
      label: 'CPU-s per GiB, all processes incl. curl + web',
      higherIsBetter: false,
      get: (r) => r.cpuSecondsPerGiBAll,
    },
    {
      label: 'CPU-s per GiB, network processes only',
      higherIsBetter: false,
      get: (r) => r.cpuSecondsPerGiBNetwork,
      noDirect: true,
    },
    {
      label: "CPU-s per GiB, network processes, the network's first download",
      higherIsBetter: false,
      get: (r) => r.firstBigCpuSecondsPerGiBNetwork,
      noDirect: true,
    },
  ];
}

const fmt = (x: number | null | undefined) =>
  x === null || x === undefined || !Number.isFinite(x)
    ? '-'
    : x >= 100
      ? x.toFixed(0)
      : x.toFixed(x >= 10 ? 1 : 2);
const ratio = (a: number | null, b: number | null) =>
  a === null || b === null || !Number.isFinite(a) || !Number.isFinite(b) || b === 0
    ? '-'
    : `${(a / b).toFixed(2)}x`;

export function table<T>(direct: T, allium: T | null, tor: T | null, r: Row<T>[]): string {
  const head = ['figure', 'direct', 'Allium', 'Allium/direct'];
  if (tor) head.push('C Tor', 'Tor/direct', 'Allium better by');
  const lines = [head];
  for (const row of r) {
    const d = row.noDirect ? null : row.get(direct);
    const a = allium ? row.get(allium) : null;
    const line = [row.label, fmt(d), fmt(a), ratio(a, d)];
    if (tor) {
      const t = row.get(tor);
      // Better-by is always "how many times better Allium is": >1 means Allium wins.
      line.push(fmt(t), ratio(t, d), row.higherIsBetter ? ratio(a, t) : ratio(t, a));
    }
    lines.push(line);
  }
  const widths = head.map((_, i) => Math.max(...lines.map((l) => l[i].length)));
  const render = (l: string[]) =>
    `| ${l.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(' | ')} |`;
  return [
    render(lines[0]),
    `|${widths.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`,
    ...lines.slice(1).map(render),
  ].join('\n');
}

export function slowTable(s: SlowResult): string {
  const names = Object.keys(s.samples[0]?.rssMiB ?? {});
  const head = ['t (s)', 'read MiB', 'sent MiB', ...names.map((n) => `${n} RSS`)];
  const lines = [
    head,
    ...s.samples.map((x) => [
      String(x.t),
      String(x.readMiB),
      String(x.sentMiB),
      ...names.map((n) => fmt(x.rssMiB[n])),
    ]),
  ];
  const widths = head.map((_, i) => Math.max(...lines.map((l) => l[i].length)));
  const render = (l: string[]) => `| ${l.map((c, i) => c.padStart(widths[i])).join(' | ')} |`;
  return [
    render(lines[0]),
    `|${widths.map((w) => `${'-'.repeat(w + 1)}:`).join('|')}|`,
    ...lines.slice(1).map(render),
  ].join('\n');
}
