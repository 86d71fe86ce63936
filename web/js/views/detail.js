// One miner: what it is, its latest status, its controls (set a preset,
// restart, pause or resume, reboot: POST /api/miners/{id}/actions) and the
// actions made on it with their live states (GET /api/actions?miner=), a
// chart of its history (its last statuses, GET /statuses, or a range of up
// to 30 days, GET /history), its hashboards, fans and a chip map
// per board from the latest telemetry sample laid out with the model's
// topology.

import { get, modelPath, mpath, query } from '../api.js';
import * as f from '../fmt.js';
import * as P from '../presets.js';
import { TimeChart } from '../chart.js';
import { MODES, renderChipMaps } from '../chipmap.js';
import { clearPowerExcluded, minerAction, reason, setManaged, setPinned, setUnlockPass } from '../actions.js';
import { askPassword, confirmAction, emptyRow, exportCsv, poller } from '../ui.js';
import { alertRow, onAck } from '../alerts.js';

const DETAIL_MS = 5000;
const ACTIONS_MS = 2000;
const HISTORY_MS = 10000;
const TELEMETRY_MS = 15000;
const HISTORY_SIZES = [100, 300, 1000];
// [value, span s, step s, label]: read from apid's roll-ups (GET …/history).
const HISTORY_RANGES = [['24h', 86400, 300, '24 hours'], ['7d', 7 * 86400, 3600, '7 days'],
	['30d', 30 * 86400, 3600, '30 days']];
const RECENT = 25;
const ACTIONS_SHOWN = 25;
const ALERTS_MS = 5000;
const ALERTS_SHOWN = 20;

const th = (ghs) => (f.isNum(ghs) ? ghs / 1000 : null);

function tile(label, value, sub = '') {
	return `<div class="tile"><div class="tile-label">${f.esc(label)}</div>
		<div class="tile-value">${value}</div>${sub ? `<div class="tile-sub">${sub}</div>` : ''}</div>`;
}

function chainRows(chains) {
	if (!Array.isArray(chains) || !chains.length)
		return emptyRow(10, 'No hashboard data in the latest status.');
	return chains.map((c) => `<tr>
		<th scope="row">${f.esc(c.id)}</th>
		<td>${f.esc(c.state ?? '–')}</td>
		<td class="num">${f.hashrate(c.hr_rt_ghs)}</td>
		<td class="num">${f.isNum(c.freq_mhz) ? f.num(c.freq_mhz) + ' MHz' : '–'}</td>
		<td class="num">${f.isNum(c.voltage) ? f.num(c.voltage / 1000, 2) + ' V' : '–'}</td>
		<td class="num">${f.temp(c.chip_temp_max)}</td>
		<td class="num">${f.temp(c.pcb_temp_max)}</td>
		<td class="num">${f.num(c.red)}&nbsp;/&nbsp;${f.num(c.orange)}&nbsp;/&nbsp;${f.num(c.grey)}</td>
		<td class="num">${f.num(c.hw_errors)}</td>
	</tr>`).join('');
}

function fanList(s) {
	const rpm = f.fanRpms(s?.fans);
	if (!rpm.length)
		return '<p class="muted">No fan readings.</p>';
	return `<ul class="fans">${rpm.map((r, i) => `<li><span>Fan ${i + 1}</span>
		<meter min="0" max="7000" value="${r}" aria-label="Fan ${i + 1}"></meter>
		<span class="num">${f.num(r)} rpm</span></li>`).join('')}</ul>
		${f.isNum(s.fan_duty) ? `<p>Duty: <strong>${f.num(s.fan_duty)}%</strong></p>` : ''}`;
}

function statusRows(list) {
	if (!list.length)
		return emptyRow(8, 'No status stored yet.');
	return list.slice(0, RECENT).map((s) => `<tr>
		<td title="${f.esc(f.when(f.statusTs(s)))}">${f.esc(f.when(f.statusTs(s)).slice(11))}</td>
		<td>${f.esc(f.stateLabel(s.state))}</td>
		<td>${f.esc(s.preset ?? '–')}</td>
		<td class="num">${f.hashrate(s.hr_realtime_ghs)}</td>
		<td class="num">${f.hashrate(s.hr_average_ghs)}</td>
		<td class="num">${f.power(s.power_w)}${s.power_metered === false ? ' <abbr title="estimated">est.</abbr>' : ''}</td>
		<td class="num">${f.temp(s.chip_temp_max)}</td>
		<td class="num">${f.fans(s)}</td>
	</tr>`).join('');
}

function errorRows(list) {
	if (!Array.isArray(list) || !list.length)
		return emptyRow(4, 'No errors recorded.');
	return list.map((e) => `<tr>
		<td title="${f.esc(f.when(e.ts))}">${f.esc(f.ago(e.ts))}</td>
		<td>${f.esc(e.op ?? '')}</td>
		<td>${f.esc(e.kind ?? '')}${f.isNum(e.http_status) && e.http_status ? ` (${e.http_status})` : ''}</td>
		<td>${f.esc(e.message ?? '')}</td></tr>`).join('');
}

// The catalogue as this miner may use it: the running preset, the model's
// max preset, and presets above it refused while the miner is managed
// (apid refuses them with 409; the button says why before it is pressed).
function presetRows(m, presets, requested) {
	if (!presets.length)
		return emptyRow(7, m.model ? 'No presets known for this model yet: discovery reads them from its miners.'
			: 'The model of this miner is not known yet.');
	const limit = P.limitOf(presets, m.max_preset);
	const running = m.status ? m.status.preset : null;
	return P.sorted(presets).map((p) => {
		const above = P.isAbove(p, limit);
		const refused = above && m.managed;
		const notes = [];
		if (p.name === running)
			notes.push('<strong>running</strong>');
		if (p.name === requested)
			notes.push('<strong>requested</strong>');
		if (limit && p.name === limit.name)
			notes.push('<strong>max preset</strong>');
		if (refused)
			notes.push(`<span class="warn-text">above the max preset ${f.esc(limit.name)}: refused while managed</span>`);
		else if (above)
			notes.push('above the max preset (allowed: not managed)');
		const noteId = `preset-note-${f.esc(p.name)}`;
		return `<tr data-preset="${f.esc(p.name)}" class="${refused ? 'refused' : ''}${limit && p.name === limit.name ? ' is-max' : ''}${p.name === running ? ' is-running' : ''}">
			<th scope="row" class="mono">${f.esc(p.name)}</th>
			<td class="pretty">${f.esc(p.pretty)}</td>
			<td class="num">${P.watts(p)}</td>
			<td class="num">${P.th(p)}</td>
			<td class="num">${P.jth(p)}</td>
			<td class="small" id="${noteId}">${notes.join(' · ')}</td>
			<td class="ctl"><button type="button" class="small-btn" data-needs="operator" data-preset="${f.esc(p.name)}"
				aria-label="Set preset ${f.esc(p.name)}" aria-describedby="${noteId}"
				${refused || p.name === running ? 'disabled' : ''}>Set</button></td></tr>`;
	}).join('');
}

// Newest first: when, what (and why, for the enforcer's), who, the state
// and when it last changed (how many sends when more than one), and the
// error of one that failed or expired.
function actionRows(list) {
	if (!list.length)
		return emptyRow(4, 'No action made on this miner yet.');
	return list.map((a) => `<tr data-id="${a.id}" data-state="${f.esc(a.state)}">
		<td title="${f.esc(f.when(a.created))}">${f.esc(f.when(a.created).slice(11))}</td>
		<td class="what">${f.esc(f.actionText(a.action, a.preset))}${a.reason ? `<div class="muted small">${f.esc(a.reason)}</div>` : ''}</td>
		<td>${f.esc(a.actor)}</td>
		<td class="state" title="${f.esc(`last change ${f.when(a.updated)}; sent ${a.sends} time${a.sends === 1 ? '' : 's'}`)}">${f.actionPillHtml(a.state)}
			<span class="muted small">${f.esc(f.ago(a.updated))}${a.sends > 1 ? ` · sent ${a.sends}×` : ''}</span>
			${a.error ? `<div class="err-text small">${f.esc(a.error.kind)}: ${f.esc(a.error.message)}</div>` : ''}</td>
	</tr>`).join('');
}

export function mount(el, params, ctx, id) {
	let mode = sessionStorage.getItem('powerhive.chipmode') || 'temp';
	let historySize = '300';       // a count of statuses, or a HISTORY_RANGES value
	let miner = null, topology = null, topoAlias = null, sample = null;
	let presets = [];              // the model's catalogue
	let actions = [];              // this miner's latest actions, newest first
	let acting = false;            // a POST in flight
	let presetKey = '';            // what the preset table shows now

	el.innerHTML = `
	<nav class="crumbs"><a href="#/miners">← All miners</a></nav>
	<header class="detail-head">
		<h1><span class="mono">${f.esc(id)}</span> <span class="pill-slot"></span></h1>
		<div class="detail-ctl">
			<label class="switch-label" data-needs="operator"><span>Managed</span><span class="switch"><input type="checkbox"
				data-act="managed" aria-label="Managed ${f.esc(id)}"><span aria-hidden="true"></span></span></label>
			<label class="switch-label pinned-label" data-needs="admin" hidden title="A pinned miner is left out of the power plan: the balancer does not change its preset, and it counts as fixed load."><span>Pinned</span><span class="switch"><input type="checkbox"
				data-act="pinned" aria-label="Pinned ${f.esc(id)}"><span aria-hidden="true"></span></span></label>
			<button type="button" class="small-btn" data-act="pass" data-needs="admin">Unlock password…</button>
		</div>
	</header>
	<p class="identity muted"></p>
	<div class="detail-error" role="alert"></div>
	<section class="tiles" aria-label="Latest status"></section>
	<div class="conflict" role="status" hidden></div>
	<div class="excluded" role="status" hidden><strong>Left out of the power plan</strong>:
		<span class="excluded-reason"></span>. It did not reach the preset the balancer sent it, so the balancer
		leaves it alone and counts it as fixed load until it is taken back.
		<button type="button" class="small-btn" data-act="unexclude" data-needs="operator">Clear</button></div>
	<section class="card miner-alerts" aria-labelledby="alerts-h">
		<div class="card-head"><h2 id="alerts-h">Alerts</h2><a class="small" href="#/alerts">All alerts</a></div>
		<div class="table-wrap"><table class="alerts"><thead><tr><th scope="col">Started</th>
		<th scope="col">Lasted</th><th scope="col">Rule</th><th scope="col">Summary</th><th scope="col">State</th>
		<th scope="col"><span class="visually-hidden">Acknowledge</span></th></tr></thead>
		<tbody>${emptyRow(6, 'Loading…')}</tbody></table></div>
	</section>
	<div class="cols control-cols">
		<section class="card grow control" aria-labelledby="control-h">
			<div class="card-head"><h2 id="control-h">Control</h2>
				<div class="btnrow" data-needs="operator">
					<button type="button" class="small-btn" data-do="restart">Restart mining</button>
					<button type="button" class="small-btn" data-do="pause">Pause</button>
					<button type="button" class="small-btn" data-do="resume" hidden>Resume</button>
					<button type="button" class="small-btn danger" data-do="reboot">Reboot…</button>
				</div></div>
			<p class="control-note muted small"></p>
			<p class="control-error form-error" role="alert"></p>
			<div class="table-wrap presets-wrap"><table class="presets pick">
				<caption class="visually-hidden">Presets of this miner's model</caption>
				<thead><tr><th scope="col">Preset</th><th scope="col">Name</th>
				<th scope="col" class="num">Expected power</th><th scope="col" class="num">Expected hashrate</th>
				<th scope="col" class="num">J/TH</th><th scope="col">Note</th><th scope="col"><span class="visually-hidden">Set</span></th></tr></thead>
				<tbody>${emptyRow(7, 'Loading the presets…')}</tbody></table></div>
		</section>
		<section class="card grow" aria-labelledby="actions-h"><h2 id="actions-h">Actions</h2>
			<div class="table-wrap actions-wrap"><table class="actions"><thead><tr><th scope="col">Requested</th>
			<th scope="col">Action</th><th scope="col">By</th><th scope="col">State</th></tr></thead>
			<tbody>${emptyRow(4, 'Loading…')}</tbody></table></div>
		</section>
	</div>
	<section class="card">
		<div class="card-head"><h2>History</h2>
			<div class="btnrow"><label>Show <select name="hist">${HISTORY_SIZES.map((n) =>
				`<option value="${n}" ${String(n) === historySize ? 'selected' : ''}>last ${n} statuses</option>`).join('')}
				${HISTORY_RANGES.map(([v, , , label]) => `<option value="${v}">${label}</option>`).join('')}</select></label>
			<button type="button" class="small-btn" data-export="csv"
				title="The statuses the chart shows, newest first, as a CSV file">Export CSV</button></div></div>
		<canvas class="chart" role="img" aria-label="No history yet."></canvas>
	</section>
	<div class="cols">
		<section class="card grow"><h2>Hashboards</h2>
			<div class="table-wrap"><table class="chains"><thead><tr><th scope="col">Board</th><th scope="col">State</th>
			<th scope="col" class="num">Hashrate</th><th scope="col" class="num">Frequency</th><th scope="col" class="num">Voltage</th>
			<th scope="col" class="num">Chip temp</th><th scope="col" class="num">PCB temp</th>
			<th scope="col" class="num"><abbr title="chips graded red / orange / grey">R / O / G</abbr></th>
			<th scope="col" class="num">HW errors</th></tr></thead><tbody></tbody></table></div>
		</section>
		<section class="card"><h2>Fans</h2><div class="fanbox"></div></section>
	</div>
	<section class="card">
		<div class="card-head"><h2>Chip map</h2>
			<div class="seg" role="radiogroup" aria-label="Colour chips by">${MODES.map(([k, label]) =>
				`<label><input type="radio" name="chipmode" value="${k}" ${k === mode ? 'checked' : ''}>${label}</label>`).join('')}
			</div></div>
		<p class="muted small sample-time"></p>
		<div class="chipmaps"></div>
	</section>
	<div class="cols">
		<section class="card grow"><h2>Recent statuses</h2>
			<div class="table-wrap"><table class="statuses"><thead><tr><th scope="col">Time</th><th scope="col">State</th>
			<th scope="col">Preset</th><th scope="col" class="num">Hashrate</th><th scope="col" class="num">Average</th>
			<th scope="col" class="num">Power</th><th scope="col" class="num">Chip temp</th><th scope="col" class="num">Fans</th>
			</tr></thead><tbody></tbody></table></div></section>
		<section class="card grow"><h2>Recent errors</h2>
			<div class="table-wrap"><table class="errors"><thead><tr><th scope="col">When</th><th scope="col">Operation</th>
			<th scope="col">Kind</th><th scope="col">Message</th></tr></thead><tbody></tbody></table></div></section>
	</div>`;

	const $ = (s) => el.querySelector(s);
	const chart = new TimeChart($('canvas.chart'), [
		{ title: 'Hashrate', fmt: (v, dp) => f.num(v, dp ?? 2) + ' TH/s' },
		{ title: 'Power', fmt: (v, dp) => (dp === undefined ? f.power(v) : f.num(v, dp) + ' W') },
		{ title: 'Temperature', fmt: (v, dp) => f.num(v, dp ?? 0) + ' °C' },
	]);
	const box = $('input[data-act=managed]');
	const pinBox = $('input[data-act=pinned]');
	let managedPending = false, pinnedPending = false;

	box.addEventListener('change', async () => {
		const want = box.checked;
		managedPending = true;
		box.disabled = true;
		try {
			miner = { ...miner, ...(await setManaged(id, want)) };
		} catch {
			box.checked = !want;
		} finally {
			managedPending = false;
			box.disabled = false;
		}
	});
	pinBox.addEventListener('change', async () => {
		const want = pinBox.checked;
		pinnedPending = true;
		pinBox.disabled = true;
		try {
			miner = { ...miner, ...(await setPinned(id, want)) };
			renderMiner(miner);
		} catch {
			pinBox.checked = !want;
		} finally {
			pinnedPending = false;
			pinBox.disabled = false;
		}
	});
	$('button[data-act=unexclude]').addEventListener('click', async (e) => {
		e.target.disabled = true;
		try {
			miner = { ...miner, ...(await clearPowerExcluded(id)) };
			renderMiner(miner);
		} catch {
			/* told in a notice */
		} finally {
			e.target.disabled = false;
		}
	});
	$('button[data-act=pass]').addEventListener('click', () => {
		askPassword(id, !!miner?.has_unlock_pass, async (pass) => {
			await setUnlockPass(id, pass);
			detailPoll.now();
		});
	});
	// Every action goes to the API as it is; a refusal stays on the card
	// (and in a notice) in the API's words.
	async function act(action, preset) {
		const err = $('.control-error');
		acting = true;
		renderControl();
		try {
			await minerAction(id, action, preset);
			err.textContent = '';
		} catch (e) {
			err.textContent = `${f.actionText(action, preset)} refused: ${reason(e)}`;
		} finally {
			acting = false;
			renderControl();
			actionsPoll.now();
		}
	}
	$('.control').addEventListener('click', async (e) => {
		const b = e.target.closest('button[data-do], button[data-preset]');
		if (!b || b.disabled)
			return;
		if (b.dataset.preset !== undefined)
			return act('set_preset', b.dataset.preset);
		const action = b.dataset.do;
		if (action === 'reboot' && !(await confirmAction(`Reboot ${id}?`,
			'The miner restarts its controller: it stops hashing and cannot be reached until it has booted again.',
			'Reboot')))
			return;
		return act(action);
	});
	$('[data-export]').addEventListener('click', (e) => exportCsv(e.currentTarget,
		mpath(id) + '/statuses' + query({ limit: historySize, format: 'csv' })));
	$('select[name=hist]').addEventListener('change', (e) => {
		historySize = e.target.value;
		// The CSV holds statuses as polled: a range comes from roll-ups.
		const exp = $('[data-export]');
		exp.disabled = !HISTORY_SIZES.includes(+historySize);
		exp.title = exp.disabled ? 'The CSV export holds statuses as polled: choose a number of statuses'
			: 'The statuses the chart shows, newest first, as a CSV file';
		historyPoll.now();
	});
	$('.seg').addEventListener('change', (e) => {
		mode = e.target.value;
		sessionStorage.setItem('powerhive.chipmode', mode);
		renderChipMaps($('.chipmaps'), sample, topology, mode);
	});

	function renderMiner(m) {
		const s = m.status;
		$('.pill-slot').innerHTML = f.pillHtml(m) + (m.online && s && f.isNum(s.state_time)
			? ` <span class="muted small state-time">for ${f.esc(f.duration(s.state_time))}</span>` : '') +
			(m.conflict ? ' <span class="pill pill-bad conflict-pill">Conflict</span>' : '');
		const cf = $('.conflict');
		cf.hidden = !m.conflict;
		cf.innerHTML = m.conflict ? `<strong>Conflict</strong> since ${f.esc(f.when(m.conflict.since))}
			(${f.esc(f.ago(m.conflict.since))}): <span class="conflict-reason">${f.esc(m.conflict.reason)}</span>.
			Something outside PowerHive keeps raising this miner's preset; PowerHive makes no more
			corrections than <code>control.max_corrections_per_hour</code> allows in an hour. The flag
			clears when the miner is seen within its model's max preset with no correction in the last hour.` : '';
		if (!managedPending)
			box.checked = !!m.managed;
		// The power balancer's fields (an apid without a balancer has none).
		$('.pinned-label').hidden = typeof m.pinned !== 'boolean';
		if (!pinnedPending)
			pinBox.checked = !!m.pinned;
		const ex = $('.excluded');
		ex.hidden = !m.power_excluded;
		$('.excluded-reason').textContent = typeof m.power_excluded === 'string' ? m.power_excluded
			: m.power_excluded ? 'flagged by the balancer' : '';
		$('button[data-act=pass]').textContent = m.has_unlock_pass ? 'Change unlock password…'
			: 'Set unlock password…';
		const ip = m.online && m.ip ? `<span class="mono">${f.esc(m.ip)}</span>`
			: `<span class="mono muted" title="last known address">${f.esc(m.last_ip || '–')}</span> (offline)`;
		const ident = [
			ip,
			f.esc(m.model_name || m.miner_name || m.model || 'unknown model'),
			m.hostname ? `host ${f.esc(m.hostname)}` : '',
			m.fw_name ? `${f.esc(m.fw_name)} ${f.esc(m.fw_version || '')}` : '',
			m.has_api_key ? 'API key provisioned' : '<strong>no API key yet</strong>',
			`first seen ${f.esc(f.when(m.first_seen))}`,
		].filter(Boolean);
		$('.identity').innerHTML = ident.join(' · ');
		const metered = s?.power_metered !== false;
		$('.tiles').innerHTML = [
			tile('Hashrate', f.hashrate(s?.hr_realtime_ghs),
				`avg ${f.hashrate(s?.hr_average_ghs)} · nominal ${f.hashrate(s?.hr_nominal_ghs)}`),
			tile('Power', (metered ? '' : '≈') + f.power(s?.power_w),
				s ? (metered ? 'metered' : 'estimated from the preset') : ''),
			tile('Chip temp', f.temp(s?.chip_temp_max), `PCB ${f.temp(s?.pcb_temp_max)}`),
			tile('Fans', f.rpmRange(f.fanRpms(s?.fans)), s && f.isNum(s.fan_duty) ? `duty ${f.num(s.fan_duty)}% · ${f.fanRpms(s.fans).length} fans` : ''),
			tile('Preset', f.esc(s?.preset ?? '–'),
				m.max_preset ? `model limit ${f.esc(m.max_preset)}` : 'no model limit'),
			tile('Last seen', f.esc(f.ago(f.lastSeen(m))), f.esc(f.when(f.lastSeen(m)))),
			tile('HW errors', f.num(s?.hw_errors)),
			s?.pools && typeof s.pools === 'object' && !Array.isArray(s.pools)
				? tile('Pools', `${f.num(s.pools.working)} / ${f.num(s.pools.total)} working`,
					f.esc(s.pools.url || '')) : '',
		].join('');
		$('table.chains tbody').innerHTML = chainRows(s?.chains);
		$('.fanbox').innerHTML = fanList(s);
		$('table.errors tbody').innerHTML = errorRows(m.errors);
		renderControl();
	}

	// The buttons that apply now, and the catalogue; the table is redrawn
	// only when what it shows changes, so a button keeps its focus.
	function renderControl() {
		if (!miner)
			return;
		const m = miner, s = m.status;
		const isPaused = f.paused(s);
		const stopped = s && s.state === 'stopped' && !isPaused;
		const pause = $('button[data-do=pause]'), resume = $('button[data-do=resume]');
		pause.hidden = isPaused;
		resume.hidden = !isPaused;
		for (const b of $('.control .btnrow').querySelectorAll('button'))
			b.disabled = acting;
		if (stopped) {
			pause.disabled = true;
			pause.title = 'The miner is stopped, not paused: Restart mining starts it.';
		} else {
			pause.removeAttribute('title');
		}
		const limit = P.limitOf(presets, m.max_preset);
		const notes = [];
		if (!m.online)
			notes.push('Offline: PowerHive cannot reach this miner now.');
		else if (!m.has_api_key)
			notes.push('No API key yet: PowerHive cannot control this miner until discovery provisions one.');
		if (m.max_preset === null)
			notes.push(`No max preset for ${f.esc(m.model || 'this model')}: any preset may be set.`);
		else
			notes.push(`Max preset of ${f.esc(m.model)}: <strong>${f.esc(m.max_preset)}</strong>${limit && f.isNum(limit.watts) ? ` (${P.watts(limit)})` : ''}` +
				(m.managed ? '; presets above it are refused while the miner is managed.'
					: '; the miner is not managed, so presets above it may be set by hand.'));
		if (ctx.power?.()?.mode === 'on' && m.managed && !m.pinned)
			notes.push('<strong>Power balancing is on</strong>: the balancer sets this managed miner\'s preset, and a preset, ' +
				'pause or resume by hand is refused; pin it to take it out of the plan.');
		$('.control-note').innerHTML = notes.join(' ');
		const open = actions.find((a) => a.action === 'set_preset' && f.actionOpen(a.state));
		const requested = open ? open.preset : null;
		const key = JSON.stringify([presets.length, m.max_preset, m.managed, s ? s.preset : null,
			requested, acting]);
		if (key === presetKey)
			return;
		presetKey = key;
		const tbody = $('table.pick tbody');
		const focused = tbody.contains(document.activeElement) ? document.activeElement.dataset.preset : null;
		const first = !tbody.querySelector('tr[data-preset]');
		tbody.innerHTML = presetRows(m, presets, requested);
		// The first time: the running preset in view, its neighbours around it.
		const run = first && tbody.querySelector('tr.is-running');
		if (run) {
			const wrap = $('.presets-wrap');
			wrap.scrollTop = Math.max(0, run.offsetTop - wrap.clientHeight / 2);
		}
		if (acting)
			for (const b of tbody.querySelectorAll('button'))
				b.disabled = true;
		if (focused !== null)
			tbody.querySelector(`button[data-preset="${CSS.escape(focused)}"]`)?.focus();
	}

	async function loadDetail() {
		try {
			miner = await get(mpath(id));
		} catch (e) {
			$('.detail-error').textContent = e.status === 404
				? `There is no miner ${id}.` : `Cannot load this miner: ${e.message}`;
			throw e;
		}
		$('.detail-error').textContent = '';
		renderMiner(miner);
		if (miner.model && miner.model !== topoAlias) {
			try {
				const mo = await get(modelPath(miner.model));
				topology = mo.topology;
				presets = mo.presets;
				topoAlias = miner.model;
				renderControl();
				if (sample)
					renderChipMaps($('.chipmaps'), sample, topology, mode);
			} catch {
				topology = null;
			}
		}
		el.dataset.loaded = 'true';
	}

	async function loadActions() {
		const data = await get('/api/actions' + query({ miner: id, limit: ACTIONS_SHOWN }));
		actions = data.actions;
		$('table.actions tbody').innerHTML = actionRows(actions);
		renderControl();
	}

	async function loadHistory() {
		const range = HISTORY_RANGES.find((r) => r[0] === historySize);
		if (range)
			return loadRange(range);
		const data = await get(mpath(id) + '/statuses' + query({ limit: historySize, brief: 'true' }));
		const list = data.statuses;
		const pts = (key, scale = (v) => v) => list.map((s) => [f.statusTs(s),
			f.isNum(s[key]) ? scale(s[key]) : null]).reverse();
		const est = list.some((s) => s.power_metered === false);
		chart.noun = 'statuses';
		drawHistory(pts, est);
		$('table.statuses tbody').innerHTML = statusRows(list);
	}

	// A range: one point per step, each the mean of the statuses in it,
	// from the raw rows and apid's per-minute and per-hour roll-ups.
	async function loadRange([, span, step]) {
		const to = Date.now();
		const [h, recent] = await Promise.all([
			get(mpath(id) + '/history' + query({ from: to - span * 1000, to, step })),
			get(mpath(id) + '/statuses' + query({ limit: RECENT, brief: 'true' })),
		]);
		const pts = (key, scale = (v) => v) => h.points.map((p) => [p.ts,
			f.isNum(p[key]) ? scale(p[key]) : null]);
		chart.noun = 'points';
		drawHistory(pts, h.points.some((p) => p.power_metered === false),
			[Math.floor((to - span * 1000) / (step * 1000)) * step * 1000, to]);
		$('table.statuses tbody').innerHTML = statusRows(recent.statuses);
	}

	function drawHistory(pts, est, span) {
		chart.setData([
			[{ label: 'realtime', color: 'var(--s1)', points: pts('hr_realtime_ghs', th) },
				{ label: 'average', color: 'var(--s2)', points: pts('hr_average_ghs', th) },
				{ label: 'nominal', color: 'var(--s3)', dash: true, points: pts('hr_nominal_ghs', th) }],
			[{ label: est ? 'power (estimated)' : 'power', color: 'var(--s4)', points: pts('power_w') }],
			[{ label: 'chip max', color: 'var(--s5)', points: pts('chip_temp_max') },
				{ label: 'PCB max', color: 'var(--s6)', points: pts('pcb_temp_max') }],
		].map((panel) => panel.map((s) => ({ ...s, color: cssColour(s.color) }))), span);
	}

	// Its alerts, firing and resolved, newest first (GET /api/alerts?miner=).
	async function loadAlerts() {
		const tb = $('table.alerts tbody');
		let data;
		try {
			data = await get('/api/alerts' + query({ miner: miner?.mac || id, limit: ALERTS_SHOWN }));
		} catch (e) {
			if (e.kind === 'auth')
				throw e;
			tb.innerHTML = emptyRow(6, `Alerts unavailable: ${e.message}`);
			return;
		}
		const list = data.alerts;
		tb.innerHTML = list.length ? list.map((a) => alertRow(a, { ended: true, subject: false })).join('')
			: emptyRow(6, 'No alert on this miner.');
		$('.miner-alerts').classList.toggle('has-firing', list.some((a) => a.state === 'firing'));
	}

	async function loadTelemetry() {
		const data = await get(mpath(id) + '/telemetry' + query({ limit: 1 }));
		sample = data.samples[0] || null;
		$('.sample-time').textContent = sample
			? `Sample of ${f.when(sample.ts)} (${f.ago(sample.ts)}).` : '';
		renderChipMaps($('.chipmaps'), sample, topology, mode);
		el.dataset.chipmap = sample ? 'true' : 'false';
	}

	function cssColour(v) {
		const m = /^var\((--[\w-]+)\)$/.exec(v);
		return m ? getComputedStyle(el).getPropertyValue(m[1]).trim() || '#888' : v;
	}

	const detailPoll = poller(loadDetail, DETAIL_MS);
	const actionsPoll = poller(loadActions, ACTIONS_MS);
	const historyPoll = poller(loadHistory, HISTORY_MS);
	const telemetryPoll = poller(loadTelemetry, TELEMETRY_MS);
	const alertsPoll = poller(loadAlerts, ALERTS_MS);
	onAck($('table.alerts'), () => alertsPoll.now());
	return {
		unmount() {
			alertsPoll.stop();
			detailPoll.stop();
			actionsPoll.stop();
			historyPoll.stop();
			telemetryPoll.stop();
			chart.destroy();
		},
	};
}
