// Suite health (GET /api/health): daemons and their heartbeats, workers
// connected, queues, events received / stored / lost per source, the last
// discovery sweep of each subnet. Fields this view does not know are still
// shown, under "Everything else".

import { get } from '../api.js';
import * as f from '../fmt.js';
import * as H from '../health.js';
import { emptyRow, poller } from '../ui.js';

const REFRESH_MS = 5000;
const SHOWN = new Set(['daemons', 'sweeps']);

function counters(c) {
	if (!c || typeof c !== 'object')
		return '';
	return Object.entries(c).map(([k, v]) => `${f.esc(k)}=${f.esc(typeof v === 'object' ? JSON.stringify(v) : v)}`).join(' ');
}

function daemonRows(h, now) {
	const list = h.daemons;
	if (!list.length)
		return emptyRow(8, 'No heartbeat received yet.');
	return list.map((d) => {
		const ok = H.alive(d);
		// Said goodbye (stopped on purpose): not a dead one.
		const stopped = !ok && typeof d.stopped_ms === 'number';
		const pill = stopped ? ['off', 'stopped'] : ok ? ['ok', 'alive'] : ['bad', 'silent'];
		const t = now - d.heartbeat_age_ms;
		return `<tr class="${ok || stopped ? '' : 'dead'}">
			<td>${f.esc(d.daemon)}</td>
			<td>${f.esc(d.host)}</td>
			<td class="num">${f.esc(d.pid)}</td>
			<td><span class="pill pill-${pill[0]}">${pill[1]}</span></td>
			<td title="${f.esc(f.when(t))}">${f.esc(f.ago(t, now))}</td>
			<td class="num">${f.num(d.in_flight)}</td>
			<td class="num">${f.isNum(d.latency_ms) ? f.num(d.latency_ms) + ' ms' : '–'}</td>
			<td class="small mono counters">${counters(d.counters)}</td></tr>`;
	}).join('');
}

function sweepRows(h, now) {
	const list = h.sweeps;
	if (!list.length)
		return emptyRow(6, 'No discovery sweep finished yet.');
	return list.map((s) => {
		const t = now - s.age_ms;
		return `<tr><td class="mono">${f.esc(s.subnet)}</td>
			<td title="${f.esc(f.when(t))}">${f.esc(f.ago(t, now))}</td>
			<td class="num">${f.isNum(s.duration_ms) ? f.num(s.duration_ms / 1000, 1) + ' s' : '–'}</td>
			<td class="num">${f.num(s.probed)}</td><td class="num">${f.num(s.answered)}</td>
			<td class="num">${f.num(s.miners)}</td></tr>`;
	}).join('');
}

function sourceRows(h, now) {
	const list = h.events.sources;
	if (!list.length)
		return emptyRow(6, 'No events received yet.');
	return list.map((s) => `<tr class="${s.lost ? 'warnrow' : ''}">
		<td class="mono">${f.esc(s.src)}</td>
		<td class="num">${f.num(s.received)}</td><td class="num">${f.num(s.stored)}</td>
		<td class="num">${f.num(s.rejected)}</td><td class="num">${f.num(s.lost)}</td>
		<td title="${f.esc(f.when(s.last_ms))}">${f.esc(f.ago(s.last_ms, now))}</td></tr>`).join('');
}

// Nested lists the tables above already show are skipped here.
function skip(key) {
	return key === 'events.sources';
}

// Scalars and small objects the view has no table for.
function others(h) {
	const rows = [];
	const walk = (o, prefix) => {
		for (const [k, v] of Object.entries(o)) {
			const key = prefix ? `${prefix}.${k}` : k;
			if ((!prefix && SHOWN.has(k)) || skip(key))
				continue;
			if (Array.isArray(v))
				rows.push([key, `${v.length} entries`]);
			else if (v && typeof v === 'object')
				walk(v, key);
			else
				rows.push([key, v]);
		}
	};
	walk(h, '');
	return rows.map(([k, v]) => `<tr><th scope="row" class="mono">${f.esc(k)}</th><td>${f.esc(v)}</td></tr>`).join('');
}

const SCHED_KEYS = [['sent', 'sent'], ['done', 'done'], ['failed', 'failed'],
	['timed_out', 'timed out'], ['not_sent', 'not sent'], ['skipped_busy', 'skipped (busy)'],
	['outstanding', 'outstanding']];

function schedRows(h) {
	const kinds = Object.entries(h.scheduler).filter(([, v]) => v && typeof v === 'object');
	if (!kinds.length)
		return emptyRow(8, 'No scheduler figures.');
	return kinds.map(([k, v]) => `<tr><th scope="row">${f.esc(k)}</th>${SCHED_KEYS.map(([key]) =>
		`<td class="num">${f.num(v[key])}</td>`).join('')}</tr>`).join('');
}

function bytes(n) {
	if (!f.isNum(n))
		return '–';
	const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
	let i = 0;
	while (n >= 1024 && i < u.length - 1) {
		n /= 1024;
		i++;
	}
	return `${f.num(n, i ? 1 : 0)} ${u[i]}`;
}

function tiles(h, now) {
	const sum = H.summary(h);
	const ev = h.events, lost = ev.lost;
	const w = h.workers, q = h.queues, db = h.database;
	const sw = h.sweeps;
	const ages = sw.map((s) => s.age_ms);
	const sched = h.scheduler;
	const t = [
		['Processes alive', f.num(sum.count), f.esc(sum.text) +
			(sum.missing.length ? `<br><strong class="bad-text">missing: ${f.esc(sum.missing.join(', '))}</strong>` : ''), sum.missing.length > 0],
		['Workers connected', `${f.num(w.status)} + ${f.num(w.telemetry)}`, 'status (pollerd) + telemetry (telemetryd)',
			!w.status || !w.telemetry],
		['Lost events', f.num(lost), lost ? 'bus messages that never arrived' : 'none since apid started', lost > 0],
		['Events', `${f.num(ev.stored)}`, `stored of ${f.num(ev.received)} received · ${f.num(ev.rejected)} rejected`, ev.rejected > 0],
		['Writer queue', f.num(q.writer.depth), `of ${f.num(q.writer.max)} · feed dropped ${f.num(q.feed.dropped)}`, false],
		['Database', bytes(db.size_bytes), `WAL ${bytes(db.wal_bytes)} · ${f.num(db.commit_failures)} failed commits`, db.commit_failures > 0],
		['Last sweep', sw.length ? f.esc(f.ago(now - Math.min(...ages), now)) : 'none yet',
			sw.length ? `${sw.length} subnet${sw.length > 1 ? 's' : ''} · ${f.num(sw.reduce((a, s) => a + (s.miners || 0), 0))} miners` : '', !sw.length],
		['Scheduled miners', f.num(sched.miners), `${f.num(sched.eligible)} eligible for jobs`, false],
	];
	return t.map(([l, v, sub, bad]) => `<div class="tile${bad ? ' tile-bad' : ''}"><div class="tile-label">${l}</div>
		<div class="tile-value">${v}</div><div class="tile-sub">${sub}</div></div>`).join('');
}

export function mount(el) {
	el.innerHTML = `<h1>Suite health</h1>
	<section class="tiles health-tiles" aria-label="Summary"></section>
	<section class="card"><h2>Daemons</h2><div class="table-wrap"><table class="daemons"><thead><tr>
		<th scope="col">Daemon</th><th scope="col">Host</th><th scope="col" class="num">PID</th><th scope="col">State</th>
		<th scope="col">Last heartbeat</th><th scope="col" class="num">In flight</th><th scope="col" class="num">Latency</th>
		<th scope="col">Counters</th></tr></thead><tbody></tbody></table></div></section>
	<div class="cols">
		<section class="card grow"><h2>Jobs</h2><div class="table-wrap"><table class="sched"><thead><tr>
			<th scope="col">Queue</th>${SCHED_KEYS.map(([, l]) => `<th scope="col" class="num">${l}</th>`).join('')}
			</tr></thead><tbody></tbody></table></div></section>
		<section class="card grow"><h2>Discovery sweeps</h2><div class="table-wrap"><table class="sweeps"><thead><tr>
			<th scope="col">Subnet</th><th scope="col">Finished</th><th scope="col" class="num">Took</th>
			<th scope="col" class="num">Probed</th><th scope="col" class="num">Answered</th><th scope="col" class="num">Miners</th>
			</tr></thead><tbody></tbody></table></div></section>
	</div>
	<section class="card"><h2>Events by source</h2><div class="table-wrap"><table class="sources"><thead><tr>
		<th scope="col">Source</th><th scope="col" class="num">Received</th><th scope="col" class="num">Stored</th>
		<th scope="col" class="num">Rejected</th><th scope="col" class="num">Lost</th><th scope="col">Last</th>
		</tr></thead><tbody></tbody></table></div></section>
	<section class="card"><details><summary><h2 class="inline">Every figure</h2></summary>
		<div class="table-wrap"><table class="kv"><tbody></tbody></table></div>
		<details><summary>Raw answer</summary><pre class="raw"></pre></details></details></section>`;
	const $ = (s) => el.querySelector(s);

	async function refresh() {
		const h = await get('/api/health');
		const now = Date.now();
		$('.health-tiles').innerHTML = tiles(h, now);
		$('table.daemons tbody').innerHTML = daemonRows(h, now);
		$('table.sched tbody').innerHTML = schedRows(h);
		$('table.sweeps tbody').innerHTML = sweepRows(h, now);
		$('table.sources tbody').innerHTML = sourceRows(h, now);
		$('table.kv tbody').innerHTML = others(h);
		$('pre.raw').textContent = JSON.stringify(h, null, 2);
		el.dataset.loaded = 'true';
	}

	const poll = poller(refresh, REFRESH_MS);
	return { unmount: () => poll.stop() };
}
