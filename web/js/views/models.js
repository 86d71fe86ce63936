// Models: each model's preset catalogue (expected watts and TH per preset,
// as discovery read them from the firmware), its max preset (PATCH
// /api/models/{alias}) and what that limit does now: how many managed
// miners are above it and how many are in conflict; and how many miners of
// the model the fleet has.

import { get } from '../api.js';
import * as f from '../fmt.js';
import * as P from '../presets.js';
import { setMaxPreset } from '../actions.js';
import { emptyRow, poller } from '../ui.js';

const REFRESH_MS = 15000;

export function modelList(data) {
	return data.models;
}

const plural = (n, one, many) => `${f.num(n)} ${n === 1 ? one : many}`;

// What the max preset does, as apid keeps it (docs/api.md, apid/actions.h):
// it holds managed miners only, by expected watts; then the figures that
// say how the fleet stands against it right now.
function limitFacts(m, presets) {
	const limit = P.limitOf(presets, m.max_preset);
	let rule;
	if (m.max_preset === null)
		rule = 'No max preset: any preset may be set on these miners, and none is corrected.';
	else if (!limit || !f.isNum(limit.watts))
		rule = `Max preset <strong>${f.esc(m.max_preset)}</strong> has no expected watts in the catalogue, so it limits nothing.`;
	else
		rule = `Max preset <strong>${f.esc(limit.name)}</strong> (${P.watts(limit)}${f.isNum(limit.th) ? `, ${P.th(limit)}` : ''}).
			It holds managed miners only: PowerHive refuses to set them a preset above it, and sets a managed
			miner seen running above it back to the highest preset at or under it. Unmanaged miners are not held to it.`;
	const above = m.managed_above_limit, conflicts = m.conflicts;
	return `<p class="limit-rule">${rule}</p>
		<ul class="limit-facts">
			<li class="${above ? 'warn-text' : ''}"><strong data-fact="above">${f.num(above)}</strong>
				managed miner${above === 1 ? '' : 's'} above the limit right now</li>
			<li class="${conflicts ? 'bad-text' : ''}"><strong data-fact="conflicts">${f.num(conflicts)}</strong>
				in conflict${conflicts ? ` (<a href="#/miners?model=${encodeURIComponent(m.alias)}&amp;conflict=true">list them</a>)` : ''}</li>
			<li><strong data-fact="managed">${f.num(m.managed)}</strong> of ${plural(m.miners, 'miner', 'miners')} managed</li>
		</ul>`;
}

function card(m) {
	const presets = P.sorted(m.presets);
	const max = m.max_preset;
	const limit = P.limitOf(presets, max);
	const count = m.miners;
	const online = m.miners_online;
	const alias = f.esc(m.alias);
	const rows = presets.length ? presets.map((p) => {
		const above = P.isAbove(p, limit);
		return `<tr class="${above ? 'above' : ''}${p.name === max ? ' is-max' : ''}">
			<th scope="row" class="mono">${f.esc(p.name)}</th>
			<td>${f.esc(p.pretty)}</td>
			<td class="num">${P.watts(p)}</td>
			<td class="num">${P.th(p)}</td>
			<td class="num">${P.jth(p)}</td>
			<td>${p.tuned ? 'yes' : ''}</td>
			<td>${p.name === max ? '<strong>max preset</strong>' : above ? 'above the max preset' : ''}</td></tr>`;
	}).join('') : emptyRow(7, 'No presets known yet: discovery reads them from a miner of this model.');
	return `<section class="card model" data-alias="${alias}" aria-labelledby="model-${alias}">
		<div class="card-head">
			<h2 id="model-${alias}">${f.esc(m.name ?? m.alias)} <span class="muted mono small">${alias}</span></h2>
			<div class="model-count"><strong>${f.num(count)}</strong> miner${count === 1 ? '' : 's'}
				<span class="muted">(${f.num(online)} online)</span></div>
		</div>
		<p class="muted small">${[
			f.isNum(m.num_chains) ? `${m.num_chains} hashboards` : '',
			f.isNum(m.chips_per_chain) ? `${m.chips_per_chain} chips each` : '',
			m.fw_version ? `firmware ${f.esc(m.fw_version)}` : '',
			`${presets.length} presets`].filter(Boolean).join(' · ')}</p>
		<form class="maxpreset" data-needs="admin">
			<label>Max preset <select name="max_preset" data-current="${f.esc(max ?? '')}">
				<option value="">No limit</option>
				${presets.map((p) => `<option value="${f.esc(p.name)}" ${p.name === max ? 'selected' : ''}>${f.esc(P.label(p))}</option>`).join('')}
			</select></label>
			<button type="submit" class="small-btn">Save</button>
		</form>
		<div class="limit" aria-live="polite">${limitFacts(m, presets)}</div>
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
