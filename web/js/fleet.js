// fleet — the fleet's totals over time on the miners view (GET
// /api/fleet/history): hashrate and power of the whole fleet and of each
// model, miners online and mining; apid stores them per minute and per
// hour, so 30 days cost as little as 6 hours.

import { get, query } from './api.js';
import * as f from './fmt.js';
import { TimeChart } from './chart.js';
import { exportCsv, poller } from './ui.js';

// [span s, step s, label]: 240–720 points each.
const RANGES = [[6 * 3600, 60, '6 h'], [86400, 300, '24 h'], [7 * 86400, 900, '7 d'],
	[30 * 86400, 3600, '30 d']];
const REFRESH_MS = 30000;
const MODEL_COLOURS = ['--s2', '--s4', '--s6', '--s3', '--s5'];

export function mountFleetChart(el) {
	let range = +(sessionStorage.getItem('powerhive.fleetrange') || 1);
	if (!RANGES[range])
		range = 1;
	el.innerHTML = `
		<div class="card-head"><h2 id="fleet-h">Fleet over time</h2>
			<div class="btnrow"><div class="seg" role="radiogroup" aria-label="Fleet time range">${RANGES.map(([, , label], i) =>
				`<label><input type="radio" name="fleet-range" value="${i}" ${i === range ? 'checked' : ''}>${label}</label>`).join('')}</div>
			<button type="button" class="small-btn" data-export="fleet-csv"
				title="The fleet's and each model's averages the chart shows, as a CSV file">Export CSV</button></div></div>
		<canvas class="chart fleet-chart" role="img" aria-label="No history yet."></canvas>
		<p class="legend fleet-legend"></p>`;
	const colour = (v) => getComputedStyle(el).getPropertyValue(v).trim() || '#888';
	// The axes' units follow the fleet's size (a label must fit the margin):
	// [divisor of GH/s or W, unit].
	let hrUnit = [1000, 'TH/s'], pwUnit = [1000, 'kW'];
	const chart = new TimeChart(el.querySelector('canvas'), [
		{ title: 'Hashrate', fmt: (v, dp) => (dp === undefined ? f.hashrate(v * hrUnit[0]) : f.num(v, dp) + ' ' + hrUnit[1]) },
		{ title: 'Power', fmt: (v, dp) => (dp === undefined ? f.power(v * pwUnit[0]) : f.num(v, dp) + ' ' + pwUnit[1]) },
		{ title: 'Miners', fmt: (v, dp) => f.num(v, dp ?? 0) },
	], { noun: 'points', height: 90, legend: false });

	el.querySelector('.seg').addEventListener('change', (e) => {
		range = +e.target.value;
		sessionStorage.setItem('powerhive.fleetrange', String(range));
		poll.now();
	});
	el.querySelector('[data-export]').addEventListener('click', (e) => {
		const [span, step] = RANGES[range];
		const to = Date.now();
		exportCsv(e.currentTarget, '/api/fleet/history' + query({ from: to - span * 1000, to, step, format: 'csv' }));
	});

	async function load() {
		const [span, step] = RANGES[range];
		const to = Date.now();
		const h = await get('/api/fleet/history' + query({ from: to - span * 1000, to, step }));
		const list = Array.isArray(h.points) ? h.points : [];
		const pts = (pick) => list.map((p) => [p.ts, f.isNum(pick(p)) ? pick(p) : null]);
		// The models seen in the range, the biggest first; one line each
		// when there is more than one.
		const seen = new Map();
		for (const p of list)
			for (const [m, v] of Object.entries(p.models || {}))
				seen.set(m, Math.max(seen.get(m) || 0, v.hashrate_ghs || 0));
		const models = [...seen.keys()].sort((a, b) => seen.get(b) - seen.get(a))
			.slice(0, MODEL_COLOURS.length);
		const byModel = models.length > 1 ? models : [];
		const most = (k) => Math.max(0, ...list.map((p) => p[k] || 0));
		hrUnit = most('hashrate_ghs') >= 1e6 ? [1e6, 'PH/s'] : [1000, 'TH/s'];
		pwUnit = most('power_w') >= 1e6 ? [1e6, 'MW'] : [1000, 'kW'];
		const modelLines = (key, scale) => byModel.map((m, i) => ({
			label: m === '?' ? 'unknown model' : m, color: colour(MODEL_COLOURS[i]),
			points: pts((p) => (p.models?.[m] ? p.models[m][key] / scale : 0)),
		}));
		chart.setData([
			[{ label: 'fleet', color: colour('--s1'), points: pts((p) => p.hashrate_ghs / hrUnit[0]) },
				...modelLines('hashrate_ghs', hrUnit[0])],
			[{ label: 'fleet', color: colour('--s1'), points: pts((p) => p.power_w / pwUnit[0]) },
				...modelLines('power_w', pwUnit[0])],
			[{ label: 'online', color: colour('--s1'), points: pts((p) => p.online) },
				{ label: 'mining', color: colour('--s2'), dash: true, points: pts((p) => p.mining) }],
		], [Math.floor((to - span * 1000) / (step * 1000)) * step * 1000, to]);
		const sw = (label, c, dash) => `<span><i class="swatch${dash ? ' dash' : ''}" style="--c: ${c}"></i>${f.esc(label)}</span>`;
		el.querySelector('.fleet-legend').innerHTML = sw('fleet (online)', 'var(--s1)') +
			byModel.map((m, i) => sw(m === '?' ? 'unknown model' : m, `var(${MODEL_COLOURS[i]})`)).join('') +
			sw('mining', 'var(--s2)', true) +
			`<span class="muted">average of each ${f.esc(f.duration(step))}</span>`;
		el.dataset.points = String(list.length);
	}

	const poll = poller(load, REFRESH_MS);
	return {
		unmount() {
			poll.stop();
			chart.destroy();
		},
	};
}
