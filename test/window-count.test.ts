// An exit counting the circuits on a client's guard link from the windows of their circuit SENDMEs
// (protocol §5.1): with 1, 2 and 8 circuits downloading at once through one entry, the exit reads the
// same windows in every circuit (the client holds SENDMEs back instead of naming its share).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { CircuitWindow } from '../src/core/flow-control.js';
import { DEFAULT_RECEIVE_BUDGET_CELLS } from '../src/core/receive-budget.js';
import { streamGet } from '../src/net/http-fetch.js';
import { CIRC_SENDME_INCREMENT, CIRC_WINDOW_START } from '../src/wire/constants.js';
import type { CircuitSendme } from '../src/wire/relay-messages.js';
import { type InProcessNetwork, startNetwork } from './helpers/network.js';
import { makeFiles, sha256, startHttpServer, type WebServer } from './helpers/web.js';

let net: InProcessNetwork;
let web: WebServer;
const files = makeFiles();
/** What every circuit window of this process read in circuit SENDMEs: in a download, only the exit's do. */
const seen = new Map<CircuitWindow, number[]>();
const onSendme = CircuitWindow.prototype.onSendme;

before(async () => {
  web = await startHttpServer(files);
  net = await startNetwork({ relays: 3, exits: 1 });
  CircuitWindow.prototype.onSendme = function (this: CircuitWindow, m: CircuitSendme) {
    const list = seen.get(this) ?? [];
    list.push(m.window);
    seen.set(this, list);
    onSendme.call(this, m);
  };
});
after(async () => {
  CircuitWindow.prototype.onSendme = onSendme;
  await net?.stop();
  await web?.close();
});

/** `n` downloads at once, each on a circuit of its own through the same entry, middle and exit. */
async function windowsSeenByExit(n: number): Promise<number[][]> {
  const c = net.client.currentConsensus!;
  const path = [2, 1, 0].map((i) => c.relays.find((r) => r.id === net.relays[i].idHex)!);
  const circuits = await Promise.all(Array.from({ length: n }, () => net.client.buildCircuit({ path })));
  seen.clear();
  const digests = await Promise.all(
    circuits.map(async (circ) => {
      const res = await streamGet(`${web.url}/random10m`, { connect: (h, p) => circ.openStream(h, p) });
      const chunks: Buffer[] = [];
      for await (const chunk of res) chunks.push(chunk as Buffer);
      return sha256(Buffer.concat(chunks));
    }),
  );
  for (const d of digests) assert.equal(d, sha256(files['/random10m']));
  for (const circ of circuits) circ.destroy(0, 'done');
  return [...seen.values()];
}

test('the exit reads the same circuit windows whether 1, 2 or 8 circuits share the guard link', async () => {
  // The first windows grow by one increment a SENDME up to the budget, then stay at least there.
  const ramp = [];
  for (
    let w = CIRC_WINDOW_START + CIRC_SENDME_INCREMENT;
    w <= DEFAULT_RECEIVE_BUDGET_CELLS;
    w += CIRC_SENDME_INCREMENT
  )
    ramp.push(w);
  const least = new Map<number, number>();
  for (const n of [1, 2, 8]) {
    const circuits = await windowsSeenByExit(n);
    assert.equal(circuits.length, n, 'one SENDME-reading window per circuit, all at the exit');
    for (const windows of circuits) {
      assert.ok(windows.length > ramp.length, `${n}: a 10 MiB download acknowledges more than the ramp`);
      assert.deepEqual(
        windows.slice(0, ramp.length),
        ramp,
        `a circuit among ${n} starts as every circuit does`,
      );
      const rest = windows.slice(ramp.length);
      least.set(n, Math.min(least.get(n) ?? Number.POSITIVE_INFINITY, ...rest));
    }
  }
  // A window of budget / count (64 cells for eight) would give the count away; none is under the budget.
  for (const [n, w] of least) assert.ok(w >= DEFAULT_RECEIVE_BUDGET_CELLS, `${n} circuits: a window of ${w}`);
});
