// One miner: what it is, its latest status, a chart of its history
// (GET /statuses), its hashboards, fans and a chip map per board from the
// latest telemetry sample laid out with the model's topology.

import { get, modelPath, mpath, query } from '../api.js';
import * as f from '../fmt.js';
import { TimeChart } from '../chart.js';
import { MODES, renderChipMaps } from '../chipmap.js';
import { setManaged, setUnlockPass } from '../actions.js';
import { askPassword, emptyRow, poller } from '../ui.js';

const DETAIL_MS = 5000;
const HISTORY_MS = 10000;
const TELEMETRY_MS = 15000;
const HISTORY_SIZES = [100, 300, 1000];

const th = (ghs) => (f.isNum(ghs) ? ghs / 1000 : null);

function tile(label, value, sub = '') {
	return `<div class="tile"><div class="tile-label">${f.esc(label)}</div>
		<div class="tile-value">${value}</div>${sub ? `<div class="tile-sub">${sub}</div>` : ''}</div>`;
}

function chainRows(chains) {
	if (!Array.isArray(chains) || !chains.length)
		return emptyRow(10, 'No hashboard data in the latest status.');
	return chains.map((c) => `<tr>
		<th scope="row">${f.esc(c.id ?? c.chain ?? '?')}</th>
		<td>${f.esc(c.state ?? '–')}</td>
		<td class="num">${f.hashrate(c.hr_rt_ghs ?? c.hr_realtime_ghs ?? c.hr_realtime)}</td>
		<td class="num">${f.isNum(c.freq_mhz ?? c.freq) ? f.num(c.freq_mhz ?? c.freq) + ' MHz' : '–'}</td>
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
	return list.slice(0, 25).map((s) => `<tr>
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

export function mount(el, params, ctx, id) {
	let mode = sessionStorage.getItem('powerhive.chipmode') || 'temp';
	let historySize = 300;
	let miner = null, topology = null, topoAlias = null, sample = null;

	el.innerHTML = `
	<nav class="crumbs"><a href="#/miners">← All miners</a></nav>
	<header class="detail-head">
		<h1><span class="mono">${f.esc(id)}</span> <span class="pill-slot"></span></h1>
		<div class="detail-ctl">
			<label class="switch-label"><span>Managed</span><span class="switch"><input type="checkbox"
				data-act="managed" aria-label="Managed ${f.esc(id)}"><span aria-hidden="true"></span></span></label>
			<button type="button" class="small-btn" data-act="pass">Unlock password…</button>
		</div>
	</header>
	<p class="identity muted"></p>
	<div class="detail-error" role="alert"></div>
	<section class="tiles" aria-label="Latest status"></section>
	<section class="card">
		<div class="card-head"><h2>History</h2>
			<label>Statuses <select name="hist">${HISTORY_SIZES.map((n) =>
				`<option ${n === historySize ? 'selected' : ''}>${n}</option>`).join('')}</select></label></div>
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
	let managedPending = false;

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
	$('button[data-act=pass]').addEventListener('click', () => {
		askPassword(id, !!miner?.has_unlock_pass, async (pass) => {
			await setUnlockPass(id, pass);
			detailPoll.now();
		});
	});
	$('select[name=hist]').addEventListener('change', (e) => {
		historySize = +e.target.value;
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
			? ` <span class="muted small state-time">for ${f.esc(f.duration(s.state_time))}</span>` : '');
		if (!managedPending)
			box.checked = !!m.managed;
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
			`first seen ${f.esc(f.when(m.first_seen ?? m.first_seen_ms))}`,
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
				topology = mo.topology || mo.model?.topology || null;
				topoAlias = miner.model;
				if (sample)
					renderChipMaps($('.chipmaps'), sample, topology, mode);
			} catch {
				topology = null;
			}
		}
		el.dataset.loaded = 'true';
	}

	async function loadHistory() {
		const data = await get(mpath(id) + '/statuses' + query({ limit: historySize, brief: 'true' }));
		const list = data.statuses || [];
		const pts = (key, scale = (v) => v) => list.map((s) => [f.statusTs(s),
			f.isNum(s[key]) ? scale(s[key]) : null]).reverse();
		const est = list.some((s) => s.power_metered === false);
		chart.setData([
			[{ label: 'realtime', color: 'var(--s1)', points: pts('hr_realtime_ghs', th) },
				{ label: 'average', color: 'var(--s2)', points: pts('hr_average_ghs', th) },
				{ label: 'nominal', color: 'var(--s3)', dash: true, points: pts('hr_nominal_ghs', th) }],
			[{ label: est ? 'power (estimated)' : 'power', color: 'var(--s4)', points: pts('power_w') }],
			[{ label: 'chip max', color: 'var(--s5)', points: pts('chip_temp_max') },
				{ label: 'PCB max', color: 'var(--s6)', points: pts('pcb_temp_max') }],
		].map((panel) => panel.map((s) => ({ ...s, color: cssColour(s.color) }))));
		$('table.statuses tbody').innerHTML = statusRows(list);
	}

	async function loadTelemetry() {
		const data = await get(mpath(id) + '/telemetry' + query({ limit: 1 }));
		sample = (data.samples || [])[0] || null;
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
	const historyPoll = poller(loadHistory, HISTORY_MS);
	const telemetryPoll = poller(loadTelemetry, TELEMETRY_MS);
	return {
		unmount() {
			detailPoll.stop();
			historyPoll.stop();
			telemetryPoll.stop();
			chart.destroy();
		},
	};
}
