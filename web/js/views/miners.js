// The miners table: server-side paging, sorting and filtering
// (GET /api/miners), refreshed in place every few seconds. The query lives
// in the address (#/miners?state=mining&sort=hashrate&order=desc) so a
// reload or a shared link shows the same page.

import { get, query } from '../api.js';
import * as f from '../fmt.js';
import { setManaged, setUnlockPass } from '../actions.js';
import { askPassword, emptyRow, poller } from '../ui.js';

const REFRESH_MS = 5000;
const PAGE_SIZES = [25, 50, 100, 250, 500];

// [key for ?sort=, header, class]; key null = not sortable.
const COLUMNS = [
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

const FILTERS = ['q', 'state', 'model', 'online', 'managed'];

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

function rowHtml(m) {
	const id = f.minerId(m), s = m.status;
	const seen = f.lastSeen(m);
	return `
	<td><a class="mono" href="#/miners/${encodeURIComponent(id)}">${f.esc(id)}</a>
		${m.hostname ? `<div class="muted small">${f.esc(m.hostname)}</div>` : ''}</td>
	<td>${ipCell(m)}</td>
	<td>${f.esc(m.model || '–')}</td>
	<td>${f.pillHtml(m)}</td>
	${m.online ? `<td class="num">${f.hashrate(s?.hr_realtime_ghs)}</td>
	<td class="num">${powerCell(s)}</td>
	<td class="num">${f.temp(s?.chip_temp_max)}</td>
	<td class="num" title="${f.esc(f.fansTitle(s))}">${f.fans(s)}</td>` : offlineCells(s)}
	<td>${f.esc(s?.preset ?? '–')}</td>
	<td title="${f.esc(f.when(seen))}">${f.esc(f.ago(seen))}</td>
	<td class="errcell">${errorCell(m)}</td>
	<td class="ctl"><label class="switch"><input type="checkbox" data-act="managed"
		${m.managed ? 'checked' : ''} aria-label="Managed ${f.esc(id)}"><span aria-hidden="true"></span></label></td>
	<td class="ctl"><button type="button" class="small-btn" data-act="pass"
		aria-label="${m.has_unlock_pass ? 'Change the stored' : 'Set the'} unlock password of ${f.esc(id)}"
		title="${m.has_unlock_pass ? 'a password is stored for this miner' : 'no password stored: the fleet default is used'}">${m.has_unlock_pass ? 'Change' : 'Set'}</button></td>`;
}

export function mount(el, params, ctx) {
	let p = readParams(params);
	const models = ctx.models();
	el.innerHTML = `
	<h1 class="visually-hidden">Miners</h1>
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
		<label>Per page <select name="limit">${PAGE_SIZES.map((n) => `<option>${n}</option>`).join('')}</select></label>
		<button type="reset" class="small-btn">Clear filters</button>
	</form>
	<div class="table-wrap">
	<table class="miners" aria-describedby="miners-count">
		<thead><tr>${COLUMNS.map(([key, label, cls]) => {
			const th = cls ? ` class="${cls}"` : '';
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

	const form = el.querySelector('form.filters');
	// The controls show the query in force.
	const sync = () => {
		for (const k of ['state', 'model', 'online', 'managed'])
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
				tr.innerHTML = rowHtml(m);
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
		total = data.total ?? data.miners.length;
		miners = new Map(data.miners.map((m) => [f.minerId(m), m]));
		if (p.offset > 0 && p.offset >= total) {
			go({ offset: Math.max(0, Math.floor((total - 1) / p.limit) * p.limit) });
			return;
		}
		render(data.miners);
		const from = total ? p.offset + 1 : 0;
		const to = Math.min(total, p.offset + data.miners.length);
		count.textContent = `${f.num(from)}–${f.num(to)} of ${f.num(total)} miners`;
		el.querySelector('[data-page=first]').disabled = p.offset === 0;
		el.querySelector('[data-page=prev]').disabled = p.offset === 0;
		el.querySelector('[data-page=next]').disabled = p.offset + p.limit >= total;
		el.querySelector('[data-page=last]').disabled = p.offset + p.limit >= total;
		el.dataset.loaded = 'true';
	}

	const poll = poller(refresh, REFRESH_MS, (e) => {
		if (e.kind === 'http') {
			for (const tr of rows.values())
				tr.remove();
			rows.clear();
			tbody.innerHTML = emptyRow(COLUMNS.length, `The API refused this query: ${e.message}`);
		}
	});
	return {
		unmount: () => poll.stop(),
		update(next) {
			p = readParams(next);
			gen++;
			sync();
			el.dataset.loaded = 'false';
			poll.now();
		},
	};
}
