// Implements docs/directory-api.md "GET /": the HTML status page a person reads. Every value is escaped.
import type { Consensus } from '../wire/directory-docs.js';
import { isExitDescriptor } from './consensus.js';
import type { RelayRecord } from './registry.js';
import { renderAuthoritiesSection } from './status-authorities.js';
import type { VotingStatus } from './voting.js';

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function iso(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
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

/** "in 45s" / "3m 05s ago": how far `t` is from `now`, for a person scanning the page. */
export function relativeTime(t: number, now: number): string {
  return t > now ? `in ${formatDuration(t - now)}` : `${formatDuration(now - t)} ago`;
}

export interface StatusPageInput {
  relays: readonly (Pick<RelayRecord, 'descriptor' | 'firstSeen' | 'lastSeen'> & { flags?: string[] })[];
  consensus: Consensus;
  directoryId: string;
  now: number;
  /** Shown in the header when known. */
  relayTtlMs?: number;
  reachabilityCheck?: boolean;
  /** This directory is one authority of a set: its votes and signatures of the current period. */
  voting?: VotingStatus;
}

function timeCell(id: string, label: string, t: number, now: number): string {
  return (
    `<dt>${label}</dt><dd id="${id}"><time datetime="${iso(t)}">${iso(t)}</time> ` +
    `<span class="rel">(${relativeTime(t, now)})</span></dd>`
  );
}

export function renderStatusPage(input: StatusPageInput): string {
  const { consensus, directoryId, now } = input;
  // Nickname order is what a person scans for; the id breaks ties between equal nicknames.
  const relays = [...input.relays].sort(
    (a, b) =>
      a.descriptor.nickname.localeCompare(b.descriptor.nickname) ||
      (a.descriptor.id < b.descriptor.id ? -1 : 1),
  );
  // Flags worked out at registration, where the caller has them: judging a long policy takes ms.
  const isExit = (r: (typeof relays)[number]) => r.flags?.includes('Exit') ?? isExitDescriptor(r.descriptor);
  const exits = relays.filter(isExit).length;
  const totalBw = relays.reduce((sum, r) => sum + r.descriptor.bandwidth, 0);
  const stale = now > consensus.freshUntil;
  const rows = relays
    .map((r) => {
      const d = r.descriptor;
      const exit = isExit(r);
      return (
        `<tr data-relay-id="${escapeHtml(d.id)}">` +
        `<td class="nick">${escapeHtml(d.nickname)}</td>` +
        `<td class="id"><code title="${escapeHtml(d.id)}">${escapeHtml(d.id.slice(0, 16))}…</code></td>` +
        `<td class="addr"><code>${escapeHtml(hostPort(d.address, d.port))}</code></td>` +
        `<td class="exit${exit ? ' yes' : ''}" title="${escapeHtml(d.exitPolicy.join(', ') || 'no exit policy')}">` +
        `${exit ? 'exit' : '—'}</td>` +
        `<td class="bw">${escapeHtml(formatBandwidth(d.bandwidth))}</td>` +
        `<td class="uptime" title="listed since ${escapeHtml(iso(r.firstSeen))}">${escapeHtml(formatDuration(now - r.firstSeen))}</td>` +
        `<td class="seen" title="${escapeHtml(iso(r.lastSeen))}">${escapeHtml(formatDuration(now - r.lastSeen))} ago</td>` +
        `<td class="ver">${escapeHtml(d.version)}</td>` +
        '</tr>'
      );
    })
    .join('\n');
  const empty = '<tr><td colspan="8" class="empty">No relays are listed.</td></tr>';
  const settings: string[] = [];
  if (input.relayTtlMs !== undefined)
    settings.push(`relays drop out ${formatDuration(input.relayTtlMs)} after their last refresh`);
  if (input.reachabilityCheck !== undefined)
    settings.push(
      input.reachabilityCheck
        ? 'a relay is listed only once the directory completed a link handshake with it'
        : 'relays are listed without a reachability check',
    );
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="30">
<title>Allium directory: ${relays.length} relays</title>
<style>
:root { color-scheme: light dark; --line: #d8d8d8; --muted: #6b6b6b; --head: #f3f3f3; --ok: #1a7f37; }
@media (prefers-color-scheme: dark) { :root { --line: #3a3a3a; --muted: #9a9a9a; --head: #222; --ok: #4ac26b; } }
body { font: 14px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 72rem; padding: 0 1rem; }
h1 { font-size: 1.4rem; margin-bottom: .2rem; } .sub { color: var(--muted); margin-top: 0; }
section.cards { display: flex; flex-wrap: wrap; gap: 1rem; margin: 1rem 0 1.5rem; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: .6rem 1rem; min-width: 9rem; }
.card .n { font-size: 1.5rem; font-weight: 600; } .card .l { color: var(--muted); }
dl { display: grid; grid-template-columns: max-content auto; gap: .2rem 1rem; }
dt { color: var(--muted); } .rel { color: var(--muted); } .stale { color: #b35900; font-weight: 600; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .35rem .6rem; border-bottom: 1px solid var(--line); white-space: nowrap; }
th { background: var(--head); position: sticky; top: 0; } td.bw, td.uptime, td.seen { text-align: right; }
code { font-size: 12px; } .exit.yes { color: var(--ok); font-weight: 600; } .empty { color: var(--muted); text-align: center; }
footer { color: var(--muted); margin-top: 1.5rem; }
</style>
</head>
<body>
<h1>Allium directory</h1>
<p class="sub">Directory id <code id="directory-id">${escapeHtml(directoryId)}</code></p>
<section class="cards">
<div class="card"><div class="n" id="relay-total">${relays.length}</div><div class="l">relays listed</div></div>
<div class="card"><div class="n" id="exit-total">${exits}</div><div class="l">exits</div></div>
<div class="card"><div class="n">${escapeHtml(formatBandwidth(totalBw))}</div><div class="l">advertised bandwidth</div></div>
</section>
<h2>Consensus</h2>
<dl id="consensus">
<dt>Serial</dt><dd id="serial">${consensus.serial}</dd>
${timeCell('valid-after', 'Valid after', consensus.validAfter, now)}
${timeCell('fresh-until', 'Fresh until', consensus.freshUntil, now)}
${timeCell('valid-until', 'Valid until', consensus.validUntil, now)}
<dt>Relays</dt><dd id="relay-count">${relays.length} relays, ${exits} ${exits === 1 ? 'exit' : 'exits'}${stale ? ' <span class="stale">(rebuilt on the next request)</span>' : ''}</dd>
</dl>
${input.voting ? renderAuthoritiesSection(input.voting) : ''}
<h2>Relays</h2>
<table id="relays">
<thead><tr><th>Nickname</th><th>Id</th><th>Address</th><th>Exit</th><th>Bandwidth</th><th>Uptime</th><th>Last seen</th><th>Version</th></tr></thead>
<tbody>
${relays.length > 0 ? rows : empty}
</tbody>
</table>
<footer>
<p>Generated ${iso(now)}; this page reloads every 30 s.${settings.length > 0 ? ` Policy: ${escapeHtml(settings.join('; '))}.` : ''}</p>
<p>JSON API: <a href="/v1/consensus">/v1/consensus</a> (signed), <a href="/v1/key">/v1/key</a>, <code>/v1/relays/&lt;id&gt;</code>.</p>
</footer>
</body>
</html>
`;
}
