// Implements docs/directory-api.md "GET /" for an authority of a set: the section of the status page
// that says, for the current voting period, whose votes and signatures it holds and why any is missing.
import { escapeHtml } from './status-page.js';
import type { VotingStatus } from './voting.js';

function iso(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export function renderAuthoritiesSection(s: VotingStatus): string {
  const rows = s.authorities
    .map((a) => {
      const differs = [
        a.vote.leftOut
          ? `${a.vote.leftOut} of its relays not in the consensus (fewer than ${s.majority} authorities voted for them)`
          : '',
        a.vote.lacking ? `lacks ${a.vote.lacking} relays the consensus lists` : '',
      ].filter(Boolean);
      const vote = a.vote.held
        ? `held (${a.vote.relays ?? 0} relays)${a.vote.indirect ? `, passed on by another authority (${a.vote.indirect})` : ''}${differs.length ? `; disagrees: ${differs.join('; ')}` : ''}${a.vote.problem ? `; ${a.vote.problem}` : ''}`
        : `missing: ${a.vote.problem ?? 'not fetched yet'}`;
      const sig = a.signature.held
        ? 'held'
        : s.computed
          ? `missing: ${a.signature.problem ?? 'not fetched yet'}`
          : '—';
      return (
        `<tr data-authority-id="${escapeHtml(a.id)}">` +
        `<td class="nick">${escapeHtml(a.nickname)}${a.self ? ' (this one)' : ''}</td>` +
        `<td class="id"><code title="${escapeHtml(a.id)}">${escapeHtml(a.id.slice(0, 16))}…</code></td>` +
        `<td class="url"><code>${escapeHtml(a.url)}</code></td>` +
        `<td class="vote${a.vote.held ? '' : ' missing'}${differs.length ? ' differs' : ''}">${escapeHtml(vote)}</td>` +
        `<td class="signature${a.signature.held ? '' : ' missing'}">${escapeHtml(sig)}</td>` +
        '</tr>'
      );
    })
    .join('\n');
  const computed = s.computed
    ? `computed from ${s.computed.votes} votes: ${s.computed.relays} relays, SHA-256 <code>${escapeHtml(s.computed.digest.slice(0, 16))}…</code>; ${s.signatures} of ${s.configured} signatures (a client needs ${s.majority})`
    : escapeHtml(s.computeProblem ?? 'not computed yet: gathering votes');
  const served =
    s.servedValidAfter === null
      ? 'none yet'
      : s.servedValidAfter === s.validAfter
        ? "this period's"
        : `the one of the period from ${iso(s.servedValidAfter)}`;
  return `<h2>Authorities</h2>
<dl id="voting">
<dt>Voting period</dt><dd id="period">from ${iso(s.validAfter)}</dd>
<dt>Consensus</dt><dd id="voting-consensus">${computed}</dd>
<dt>Served</dt><dd id="served">${escapeHtml(served)}</dd>
</dl>
<table id="authorities">
<thead><tr><th>Authority</th><th>Id</th><th>URL</th><th>Vote</th><th>Signature</th></tr></thead>
<tbody>
${rows}
</tbody>
</table>`;
}
