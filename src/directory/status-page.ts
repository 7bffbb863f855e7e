// Implements docs/directory-api.md "GET /": the HTML status page a person reads. Every value is escaped.
import type { Consensus } from '../wire/directory-docs.js';
import { isExitDescriptor } from './consensus.js';
import type { RelayRecord } from './registry.js';

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function iso(ms: number): string {
  return new Date(ms).toISOString().replace('.000Z', 'Z');
}

/** "3h 05m", "42s": short enough for a table cell. */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h ${String(m % 60).padStart(2, '0')}m`;
  return `${Math.floor(h / 24)}d ${h % 24}h`;
}

export function formatBandwidth(bytesPerSecond: number): string {
  const units = ['B/s', 'KiB/s', 'MiB/s', 'GiB/s'];
  let v = bytesPerSecond;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

function hostPort(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

export interface StatusPageInput {
  relays: readonly RelayRecord[];
  consensus: Consensus;
  directoryId: string;
  now: number;
}

export function renderStatusPage({ relays, consensus, directoryId, now }: StatusPageInput): string {
  const exits = relays.filter((r) => isExitDescriptor(r.descriptor)).length;
  const rows = relays
    .map((r) => {
      const d = r.descriptor;
      const exit = isExitDescriptor(d);
      return (
        `<tr data-relay-id="${escapeHtml(d.id)}">` +
        `<td class="nick">${escapeHtml(d.nickname)}</td>` +
        `<td class="id"><code title="${escapeHtml(d.id)}">${escapeHtml(d.id.slice(0, 16))}…</code></td>` +
        `<td class="addr">${escapeHtml(hostPort(d.address, d.port))}</td>` +
        `<td class="exit">${exit ? 'exit' : '—'}</td>` +
        `<td class="bw">${escapeHtml(formatBandwidth(d.bandwidth))}</td>` +
        `<td class="uptime">${escapeHtml(formatDuration(now - r.firstSeen))}</td>` +
        `<td class="seen" title="${escapeHtml(iso(r.lastSeen))}">${escapeHtml(formatDuration(now - r.lastSeen))} ago</td>` +
        `<td class="ver">${escapeHtml(d.version)}</td>` +
        '</tr>'
      );
    })
    .join('\n');
  const empty = '<tr><td colspan="8" class="empty">No relays are listed.</td></tr>';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Allium directory: ${relays.length} relays</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 2rem; color: #222; }
h1 { font-size: 1.4rem; } table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .3rem .6rem; border-bottom: 1px solid #ddd; }
th { background: #f4f4f4; } code { font-size: 12px; } dl { display: grid; grid-template-columns: max-content auto; gap: .2rem 1rem; }
dt { color: #666; } .exit { font-weight: 600; } .empty { color: #888; text-align: center; }
</style>
</head>
<body>
<h1>Allium directory</h1>
<dl id="consensus">
<dt>Directory id</dt><dd><code>${escapeHtml(directoryId)}</code></dd>
<dt>Consensus serial</dt><dd id="serial">${consensus.serial}</dd>
<dt>Valid after</dt><dd id="valid-after">${iso(consensus.validAfter)}</dd>
<dt>Fresh until</dt><dd id="fresh-until">${iso(consensus.freshUntil)}</dd>
<dt>Valid until</dt><dd id="valid-until">${iso(consensus.validUntil)}</dd>
<dt>Relays</dt><dd id="relay-count">${relays.length} (${exits} exits)</dd>
</dl>
<table id="relays">
<thead><tr><th>Nickname</th><th>Id</th><th>Address</th><th>Exit</th><th>Bandwidth</th><th>Uptime</th><th>Last seen</th><th>Version</th></tr></thead>
<tbody>
${relays.length > 0 ? rows : empty}
</tbody>
</table>
<p>Generated ${iso(now)}. JSON API: <a href="/v1/consensus">/v1/consensus</a>, <a href="/v1/key">/v1/key</a>.</p>
</body>
</html>
`;
}
