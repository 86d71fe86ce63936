// Alerts (docs/alerts.md): what fires now (acknowledge it), silences
// (create one for a rule, a miner or both; delete one), the history of
// resolved alerts page by page, and the notifications' delivery state.

import { get, post, query, request } from '../api.js';
import * as f from '../fmt.js';
import { RULES, alertRow, onAck, ruleLabel } from '../alerts.js';
import { confirmAction, emptyRow, notify, poller } from '../ui.js';

const REFRESH_MS = 5000;
const FIRING_MAX = 500;
const HISTORY_PAGE = 50;
const NOTES_SHOWN = 50;
const DURATIONS = [['3600', '1 hour'], ['7200', '2 hours'], ['14400', '4 hours'],
	['28800', '8 hours'], ['86400', '1 day'], ['604800', '1 week']];

function silenceRows(list, now) {
	if (!list.length)
		return emptyRow(6, 'No silence in force.');
	return list.map((s) => `<tr data-silence="${f.esc(s.id)}">
		<td>${s.rule ? f.esc(ruleLabel(s.rule)) : '<span class="muted">every rule</span>'}</td>
		<td>${s.miner ? `<a class="mono" href="#/miners/${encodeURIComponent(s.miner.toLowerCase())}">${f.esc(s.miner)}</a>` : '<span class="muted">every miner</span>'}</td>
		<td title="${f.esc(f.when(s.ends))}">${f.esc(f.when(s.ends))}<div class="muted small">${s.ends > now ? `in ${f.esc(f.duration((s.ends - now) / 1000))}` : 'ended'}</div></td>
		<td>${f.esc(s.created_by || '')}<div class="muted small">${f.esc(f.ago(s.created, now))}</div></td>
		<td>${f.esc(s.comment || '')}</td>
		<td class="ctl"><button type="button" class="small-btn" data-needs="operator" data-unsilence="${f.esc(s.id)}">Delete</button></td></tr>`).join('');
}

function noteRows(list, now) {
	if (!list.length)
		return emptyRow(8, 'No notification sent yet.');
	return list.map((n) => {
		const bad = n.status === 'failed' || n.status === 'given_up' || (n.status === 'pending' && n.attempts > 0);
		return `<tr data-status="${f.esc(n.status)}" class="${bad ? 'warnrow' : ''}">
			<td title="${f.esc(f.when(n.created))}">${f.esc(f.ago(n.created, now))}</td>
			<td>${f.esc(ruleLabel(n.rule))}</td><td>${f.esc(n.state)}</td>
			<td>${f.esc(n.channel)}</td>
			<td><span class="pill pill-${n.status === 'delivered' ? 'ok' : bad ? 'bad' : 'warn'}">${f.esc(n.status)}</span></td>
			<td class="num">${f.num(n.attempts)}</td>
			<td title="${f.esc(f.when(n.delivered || n.next_attempt))}">${n.delivered ? f.esc(f.ago(n.delivered, now))
				: n.next_attempt ? `next ${f.esc(f.when(n.next_attempt).slice(11))}` : '–'}</td>
			<td class="small">${f.esc(n.last_error || '')}<div class="muted mono small">${f.esc(n.key || '')}</div></td></tr>`;
	}).join('');
}

export function mount(el) {
	el.innerHTML = `<h1>Alerts</h1>
	<section class="tiles alert-tiles" aria-label="Firing by rule"></section>
	<section class="card"><h2 id="firing-h">Firing</h2>
		<div class="table-wrap"><table class="alerts firing" aria-labelledby="firing-h"><thead><tr>
		<th scope="col">Started</th><th scope="col">Rule</th><th scope="col">Subject</th><th scope="col">Summary</th>
		<th scope="col">State</th><th scope="col"><span class="visually-hidden">Acknowledge</span></th></tr></thead>
		<tbody>${emptyRow(6, 'Loading…')}</tbody></table></div></section>
	<div class="cols">
		<section class="card silence-new" aria-labelledby="silence-h" data-needs="operator"><h2 id="silence-h">Silence</h2>
			<form class="silence-form" autocomplete="off">
				<label>Rule <select name="rule"><option value="">every rule</option>
					${RULES.map((r) => `<option value="${r}">${f.esc(ruleLabel(r))}</option>`).join('')}</select></label>
				<label>Miner <input name="miner" placeholder="MAC (empty: every miner)" spellcheck="false"></label>
				<label>For <select name="seconds">${DURATIONS.map(([v, l]) =>
					`<option value="${v}" ${v === '7200' ? 'selected' : ''}>${l}</option>`).join('')}</select></label>
				<label>Comment <input name="comment" maxlength="200"></label>
				<button type="submit">Silence</button>
				<p class="form-error" role="alert"></p>
			</form>
			<p class="muted small">Silenced alerts are still recorded and shown; they are not notified.
				Give a rule, a miner or both.</p>
		</section>
		<section class="card grow"><h2 id="silences-h">Silences</h2>
			<div class="table-wrap"><table class="silences" aria-labelledby="silences-h"><thead><tr>
			<th scope="col">Rule</th><th scope="col">Miner</th><th scope="col">Until</th><th scope="col">By</th>
			<th scope="col">Comment</th><th scope="col"><span class="visually-hidden">Delete</span></th></tr></thead>
			<tbody>${emptyRow(6, 'Loading…')}</tbody></table></div></section>
	</div>
	<section class="card"><h2 id="history-h">History</h2>
		<div class="table-wrap"><table class="alerts history" aria-labelledby="history-h"><thead><tr>
		<th scope="col">Started</th><th scope="col">Lasted</th><th scope="col">Rule</th><th scope="col">Subject</th>
		<th scope="col">Summary</th><th scope="col">State</th><th scope="col">Acknowledged</th></tr></thead>
		<tbody>${emptyRow(7, 'Loading…')}</tbody></table></div>
		<button type="button" class="small-btn" data-more="history" hidden>Older…</button></section>
	<section class="card"><h2 id="notes-h">Notifications</h2>
		<div class="table-wrap"><table class="notifications" aria-labelledby="notes-h"><thead><tr>
		<th scope="col">Created</th><th scope="col">Rule</th><th scope="col">State</th><th scope="col">Channel</th>
		<th scope="col">Delivery</th><th scope="col" class="num">Attempts</th><th scope="col">Delivered / next</th>
		<th scope="col">Last error · key</th></tr></thead>
		<tbody>${emptyRow(8, 'Loading…')}</tbody></table></div></section>`;
	const $ = (s) => el.querySelector(s);
	let history = [], historyNext = null, historyLoaded = false, olderPages = 0;

	async function loadFiring() {
		const d = await get('/api/alerts' + query({ state: 'firing', limit: FIRING_MAX }));
		const by = Object.entries(d.firing_by_rule || {}).filter(([, n]) => n > 0);
		$('.alert-tiles').innerHTML = `<div class="tile${d.firing ? ' tile-bad' : ''}"><div class="tile-label">Firing</div>
			<div class="tile-value" data-firing="${f.num(d.firing)}">${f.num(d.firing)}</div><div class="tile-sub">alerts now</div></div>` +
			by.map(([r, n]) => `<div class="tile tile-bad"><div class="tile-label">${f.esc(ruleLabel(r))}</div>
			<div class="tile-value">${f.num(n)}</div></div>`).join('');
		$('table.firing tbody').innerHTML = d.alerts.length
			? d.alerts.map((a) => alertRow(a)).join('') : emptyRow(6, 'Nothing is firing.');
		el.dataset.loaded = 'true';
	}

	async function loadSilences() {
		const d = await get('/api/silences');
		$('table.silences tbody').innerHTML = silenceRows(d.silences, Date.now());
	}

	// The newest page is re-read each round; older pages stay as loaded.
	async function loadHistory(older) {
		const d = await get('/api/alerts' + query({ state: 'resolved', limit: HISTORY_PAGE,
			before: older ? historyNext : undefined }));
		if (older) {
			history = history.concat(d.alerts);
		} else {
			const seen = new Set(d.alerts.map((a) => a.id));
			history = d.alerts.concat(historyLoaded ? history.filter((a) => !seen.has(a.id) &&
				a.id < Math.min(...seen)) : []);
		}
		if (older || !olderPages)
			historyNext = d.next_before;
		if (older)
			olderPages++;
		historyLoaded = true;
		$('table.history tbody').innerHTML = history.length
			? history.map((a) => alertRow(a, { ended: true })).join('') : emptyRow(7, 'No alert resolved yet.');
		$('[data-more=history]').hidden = !historyNext;
	}

	async function loadNotes() {
		const tb = $('table.notifications tbody');
		try {
			const d = await get('/api/notifications' + query({ limit: NOTES_SHOWN }));
			tb.innerHTML = noteRows(d.notifications, Date.now());
		} catch (e) {
			if (e.kind === 'auth')
				throw e;
			tb.innerHTML = emptyRow(8, `Delivery state unavailable: ${e.message}`);
		}
	}

	async function refresh() {
		await Promise.all([loadFiring(), loadSilences(), loadHistory(false), loadNotes()]);
	}

	const poll = poller(refresh, REFRESH_MS);
	onAck($('table.firing'), () => poll.now());
	$('[data-more=history]').addEventListener('click', async (e) => {
		e.currentTarget.disabled = true;
		try {
			await loadHistory(true);
		} catch (err) {
			notify(`Cannot load older alerts: ${err.message}`, 'error');
		} finally {
			e.currentTarget.disabled = false;
		}
	});

	const form = $('form.silence-form');
	form.addEventListener('submit', async (e) => {
		e.preventDefault();
		const err = form.querySelector('.form-error');
		const rule = form.elements.rule.value, miner = form.elements.miner.value.trim();
		const comment = form.elements.comment.value.trim();
		if (!rule && !miner) {
			err.textContent = 'Choose a rule or type a miner (or both).';
			return;
		}
		const body = { seconds: +form.elements.seconds.value };
		if (rule)
			body.rule = rule;
		if (miner)
			body.miner = miner;
		if (comment)
			body.comment = comment;
		const btn = form.querySelector('button[type=submit]');
		btn.disabled = true;
		err.textContent = '';
		try {
			const r = await post('/api/silences', body);
			notify(`Silenced until ${f.when(r.silence?.ends)}`);
			form.elements.miner.value = '';
			form.elements.comment.value = '';
			poll.now();
		} catch (e2) {
			err.textContent = `Not silenced: ${e2.message}`;
		} finally {
			btn.disabled = false;
		}
	});
	$('table.silences').addEventListener('click', async (e) => {
		const b = e.target.closest('button[data-unsilence]');
		if (!b)
			return;
		const id = b.dataset.unsilence;
		if (!await confirmAction('Delete this silence?',
			'Alerts it covers are notified again from their next change.', 'Delete silence'))
			return;
		try {
			await request('DELETE', `/api/silences/${encodeURIComponent(id)}`);
			notify(`Silence ${id} deleted`);
			poll.now();
		} catch (err) {
			notify(`Not deleted: ${err.message}`, 'error');
		}
	});
	return { unmount: () => poll.stop() };
}
