// The directory's status page as a person sees it: a testnet of real processes, the page loaded in headless
// Chromium, every relay read back from the DOM, and a screenshot kept in test-artifacts/.
import assert from 'node:assert/strict';
import { mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Testnet } from '../src/testnet/testnet.js';
import { CHROMIUM, missingChromium, skipUnlessAvailable } from './helpers/requirements.js';

/** The little of the DOM the page function uses (the project compiles without the DOM lib). */
interface El {
  getAttribute(name: string): string | null;
  querySelector(sel: string): El | null;
  textContent: string | null;
}
const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/', import.meta.url));
const skip = skipUnlessAvailable(missingChromium());

describe('the directory status page in headless Chromium', { skip }, () => {
  let tn: Testnet;
  // biome-ignore lint/suspicious/noExplicitAny: playwright-core is loaded only when Chromium exists
  let browser: any;

  before(async () => {
    tn = await Testnet.start({ relays: 5, exits: 2, client: false });
    const { chromium } = await import('playwright-core');
    // Root in a container has no user namespaces for Chromium's sandbox; the page is our own.
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  });
  after(async () => {
    await browser?.close();
    await tn?.stop();
  });

  test('lists every relay of the running testnet, with the consensus times; a screenshot is saved', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    const res = await page.goto(tn.directoryUrl, { waitUntil: 'load' });
    assert.equal(res?.status(), 200);
    assert.match(await page.title(), /^Allium directory: 5 relays$/);

    const rows: Record<string, string>[] = await page.$$eval('#relays tbody tr[data-relay-id]', (trs: El[]) =>
      trs.map((tr) => {
        const cell = (c: string) => tr.querySelector(`td.${c}`)?.textContent?.trim() ?? '';
        return {
          id: tr.getAttribute('data-relay-id') ?? '',
          fullId: tr.querySelector('td.id code')?.getAttribute('title') ?? '',
          nick: cell('nick'),
          addr: cell('addr'),
          exit: cell('exit'),
          bw: cell('bw'),
          uptime: cell('uptime'),
          seen: cell('seen'),
        };
      }),
    );
    assert.equal(rows.length, tn.relays.length);
    for (const r of tn.relays) {
      const row = rows.find((x) => x.id === r.ready.id);
      assert.ok(row, `${r.ready.nickname} (${r.ready.id}) is not on the page`);
      assert.equal(row.fullId, r.ready.id);
      assert.equal(row.nick, r.ready.nickname);
      assert.equal(row.addr, `${r.ready.address}:${r.ready.port}`);
      assert.equal(row.exit, r.ready.exit === '1' ? 'exit' : '—');
      assert.match(row.bw, /^\d+(\.\d)? (B|KiB|MiB|GiB)\/s$/);
      assert.match(row.uptime, /^\d+(s|m \d\ds)$/);
      assert.match(row.seen, /^\d+s ago$/);
    }
    // Sorted by nickname, as a person scans it.
    assert.deepEqual(
      rows.map((r) => r.nick),
      [...rows.map((r) => r.nick)].sort(),
    );

    const text = async (sel: string) => ((await page.textContent(sel)) ?? '').trim();
    assert.match(await text('#serial'), /^\d+$/);
    const times: Record<string, number> = {};
    for (const id of ['valid-after', 'fresh-until', 'valid-until']) {
      const dt = await page.getAttribute(`#${id} time`, 'datetime');
      times[id] = Date.parse(dt ?? '');
      assert.ok(Number.isFinite(times[id]), `#${id} has no time`);
    }
    assert.ok(times['valid-after'] < times['fresh-until'] && times['fresh-until'] < times['valid-until']);
    assert.equal(await text('#relay-count'), '5 relays, 2 exits');

    mkdirSync(ARTIFACTS, { recursive: true });
    const shot = join(ARTIFACTS, 'directory-status-page.png');
    await page.screenshot({ path: shot, fullPage: true });
    assert.ok(statSync(shot).size > 10_000, 'the screenshot is not empty');
    await page.close();
  });
});
