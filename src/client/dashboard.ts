// Implements docs/client.md#dashboard: a page on localhost showing the client's circuits as paths
// (entry -> middle -> exit), their streams and bytes, and a "new circuits" button.
// Only for the machine's own user: it refuses other Host headers (DNS rebinding) and POSTs without
// the X-Allium header (cross-site forms cannot set it).
import { AlliumError } from '../errors.js';
import { type Logger, silentLogger } from '../log.js';
import {
  hostForUrl,
  type LocalRequest,
  type LocalResponse,
  serveLocalHttp,
} from '../net/local-http-server.js';
import type { ClientMonitor } from './monitor.js';

export class DashboardError extends AlliumError {}

export interface Dashboard {
  url: string;
  port: number;
  close(): Promise<void>;
}

const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

export function startDashboard(opts: {
  host: string;
  port: number;
  monitor: ClientMonitor;
  /** Extra facts shown at the top, e.g. the proxy addresses. */
  info?: () => Record<string, string>;
  logger?: Logger;
}): Promise<Dashboard> {
  const log = opts.logger ?? silentLogger;
  const allowedHost = (h: string | string[] | undefined, port: number) => {
    if (typeof h !== 'string') return false;
    const names = ['localhost', '127.0.0.1', '[::1]', hostForUrl(opts.host)];
    return names.some((n) => h === `${n}:${port}`);
  };
  const text = (status: number, body: string): LocalResponse => ({
    status,
    type: 'text/plain; charset=utf-8',
    body,
  });
  const json = (status: number, value: unknown): LocalResponse => ({
    status,
    type: 'application/json',
    body: JSON.stringify(value),
  });
  const handle = async (req: LocalRequest): Promise<LocalResponse> => {
    const { method, path } = req;
    if (!allowedHost(req.headers.host, req.port)) {
      return text(421, 'the dashboard answers only at its own localhost address\n');
    }
    if (method === 'GET' && path === '/')
      return { status: 200, type: 'text/html; charset=utf-8', body: PAGE };
    if (method === 'GET' && path === '/dashboard.js')
      return { status: 200, type: 'text/javascript; charset=utf-8', body: SCRIPT };
    if (method === 'GET' && path === '/dashboard.css')
      return { status: 200, type: 'text/css; charset=utf-8', body: STYLE };
    if (method === 'GET' && path === '/api/circuits') {
      return json(200, {
        circuits: opts.monitor.circuits(),
        bytes: opts.monitor.bytes(),
        guards: opts.monitor.guards(),
        info: opts.info?.() ?? {},
      });
    }
    if (method === 'POST' && path === '/api/new-circuits') {
      if (req.headers['x-allium'] !== '1') return text(403, 'missing X-Allium: 1\n');
      try {
        await opts.monitor.newCircuits();
        return json(200, { circuits: opts.monitor.circuits() });
      } catch (err) {
        log.warn({ err: (err as Error).message }, 'new circuits: building a fresh circuit failed');
        return json(503, { error: (err as Error).message });
      }
    }
    return text(404, 'not found\n');
  };
  return serveLocalHttp({
    host: opts.host,
    port: opts.port,
    what: 'the dashboard',
    headers: {
      'cache-control': 'no-store',
      'content-security-policy': CSP,
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
    },
    handle,
    onError: (err) => log.warn({ err: err.message }, 'dashboard request failed'),
  }).catch((err: Error) => {
    throw new DashboardError(
      'ALLIUM_DASHBOARD_LISTEN',
      `${err.message} (pick another --dashboard HOST:PORT)`,
    );
  });
}

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Allium client</title>
<link rel="stylesheet" href="/dashboard.css">
<script src="/dashboard.js" defer></script>
</head>
<body>
<header>
  <h1>Allium client</h1>
  <button id="new-circuits" type="button">New circuits</button>
  <span id="status" role="status"></span>
</header>
<p id="summary"></p>
<dl id="info"></dl>
<section>
  <h2>Entry guards</h2>
  <p id="no-guards">No circuit has been built through a guard yet.</p>
  <ul id="guards"></ul>
</section>
<section>
  <h2>Circuits</h2>
  <p id="empty" hidden>No circuits yet: they are built when the first request arrives.</p>
  <ol id="circuits"></ol>
</section>
</body>
</html>
`;

const STYLE = `
body { font: 15px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #222; background: #fafafa; }
header { display: flex; gap: 1rem; align-items: center; }
h1 { font-size: 1.4rem; margin: 0; }
button { font: inherit; padding: .35rem .9rem; border-radius: 6px; border: 1px solid #6a4; background: #8c5; cursor: pointer; }
#circuits { list-style: none; padding: 0; }
.circuit { background: #fff; border: 1px solid #ddd; border-radius: 8px; padding: .6rem .9rem; margin: .6rem 0; }
.circuit.retired { opacity: .6; }
.path { display: flex; align-items: center; gap: .4rem; flex-wrap: wrap; font-weight: 600; }
.hop { padding: .15rem .5rem; border-radius: 5px; background: #eef; }
.hop.entry { background: #def; } .hop.exit { background: #fde; }
.arrow { color: #888; }
#guards { padding-left: 1.2rem; } .guard.warn, .guard.drop { color: #a22; font-weight: 600; }
.meta, .streams { color: #555; font-size: .9rem; }
.streams { margin: .3rem 0 0 1rem; padding: 0; }
dl#info { display: grid; grid-template-columns: max-content auto; gap: .1rem .8rem; font-size: .9rem; }
dt { color: #666; } dd { margin: 0; font-family: ui-monospace, monospace; }
`;

const SCRIPT = `'use strict';
const $ = (id) => document.getElementById(id);
function el(tag, cls, text) { const e = document.createElement(tag); if (cls) e.className = cls; if (text !== undefined) e.textContent = text; return e; }
function size(n) { const u = ['B','KiB','MiB','GiB']; let i = 0; while (n >= 1024 && i < 3) { n /= 1024; i++; } return (i ? n.toFixed(1) : n) + ' ' + u[i]; }
function render(data) {
  const list = $('circuits');
  list.replaceChildren();
  $('empty').hidden = data.circuits.length > 0;
  $('summary').textContent = data.circuits.length + ' circuit(s); ' + size(data.bytes.in) + ' received, ' + size(data.bytes.out) + ' sent through the network';
  const info = $('info'); info.replaceChildren();
  for (const [k, v] of Object.entries(data.info)) { info.append(el('dt', '', k), el('dd', '', v)); }
  const guards = $('guards'); guards.replaceChildren();
  $('no-guards').hidden = (data.guards || []).length > 0;
  for (const g of data.guards || []) {
    const why = { ok: '', notice: ' (low success rate)', warn: ' (most circuits through it fail)', drop: ' (dropped: path bias)' }[g.verdict] || '';
    const li = el('li', 'guard ' + g.verdict, g.nickname + ': ' + g.successes + ' of ' + g.attempts + ' circuits built' + why);
    li.title = g.id;
    guards.append(li);
  }
  for (const c of data.circuits) {
    const li = el('li', 'circuit' + (c.purpose === 'retired' ? ' retired' : ''));
    li.dataset.serial = String(c.serial);
    const path = el('div', 'path');
    c.path.forEach((h, i) => {
      if (i) path.append(el('span', 'arrow', '\\u2192'));
      const hop = el('span', 'hop ' + h.role, h.nickname);
      hop.title = h.role + ' ' + h.id;
      path.append(hop);
    });
    li.append(path);
    li.append(el('div', 'meta', 'circuit #' + c.serial + ' \\u00b7 ' + c.purpose + ' \\u00b7 ' + c.ageSeconds + ' s old \\u00b7 ' + c.streams.length + ' open stream(s), ' + c.streamsOpened + ' in all \\u00b7 ' + size(c.bytesIn) + ' in, ' + size(c.bytesOut) + ' out'));
    if (c.streams.length) {
      const ul = el('ul', 'streams');
      for (const s of c.streams) ul.append(el('li', 'stream', s.target + ': ' + size(s.bytesIn) + ' in, ' + size(s.bytesOut) + ' out, ' + s.ageSeconds + ' s'));
      li.append(ul);
    }
    list.append(li);
  }
  document.body.dataset.loaded = '1';
}
async function refresh() {
  try {
    const r = await fetch('/api/circuits', { cache: 'no-store' });
    render(await r.json());
  } catch (e) { $('status').textContent = 'cannot reach the client: ' + e.message; }
}
$('new-circuits').addEventListener('click', async () => {
  const b = $('new-circuits');
  b.disabled = true; $('status').textContent = 'building new circuits...';
  try {
    const r = await fetch('/api/new-circuits', { method: 'POST', headers: { 'X-Allium': '1' } });
    $('status').textContent = r.ok ? 'new circuits ready' : 'failed: ' + (await r.text());
  } finally { b.disabled = false; await refresh(); }
});
refresh();
setInterval(refresh, 1000);
`;
