// The miners view: the fleet over time (fleet.js), then the miners table:
// server-side paging, sorting and filtering
// (GET /api/miners), refreshed in place every few seconds. The query lives
// in the address (#/miners?state=mining&sort=hashrate&order=desc) so a
// reload or a shared link shows the same page.
//
// Bulk actions: miners are selected one by one (a list of ids, across
// pages), or all that match the filter (the filter itself goes to
// POST /api/actions, which the server applies when the action is made);
// the answer is summed up (accepted, refused and why), and the accepted
// actions are followed until each has reached a final state.

import { get, query } from '../api.js';
import * as f from '../fmt.js';
import * as P from '../presets.js';
import { bulkAction, setManaged, setUnlockPass } from '../actions.js';
import { askPassword, confirmAction, emptyRow, exportCsv, notify, poller } from '../ui.js';
import { modelList } from './models.js';
import { mountFleetChart } from '../fleet.js';

const REFRESH_MS = 5000;
const TRACK_MS = 2000;
const TRACK_MAX = 1000;          // actions followed after one bulk request (GET /api/actions' limit)
const LISTED_MAX = 200;          // rows in the summary's lists
const PAGE_SIZES = [25, 50, 100, 250, 500];

// [key for ?sort=, header, class]; key null = not sortable.
const COLUMNS = [
	['select', ''],
	['mac', 'Miner'],
	['ip', 'IP'],
	['model', 'Model'],
	['state', 'Status'],
	['hashrate', 'Hashrate', 'num'],
	['power', 'Power', 'num'],
	['temp', 'Chip temp', 'num'],
	['fan', 'Fans', 'num'],
	['preset', 'Preset'],
	['last_seen', 'Last seen'],
	['last_error', 'Last error'],
	['managed', 'Managed'],
	[null, 'Unlock pass'],
];

const FILTERS = ['q', 'state', 'model', 'online', 'managed', 'conflict', 'alerting'];
const BOOL_FILTERS = ['online', 'managed', 'conflict', 'alerting'];

function readParams(params) {
	const p = {};
	for (const k of [...FILTERS, 'sort', 'order'])
		if (params.get(k))
			p[k] = params.get(k);
	p.limit = PAGE_SIZES.includes(+params.get('limit')) ? +params.get('limit') : 100;
	p.offset = Math.max(0, parseInt(params.get('offset') || '0', 10) || 0);
	return p;
}

function ipCell(m) {
	if (m.online && m.ip)
		return `<span class="mono">${f.esc(m.ip)}</span>`;
	if (m.last_ip)
		return `<span class="mono muted" title="last known address; the miner is offline">${f.esc(m.last_ip)}</span>`;
	return '<span class="muted">–</span>';
}

function powerCell(s) {
	if (!s || !f.isNum(s.power_w))
		return '–';
	if (s.power_metered === false)
		return `<span class="estimate" title="estimated from the running preset: this miner does not meter its power">≈${f.power(s.power_w)} <abbr title="estimated">est.</abbr></span>`;
	return f.power(s.power_w);
}

function errorCell(m) {
	const e = m.last_error;
	if (!e || !e.message)
		return '<span class="muted">–</span>';
	const t = `${e.op || ''} ${e.kind || ''}: ${e.message} (${f.when(e.ts)})`;
	const cls = f.inError(m) ? 'err' : 'err old';
	return `<span class="${cls}" title="${f.esc(t)}">${f.esc(e.kind || 'error')}: ${f.esc(e.message)}</span>
		<span class="muted small">${f.esc(f.ago(e.ts))}</span>`;
}

// An offline miner hashes nothing: its last figures only in the tooltips.
function offlineCells(s) {
	const last = (v) => `<td class="num muted" title="offline; last reported ${f.esc(v)}">–</td>`;
	return last(f.hashrate(s?.hr_realtime_ghs)) + last(f.power(s?.power_w)) +
		last(f.temp(s?.chip_temp_max)) + last(f.fans(s));
}

function conflictMarker(m) {
	if (!m.conflict)
		return '';
	return ` <span class="pill pill-bad conflict-pill" title="${f.esc(`conflict since ${f.when(m.conflict.since)}: ${m.conflict.reason}`)}">conflict</span>`;
}

// Alerts firing on the miner (the list's "alerts_firing"): a link to its
// alerts on the detail page.
function alertMarker(m) {
	const n = m.alerts_firing;
	if (!f.isNum(n) || n <= 0)
		return '';
	return ` <a class="pill pill-bad alert-pill" href="#/miners/${encodeURIComponent(f.minerId(m))}"
		title="${n} alert${n === 1 ? '' : 's'} firing">${n === 1 ? 'alert' : `${n} alerts`}</a>`;
}

function rowHtml(m, checked, locked) {
	const id = f.minerId(m), s = m.status;
	const seen = f.lastSeen(m);
	return `
	<td class="sel"><input type="checkbox" data-act="select" aria-label="Select ${f.esc(id)}"
		${checked ? 'checked' : ''} ${locked ? 'disabled' : ''}></td>
	<td><a class="mono" href="#/miners/${encodeURIComponent(id)}">${f.esc(id)}</a>
		${m.hostname ? `<div class="muted small">${f.esc(m.hostname)}</div>` : ''}</td>
	<td>${ipCell(m)}</td>
	<td>${f.esc(m.model || '–')}</td>
	<td>${f.pillHtml(m)}${alertMarker(m)}</td>
	${m.online ? `<td class="num">${f.hashrate(s?.hr_realtime_ghs)}</td>
	<td class="num">${powerCell(s)}</td>
	<td class="num">${f.temp(s?.chip_temp_max)}</td>
	<td class="num" title="${f.esc(f.fansTitle(s))}">${f.fans(s)}</td>` : offlineCells(s)}
	<td>${f.esc(s?.preset ?? '–')}${conflictMarker(m)}</td>
	<td title="${f.esc(f.when(seen))}">${f.esc(f.ago(seen))}</td>
	<td class="errcell">${errorCell(m)}</td>
	<td class="ctl"><label class="switch" data-needs="operator"><input type="checkbox" data-act="managed"
		${m.managed ? 'checked' : ''} aria-label="Managed ${f.esc(id)}"><span aria-hidden="true"></span></label></td>
	<td class="ctl"><button type="button" class="small-btn" data-act="pass" data-needs="admin"
		aria-label="${m.has_unlock_pass ? 'Change the stored' : 'Set the'} unlock password of ${f.esc(id)}"
		title="${m.has_unlock_pass ? 'a password is stored for this miner' : 'no password stored: the fleet default is used'}">${m.has_unlock_pass ? 'Change' : 'Set'}</button></td>`;
}

export function mount(el, params, ctx) {
	let p = readParams(params);
	const models = ctx.models();
	el.innerHTML = `
	<h1 class="visually-hidden">Miners</h1>
	<section class="card fleet-history" aria-labelledby="fleet-h"></section>
	<form class="filters" role="search" aria-label="Filter miners">
		<label>Search <input type="search" name="q" placeholder="MAC or IP" value="${f.esc(p.q || '')}"
			autocomplete="off" spellcheck="false"></label>
		<label>Status <select name="state"><option value="">any</option>
			${f.STATE_NAMES.map((s) => `<option value="${s}">${f.esc(f.stateLabel(s))}</option>`).join('')}
		</select></label>
		<label>Model <select name="model"><option value="">any</option>
			${models.map((m) => `<option value="${f.esc(m.alias)}">${f.esc(m.name || m.alias)}</option>`).join('')}
		</select></label>
		<label>Online <select name="online"><option value="">any</option>
			<option value="true">online</option><option value="false">offline</option></select></label>
		<label>Managed <select name="managed"><option value="">any</option>
			<option value="true">managed</option><option value="false">not managed</option></select></label>
		<label>Conflict <select name="conflict"><option value="">any</option>
			<option value="true">in conflict</option><option value="false">no conflict</option></select></label>
		<label>Alerts <select name="alerting"><option value="">any</option>
			<option value="true">has a firing alert</option><option value="false">no firing alert</option></select></label>
		<label>Per page <select name="limit">${PAGE_SIZES.map((n) => `<option>${n}</option>`).join('')}</select></label>
		<button type="reset" class="small-btn">Clear filters</button>
		<button type="button" class="small-btn" data-export="csv"
			title="Every miner the filter matches (all pages), in the table's order, as a CSV file">Export CSV</button>
	</form>
	<div class="bulk" role="group" aria-label="Bulk actions" data-needs="operator">
		<span class="bulk-count" aria-live="polite">No miner selected.</span>
		<button type="button" class="small-btn" data-bulk="all" hidden></button>
		<button type="button" class="small-btn" data-bulk="clear" hidden>Clear selection</button>
		<span class="bulk-acts">
			<label>Preset <select name="bulk-preset"><option value="">choose…</option></select></label>
			<button type="button" class="small-btn" data-bulk="set_preset">Set preset</button>
			<button type="button" class="small-btn" data-bulk="restart">Restart mining</button>
			<button type="button" class="small-btn" data-bulk="pause">Pause</button>
			<button type="button" class="small-btn" data-bulk="resume">Resume</button>
			<button type="button" class="small-btn danger" data-bulk="reboot">Reboot…</button>
		</span>
	</div>
	<section class="card bulk-result" aria-labelledby="bulk-result-h" hidden></section>
	<div class="table-wrap">
	<table class="miners" aria-describedby="miners-count">
		<thead><tr>${COLUMNS.map(([key, label, cls]) => {
			const th = cls ? ` class="${cls}"` : '';
			if (key === 'select')
				return '<th scope="col" class="sel"><input type="checkbox" data-act="page" aria-label="Select every miner on this page"></th>';
			if (!key)
				return `<th scope="col"${th}>${label}</th>`;
			return `<th scope="col"${th} data-key="${key}"><button type="button" data-sort="${key}">${label}<span class="arrow" aria-hidden="true"></span></button></th>`;
		}).join('')}</tr></thead>
		<tbody>${emptyRow(COLUMNS.length, 'Loading miners…')}</tbody>
	</table>
	</div>
	<nav class="pager" aria-label="Pages">
		<button type="button" class="small-btn" data-page="first">« First</button>
		<button type="button" class="small-btn" data-page="prev">‹ Previous</button>
		<span id="miners-count" aria-live="polite"></span>
		<button type="button" class="small-btn" data-page="next">Next ›</button>
		<button type="button" class="small-btn" data-page="last">Last »</button>
	</nav>`;

	const fleetChart = mountFleetChart(el.querySelector('.fleet-history'));
	const form = el.querySelector('form.filters');
	// The controls show the query in force.
	const sync = () => {
		for (const k of ['state', 'model', 'online', 'managed', 'conflict', 'alerting'])
			form.elements[k].value = p[k] || '';
		form.elements.limit.value = String(p.limit);
		if (document.activeElement !== form.elements.q)
			form.elements.q.value = p.q || '';
		for (const th of el.querySelectorAll('th[data-key]')) {
			const key = th.dataset.key;
			const sorted = (p.sort || 'mac') === key;
			const dir = sorted ? (p.order === 'desc' ? 'descending' : 'ascending') : 'none';
			th.setAttribute('aria-sort', dir);
			th.querySelector('.arrow').textContent =
				dir === 'ascending' ? '▲' : dir === 'descending' ? '▼' : '';
		}
	};
	sync();
	const tbody = el.querySelector('tbody');
	const count = el.querySelector('#miners-count');
	const rows = new Map();        // id → <tr>
	const pending = new Set();     // ids with a PATCH in flight
	let total = 0, miners = new Map();
	let gen = 0;                   // bumped by each new query: late answers are dropped
	// The selection: ids picked by hand (id → model alias), or every miner
	// matching a filter ({filter, total, models: alias → count}).
	const selected = new Map();
	let allMatching = null;
	let bulkBusy = false;
	let presetKey = '';
	let track = null;              // the last bulk request's summary, followed live

	// A change of filter, sort or page is a new address; the router hands
	// it back to update() below.
	const go = (changes) => {
		const q = { ...p, ...changes };
		if (q.limit === 100)
			delete q.limit;
		if (!q.offset)
			delete q.offset;
		ctx.navigate('#/miners' + query(q), true);
	};

	let typing = null;
	form.elements.q.addEventListener('input', () => {
		clearTimeout(typing);
		typing = setTimeout(() => go({ q: form.elements.q.value.trim(), offset: 0 }), 350);
	});
	form.addEventListener('submit', (e) => {
		e.preventDefault();
		go({ q: form.elements.q.value.trim(), offset: 0 });
	});
	form.addEventListener('change', (e) => {
		const k = e.target.name;
		if (k === 'q')
			return;
		go({ [k]: k === 'limit' ? +e.target.value : e.target.value, offset: 0 });
	});
	form.addEventListener('reset', (e) => {
		e.preventDefault();
		ctx.navigate('#/miners', true);
	});
	// The filter and sort in force, every page: no limit, no offset.
	form.querySelector('[data-export]').addEventListener('click', (e) => {
		const q = { format: 'csv' };
		for (const k of [...FILTERS, 'sort', 'order'])
			if (p[k])
				q[k] = p[k];
		exportCsv(e.currentTarget, '/api/miners' + query(q));
	});
	el.querySelector('thead').addEventListener('click', (e) => {
		const b = e.target.closest('button[data-sort]');
		if (!b)
			return;
		const key = b.dataset.sort;
		const cur = p.sort || 'mac';
		// Numbers read best largest first; names A→Z.
		const first = ['hashrate', 'power', 'temp', 'fan', 'last_seen', 'last_error'].includes(key)
			? 'desc' : 'asc';
		const order = cur === key ? (p.order === 'desc' ? 'asc' : 'desc') : first;
		go({ sort: key, order, offset: 0 });
	});
	el.querySelector('.pager').addEventListener('click', (e) => {
		const b = e.target.closest('button[data-page]');
		if (!b || b.disabled)
			return;
		const last = Math.max(0, Math.floor((total - 1) / p.limit) * p.limit);
		const to = { first: 0, prev: Math.max(0, p.offset - p.limit),
			next: Math.min(last, p.offset + p.limit), last }[b.dataset.page];
		go({ offset: to });
	});

	tbody.addEventListener('change', async (e) => {
		const pick = e.target.closest('input[data-act=select]');
		if (pick) {
			const id = pick.closest('tr').dataset.id;
			if (pick.checked)
				selected.set(id, miners.get(id).model);
			else
				selected.delete(id);
			selectionChanged();
			return;
		}
		const box = e.target.closest('input[data-act=managed]');
		if (!box)
			return;
		const tr = box.closest('tr'), id = tr.dataset.id;
		const want = box.checked;
		pending.add(id);
		box.disabled = true;
		try {
			const m = await setManaged(id, want);
			if (m)
				miners.set(id, { ...miners.get(id), ...m });
		} catch {
			box.checked = !want;
		} finally {
			pending.delete(id);
			box.disabled = false;
		}
	});
	tbody.addEventListener('click', (e) => {
		const b = e.target.closest('button[data-act=pass]');
		if (!b)
			return;
		const id = b.closest('tr').dataset.id;
		const m = miners.get(id) || {};
		askPassword(id, !!m.has_unlock_pass, async (pass) => {
			await setUnlockPass(id, pass);
			poll.now();
		});
	});

	// ------------------------------------------------------------ selection

	const bulk = el.querySelector('.bulk');
	const presetSel = bulk.querySelector('select[name=bulk-preset]');
	const result = el.querySelector('.bulk-result');

	// The filter in force, as POST /api/actions takes it (booleans as JSON).
	function currentFilter() {
		const flt = {};
		for (const k of FILTERS)
			if (p[k])
				flt[k] = BOOL_FILTERS.includes(k) ? p[k] === 'true' : p[k];
		return flt;
	}

	function describeFilter(flt) {
		const words = Object.entries(flt).map(([k, v]) => `${k} ${typeof v === 'string' ? `"${v}"` : v}`);
		return words.length ? words.join(', ') : 'no filter: the whole fleet';
	}

	el.querySelector('thead').addEventListener('change', (e) => {
		const box = e.target.closest('input[data-act=page]');
		if (!box)
			return;
		for (const [id, m] of miners)
			if (box.checked)
				selected.set(id, m.model);
			else
				selected.delete(id);
		selectionChanged();
	});

	function clearSelection() {
		selected.clear();
		allMatching = null;
		selectionChanged();
	}

	async function selectAllMatching() {
		const flt = currentFilter();
		const n = total;
		const models = new Map();
		const btn = bulk.querySelector('[data-bulk=all]');
		btn.disabled = true;
		try {
			await refreshModels();
			if (flt.model) {
				models.set(flt.model, n);
			} else {
				// How many of each model the filter matches: one count per model.
				const q = {};
				for (const k of FILTERS)
					if (p[k])
						q[k] = p[k];
				for (const mo of ctx.models()) {
					const d = await get('/api/miners' + query({ ...q, model: mo.alias, limit: 1 }));
					if (d.total)
						models.set(mo.alias, d.total);
				}
			}
		} catch (e) {
			btn.disabled = false;
			throw e;
		}
		selected.clear();
		allMatching = { filter: flt, total: n, models };
		btn.disabled = false;
		selectionChanged();
	}

	bulk.addEventListener('click', (e) => {
		const b = e.target.closest('button[data-bulk]');
		if (!b || b.disabled)
			return;
		const what = b.dataset.bulk;
		if (what === 'all')
			selectAllMatching().catch((e2) => notify(`Could not select the matching miners: ${e2.message}`, 'error'));
		else if (what === 'clear')
			clearSelection();
		else
			runBulk(what);
	});
	presetSel.addEventListener('change', () => renderBulk());
	result.addEventListener('click', (e) => {
		if (e.target.closest('button[data-bulk=dismiss]')) {
			track = null;
			result.hidden = true;
			result.replaceChildren();
		}
	});

	// The models of the selection, alias → how many.
	function selectedModels() {
		if (allMatching)
			return allMatching.models;
		const by = new Map();
		for (const alias of selected.values())
			if (alias)
				by.set(alias, (by.get(alias) || 0) + 1);
		return by;
	}

	let modelsKey = '';
	async function refreshModels() {
		ctx.setModels(modelList(await get('/api/models')));
	}

	function selectionChanged() {
		const key = [...selectedModels().keys()].sort().join(',');
		syncChecks();
		renderBulk();
		// The catalogues and max presets of the models now selected.
		if (key !== modelsKey) {
			modelsKey = key;
			if (key)
				refreshModels().then(renderBulk, () => {});
		}
	}

	// Checkboxes as the selection says.
	function syncChecks() {
		let on = 0;
		for (const [id, tr] of rows) {
			const box = tr.querySelector('input[data-act=select]');
			box.checked = !!allMatching || selected.has(id);
			box.disabled = !!allMatching;
			if (box.checked)
				on++;
		}
		const page = el.querySelector('input[data-act=page]');
		page.checked = rows.size > 0 && on === rows.size;
		page.indeterminate = on > 0 && on < rows.size;
		page.disabled = !!allMatching || rows.size === 0;
	}

	// The preset selector: the presets of the selected models, each with
	// its expected figures; the max preset and the presets above it
	// marked (managed miners are refused those, the others take them).
	function presetOptions() {
		const models = selectedModels();
		const catalogue = new Map(ctx.models().map((mo) => [mo.alias, mo]));
		const key = JSON.stringify([...models].map(([a, n]) => {
			const mo = catalogue.get(a);
			return [a, n, mo ? mo.max_preset : null, mo ? mo.presets.length : 0];
		}));
		if (key === presetKey)
			return;
		presetKey = key;
		const was = presetSel.value;
		const option = (mo, pr) => {
			const limit = P.limitOf(mo.presets, mo.max_preset);
			let text = P.label(pr);
			if (limit && pr.name === limit.name)
				text += ' · max preset';
			else if (P.isAbove(pr, limit))
				text += ` · above the max preset ${limit.name}: refused for managed miners`;
			return `<option value="${f.esc(pr.name)}" data-model="${f.esc(mo.alias)}">${f.esc(text)}</option>`;
		};
		const known = [...models.keys()].filter((a) => catalogue.has(a));
		let html = `<option value="">${known.length ? 'choose…' : 'select miners first'}</option>`;
		if (known.length === 1) {
			const mo = catalogue.get(known[0]);
			html += P.sorted(mo.presets).map((pr) => option(mo, pr)).join('');
		} else {
			for (const a of known.sort()) {
				const mo = catalogue.get(a);
				html += `<optgroup label="${f.esc(`${mo.name ?? a} (${a}): ${models.get(a)} selected`)}">${
					P.sorted(mo.presets).map((pr) => option(mo, pr)).join('')}</optgroup>`;
			}
		}
		presetSel.innerHTML = html;
		if ([...presetSel.options].some((o) => o.value === was))
			presetSel.value = was;
		presetSel.title = known.length > 1
			? 'Miners of a model whose catalogue lacks the chosen preset are refused.' : '';
	}

	function renderBulk() {
		const n = allMatching ? allMatching.total : selected.size;
		const count = bulk.querySelector('.bulk-count');
		if (allMatching) {
			count.textContent = `All ${f.num(n)} miners matching the filter are selected (${describeFilter(allMatching.filter)}).`;
		} else if (n) {
			const here = [...selected.keys()].filter((id) => rows.has(id)).length;
			count.textContent = `${f.num(n)} miner${n === 1 ? '' : 's'} selected` +
				(here < n ? ` (${f.num(n - here)} on other pages).` : '.');
		} else {
			count.textContent = 'No miner selected.';
		}
		// Offered unless every match is on this page and ticked already.
		const all = bulk.querySelector('[data-bulk=all]');
		const whole = total > 0 && total === rows.size && [...rows.keys()].every((id) => selected.has(id));
		all.hidden = !!allMatching || total === 0 || whole;
		all.textContent = !FILTERS.some((k) => p[k]) ? `Select all ${f.num(total)} miners`
			: total === 1 ? 'Select the 1 miner matching the filter'
				: `Select all ${f.num(total)} matching the filter`;
		bulk.querySelector('[data-bulk=clear]').hidden = !n;
		presetOptions();
		for (const b of bulk.querySelectorAll('.bulk-acts button'))
			b.disabled = bulkBusy || !n;
		presetSel.disabled = bulkBusy || !n;
		bulk.querySelector('[data-bulk=set_preset]').disabled = bulkBusy || !n || !presetSel.value;
	}

	// ------------------------------------------------------------ bulk actions

	async function runBulk(action) {
		const preset = action === 'set_preset' ? presetSel.value : undefined;
		const what = f.actionText(action, preset);
		const n = allMatching ? allMatching.total : selected.size;
		const target = allMatching ? { filter: allMatching.filter } : { miners: [...selected.keys()] };
		if (action === 'reboot' || allMatching) {
			const who = allMatching
				? `every miner matching the filter (${describeFilter(allMatching.filter)}): ${f.num(n)} now. ` +
				  'The server applies the filter when you confirm.'
				: `${f.num(n)} selected miner${n === 1 ? '' : 's'}.`;
			const why = action === 'reboot'
				? ' Each restarts its controller: it stops hashing and cannot be reached until it has booted again.' : '';
			if (!(await confirmAction(`${what}: ${f.num(n)} miner${n === 1 ? '' : 's'}?`, `${what} on ${who}${why}`, what)))
				return;
		}
		bulkBusy = true;
		renderBulk();
		try {
			const r = await bulkAction(target, action, preset);
			startTracking(what, r);
		} catch (e) {
			track = { what, failed: e.message };
			renderResult();
		} finally {
			bulkBusy = false;
			renderBulk();
		}
	}

	function startTracking(what, r) {
		const accepted = r.actions;
		const ids = accepted.map((a) => a.id);
		track = {
			what, at: Date.now(), refused: r.refused,
			actions: new Map(accepted.map((a) => [a.id, a])),
			// The newest TRACK_MAX: one GET /api/actions reads them all.
			max: ids.length ? Math.max(...ids) : 0,
			min: ids.length ? Math.max(Math.min(...ids), Math.max(...ids) - TRACK_MAX + 1) : 0,
		};
		renderResult();
		trackPoll.now();
	}

	async function followActions() {
		const t = track;
		if (!t || !t.actions || ![...t.actions.values()].some((a) => f.actionOpen(a.state)))
			return;
		const data = await get('/api/actions' + query({ before: t.max + 1, limit: t.max - t.min + 1 }));
		if (t !== track)
			return;
		for (const a of data.actions)
			if (t.actions.has(a.id))
				t.actions.set(a.id, a);
		renderResult();
	}

	function stateCounts(list) {
		const by = new Map();
		for (const a of list)
			by.set(a.state, (by.get(a.state) || 0) + 1);
		return f.ACTION_STATE_NAMES.filter((s) => by.has(s)).map((s) =>
			`<span class="state-count" data-state="${s}">${f.num(by.get(s))} ${f.esc(s)}</span>`).join(' · ');
	}

	function renderResult() {
		const t = track;
		result.hidden = !t;
		if (!t)
			return;
		const dismiss = '<button type="button" class="small-btn" data-bulk="dismiss">Dismiss</button>';
		if (t.failed) {
			result.innerHTML = `<div class="card-head"><h2 id="bulk-result-h">${f.esc(t.what)}: refused</h2>${dismiss}</div>
				<p class="form-error bulk-error">${f.esc(t.failed)}</p>`;
			return;
		}
		const list = [...t.actions.values()];
		const open = list.filter((a) => f.actionOpen(a.state)).length;
		const refused = t.refused;
		result.dataset.accepted = String(list.length);
		result.dataset.refused = String(refused.length);
		result.dataset.open = String(open);
		const listed = (n) => (n > LISTED_MAX ? ` (the first ${LISTED_MAX} listed)` : '');
		result.innerHTML = `
			<div class="card-head"><h2 id="bulk-result-h">${f.esc(t.what)}: ${f.num(list.length)} accepted, ${f.num(refused.length)} refused</h2>
				<span class="muted small">${f.esc(f.when(t.at).slice(11))}</span>${dismiss}</div>
			${list.length ? `<p class="bulk-states">${open ? 'Under way: ' : 'Finished: '}${stateCounts(list)}${
				list.length > TRACK_MAX ? ` <span class="muted small">(the newest ${TRACK_MAX} followed)</span>` : ''}</p>` : ''}
			${refused.length ? `<details class="refused" open><summary>Refused (${f.num(refused.length)})${listed(refused.length)}</summary>
				<div class="table-wrap"><table><thead><tr><th scope="col">Miner</th><th scope="col" class="num">Status</th><th scope="col">Why</th></tr></thead>
				<tbody>${refused.slice(0, LISTED_MAX).map((x) => `<tr data-miner="${f.esc(x.miner)}">
					<td><a class="mono" href="#/miners/${encodeURIComponent(x.miner)}">${f.esc(x.miner)}</a></td>
					<td class="num">${f.esc(x.status)}</td><td class="err-text">${f.esc(x.error)}</td></tr>`).join('')}</tbody></table></div></details>` : ''}
			${list.length ? `<details class="accepted"${list.length <= 10 ? ' open' : ''}><summary>Accepted (${f.num(list.length)})${listed(list.length)}</summary>
				<div class="table-wrap"><table><thead><tr><th scope="col">Miner</th><th scope="col">Action</th><th scope="col">State</th><th scope="col">Error</th></tr></thead>
				<tbody>${list.slice(0, LISTED_MAX).map((a) => `<tr data-miner="${f.esc(a.miner)}" data-state="${f.esc(a.state)}">
					<td><a class="mono" href="#/miners/${encodeURIComponent(a.miner)}">${f.esc(a.miner)}</a></td>
					<td>${f.esc(f.actionText(a.action, a.preset))}</td><td>${f.actionPillHtml(a.state)}</td>
					<td class="err-text">${a.error ? `${f.esc(a.error.kind)}: ${f.esc(a.error.message)}` : ''}</td></tr>`).join('')}</tbody></table></div></details>` : ''}`;
	}

	function render(list) {
		const seen = new Set();
		let prev = null;
		for (const m of list) {
			const id = f.minerId(m);
			seen.add(id);
			let tr = rows.get(id);
			if (!tr) {
				tr = document.createElement('tr');
				tr.dataset.id = id;
				rows.set(id, tr);
			}
			// A row being changed keeps its controls as they are.
			if (!pending.has(id)) {
				const focused = tr.contains(document.activeElement)
					? document.activeElement.dataset.act : null;
				tr.innerHTML = rowHtml(m, !!allMatching || selected.has(id), !!allMatching);
				if (focused)
					tr.querySelector(`[data-act=${focused}]`)?.focus();
			}
			tr.classList.toggle('offline', !m.online);
			const want = prev ? prev.nextSibling : tbody.firstChild;
			if (want !== tr)
				tbody.insertBefore(tr, want);
			prev = tr;
		}
		for (const [id, tr] of rows)
			if (!seen.has(id)) {
				tr.remove();
				rows.delete(id);
			}
		for (const tr of [...tbody.children])
			if (!tr.dataset.id)
				tr.remove();
		if (!list.length) {
			const filtered = FILTERS.some((k) => p[k]);
			tbody.innerHTML = emptyRow(COLUMNS.length, filtered
				? 'No miner matches these filters.'
				: 'No miners yet: discovery lists them as it finds them.');
		}
	}

	async function refresh() {
		const q = { limit: p.limit, offset: p.offset };
		for (const k of [...FILTERS, 'sort', 'order'])
			if (p[k])
				q[k] = p[k];
		const g = gen;
		const data = await get('/api/miners' + query(q));
		if (g !== gen)
			return;
		total = data.total;
		miners = new Map(data.miners.map((m) => [f.minerId(m), m]));
		if (p.offset > 0 && p.offset >= total) {
			go({ offset: Math.max(0, Math.floor((total - 1) / p.limit) * p.limit) });
			return;
		}
		render(data.miners);
		syncChecks();
		renderBulk();
		const from = total ? p.offset + 1 : 0;
		const to = Math.min(total, p.offset + data.miners.length);
		count.textContent = `${f.num(from)}–${f.num(to)} of ${f.num(total)} miners`;
		el.querySelector('[data-page=first]').disabled = p.offset === 0;
		el.querySelector('[data-page=prev]').disabled = p.offset === 0;
		el.querySelector('[data-page=next]').disabled = p.offset + p.limit >= total;
		el.querySelector('[data-page=last]').disabled = p.offset + p.limit >= total;
		el.dataset.loaded = 'true';
	}

	const trackPoll = poller(followActions, TRACK_MS);
	const poll = poller(refresh, REFRESH_MS, (e) => {
		if (e.kind === 'http') {
			for (const tr of rows.values())
				tr.remove();
			rows.clear();
			tbody.innerHTML = emptyRow(COLUMNS.length, `The API refused this query: ${e.message}`);
		}
	});
	return {
		unmount() {
			poll.stop();
			trackPoll.stop();
			fleetChart.unmount();
		},
		update(next) {
			const was = p;
			p = readParams(next);
			// A selection belongs to the filter it was made under.
			if (FILTERS.some((k) => (was[k] || '') !== (p[k] || '')))
				clearSelection();
			gen++;
			sync();
			el.dataset.loaded = 'false';
			poll.now();
		},
	};
}
