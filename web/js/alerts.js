// alerts — what the Alerts view and a miner's page share: the rule names
// (docs/alerts.md), an alert's table row, and acknowledging one.

import { post } from './api.js';
import * as f from './fmt.js';
import { notify } from './ui.js';

export const RULES = ['miner_offline', 'chip_temp_high', 'hashrate_low', 'fan_stopped',
	'chain_dead', 'red_chips', 'hw_errors_high', 'preset_conflict', 'action_failed',
	'power_over_available', 'feed_stale', 'power_fallback', 'daemon_missing', 'bus_loss',
	'db_write_failed', 'disk_low'];

export const ruleLabel = (r) => String(r || '').replace(/_/g, ' ');

// The subject: a miner links to its page; farm and suite subjects as they are.
export function subjectHtml(a) {
	if (a.mac)
		return `<a class="mono" href="#/miners/${encodeURIComponent(a.mac.toLowerCase())}">${f.esc(a.mac)}</a>`;
	return `<span class="mono">${f.esc(a.subject || '–')}</span>`;
}

function stateHtml(a) {
	const firing = a.state === 'firing';
	const tags = [`<span class="pill pill-${firing ? 'bad' : 'ok'}">${f.esc(a.state)}</span>`];
	if (a.silenced)
		tags.push('<span class="pill pill-idle" title="covered by a silence: not notified">silenced</span>');
	return tags.join(' ');
}

function ackHtml(a) {
	if (a.acked)
		return `<span class="muted small" title="${f.esc(f.when(a.acked))}">acked by ${f.esc(a.acked_by || '?')}</span>`;
	if (a.state !== 'firing')
		return '<span class="muted">–</span>';
	return `<button type="button" class="small-btn" data-ack="${f.esc(a.id)}" data-needs="operator">Ack</button>`;
}

// One row: started, ended (history only), rule, subject, summary, state,
// acknowledgement. cols: { ended, subject } to show those columns.
export function alertRow(a, cols = {}) {
	const now = Date.now();
	return `<tr data-alert="${f.esc(a.id)}" data-rule="${f.esc(a.rule)}" data-state="${f.esc(a.state)}">
		<td title="${f.esc(f.when(a.started))}">${f.esc(f.ago(a.started, now))}</td>
		${cols.ended ? `<td title="${f.esc(f.when(a.ended))}">${a.ended ? f.esc(f.duration((a.ended - a.started) / 1000)) : '–'}</td>` : ''}
		<td>${f.esc(ruleLabel(a.rule))}</td>
		${cols.subject === false ? '' : `<td>${subjectHtml(a)}</td>`}
		<td class="summary">${f.esc(a.summary || '')}</td>
		<td>${stateHtml(a)}</td>
		<td class="ctl">${ackHtml(a)}</td></tr>`;
}

// Click handler for a table of alert rows: "Ack" acknowledges (audited
// with the token's actor) and calls done() to refresh.
export function onAck(table, done) {
	table.addEventListener('click', async (e) => {
		const b = e.target.closest('button[data-ack]');
		if (!b)
			return;
		b.disabled = true;
		try {
			await post(`/api/alerts/${encodeURIComponent(b.dataset.ack)}/ack`, {});
			notify(`Alert ${b.dataset.ack} acknowledged`);
			done();
		} catch (err) {
			b.disabled = false;
			notify(`Not acknowledged: ${err.message}`, 'error');
		}
	});
}
