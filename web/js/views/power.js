// Power (#/power): the balancer as apid runs it (GET /api/power) — mode and
// state, the feed, the figures it balances with —; its settings (PATCH
// /api/power, each change confirmed first); generation, target, estimate
// and measured draw over time (GET /api/power/history); the plan (GET
// /api/power/plan); the decision log (GET /api/power/decisions, paged) and
// the latest readings of the feed with the refused ones and why (GET
// /api/power/readings).

import { get, query } from '../api.js';
import * as f from '../fmt.js';
import { TimeChart } from '../chart.js';
import { reason, setPower } from '../actions.js';
import { confirmAction, emptyRow, exportCsv, poller } from '../ui.js';

const STATUS_MS = 5000;
const HISTORY_MS = 15000;
const PLAN_MS = 5000;
const LOG_MS = 5000;
const READINGS_MS = 10000;
// [span in s, step in s, label]: about 250–350 points each.
const RANGES = [[3600, 15, '1 h'], [21600, 60, '6 h'], [86400, 300, '24 h']];
const DECISIONS_PAGE = 25;
const READINGS_SHOWN = 100;
const PLAN_ROWS_MAX = 1000;

export const MODES = [['off', 'Off'], ['dry_run', 'Dry run'], ['on', 'On']];
const MODE_PILL = { off: 'idle', dry_run: 'tune', on: 'ok' };
const STATES = { ok: ['OK', 'ok'], stale: ['Stale', 'warn'], fallback: ['Fallback', 'bad'] };
const FALLBACKS = {
	hold: 'Hold: keep the presets as they are',
	fixed: 'Fixed: balance against fallback_w',
	minimum: 'Minimum: every managed miner to its lowest preset',
};
const KINDS = { cut: 'warn', raise: 'ok', hold: 'idle', fallback: 'bad', state: 'tune' };
const REFUSALS = [['low_confidence', 'low confidence'], ['source_failed', 'source failed'],
	['stale', 'stale'], ['jump', 'jump'], ['not_fresh', 'not fresh'], ['error', 'error']];

export const modeLabel = (m) => (MODES.find((x) => x[0] === m) || [m, m ?? '–'])[1];

export function modePill(m) {
	return `<span class="pill pill-${MODE_PILL[m] || 'idle'}" data-mode="${f.esc(m)}">${f.esc(modeLabel(m))}</span>`;
}

export function statePill(s) {
	const [label, cls] = STATES[s] || [s ?? '–', 'idle'];
	return `<span class="pill pill-${cls}" data-state="${f.esc(s)}">${f.esc(label)}</span>`;
}

const pct = (v) => (f.isNum(v) ? `${f.num(v, Number.isInteger(v) ? 0 : 1)}\u00a0%` : '–');
const th = (v) => (f.isNum(v) ? f.hashrate(v * 1000) : '–');
const plural = (n, one, many) => `${f.num(n)} ${n === 1 ? one : many}`;
const signed = (w) => (f.isNum(w) ? (w > 0 ? '+' : w < 0 ? '−' : '±') + f.power(Math.abs(w)) : '–');

// One figure: data-k names the field of GET /api/power, data-value holds
// the number as the API sent it.
function tile(label, key, value, raw, sub = '', cls = '') {
	return `<div class="tile${cls ? ' ' + cls : ''}" data-k="${key}"${f.isNum(raw) ? ` data-value="${raw}"` : ''}>
		<div class="tile-label">${f.esc(label)}</div><div class="tile-value">${value}</div>
		${sub ? `<div class="tile-sub">${sub}</div>` : ''}</div>`;
}

function sourceText(s) {
	if (!s || !s.kind || s.kind === 'none')
		return ['none', 'no <code>power.source</code> configured: the balancer cannot run'];
	if (s.kind === 'aggregator')
		return ['Plant aggregator', [s.url && `<span class="mono">${f.esc(s.url)}</span>`,
			s.plant_id && `plant ${f.esc(s.plant_id)}`,
			f.isNum(s.min_confidence) && `confidence ≥ ${f.num(s.min_confidence, 2)}`].filter(Boolean).join(' · ')];
	if (s.kind === 'modbus')
		return ['Modbus meter', [s.host && `<span class="mono">${f.esc(s.host)}${f.isNum(s.port) ? ':' + s.port : ''}</span>`,
			f.isNum(s.unit) && `unit ${s.unit}`,
			f.isNum(s.register) && `${f.esc(s.table || '')} register ${s.register}`].filter(Boolean).join(' · ')];
	if (s.kind === 'manual')
		return ['Manual budget', Array.isArray(s.schedule) && s.schedule.length
			? `time-of-day schedule, ${plural(s.schedule.length, 'step', 'steps')}` : 'set in the config or here'];
	return [f.esc(s.kind), ''];
}

function tiles(p) {
	const [srcName, srcSub] = sourceText(p.source);
	const m = p.miners || {}, r = p.readings || {};
	const over = f.isNum(p.estimate_w) && f.isNum(p.target_w) && p.estimate_w > p.target_w;
	const [, stateCls] = STATES[p.state] || [];
	const refusedBy = Object.entries(r.refused_by || {}).filter(([, n]) => n > 0)
		.map(([k, n]) => `${f.esc((REFUSALS.find((x) => x[0] === k) || [k, k])[1])} ${f.num(n)}`).join(' · ');
	const targetSub = [
		f.isNum(p.available_w) ? `available − ${pct(p.margin_pct)}` : 'no available power known',
		f.isNum(p.max_w) && p.max_w > 0 ? `capped at ${f.power(p.max_w)}` : '',
	].filter(Boolean).join(' · ');
	return [
		tile('State', 'state', statePill(p.state), null, f.esc(p.state_reason || ''),
			stateCls === 'bad' ? 'tile-bad' : stateCls === 'warn' ? 'tile-warn' : ''),
		tile('Mode', 'mode', modePill(p.mode), null, p.mode === 'off' ? 'nothing is balanced'
			: p.mode === 'dry_run' ? 'planned and logged; nothing is sent' : 'the balancer sets managed miners\' presets'),
		tile('Source', 'source', f.esc(srcName), null, srcSub),
		p.source?.kind === 'manual'
			? tile('Feed age', 'feed_age_s', '–', null, 'a manual budget has no feed')
			: tile('Feed age', 'feed_age_s', f.isNum(p.feed_age_s) ? f.esc(f.duration(p.feed_age_s)) : 'no reading',
				p.feed_age_s, 'since the last valid reading' +
				(f.isNum(p.stale_seconds) ? `; stale after ${f.esc(f.duration(p.stale_seconds))}` : ''),
				p.state === 'ok' ? '' : stateCls === 'bad' ? 'tile-bad' : 'tile-warn'),
		tile('Generation', 'generation_w', f.power(p.generation_w), p.generation_w,
			p.source?.kind === 'manual' ? 'not measured (manual budget)' : 'the plant\'s output'),
		tile('Measured', 'measured_w', f.power(p.measured_w), p.measured_w,
			f.isNum(p.measured_w) ? 'the farm\'s draw, metered by the plant' : 'the plant does not meter the farm'),
		tile('Available', 'available_w', f.power(p.available_w), p.available_w,
			p.source?.kind === 'manual' ? `manual budget${f.isNum(p.budget_w) ? ' ' + f.power(p.budget_w) : ''}` : 'what the farm may draw'),
		tile('Margin', 'margin_pct', pct(p.margin_pct), p.margin_pct, 'kept free below the available power'),
		tile('Target', 'target_w', f.power(p.target_w), p.target_w, targetSub),
		tile('Estimate', 'estimate_w', f.power(p.estimate_w), p.estimate_w,
			`correction ${signed(p.correction_w)}${f.isNum(p.measured_w) ? ` · measured ${f.power(p.measured_w)}` : ''}`,
			over ? 'tile-bad' : ''),
		tile('Managed load', 'managed_w', f.power(p.managed_w), p.managed_w, 'the managed miners the balancer sets'),
		tile('Fixed load', 'fixed_w', f.power(p.fixed_w), p.fixed_w, 'unmanaged, pinned, excluded and unreachable miners'),
		tile('Headroom', 'headroom_w', signed(p.headroom_w), p.headroom_w,
			f.isNum(p.headroom_w) && p.headroom_w < 0 ? '<strong>over the target</strong>' : 'target − estimate',
			f.isNum(p.headroom_w) && p.headroom_w < 0 ? 'tile-bad' : ''),
		tile('Managed miners', 'miners', `<span data-n="managed">${f.num(m.managed)}</span>`, m.managed,
			[`<span data-n="planned">${f.num(m.planned)}</span> planned`, `<span data-n="pinned">${f.num(m.pinned)}</span> pinned`,
				`<span data-n="excluded" class="${m.excluded > 0 ? 'warn-text' : ''}">${f.num(m.excluded)}</span> excluded`,
				`<span data-n="in_flight">${f.num(m.in_flight)}</span> in flight`,
				f.isNum(m.fixed) ? `<span data-n="fixed">${f.num(m.fixed)}</span> fixed` : ''].filter(Boolean).join(' · ')),
		tile('Readings', 'readings', `<span data-n="accepted">${f.num(r.accepted)}</span> / <span data-n="refused"${r.refused > 0
			? ' class="warn-text"' : ''}>${f.num(r.refused)}</span>`,
			null, `accepted / refused${refusedBy ? ': ' + refusedBy : ''}` +
			(r.last_refused_reason ? `<br>last refused: <span class="last-refused">${f.esc(r.last_refused_reason)}</span>` : '')),
	].join('');
}

// What a change does, said before it is made.
function modeText(to, p) {
	const m = p.miners || {};
	if (to === 'on')
		return `On: PowerHive will change the presets of ${plural(m.managed ?? 0, 'managed miner', 'managed miners')} ` +
			`to keep the farm's draw at or under the target (${f.power(p.target_w)} now; the estimate is ${f.power(p.estimate_w)})` +
			(m.pinned ? `; ${plural(m.pinned, 'pinned miner is', 'pinned miners are')} left alone` : '') +
			'. While it is on, presets, pause and resume by hand are refused on managed miners that are not pinned.';
	if (to === 'dry_run')
		return 'Dry run: PowerHive computes the plan and records its decisions every cycle, but sends nothing to the miners.' +
			(p.mode === 'on' ? ' The presets it has set stay as they are.' : '');
	return 'Off: PowerHive stops balancing. Nothing more is sent; the miners keep the presets they run now, ' +
		'and operators set presets by hand again.';
}

function marginText(v, p) {
	const avail = p.available_w;
	let t = `Margin ${pct(v)}: the target becomes the available power less ${pct(v)}`;
	if (f.isNum(avail)) {
		let target = avail * (1 - v / 100);
		if (f.isNum(p.max_w) && p.max_w > 0)
			target = Math.min(target, p.max_w);
		t += `, about ${f.power(target)} now (it is ${f.power(p.target_w)})`;
	}
	return t + '.' + (p.mode === 'on' ? ' The balancer acts on it at its next cycle.' : '');
}

function budgetText(w, p) {
	const target = w * (1 - (p.margin_pct ?? 0) / 100);
	return `Manual budget ${f.power(w)}: the farm may draw that much; with the ${pct(p.margin_pct)} margin the target ` +
		`becomes about ${f.power(target)} (it is ${f.power(p.target_w)}).` +
		(p.mode === 'on' ? ' The balancer acts on it at its next cycle.' : '');
}

function fallbackText(v, p) {
	return `Fallback "${v}": when no valid reading has come for the stale time, ` + ({
		hold: 'the balancer keeps the presets as they are.',
		fixed: `the balancer balances against the fixed power fallback_w (${f.power(p.fallback_w)}).`,
		minimum: 'the balancer sets every managed miner to its lowest preset.',
	}[v] || 'the balancer does as configured.');
}

function banner(p) {
	if (p.state === 'ok' || !p.state)
		return null;
	const age = f.isNum(p.feed_age_s) ? `last valid reading ${f.duration(p.feed_age_s)} ago`
		: 'no valid reading yet';
	const head = p.state === 'stale' ? 'The power feed is stale'
		: `Fallback "${p.fallback}" in force`;
	return `<strong>${f.esc(head)}</strong>: <span class="state-reason">${f.esc(p.state_reason || 'no reason given')}</span> · ${f.esc(age)}` +
		(p.state === 'fallback' ? ` · ${f.esc(FALLBACKS[p.fallback] || '')}` : '');
}

function planHead(plan) {
	const list = plan.miners || [];
	const changed = list.filter((m) => m.changed).length;
	return [
		plan.ts ? `Plan of ${f.esc(f.when(plan.ts))}` : 'Plan',
		`expected ${f.power(plan.expected_w)} · ${th(plan.expected_th)} for a target of ${f.power(plan.target_w)}`,
		plan.feasible === false ? '<strong class="bad-text">not feasible: even the lowest presets exceed the target</strong>' : '',
		`<span data-n="changed">${f.num(changed)}</span> of ${plural(list.length, 'miner changes', 'miners change')}`,
	].filter(Boolean).join(' · ');
}

const preset = (v) => (v === null || v === undefined ? '–' : f.esc(v));

function planRows(plan, all) {
	const list = plan.miners || [];
	const shown = all ? list : list.filter((m) => m.changed);
	if (!shown.length)
		return emptyRow(6, list.length ? 'No change planned: every managed miner keeps its preset ("Show all" lists them).'
			: 'No miner in the plan: no managed miner, or the balancer is off.');
	const rows = shown.slice(0, PLAN_ROWS_MAX).map((m) => `<tr data-id="${f.esc(m.id)}" data-reason="${f.esc(m.reason)}" class="${m.changed ? 'changed' : ''}">
		<td><a class="mono" href="#/miners/${encodeURIComponent(m.id)}">${f.esc(m.id)}</a></td>
		<td>${f.esc(m.model ?? '–')}</td>
		<td class="nowrap">${preset(m.current)}${m.changed ? ` → <strong>${preset(m.planned)}</strong>` : ''}</td>
		<td class="num">${f.power(m.watts_now)}${m.changed ? ` → <strong>${f.power(m.watts_planned)}</strong>` : ''}</td>
		<td class="num">${th(m.th_planned)}</td>
		<td>${f.esc(m.reason ?? '')}</td></tr>`).join('');
	return rows + (shown.length > PLAN_ROWS_MAX
		? emptyRow(6, `The first ${f.num(PLAN_ROWS_MAX)} of ${f.num(shown.length)} are shown.`) : '');
}

function changeList(d, open) {
	const ch = Array.isArray(d.changes) ? d.changes : [];
	if (!ch.length)
		return '';
	return `<details data-id="${d.id}"${open ? ' open' : ''}><summary>${plural(ch.length, 'change', 'changes')}</summary><ul class="changes">${ch.map((c) =>
		`<li><a class="mono" href="#/miners/${encodeURIComponent(c.id)}">${f.esc(c.id)}</a>
			${preset(c.from)} → <strong>${preset(c.to)}</strong>
			<span class="muted">(${f.power(c.watts_from)} → ${f.power(c.watts_to)})</span>
			${c.why ? `<span class="muted">· ${f.esc(c.why)}</span>` : ''}</li>`).join('')}</ul></details>`;
}

function decisionRows(list, open) {
	if (!list.length)
		return emptyRow(7, 'No decision recorded yet.');
	return list.map((d) => `<tr data-id="${d.id}" data-kind="${f.esc(d.kind)}"${d.dry_run ? ' data-dry-run="true"' : ''}>
		<td class="nowrap" title="${f.esc(f.when(d.ts))}">${f.esc(f.when(d.ts))}</td>
		<td class="nowrap"><span class="pill pill-${KINDS[d.kind] || 'idle'}">${f.esc(d.kind)}</span>${d.dry_run
			? ' <span class="pill pill-tune dry-run">dry run</span>' : ''}</td>
		<td class="num">${f.power(d.available_w)}</td>
		<td class="num">${f.power(d.target_w)}</td>
		<td class="num">${f.power(d.estimate_w)}</td>
		<td class="num">${f.power(d.measured_w)}</td>
		<td class="summary">${f.esc(d.summary ?? '')}${changeList(d, open.has(String(d.id)))}</td></tr>`).join('');
}

function readingRows(list, refusedOnly) {
	const shown = refusedOnly ? list.filter((r) => !r.accepted) : list;
	if (!list.length)
		return emptyRow(9, 'No reading stored yet (a manual budget has none).');
	if (!shown.length)
		return emptyRow(9, `No refused reading among the last ${f.num(list.length)}.`);
	return shown.map((r) => `<tr data-id="${r.id}" class="${r.accepted ? '' : 'refused'}">
		<td class="nowrap" title="${f.esc(f.when(r.ts))}">${f.esc(f.when(r.ts))}</td>
		<td>${f.esc(r.source ?? '')}</td>
		<td><span class="pill pill-${r.accepted ? 'ok' : 'bad'}">${r.accepted ? 'accepted' : 'refused'}</span></td>
		<td>${f.esc(r.reason ?? '')}</td>
		<td class="num">${f.power(r.generation_w)}</td>
		<td class="num">${f.power(r.measured_w)}</td>
		<td class="num">${f.isNum(r.confidence) ? f.num(r.confidence, 2) : '–'}</td>
		<td class="num">${f.isNum(r.latency_ms) ? f.num(r.latency_ms) + ' ms' : '–'}</td>
		<td class="err-text small">${f.esc(r.error ?? '')}</td></tr>`).join('');
}

export function mount(el) {
	let status = null;               // GET /api/power
	let busy = false;                // a PATCH in flight
	let range = 0;                   // index in RANGES
	let plan = null, planAll = false;
	let before = null;               // the decision page: null = newest
	const newer = [];                // the befores of the pages above
	let nextBefore = null;
	const openDecisions = new Set();
	let readings = [], refusedOnly = true;
	let pageMoved = false;           // the decision page was changed

	el.innerHTML = `
	<header class="power-head"><h1>Power <span class="pill-slot"></span></h1></header>
	<div class="power-error form-error" role="alert"></div>
	<div class="power-banner" role="alert" hidden></div>
	<section class="tiles power-tiles" aria-label="The balancer now"></section>
	<section class="card power-settings" aria-labelledby="pw-set-h" data-needs="admin">
		<h2 id="pw-set-h">Settings</h2>
		<div class="pw-form">
			<fieldset class="pw-field"><legend>Mode</legend>
				<div class="seg" role="radiogroup" aria-label="Power mode">${MODES.map(([k, label]) =>
					`<label><input type="radio" name="mode" value="${k}">${label}</label>`).join('')}</div>
				<span class="from muted small" data-from="mode"></span></fieldset>
			<form class="pw-field" data-set="margin_pct" novalidate>
				<label>Margin (%) <input type="number" name="margin_pct" step="any" inputmode="decimal" required></label>
				<button type="submit" class="small-btn">Set</button>
				<span class="from muted small" data-from="margin_pct"></span></form>
			<form class="pw-field" data-set="budget_w" novalidate hidden>
				<label>Manual budget (kW) <input type="number" name="budget_kw" step="any" inputmode="decimal" required></label>
				<button type="submit" class="small-btn">Set</button>
				<span class="from muted small" data-from="budget_w"></span></form>
			<form class="pw-field" data-set="fallback">
				<label>Fallback <select name="fallback">${Object.entries(FALLBACKS).map(([k, t]) =>
					`<option value="${k}">${f.esc(t)}</option>`).join('')}</select></label>
				<button type="submit" class="small-btn">Set</button>
				<span class="from muted small" data-from="fallback"></span></form>
		</div>
		<p class="pw-set-error form-error" role="alert"></p>
		<p class="pw-schedule muted small" hidden></p>
	</section>
	<section class="card">
		<div class="card-head"><h2>Power over time</h2>
			<div class="btnrow"><div class="seg" role="radiogroup" aria-label="Time range">${RANGES.map(([, , label], i) =>
				`<label><input type="radio" name="range" value="${i}" ${i === range ? 'checked' : ''}>${label}</label>`).join('')}</div>
			<button type="button" class="small-btn" data-export="csv"
				title="The averages the chart shows, as a CSV file">Export CSV</button></div></div>
		<canvas class="chart power-chart" role="img" aria-label="No history yet."></canvas>
		<p class="legend power-legend"></p>
	</section>
	<section class="card" aria-labelledby="pw-plan-h">
		<div class="card-head"><h2 id="pw-plan-h">Plan</h2>
			<label class="check"><input type="checkbox" name="plan-all"> Show all miners, not only the changed ones</label></div>
		<p class="plan-head muted small"></p>
		<div class="table-wrap plan-wrap"><table class="plan"><thead><tr><th scope="col">Miner</th><th scope="col">Model</th>
			<th scope="col">Preset now → planned</th><th scope="col" class="num">Power now → planned</th>
			<th scope="col" class="num">Planned hashrate</th><th scope="col">Why</th></tr></thead>
			<tbody>${emptyRow(6, 'Loading the plan…')}</tbody></table></div>
	</section>
	<section class="card" aria-labelledby="pw-log-h">
		<div class="card-head"><h2 id="pw-log-h">Decisions</h2>
			<div class="btnrow pager">
				<button type="button" class="small-btn" data-page="newest">Newest</button>
				<button type="button" class="small-btn" data-page="newer">← Newer</button>
				<button type="button" class="small-btn" data-page="older">Older →</button></div></div>
		<div class="table-wrap"><table class="decisions"><thead><tr><th scope="col">Time</th><th scope="col">Kind</th>
			<th scope="col" class="num">Available</th><th scope="col" class="num">Target</th><th scope="col" class="num">Estimate</th>
			<th scope="col" class="num">Measured</th><th scope="col">What and why</th></tr></thead>
			<tbody>${emptyRow(7, 'Loading…')}</tbody></table></div>
	</section>
	<section class="card" aria-labelledby="pw-read-h">
		<div class="card-head"><h2 id="pw-read-h">Readings</h2>
			<label class="check"><input type="checkbox" name="refused-only" checked> Refused only</label></div>
		<p class="muted small">The last ${READINGS_SHOWN} readings of the feed; a refused one is not used, and says why.</p>
		<div class="table-wrap"><table class="readings"><thead><tr><th scope="col">Time</th><th scope="col">Source</th>
			<th scope="col">Result</th><th scope="col">Reason</th><th scope="col" class="num">Generation</th>
			<th scope="col" class="num">Measured</th><th scope="col" class="num">Confidence</th>
			<th scope="col" class="num">Latency</th><th scope="col">Error</th></tr></thead>
			<tbody>${emptyRow(9, 'Loading…')}</tbody></table></div>
	</section>`;

	const $ = (s) => el.querySelector(s);
	const chart = new TimeChart($('canvas.power-chart'), [{ title: '', fmt: (v) => f.power(v) }],
		{ noun: 'points', height: 240, legend: false });

	// ------------------------------------------------------------ settings

	function renderSettings(p) {
		for (const r of el.querySelectorAll('input[name=mode]')) {
			r.checked = r.value === p.mode;
			r.disabled = busy;
		}
		const setField = (input, value) => {
			// A field the user is editing, or left with a refused value,
			// keeps what they typed.
			if (input.dataset.current === undefined ||
				(document.activeElement !== input && input.value === input.dataset.current))
				input.value = value;
			input.dataset.current = value;
		};
		setField($('input[name=margin_pct]'), f.isNum(p.margin_pct) ? String(p.margin_pct) : '');
		const manual = p.source?.kind === 'manual';
		const sched = manual && Array.isArray(p.source.schedule) ? p.source.schedule : [];
		// A budget that follows the schedule is not set by hand.
		$('form[data-set=budget_w]').hidden = !manual || sched.length > 0;
		if (manual)
			setField($('input[name=budget_kw]'), f.isNum(p.budget_w) ? String(p.budget_w / 1000) : '');
		setField($('select[name=fallback]'), p.fallback ?? 'hold');
		for (const b of el.querySelectorAll('.pw-form button'))
			b.disabled = busy;
		const from = p.settings_from || {};
		for (const s of el.querySelectorAll('[data-from]')) {
			const v = from[s.dataset.from];
			s.textContent = v === 'api' ? 'set here' : v === 'config' ? 'from the config' : '';
		}
		const fixed = $('select[name=fallback] option[value=fixed]');
		fixed.disabled = !(p.fallback_w > 0);
		fixed.textContent = p.fallback_w > 0 ? `Fixed: balance against ${f.power(p.fallback_w)}`
			: 'Fixed: needs power.fallback_w in the config';
		$('.pw-schedule').hidden = !sched.length;
		$('.pw-schedule').textContent = sched.length ? 'The budget follows the schedule (farm local time): ' +
			sched.map((x) => `from ${x.from} ${f.power(x.budget_w)}`).join(' · ') : '';
	}

	// Asks, then PATCHes; a refusal stays under the form in the API's words.
	async function change(body, what, title, text, ok) {
		const err = $('.pw-set-error');
		if (!(await confirmAction(title, text, ok))) {
			renderSettings(status);
			return;
		}
		busy = true;
		renderSettings(status);
		try {
			status = await setPower(body, what);
			err.textContent = '';
		} catch (e) {
			err.textContent = `Not changed: ${reason(e)}`;
		} finally {
			busy = false;
		}
		render();
		statusPoll.now();
		planPoll.now();
	}

	$('.pw-form').addEventListener('change', async (e) => {
		if (e.target.name !== 'mode' || !status)
			return;
		const to = e.target.value;
		// The confirmation counts the miners as they are now.
		try {
			status = await get('/api/power');
		} catch {
			/* the last answer will do */
		}
		const ok = { off: 'Turn off', dry_run: 'Start dry run', on: 'Turn on' }[to];
		change({ mode: to }, `mode ${modeLabel(to).toLowerCase()}`, `Power mode: ${modeLabel(to)}?`,
			modeText(to, status), ok);
	});
	$('.pw-form').addEventListener('submit', (e) => {
		e.preventDefault();
		if (!status)
			return;
		const form = e.target, key = form.dataset.set, err = $('.pw-set-error');
		if (key === 'fallback') {
			const v = form.elements.fallback.value;
			return change({ fallback: v }, `fallback ${v}`, `Fallback: ${v}?`, fallbackText(v, status), 'Set fallback');
		}
		const input = form.querySelector('input');
		const v = input.value.trim() === '' ? NaN : Number(input.value);
		if (!Number.isFinite(v)) {
			err.textContent = key === 'margin_pct' ? 'Type a margin in percent.' : 'Type a budget in kW.';
			input.focus();
			return;
		}
		if (key === 'margin_pct')
			return change({ margin_pct: v }, `margin ${v} %`, `Margin: ${v} %?`, marginText(v, status), 'Set margin');
		const w = Math.round(v * 1000);
		return change({ budget_w: w }, `budget ${f.power(w)}`, `Manual budget: ${f.power(w)}?`, budgetText(w, status), 'Set budget');
	});

	// ------------------------------------------------------------ status

	function render() {
		const p = status;
		if (!p)
			return;
		$('.pill-slot').innerHTML = `${modePill(p.mode)} ${statePill(p.state)}`;
		const b = banner(p), bn = $('.power-banner');
		bn.hidden = !b;
		bn.className = `power-banner ${f.esc(p.state)}`;
		bn.innerHTML = b || '';
		$('.power-tiles').innerHTML = tiles(p);
		renderSettings(p);
	}

	async function loadStatus() {
		try {
			status = await get('/api/power');
		} catch (e) {
			$('.power-error').textContent = e.status === 404
				? 'This apid has no power balancer (GET /api/power answered 404).'
				: `Cannot load the balancer: ${e.message}`;
			throw e;
		}
		$('.power-error').textContent = '';
		render();
		el.dataset.loaded = 'true';
	}

	// ------------------------------------------------------------ chart

	el.querySelector('.seg[aria-label="Time range"]').addEventListener('change', (e) => {
		range = +e.target.value;
		historyPoll.now();
	});
	el.querySelector('[data-export]').addEventListener('click', (e) => {
		const [span, step] = RANGES[range];
		const to = Date.now();
		exportCsv(e.currentTarget, '/api/power/history' + query({ from: to - span * 1000, to, step, format: 'csv' }));
	});

	function cssColour(v) {
		const m = /^var\((--[\w-]+)\)$/.exec(v);
		return m ? getComputedStyle(el).getPropertyValue(m[1]).trim() || '#888' : v;
	}

	async function loadHistory() {
		const [span, step] = RANGES[range];
		const to = Date.now();
		const h = await get('/api/power/history' + query({ from: to - span * 1000, to, step }));
		const list = Array.isArray(h.series) ? h.series : [];
		const pts = (k) => list.map((s) => [s.ts, f.isNum(s[k]) ? s[k] : null]);
		// A line without any value (no generation from a manual budget, no
		// plant meter) stays out of the legend.
		const lines = [
			{ label: 'generation', color: 'var(--s1)', points: pts('generation_w') },
			{ label: 'available', color: 'var(--s2)', dash: true, points: pts('available_w') },
			{ label: 'target', color: 'var(--s4)', dash: true, points: pts('target_w') },
			{ label: 'estimate', color: 'var(--s5)', points: pts('estimate_w') },
			{ label: 'measured', color: 'var(--s6)', points: pts('measured_w') },
		].filter((s) => s.points.some((q) => q[1] !== null));
		// apid stamps each average with the start of its step.
		const t0 = Math.floor((to - span * 1000) / (step * 1000)) * step * 1000;
		chart.setData([lines.map((s) => ({ ...s, color: cssColour(s.color) }))], [t0, to]);
		$('.power-legend').innerHTML = lines.map((s) => `<span><i class="swatch${s.dash ? ' dash' : ''}" style="--c: ${s.color}"></i>${s.label}</span>`).join('') +
			`<span class="muted">average of each ${f.duration(step)}</span>`;
		el.dataset.history = String(list.length);
	}

	// ------------------------------------------------------------ plan

	$('input[name=plan-all]').addEventListener('change', (e) => {
		planAll = e.target.checked;
		if (plan)
			$('table.plan tbody').innerHTML = planRows(plan, planAll);
	});

	async function loadPlan() {
		plan = await get('/api/power/plan');
		$('.plan-head').innerHTML = planHead(plan);
		$('table.plan tbody').innerHTML = planRows(plan, planAll);
		el.dataset.plan = String((plan.miners || []).length);
	}

	// ------------------------------------------------------------ decisions

	$('table.decisions').addEventListener('toggle', (e) => {
		const d = e.target;
		if (d.tagName !== 'DETAILS')
			return;
		if (d.open)
			openDecisions.add(d.dataset.id);
		else
			openDecisions.delete(d.dataset.id);
	}, true);
	el.querySelector('.pager').addEventListener('click', (e) => {
		const b = e.target.closest('button[data-page]');
		if (!b || b.disabled)
			return;
		if (b.dataset.page === 'older' && nextBefore !== null) {
			newer.push(before);
			before = nextBefore;
		} else if (b.dataset.page === 'newer' && newer.length) {
			before = newer.pop();
		} else if (b.dataset.page === 'newest') {
			newer.length = 0;
			before = null;
		}
		pageMoved = true;
		logPoll.now();
	});

	async function loadDecisions() {
		const d = await get('/api/power/decisions' + query({ limit: DECISIONS_PAGE, before }));
		nextBefore = d.next_before ?? null;
		$('table.decisions tbody').innerHTML = decisionRows(d.decisions || [], openDecisions);
		$('.pager [data-page=older]').disabled = nextBefore === null;
		$('.pager [data-page=newer]').disabled = !newer.length;
		$('.pager [data-page=newest]').disabled = before === null;
	}

	// Only the newest page moves; an older one is read once, when paged to.
	async function pollDecisions() {
		if (!pageMoved && before !== null)
			return;
		pageMoved = false;
		await loadDecisions();
	}

	// ------------------------------------------------------------ readings

	$('input[name=refused-only]').addEventListener('change', (e) => {
		refusedOnly = e.target.checked;
		$('table.readings tbody').innerHTML = readingRows(readings, refusedOnly);
	});

	async function loadReadings() {
		const d = await get('/api/power/readings' + query({ limit: READINGS_SHOWN }));
		readings = d.readings || [];
		$('table.readings tbody').innerHTML = readingRows(readings, refusedOnly);
	}

	const statusPoll = poller(loadStatus, STATUS_MS);
	const historyPoll = poller(loadHistory, HISTORY_MS);
	const planPoll = poller(loadPlan, PLAN_MS);
	const logPoll = poller(pollDecisions, LOG_MS);
	const readingsPoll = poller(loadReadings, READINGS_MS);
	return {
		unmount() {
			statusPoll.stop();
			historyPoll.stop();
			planPoll.stop();
			logPoll.stop();
			readingsPoll.stop();
			chart.destroy();
		},
	};
}
