// Implements the Prometheus text exposition format (version 0.0.4) for docs/metrics.md:
// pure formatting, no I/O. Values are read from the roles' own counters at scrape time, so nothing
// here keeps state of its own except histograms.

export type Labels = Record<string, string>;

export interface Sample {
  labels?: Labels;
  value: number;
}

export interface Family {
  name: string;
  help: string;
  type: 'counter' | 'gauge' | 'histogram';
  /** Read at scrape time. */
  collect(): Sample[] | number;
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function formatLabels(labels: Labels | undefined): string {
  if (!labels) return '';
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Number.POSITIVE_INFINITY) return '+Inf';
  if (v === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(v);
}

export function renderFamilies(families: Family[]): string {
  const out: string[] = [];
  for (const f of families) {
    out.push(`# HELP ${f.name} ${f.help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`);
    out.push(`# TYPE ${f.name} ${f.type}`);
    const got = f.collect();
    const samples = typeof got === 'number' ? [{ value: got }] : got;
    for (const s of samples)
      out.push(`${s.labels?.__name ?? f.name}${formatLabels(stripName(s.labels))} ${formatValue(s.value)}`);
  }
  return `${out.join('\n')}\n`;
}

function stripName(labels: Labels | undefined): Labels | undefined {
  if (!labels || !('__name' in labels)) return labels;
  const { __name: _, ...rest } = labels;
  return rest;
}

/** A cumulative histogram: observe() values, then expose it as one `histogram` family. */
export class Histogram {
  private readonly counts: number[];
  private sum = 0;
  private count = 0;

  constructor(
    readonly name: string,
    readonly help: string,
    readonly buckets: number[],
  ) {
    this.counts = buckets.map(() => 0);
  }

  observe(v: number): void {
    this.sum += v;
    this.count++;
    for (let i = 0; i < this.buckets.length; i++) if (v <= this.buckets[i]) this.counts[i]++;
  }

  family(): Family {
    return {
      name: this.name,
      help: this.help,
      type: 'histogram',
      collect: () => [
        ...this.buckets.map((b, i) => ({
          labels: { __name: `${this.name}_bucket`, le: formatValue(b) },
          value: this.counts[i],
        })),
        { labels: { __name: `${this.name}_bucket`, le: '+Inf' }, value: this.count },
        { labels: { __name: `${this.name}_sum` }, value: this.sum },
        { labels: { __name: `${this.name}_count` }, value: this.count },
      ],
    };
  }
}

/** Parses exposition text into name{labels} -> value (tests and tools; not a full parser). */
export function parseExposition(text: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    m.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return m;
}
