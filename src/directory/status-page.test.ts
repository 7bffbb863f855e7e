import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { makeTestRelay } from '../../test/helpers/relay-fixtures.js';
import { signDescriptor } from '../core/documents.js';
import type { Consensus } from '../wire/directory-docs.js';
import { escapeHtml, formatBandwidth, formatDuration, renderStatusPage } from './status-page.js';

describe('status page', () => {
  it('escapes HTML metacharacters', () => {
    assert.equal(
      escapeHtml(`<a href="x">'&'</a>`),
      '&#60;a href=&#34;x&#34;&#62;&#39;&#38;&#39;&#60;/a&#62;',
    );
  });

  it('formats durations and bandwidth', () => {
    assert.equal(formatDuration(42_000), '42s');
    assert.equal(formatDuration(125_000), '2m 05s');
    assert.equal(formatDuration(3 * 3600_000 + 5 * 60_000), '3h 05m');
    assert.equal(formatDuration(50 * 3600_000), '2d 2h');
    assert.equal(formatDuration(-5), '0s');
    assert.equal(formatBandwidth(512), '512 B/s');
    assert.equal(formatBandwidth(1536), '1.5 KiB/s');
    assert.equal(formatBandwidth(10 * 1024 * 1024), '10.0 MiB/s');
  });

  it('lists each relay with exit, address, uptime and last seen, and the consensus times', () => {
    const now = Date.UTC(2025, 0, 1, 12, 0, 0);
    const exit = makeTestRelay({ nickname: 'exitA' });
    const mid = makeTestRelay({ nickname: 'midB', exitPolicy: [], address: '2001:db8::1', port: 443 });
    const records = [exit, mid].map((r) => ({
      descriptor: r.descriptor,
      envelope: signDescriptor(r.identity, r.descriptor),
      firstSeen: now - 3600_000,
      lastSeen: now - 30_000,
    }));
    const consensus: Consensus = {
      network: 'allium',
      serial: 77,
      validAfter: now,
      freshUntil: now + 60_000,
      validUntil: now + 3 * 3600_000,
      directoryKey: exit.descriptor.identityKey,
      relays: [],
    };
    const html = renderStatusPage({ relays: records, consensus, directoryId: 'cafe', now });
    assert.match(html, /<dd id="serial">77<\/dd>/);
    assert.match(
      html,
      /<dd id="valid-until"><time datetime="2025-01-01T15:00:00Z">2025-01-01T15:00:00Z<\/time> <span class="rel">\(in 3h 00m\)<\/span><\/dd>/,
    );
    assert.match(html, /<dd id="valid-after">.*\(0s ago\)/);
    assert.match(html, /2 relays, 1 exit</);
    // Sorted by nickname for a person scanning the table.
    assert.ok(html.indexOf('exitA') < html.indexOf('midB'));
    const rowOf = (id: string) => html.split('\n').find((l) => l.includes(`data-relay-id="${id}"`)) ?? '';
    const exitRow = rowOf(exit.descriptor.id);
    assert.match(exitRow, /exitA/);
    assert.match(exitRow, /<td class="exit yes" title="accept 127\.0\.0\.0\/8:\*, reject \*:\*">exit<\/td>/);
    assert.match(exitRow, /127\.0\.0\.1:9001/);
    assert.match(exitRow, /<td class="uptime" title="listed since 2025-01-01T11:00:00Z">1h 00m<\/td>/);
    assert.match(exitRow, /30s ago/);
    const midRow = rowOf(mid.descriptor.id);
    assert.match(midRow, /<td class="exit" title="no exit policy">—<\/td>/);
    assert.match(midRow, /\[2001:db8::1\]:443/);
  });

  it('says so when no relays are listed', () => {
    const html = renderStatusPage({
      relays: [],
      consensus: {
        network: 'allium',
        serial: 1,
        validAfter: 0,
        freshUntil: 1,
        validUntil: 2,
        directoryKey: '',
        relays: [],
      },
      directoryId: 'x',
      now: 0,
    });
    assert.match(html, /No relays are listed/);
  });
});
