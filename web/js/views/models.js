// Models: each model's preset catalogue (expected watts and TH per preset,
// as discovery read them from the firmware), the max preset the controller
// may run on that model (PATCH /api/models/{alias}), and how many miners
// of the model the fleet has.

import { get } from '../api.js';
import * as f from '../fmt.js';
import { setMaxPreset } from '../actions.js';
import { emptyRow, poller } from '../ui.js';

const REFRESH_MS = 15000;

export function modelList(data) {
	return Array.isArray(data) ? data : data?.models || [];
}

export function minerCount(m) {
	const v = m.miners ?? m.miner_count ?? m.count;
	return typeof v === 'object' && v !== null ? v.total ?? v.count : v;
}

// Cheapest first: the ladder reads from economy to overclock.
function byWatts(a, b) {
	const wa = f.isNum(a.watts) ? a.watts : Infinity, wb = f.isNum(b.watts) ? b.watts : Infinity;
	return wa - wb || (a.ord ?? a.order ?? 0) - (b.ord ?? b.order ?? 0);
}

function presetLabel(p) {
	const bits = [p.pretty || p.name];
	if (f.isNum(p.watts))
		bits.push(`${f.num(p.watts)} W`);
	if (f.isNum(p.th))
		bits.push(`${f.num(p.th, p.th % 1 ? 1 : 0)} TH/s`);
	return bits.join(' · ');
}

function card(m) {
	const presets = [...(m.presets || [])].sort(byWatts);
	const max = m.max_preset ?? null;
	const maxP = presets.find((p) => p.name === max);
	const count = minerCount(m);
	const online = m.miners_online ?? m.miners?.online;
	const alias = f.esc(m.alias);
	const rows = presets.length ? presets.map((p) => {
		const above = maxP && f.isNum(p.watts) && f.isNum(maxP.watts) && p.watts > maxP.watts;
		const jth = f.isNum(p.watts) && f.isNum(p.th) && p.th > 0 ? f.num(p.watts / p.th, 1) : '–';
		return `<tr class="${above ? 'above' : ''}${p.name === max ? ' is-max' : ''}">
			<th scope="row" class="mono">${f.esc(p.name)}</th>
			<td>${f.esc(p.pretty || '')}</td>
			<td class="num">${f.isNum(p.watts) ? f.num(p.watts) + ' W' : '–'}</td>
			<td class="num">${f.isNum(p.th) ? f.num(p.th, p.th % 1 ? 1 : 0) + ' TH/s' : '–'}</td>
			<td class="num">${jth}</td>
			<td>${p.tuned ? 'yes' : ''}</td>
			<td>${p.name === max ? '<strong>limit</strong>' : above ? 'above the limit' : ''}</td></tr>`;
	}).join('') : emptyRow(7, 'No presets known yet: discovery reads them from a miner of this model.');
	return `<section class="card model" data-alias="${alias}" aria-labelledby="model-${alias}">
		<div class="card-head">
			<h2 id="model-${alias}">${f.esc(m.name || m.full_name || m.alias)} <span class="muted mono small">${alias}</span></h2>
			<div class="model-count"><strong>${f.num(count)}</strong> miner${count === 1 ? '' : 's'}${
				f.isNum(online) ? ` <span class="muted">(${f.num(online)} online)</span>` : ''}</div>
		</div>
		<p class="muted small">${[
			f.isNum(m.num_chains) ? `${m.num_chains} hashboards` : '',
			f.isNum(m.chips_per_chain) ? `${m.chips_per_chain} chips each` : '',
			m.fw_version ? `firmware ${f.esc(m.fw_version)}` : '',
			`${presets.length} presets`].filter(Boolean).join(' · ')}</p>
		<form class="maxpreset">
			<label>Max preset <select name="max_preset" data-current="${f.esc(max ?? '')}">
				<option value="">No limit</option>
				${presets.map((p) => `<option value="${f.esc(p.name)}" ${p.name === max ? 'selected' : ''}>${f.esc(presetLabel(p))}</option>`).join('')}
			</select></label>
			<button type="submit" class="small-btn">Save</button>
			<span class="form-note muted small" aria-live="polite">${max ? `Miners of this model run at most ${f.esc(presetLabel(maxP || { name: max }))}.` : 'No limit set.'}</span>
		</form>
		<div class="table-wrap"><table class="presets"><thead><tr><th scope="col">Preset</th><th scope="col">Name</th>
			<th scope="col" class="num">Expected power</th><th scope="col" class="num">Expected hashrate</th>
			<th scope="col" class="num">J/TH</th><th scope="col">Tuned</th><th scope="col">Limit</th></tr></thead>
			<tbody>${rows}</tbody></table></div>
	</section>`;
}

export function mount(el, params, ctx) {
	el.innerHTML = `<h1>Models</h1><div class="models"><p class="muted">Loading models…</p></div>`;
	const box = el.querySelector('.models');
	const busy = new Set();

	box.addEventListener('submit', async (e) => {
		e.preventDefault();
		const form = e.target;
		const alias = form.closest('[data-alias]').dataset.alias;
		const sel = form.elements.max_preset;
		const value = sel.value || null;
		const btn = form.querySelector('button');
		busy.add(alias);
		btn.disabled = true;
		try {
			await setMaxPreset(alias, value);
			sel.dataset.current = value ?? '';
			busy.delete(alias);
			await refresh();
		} catch {
			sel.value = sel.dataset.current;
		} finally {
			busy.delete(alias);
			btn.disabled = false;
		}
	});

	async function refresh() {
		const list = modelList(await get('/api/models'));
		ctx.setModels(list);
		if (!list.length) {
			box.innerHTML = '<p class="muted">No models yet: discovery learns each model from the first miner of it that it finds.</p>';
			return;
		}
		// A card whose selector is being changed stays as the user left it.
		const keep = new Map();
		for (const c of box.querySelectorAll('[data-alias]')) {
			const sel = c.querySelector('select');
			if (busy.has(c.dataset.alias) || sel.value !== sel.dataset.current || c.contains(document.activeElement))
				keep.set(c.dataset.alias, c);
		}
		const frag = document.createElement('div');
		frag.innerHTML = list.map(card).join('');
		for (const c of [...frag.children])
			if (keep.has(c.dataset.alias))
				c.replaceWith(keep.get(c.dataset.alias));
		box.replaceChildren(...frag.children);
		el.dataset.loaded = 'true';
	}

	const poll = poller(refresh, REFRESH_MS);
	return { unmount: () => poll.stop() };
}
