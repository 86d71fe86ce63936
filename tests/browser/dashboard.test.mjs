// The dashboard in a real browser: Debian's chromium driven by
// playwright-core against the stack `make run` starts (etc/run.sh with a
// simulated fleet on loopback, on ports and a subnet chosen for this run).
//
//   node tests/browser/dashboard.test.mjs        (from anywhere; HIVE_BIN=bin)
//
// Prints cmocka-style lines ("[  PASSED  ] N test(s).") so tests/run.sh
// counts them; exits non-zero on any failure. Screenshots of every view go
// to tests/browser/artifacts/, with run.log (the stack's output).

import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '../..');
const ART = path.join(HERE, 'artifacts');
const BIN = process.env.HIVE_BIN || 'bin';
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const MINERS = 120;
const START_TIMEOUT_MS = 90000;

let chromium;
try {
	({ chromium } = await import('playwright-core'));
} catch {
	console.error('playwright-core is not installed: run `npm ci` in tests/browser');
	process.exit(2);
}
if (!fs.existsSync(CHROMIUM)) {
	console.error(`${CHROMIUM} is missing: apt-get install chromium`);
	process.exit(2);
}

// ---------------------------------------------------------------- helpers

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
// apid closes an idle keep-alive connection after 1 s; Node's fetch may take
// such a socket from its pool just as apid closes it ("fetch failed"). A read
// is safe to ask again once, as browsers and libcurl do.
async function fetchRead(url, opts = {}) {
	try {
		return await fetch(url, opts);
	} catch (e) {
		if ((opts.method ?? 'GET') !== 'GET')
			throw e;
		await sleep(50);
		return fetch(url, opts);
	}
}

// Thrown inside an until() condition: give up at once.
class Fatal extends Error {}

async function until(what, fn, timeout = 20000, every = 200) {
	const end = Date.now() + timeout;
	let last;
	for (;;) {
		try {
			last = await fn();
			if (last)
				return last;
		} catch (e) {
			if (e instanceof Fatal)
				throw e;
			last = e;
		}
		if (Date.now() > end)
			throw new Error(`timed out after ${timeout} ms waiting for ${what}` +
				(last instanceof Error ? ` (${last.message})` : ''));
		await sleep(every);
	}
}

function check(cond, msg) {
	if (!cond)
		throw new Error(msg);
}

function freePort() {
	return new Promise((resolve, reject) => {
		const s = net.createServer();
		s.unref();
		s.on('error', reject);
		s.listen(0, '127.0.0.1', () => {
			const { port } = s.address();
			s.close(() => resolve(port));
		});
	});
}

// ---------------------------------------------------------------- the stack

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'powerhive-browser-'));
const token = crypto.randomBytes(24).toString('hex');
const ports = [];
for (let i = 0; i < 10; i++)
	ports.push(await freePort());
const [httpPort, b0, b1, b2, b3, b4, b5, adminPort, minerPort, b6] = ports;
// A /23 of its own in 127/8 so that a `make run` next door is not disturbed.
const octet = 150 + (process.pid % 50);
const third = (Math.floor(process.pid / 50) % 100) * 2;
const subnet = `127.${octet}.${third}.0/23`;
const base = `http://127.0.0.1:${httpPort}`;

const cfg = JSON.parse(fs.readFileSync(path.join(ROOT, 'etc/powerhive.sim.json'), 'utf8'));
cfg.database.path = path.join(tmp, 'powerhive.db');
cfg.network.subnets = [subnet];
cfg.network.port = minerPort;
cfg.intervals = { discovery_seconds: 5, status_seconds: 3, telemetry_seconds: 5, heartbeat_seconds: 2 };
cfg.http.addr = `127.0.0.1:${httpPort}`;
cfg.http.web_root = path.join(ROOT, 'web');
cfg.http.auth.token_file = path.join(tmp, 'api-token');
Object.assign(cfg.bus, {
	events: `tcp://127.0.0.1:${b0}`, jobs_status: `tcp://127.0.0.1:${b1}`,
	jobs_telemetry: `tcp://127.0.0.1:${b2}`, jobs_control: `tcp://127.0.0.1:${b5}`,
	control: `tcp://127.0.0.1:${b3}`, feed: `tcp://127.0.0.1:${b4}`,
	jobs_plant: `tcp://127.0.0.1:${b6}`,
});
// The power balancer: a manual budget far above the fleet's draw, off at
// start (the Power view's tests go to dry run, never on, and back to off).
const BUDGET_W = 10000000;
cfg.power = { ...(cfg.power || {}), mode: 'off', source: { kind: 'manual', budget_w: BUDGET_W } };
// Alerts: evaluated every second; chip_temp_high at 95 °C after 2 s, so the
// Alerts test's overheat fault (minersim, 99 °C) fires within seconds.
cfg.alerts = { ...(cfg.alerts || {}), evaluate_seconds: 1, resolve_seconds: 2,
	rules: { chip_temp_high: { threshold: 95, for_seconds: 2 } } };
const cfgPath = path.join(tmp, 'powerhive.json');
fs.writeFileSync(cfgPath, JSON.stringify(cfg, null, 2));

// Each run leaves only its own screenshots and logs.
fs.rmSync(ART, { recursive: true, force: true });
fs.mkdirSync(ART, { recursive: true });
const runLog = fs.openSync(path.join(ART, 'run.log'), 'w');
const env = {
	...process.env,
	POWERHIVE_SIM_CONFIG: cfgPath,
	// etc/powerhive.json lists loopback only: run.sh takes the simulator path.
	POWERHIVE_CONFIG: path.join(ROOT, 'etc/powerhive.json'),
	POWERHIVE_SIM_MINERS: String(MINERS),
	POWERHIVE_SIM_ADMIN: `127.0.0.1:${adminPort}`,
	POWERHIVE_API_TOKEN: token,
	POWERHIVE_LOG_DIR: path.join(tmp, 'logs'),
};
delete env.POWERHIVE_HTTP_ADDR;
delete env.POWERHIVE_DATABASE;
const stack = spawn('sh', ['etc/run.sh', BIN], {
	cwd: ROOT, env, detached: true, stdio: ['ignore', runLog, runLog],
});
let stackExit = null;
stack.on('exit', (code, sig) => {
	stackExit = sig || code;
});

let ctx = null;
async function cleanup() {
	if (ctx)
		await ctx.close().catch(() => {});
	ctx = null;
	if (stackExit === null) {
		try {
			process.kill(stack.pid, 'SIGTERM');
		} catch {
			/* gone */
		}
		const end = Date.now() + 30000;
		while (stackExit === null && Date.now() < end)
			await sleep(100);
		// run.sh stops its children on SIGTERM; anything left goes now.
		try {
			process.kill(-stack.pid, 'SIGKILL');
		} catch {
			/* all stopped */
		}
	}
	for (const f of fs.readdirSync(path.join(tmp, 'logs'), { withFileTypes: true }))
		if (f.isFile())
			fs.copyFileSync(path.join(tmp, 'logs', f.name), path.join(ART, f.name));
	fs.rmSync(tmp, { recursive: true, force: true });
}
for (const sig of ['SIGINT', 'SIGTERM'])
	process.on(sig, () => cleanup().finally(() => process.exit(130)));

async function api(method, p, body) {
	const res = await fetchRead(base + p, {
		method,
		headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
		body: body === undefined ? undefined : JSON.stringify(body),
	});
	const data = await res.json().catch(() => null);
	if (!res.ok)
		throw new Error(`${method} ${p}: ${res.status} ${data?.error ?? ''}`);
	return data;
}

// minersim's admin API: faults, and the ground truth of each miner
// (GET /sim/miners/{mac}: the preset it runs, paused, ...).
const admin = `http://127.0.0.1:${adminPort}`;
async function sim(p, body) {
	const res = await fetchRead(admin + p, body === undefined ? {} : { method: 'POST', body: JSON.stringify(body) });
	check(res.ok, `minersim ${p}: ${res.status}`);
	return res.json();
}

// ---------------------------------------------------------------- checks

const tests = [];
const test = (name, fn) => tests.push([name, fn]);
let page;
const apiRequests = [];   // every API URL the page asked for
const shot = (name, full = false) => page.screenshot({ path: path.join(ART, name), fullPage: full });

const rowIds = () => page.$$eval('table.miners tbody tr[data-id]', (trs) => trs.map((t) => t.dataset.id));
const countText = () => page.textContent('#miners-count');
// Waits for the table to show the answer to the query now in the address.
async function tableSettled() {
	await until('the miners table', async () =>
		(await page.getAttribute('#view', 'data-loaded')) === 'true');
}

test('a wrong token is refused at sign-in', async () => {
	await page.goto(base + '/');
	await page.waitForSelector('#login:not([hidden])');
	await page.fill('#token', 'not-the-token');
	await page.click('#login-form button[type=submit]');
	await until('the refusal', async () => /Refused/.test(await page.textContent('#login-error')));
	check(await page.isVisible('#login'), 'the sign-in form went away');
	check(!(await page.isVisible('table.miners')), 'the table is shown without a valid token');
	check(await page.evaluate(() => !sessionStorage.getItem('powerhive.token')), 'a refused token was kept');
	await shot('login-refused.png');
});

test('signing in shows the simulated fleet', async () => {
	const t0 = Date.now();
	await page.fill('#token', token);
	await page.click('#login-form button[type=submit]');
	await page.waitForSelector('table.miners tbody tr[data-id]');
	console.log(`figure: first miners table after sign-in in ${Date.now() - t0} ms`);
	const ids = await rowIds();
	check(ids.length === 100, `expected 100 rows on the first page, got ${ids.length}`);
	check(/^1–100 of 120 miners$/.test(await countText()), `count says "${await countText()}"`);
	await until('the fleet header', async () =>
		(await page.textContent('#fleet-online')).replace(/\s/g, '') === `${MINERS}/${MINERS}`);
	check(/[PT]H\/s/.test(await page.textContent('#fleet-hashrate')), 'no fleet hashrate');
	check(/W$/.test((await page.textContent('#fleet-power')).trim()), 'no fleet power');
	// The header shows /api/health's fleet totals, and apid's totals are
	// the sums over the miner list (statuses arrive every few seconds, so
	// the sums agree within a few percent; counts exactly).
	let seen = '';
	await until('the header agreeing with /api/health and the miner list', async () => {
		const fl = (await api('GET', '/api/health')).fleet;
		const list = (await api('GET', `/api/miners?limit=${MINERS + 10}`)).miners;
		const on = list.filter((m) => m.online);
		const sum = (ms, fn) => ms.reduce((a, m) => a + (fn(m) ?? 0), 0);
		const near = (a, b) => Math.abs(a - b) <= 0.03 * Math.max(Math.abs(b), 1);
		const hr = thFromCell(await page.textContent('#fleet-hashrate')) * 1000;
		const pw = wattsFromCell(await page.textContent('#fleet-power'));
		const errs = Number((await page.textContent('#fleet-errors')).replace(/,/g, ''));
		seen = `fleet ${JSON.stringify(fl)}; list: ${on.length}/${list.length} online, ` +
			`${sum(on, (m) => m.status?.hr_realtime_ghs).toFixed(0)} GH/s, ` +
			`${sum(on, (m) => m.status?.power_w)} W; header: ${hr} GH/s, ${pw} W, ${errs} errors`;
		return fl && fl.miners === list.length && fl.online === on.length &&
			fl.mining === on.filter((m) => m.status?.state === 'mining').length &&
			near(fl.hashrate_ghs, sum(on, (m) => m.status?.hr_realtime_ghs)) &&
			near(fl.power_w, sum(on, (m) => m.status?.power_w)) &&
			near(fl.power_estimated_w,
				sum(on, (m) => (m.status?.power_metered === false ? m.status.power_w : 0))) &&
			near(hr, fl.hashrate_ghs) && near(pw, fl.power_w) && errs === fl.errors + fl.failure;
	}, 30000, 1000).catch((e) => {
		throw new Error(`${e.message}: ${seen}`);
	});
	const text = async (id) => (await page.textContent(id)).replace(/\s+/g, ' ').trim();
	console.log(`figure: header from /api/health's fleet: ${await text('#fleet-online')} online, ` +
		`${await text('#fleet-hashrate')}, ${await text('#fleet-power')}, ` +
		`${await text('#fleet-errors')} errors (sums over the miner list agree within 3%)`);
	const walks = apiRequests.filter((u) => /\/api\/miners\?(.*&)?limit=10000/.test(u));
	check(!walks.length, `the header fetched the whole miner list: ${walks[0]}`);
	await until('every row with a status', async () =>
		(await page.$$eval('table.miners tbody .pill', (p) => p.filter((x) => x.textContent === 'Mining').length)) >= 90);
	await until('suite health in the header', async () =>
		(await page.textContent('#fleet-suite')) === 'all running', 15000);
	await shot('miners.png');
	// Dark mode follows the system.
	await page.emulateMedia({ colorScheme: 'dark' });
	const bg = await page.$eval('body', (b) => getComputedStyle(b).backgroundColor);
	check(bg === 'rgb(18, 22, 29)', `dark mode background is ${bg}`);
	await shot('miners-dark.png');
	await page.emulateMedia({ colorScheme: 'light' });
});

function wattsFromCell(s) {
	const m = /([\d.,]+)\s*(W|kW|MW)/.exec(s);
	if (!m)
		return NaN;
	return parseFloat(m[1].replace(/,/g, '')) * { W: 1, kW: 1e3, MW: 1e6 }[m[2]];
}

function thFromCell(s) {
	const m = /([\d.,]+)\s*(GH|TH|PH)\/s/.exec(s);
	if (!m)
		return NaN;
	return parseFloat(m[1].replace(/,/g, '')) * { GH: 0.001, TH: 1, PH: 1000 }[m[2]];
}

test('sorting by hashrate, both ways', async () => {
	await page.click('th[data-key=hashrate] button');
	await until('sort=hashrate in the address', async () => /sort=hashrate&order=desc/.test(page.url()));
	await tableSettled();
	check((await page.getAttribute('th[data-key=hashrate]', 'aria-sort')) === 'descending', 'aria-sort not descending');
	let hr = await page.$$eval('table.miners tbody tr[data-id] td:nth-child(6)', (c) => c.map((x) => x.textContent));
	let v = hr.map(thFromCell);
	check(v.length === 100 && v.every((x, i) => i === 0 || Number.isNaN(x) || x <= v[i - 1] + 1e-9),
		`not sorted down: ${v.slice(0, 8).join(', ')}`);
	await page.click('th[data-key=hashrate] button');
	await until('order=asc', async () => /sort=hashrate&order=asc/.test(page.url()));
	await tableSettled();
	hr = await page.$$eval('table.miners tbody tr[data-id] td:nth-child(6)', (c) => c.map((x) => x.textContent));
	v = hr.map(thFromCell).filter((x) => !Number.isNaN(x));
	check(v.every((x, i) => i === 0 || x >= v[i - 1] - 1e-9), `not sorted up: ${v.slice(0, 8).join(', ')}`);
	// The API under the same query agrees on the lowest one.
	const low = await api('GET', '/api/miners?sort=hashrate&order=asc&limit=1');
	const first = (await rowIds())[0];
	check(low.miners[0].id === first || Math.abs(thFromCell(hr[0]) - low.miners[0].status.hr_realtime_ghs / 1000) < 5,
		`the table starts with ${first}, the API with ${low.miners[0].id}`);
	await page.click('th[data-key=mac] button');
	await until('sort=mac', async () => /sort=mac&order=asc/.test(page.url()));
	await tableSettled();
	const ids = await rowIds();
	check(ids.every((x, i) => i === 0 || x > ids[i - 1]), 'not sorted by MAC');
	await shot('miners-sorted.png');
});

test('filters: model, text search, online, paging', async () => {
	const models = await api('GET', '/api/models');
	const alias = models.models.find((m) => m.miners > 0 && m.miners < MINERS)?.alias || models.models[0].alias;
	const want = await api('GET', `/api/miners?model=${alias}&limit=1`);
	await page.selectOption('select[name=model]', alias);
	await until('model= in the address', async () => page.url().includes(`model=${alias}`));
	await tableSettled();
	const cells = await page.$$eval('table.miners tbody tr[data-id] td:nth-child(4)', (c) => c.map((x) => x.textContent.trim()));
	check(cells.length === Math.min(100, want.total), `${cells.length} rows for ${want.total} ${alias}`);
	check(cells.every((c) => c === alias), `a row of another model: ${cells.find((c) => c !== alias)}`);
	check((await countText()).endsWith(`of ${want.total} miners`), `count says "${await countText()}"`);
	await shot('miners-filtered.png');

	await page.click('form.filters button[type=reset]');
	await until('filters cleared', async () => !page.url().includes('model='));
	await tableSettled();
	const target = (await rowIds())[37];
	const q = target.slice(9);            // "xx:xx:xx": the end of one MAC
	await page.fill('input[name=q]', q);
	await until('q= in the address', async () => page.url().includes('q='));
	await tableSettled();
	const found = await rowIds();
	const apiFound = await api('GET', `/api/miners?q=${encodeURIComponent(q)}&limit=100`);
	check(found.includes(target), `${target} not found by "${q}"`);
	check(found.length === apiFound.total, `table ${found.length}, API ${apiFound.total} for "${q}"`);
	check(await page.inputValue('input[name=q]') === q, 'the search box lost what was typed');

	await page.click('form.filters button[type=reset]');
	await until('filters cleared', async () => !page.url().includes('q='));
	await page.selectOption('select[name=online]', 'false');
	await until('online=false', async () => page.url().includes('online=false'));
	await tableSettled();
	const off = await api('GET', '/api/miners?online=false&limit=1');
	const offRows = await rowIds();
	check(offRows.length === Math.min(100, off.total), `${offRows.length} offline rows, the API says ${off.total}`);
	if (!off.total)
		check(/No miner matches/.test(await page.textContent('table.miners tbody')), 'no "no match" message');

	await page.click('form.filters button[type=reset]');
	await until('filters cleared', async () => !page.url().includes('online='));
	await tableSettled();
	const page1 = await rowIds();
	await page.click('.pager [data-page=next]');
	await until('offset=100', async () => page.url().includes('offset=100'));
	await tableSettled();
	const page2 = await rowIds();
	check(page2.length === MINERS - 100, `${page2.length} rows on page 2`);
	check(page2.every((id) => !page1.includes(id)), 'page 2 repeats page 1');
	check((await countText()) === `101–${MINERS} of ${MINERS} miners`, `count says "${await countText()}"`);
	check(await page.isDisabled('.pager [data-page=next]'), 'Next is enabled on the last page');
	await page.click('.pager [data-page=first]');
	await until('back to the first page', async () => !page.url().includes('offset='));
});

// ---------------------------------------------------------------- CSV exports, phone

// RFC 4180, strictly: records end in CRLF; a quoted field may hold commas,
// line breaks and doubled quotes. Returns the records (arrays of fields).
function parseCsv(text) {
	const recs = [];
	let rec = [], i = 0;
	while (i < text.length) {
		let v = '';
		if (text[i] === '"') {
			for (i++; ; i++) {
				check(i < text.length, 'CSV: an unterminated quoted field');
				if (text[i] === '"' && text[i + 1] === '"') {
					v += '"';
					i++;
				} else if (text[i] === '"') {
					i++;
					break;
				} else {
					v += text[i];
				}
			}
		} else {
			while (i < text.length && !/[,\r\n]/.test(text[i])) {
				check(text[i] !== '"', `CSV: a bare quote in record ${recs.length + 1}`);
				v += text[i++];
			}
		}
		rec.push(v);
		if (text[i] === ',') {
			i++;
			continue;
		}
		check(text.startsWith('\r\n', i), `CSV: record ${recs.length + 1} does not end in CRLF`);
		i += 2;
		recs.push(rec);
		rec = [];
	}
	check(recs.length >= 1 && recs.every((r) => r.length === recs[0].length),
		'CSV: no header row, or rows of different widths');
	return recs;
}

// Clicks an Export CSV button; the file the browser saved, parsed.
async function exportCsv(selector) {
	const [dl] = await Promise.all([page.waitForEvent('download', { timeout: 15000 }),
		page.click(selector)]);
	const file = await dl.path();
	const recs = parseCsv(fs.readFileSync(file, 'utf8'));
	fs.copyFileSync(file, path.join(ART, dl.suggestedFilename()));
	return { name: dl.suggestedFilename(), header: recs[0], rows: recs.slice(1) };
}

test('Export CSV saves every miner the filter matches, in the table\'s order', async () => {
	await page.goto(base + '/#/miners');
	await tableSettled();
	const models = (await api('GET', '/api/models')).models;
	const alias = models.find((m) => m.miners > 0 && m.miners < MINERS)?.alias || models[0].alias;
	await page.selectOption('select[name=model]', alias);
	await until('model= in the address', async () => page.url().includes(`model=${alias}`));
	await page.click('th[data-key=hashrate] button');
	await until('sort=hashrate', async () => /sort=hashrate&order=desc/.test(page.url()));
	await tableSettled();
	const before = apiRequests.length;
	const csv = await exportCsv('form.filters [data-export]');
	const asked = apiRequests.slice(before).find((u) => u.includes('format=csv'));
	check(asked && asked.includes(`model=${alias}`) && asked.includes('sort=hashrate') &&
		!/[?&](limit|offset)=/.test(asked), `the export asked ${asked}`);
	check(/^miners-\d{8}-\d{6}\.csv$/.test(csv.name), `file name ${csv.name}`);
	const want = await api('GET', `/api/miners?model=${alias}&limit=10000`);
	const col = (k) => csv.header.indexOf(k);
	check(col('id') === 0 && col('hr_realtime_ghs') > 0 && col('last_seen_utc') > 0, `header ${csv.header}`);
	check(csv.rows.length === want.total, `${csv.rows.length} rows saved, the API counts ${want.total} ${alias}`);
	check(csv.rows.every((r) => r[col('model')] === alias), 'a row of another model');
	const ids = new Set(want.miners.map((m) => m.id));
	check(csv.rows.every((r) => ids.has(r[0])), 'a miner the API does not list');
	// Sorted as the table: hashrate, largest first, miners without one last.
	const hr = csv.rows.map((r) => (r[col('hr_realtime_ghs')] === '' ? -1 : Number(r[col('hr_realtime_ghs')])));
	check(hr.every((x, i) => i === 0 || x <= hr[i - 1]), `not sorted by hashrate: ${hr.slice(0, 6)}`);
	await until('a notice naming the file', async () => (await page.textContent('#toasts')).includes(csv.name));
	console.log(`figure: CSV export of ${csv.rows.length} ${alias} miners, ${csv.header.length} columns (${csv.name})`);
	await page.click('form.filters button[type=reset]');
	await until('filters cleared', async () => !page.url().includes('model='));
	await tableSettled();
});

test('at 390 px (a phone) the header and the miners table fit, the table scrolls in its card', async () => {
	await page.setViewportSize({ width: 390, height: 844 });
	try {
		await page.goto(base + '/#/miners');
		await tableSettled();
		await until('the fleet header', async () => /\d/.test(await page.textContent('#fleet-hashrate')));
		const sw = await page.evaluate(() => document.documentElement.scrollWidth);
		check(sw <= 390, `the page is ${sw} px wide at 390`);
		// The header's key figures and the tabs: shown, whole, inside the screen.
		for (const sel of ['.brand', '.tabs a[data-view=power]', '#fleet-online', '#fleet-hashrate',
			'#fleet-power', '#fleet-errors', '#fleet-suite', '#logout']) {
			check(await page.isVisible(sel), `${sel} is not visible`);
			const b = await page.locator(sel).boundingBox();
			check(b && b.x >= 0 && b.x + b.width <= 390 && b.height > 0, `${sel} is outside the screen: ${JSON.stringify(b)}`);
		}
		for (const sel of ['#fleet-online', '#fleet-hashrate', '#fleet-power', '#fleet-errors'])
			check(!/^\s*–?\s*$/.test(await page.textContent(sel)), `${sel} is empty`);
		// The table is wider than the screen and scrolls inside its card.
		const wrap = await page.$eval('.table-wrap:has(table.miners)', (w) => {
			const r = w.getBoundingClientRect();
			return { left: r.left, right: r.right, sw: w.scrollWidth, cw: w.clientWidth };
		});
		check(wrap.left >= 0 && wrap.right <= 390, `the table's card spans ${wrap.left}–${wrap.right}`);
		check(wrap.sw > wrap.cw, 'the table does not scroll in its card');
		await shot('miners-phone.png');
		await page.$eval('.table-wrap:has(table.miners)', (w) => { w.scrollLeft = w.scrollWidth; });
		const last = await page.locator('table.miners thead th:last-child').boundingBox();
		check(last && last.x >= 0 && last.x + last.width <= 391, `the last column is not reachable: ${JSON.stringify(last)}`);
		await shot('miners-phone-scrolled.png');
		check(await page.isVisible('.pager [data-page=next]'), 'the pager is not shown');
		await page.$eval('.table-wrap:has(table.miners)', (w) => { w.scrollLeft = 0; });
		await shot('miners-phone-full.png', true);
		check((await page.evaluate(() => document.documentElement.scrollWidth)) <= 390, 'the page got wider');
		// A miner's page too.
		await page.goto(base + `/#/miners/${encodeURIComponent((await rowIds())[0])}`);
		await until('the detail view', async () => (await page.getAttribute('#view', 'data-loaded')) === 'true');
		await until('the chip map', async () => (await page.getAttribute('#view', 'data-chipmap')) === 'true', 30000);
		const dw = await page.evaluate(() => document.documentElement.scrollWidth);
		await shot('detail-phone.png', true);
		check(dw <= 390, `a miner's page is ${dw} px wide at 390`);
	} finally {
		await page.setViewportSize({ width: 1440, height: 900 });
	}
	await page.goto(base + '/#/miners');
	await tableSettled();
});

let detailId;
test('a miner\'s detail shows its chart, boards and chip map', async () => {
	await tableSettled();
	detailId = (await rowIds())[3];
	await page.click(`table.miners tbody tr[data-id="${detailId}"] a`);
	await until('the detail view', async () => (await page.getAttribute('#view', 'data-view')) === 'detail');
	await until('the miner loaded', async () => (await page.getAttribute('#view', 'data-loaded')) === 'true');
	const m = await api('GET', `/api/miners/${detailId}`);
	const model = await api('GET', `/api/models/${m.model}`);
	await until('a chart with history', async () =>
		/^History of [2-9]\d* statuses|^History of \d{2,} statuses/.test(await page.getAttribute('canvas.chart', 'aria-label')), 30000);
	const inked = await page.$eval('canvas.chart', (c) => {
		const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
		let n = 0;
		for (let i = 3; i < d.length; i += 4)
			if (d[i] > 0)
				n++;
		return n;
	});
	check(inked > 5000, `the chart drew only ${inked} pixels`);
	const chainRows = await page.$$eval('table.chains tbody tr', (r) => r.length);
	check(chainRows === model.num_chains, `${chainRows} hashboard rows for ${model.num_chains} chains`);
	await until('the chip map', async () => (await page.getAttribute('#view', 'data-chipmap')) === 'true', 30000);
	const boards = await page.$$eval('.chipmaps .board', (b) => b.map((x) => x.querySelectorAll('.chip[data-chip]').length));
	check(boards.length === model.num_chains, `${boards.length} boards drawn for ${model.num_chains}`);
	check(boards.every((n) => n === model.chips_per_chain), `chips per board ${boards} for ${model.chips_per_chain}`);
	// Laid out as the model's topology says: its columns, its empty slots.
	const topo = model.topology;
	const cols = await page.$eval('.chipmaps .chipgrid', (g) => getComputedStyle(g).gridTemplateColumns.split(' ').length);
	check(cols === topo.cols, `${cols} columns drawn, the topology has ${topo.cols}`);
	const empty = topo.chips.flat().filter((v) => v < 0).length;
	const drawnEmpty = await page.$eval('.chipmaps .chipgrid', (g) => g.querySelectorAll('.chip.empty').length);
	check(drawnEmpty === empty, `${drawnEmpty} empty slots drawn, the topology has ${empty}`);
	const coloured = await page.$eval('.chipmaps .chip[data-chip]', (c) => getComputedStyle(c).backgroundColor);
	check(/^rgb/.test(coloured) && coloured !== 'rgba(0, 0, 0, 0)', `chip colour ${coloured}`);
	check(/°C/.test(await page.getAttribute('.chipmaps .chip[data-chip]', 'title')), 'a chip title without its temperature');
	await shot('detail.png', true);
	await page.click('.seg label:has(input[value=grade])');
	await until('grade letters', async () =>
		/^[gor?]$/.test((await page.textContent('.chipmaps .chip[data-chip]')).trim()));
	await page.$eval('.chipmaps', (e) => e.scrollIntoView());
	await shot('detail-chipmap-grade.png');
	await page.click('.seg label:has(input[value=temp])');
	// A range of days comes from apid's roll-ups, a point an hour; the CSV
	// (statuses as polled) is off for it.
	const asked = page.waitForRequest((r) => /\/history\?.*step=3600/.test(r.url()));
	await page.selectOption('select[name=hist]', '7d');
	await asked;
	await until('the 7-day chart', async () =>
		/^History of \d+ points\. realtime: latest/.test(await page.getAttribute('canvas.chart', 'aria-label')), 20000);
	check(await page.isDisabled('.card-head [data-export]'), 'Export CSV is on for a range');
	await page.selectOption('select[name=hist]', '300');
	await until('the statuses chart again', async () =>
		/^History of \d+ statuses/.test(await page.getAttribute('canvas.chart', 'aria-label')), 20000);
});

test('Export CSV on a miner\'s history saves the statuses the chart shows', async () => {
	const n = Number(await page.inputValue('select[name=hist]'));
	const had = (await api('GET', `/api/miners/${detailId}/statuses?limit=${n}&brief=true`)).statuses.length;
	const csv = await exportCsv('.card-head [data-export]');
	const now = (await api('GET', `/api/miners/${detailId}/statuses?limit=${n}&brief=true`)).statuses;
	check(csv.name.startsWith(`statuses-${detailId.replace(/:/g, '-')}-`), `file name ${csv.name}`);
	check(csv.header[0] === 'ts_utc' && csv.header.includes('hr_realtime_ghs'), `header ${csv.header}`);
	// Statuses arrive every few seconds: between the two counts.
	check(csv.rows.length >= Math.min(had, n) && csv.rows.length <= now.length && csv.rows.length <= n,
		`${csv.rows.length} rows saved; the API had ${had}, then ${now.length} (limit ${n})`);
	const st = csv.header.indexOf('state');
	check(csv.rows.every((r) => r[st] !== '' && /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/.test(r[0])), 'a row without state or time');
	console.log(`figure: CSV export of ${csv.rows.length} statuses of ${detailId} (${csv.name})`);
});

test('toggling managed persists (detail and table)', async () => {
	const before = await api('GET', `/api/miners/${detailId}`);
	const want = !before.managed;
	await page.click('.detail-head input[data-act=managed]');
	await until('a confirmation', async () =>
		(await page.textContent('#toasts')).includes(want ? 'now managed' : 'no longer managed'));
	await until('the API agrees', async () => (await api('GET', `/api/miners/${detailId}`)).managed === want);
	check(await page.isChecked('.detail-head input[data-act=managed]') === want, 'the switch does not show the change');

	await page.goto(base + '/#/miners');
	await tableSettled();
	const other = (await rowIds())[10];
	const was = (await api('GET', `/api/miners/${other}`)).managed;
	await page.click(`tr[data-id="${other}"] input[data-act=managed]`);
	await until('the API agrees', async () => (await api('GET', `/api/miners/${other}`)).managed === !was);
	// And the managed filter finds both.
	await page.selectOption('select[name=managed]', 'true');
	await until('managed=true', async () => page.url().includes('managed=true'));
	await tableSettled();
	const managed = await rowIds();
	const apiManaged = await api('GET', '/api/miners?managed=true&limit=100');
	check(managed.length === apiManaged.total, `${managed.length} managed rows, the API has ${apiManaged.total}`);
	if (want)
		check(managed.includes(detailId), `${detailId} missing among managed miners`);
	await page.click('form.filters button[type=reset]');
	await until('filters cleared', async () => !page.url().includes('managed='));
});

test('an unlock password is stored, an empty one explained', async () => {
	await tableSettled();
	const id = (await rowIds())[5];
	await page.click(`tr[data-id="${id}"] button[data-act=pass]`);
	await page.waitForSelector('#pass-dialog[open]');
	await page.click('#pass-dialog button[type=submit]');
	check(/Type the miner/.test(await page.textContent('#pass-dialog .form-error')), 'an empty password was not explained');
	await page.fill('#pass-dialog input[name=pass]', 'browser-test-pass');
	await page.click('#pass-dialog button[type=submit]');
	await until('the dialog closing', async () => !(await page.isVisible('#pass-dialog')));
	await until('the API agrees', async () => (await api('GET', `/api/miners/${id}`)).has_unlock_pass === true);
	await until('the row saying so', async () =>
		(await page.textContent(`tr[data-id="${id}"] button[data-act=pass]`)).trim() === 'Change');
});

test('a model\'s max preset persists, and clears', async () => {
	await page.click('.tabs a[data-view=models]');
	await until('the models view', async () => (await page.getAttribute('#view', 'data-loaded')) === 'true');
	const models = (await api('GET', '/api/models')).models;
	const m = models.find((x) => x.presets.filter((p) => Number.isFinite(p.watts)).length >= 3);
	check(m, 'no model with a preset catalogue');
	const card = `section.model[data-alias="${m.alias}"]`;
	const options = await page.$$eval(`${card} select option`, (o) => o.map((x) => x.value).filter(Boolean));
	check(options.length === m.presets.length, `${options.length} presets offered, the catalogue has ${m.presets.length}`);
	const count = await page.textContent(`${card} .model-count strong`);
	check(Number(count.replace(/,/g, '')) === m.miners, `${count} miners shown, the API says ${m.miners}`);
	const pick = options[2];
	await page.selectOption(`${card} select`, pick);
	await page.click(`${card} button[type=submit]`);
	await until('a confirmation', async () => (await page.textContent('#toasts')).includes(`limited to ${pick}`));
	await until('the API agrees', async () => (await api('GET', `/api/models/${m.alias}`)).max_preset === pick);
	await page.reload();
	await until('the models view', async () => (await page.getAttribute('#view', 'data-loaded')) === 'true');
	check(await page.inputValue(`${card} select`) === pick, 'after a reload the selector forgot the limit');
	check(await page.$$eval(`${card} tr.above`, (r) => r.length) > 0, 'presets above the limit are not marked');
	await shot('models.png', true);
	await page.selectOption(`${card} select`, '');
	await page.click(`${card} button[type=submit]`);
	await until('the API agrees', async () => (await api('GET', `/api/models/${m.alias}`)).max_preset === null);
});

test('the health view lists the running daemons', async () => {
	await page.click('.tabs a[data-view=health]');
	await until('the health view', async () => (await page.getAttribute('#view', 'data-loaded')) === 'true');
	await until('every daemon alive', async () => {
		const rows = await page.$$eval('table.daemons tbody tr', (r) => r.map((x) =>
			[x.children[0].textContent.trim(), x.textContent.includes('alive')]));
		const alive = rows.filter((r) => r[1]).map((r) => r[0]);
		return alive.filter((n) => n === 'pollerd').length === 2 && alive.includes('discoverd') &&
			alive.includes('telemetryd');
	});
	check(/^0$/.test((await page.textContent('.health-tiles .tile:nth-child(3) .tile-value')).trim()),
		'lost events are not 0');
	await shot('health.png', true);
});

// ---------------------------------------------------------------- actions

const isAbove = (p, limit) => p.name !== limit.name &&
	(p.name === 'disabled' || !Number.isFinite(p.watts) || p.watts > limit.watts);
const viewLoaded = async () => (await page.getAttribute('#view', 'data-loaded')) === 'true';

// The action the detail's history lists for `what` ("Set preset 2620"),
// newest first: [id, state] or null.
async function historyRow(what) {
	return page.$$eval('table.actions tbody tr[data-id]', (trs, w) => {
		const tr = trs.find((t) => t.children[1].textContent.trim().startsWith(w));
		return tr ? [Number(tr.dataset.id), tr.dataset.state] : null;
	}, what);
}

test('a preset set on the detail page reaches done, and the miner runs it', async () => {
	const list = (await api('GET', '/api/miners?online=true&managed=false&state=mining&limit=100')).miners;
	const m = list.find((x) => x.has_api_key && !x.conflict && x.id !== detailId);
	check(m, 'no unmanaged mining miner with a key');
	const model = await api('GET', `/api/models/${m.model}`);
	const ladder = model.presets.filter((p) => Number.isFinite(p.watts)).sort((a, b) => a.watts - b.watts);
	const target = ladder.find((p) => p.name !== m.status.preset);
	await page.goto(base + `/#/miners/${m.id}`);
	await until('the detail', viewLoaded);
	const btn = `table.pick button[data-preset="${target.name}"]`;
	await page.waitForSelector(btn);
	// The catalogue with its expected figures, the running preset marked.
	const rows = await page.$$eval('table.pick tbody tr[data-preset]', (t) => t.map((r) => r.dataset.preset));
	check(rows.length === model.presets.length, `${rows.length} presets offered, the catalogue has ${model.presets.length}`);
	const cells = await page.$$eval(`table.pick tr[data-preset="${target.name}"] td`, (t) => t.map((c) => c.textContent.trim()));
	check(wattsFromCell(cells[1]) === target.watts, `expected power shown as ${cells[1]} for ${target.watts} W`);
	check(Math.abs(thFromCell(cells[2]) - target.th) < 0.6, `expected hashrate ${cells[2]} for ${target.th} TH/s`);
	check(Math.abs(parseFloat(cells[3]) - target.watts / target.th) < 0.06, `J/TH ${cells[3]}`);
	check(await page.$eval(`table.pick tr[data-preset="${m.status.preset}"]`, (r) => r.classList.contains('is-running')),
		'the running preset is not marked');
	await page.click(btn);
	await until('a confirmation', async () => (await page.textContent('#toasts')).includes(`Set preset ${target.name}: queued`));
	const what = `Set preset ${target.name}`;
	const first = await until('the action in the history', () => historyRow(what));
	const states = [first[1]];
	await until('the action done in the history', async () => {
		const r = await historyRow(what);
		if (r[1] !== states.at(-1))
			states.push(r[1]);
		if (['failed', 'expired', 'superseded'].includes(r[1]))
			throw new Fatal(`the action ended ${r[1]}: ${await page.textContent(`table.actions tr[data-id="${r[0]}"]`)}`);
		return r[1] === 'done';
	}, 60000, 250);
	console.log(`figure: set_preset ${m.id} → ${target.name}: states seen in the history ${states.join(' → ')}`);
	// The API and the simulator agree.
	const a = (await api('GET', `/api/actions/${first[0]}`)).action;
	check(a.state === 'done' && a.action === 'set_preset' && a.preset === target.name && a.miner === m.id,
		`the API has ${JSON.stringify(a)}`);
	const truth = await sim(`/sim/miners/${m.id}`);
	check(truth.preset === target.name, `minersim runs ${truth.preset}, not ${target.name}`);
	check(truth.preset_set_by === 'api', `minersim says the preset was set by ${truth.preset_set_by}`);
	await until('the running preset marked', async () =>
		page.$eval(`table.pick tr[data-preset="${target.name}"]`, (r) => r.classList.contains('is-running')), 20000);
	check(await page.isDisabled(btn), 'the running preset can be set again');
	await page.$eval('.control', (e) => e.scrollIntoView());
	await page.evaluate(() => window.scrollBy(0, -70));
	await shot('detail-actions.png');
	await page.emulateMedia({ colorScheme: 'dark' });
	await shot('detail-actions-dark.png');
	await page.emulateMedia({ colorScheme: 'light' });
});

// A few miners that a MAC fragment finds, all online and mining: [q, ids].
async function fewMiners(avoid) {
	const all = (await api('GET', `/api/miners?limit=${MINERS + 10}`)).miners;
	const ok = (m) => m.online && m.has_api_key && m.status?.state === 'mining' && !avoid.includes(m.id);
	for (const m of all) {
		const q = ':' + m.id.slice(-2);
		const hits = all.filter((x) => [x.id, x.ip, x.last_ip].some((v) => v && v.includes(q)));
		if (hits.length >= 3 && hits.length <= 6 && hits.every(ok))
			return [q, hits.map((x) => x.id).sort()];
	}
	throw new Error('no MAC fragment finds 3 to 6 mining miners');
}

async function bulkDone(what, n) {
	await until(`the summary of ${what}`, async () => {
		const r = await page.$eval('.bulk-result', (e) => [e.hidden, e.querySelector('h2')?.textContent ?? '']);
		return !r[0] && r[1].startsWith(what);
	});
	const sum = await page.$eval('.bulk-result', (e) => ({ ...e.dataset }));
	check(sum.accepted === String(n) && sum.refused === '0', `${what}: ${sum.accepted} accepted, ${sum.refused} refused of ${n}: ` +
		await page.textContent('.bulk-result'));
	await until(`every ${what} done`, async () => {
		const st = await page.$$eval('.bulk-result details.accepted tr[data-state]', (t) => t.map((r) => r.dataset.state));
		const bad = st.find((x) => ['failed', 'expired', 'superseded'].includes(x));
		if (bad)
			throw new Fatal(`an action ended ${bad}: ${await page.textContent('.bulk-result')}`);
		return st.length === n && st.every((x) => x === 'done') &&
			(await page.getAttribute('.bulk-result', 'data-open')) === '0';
	}, 60000, 250);
	check(/Finished: .*done/.test(await page.textContent('.bulk-states')), 'the summary does not say they are done');
}

test('bulk: pause every miner a filter matches, then resume a selection', async () => {
	const [q, ids] = await fewMiners([detailId]);
	await page.goto(base + `/#/miners?q=${encodeURIComponent(q)}`);
	await tableSettled();
	await until('the filtered rows', async () => JSON.stringify((await rowIds()).sort()) === JSON.stringify(ids));
	check(/No miner selected/.test(await page.textContent('.bulk-count')), 'something is selected already');
	check(await page.isDisabled('.bulk [data-bulk=pause]'), 'Pause is enabled with nothing selected');
	await page.click('.bulk [data-bulk=all]');
	await until('all matching selected', async () =>
		(await page.textContent('.bulk-count')).startsWith(`All ${ids.length} miners matching the filter are selected`));
	const boxes = await page.$$eval('table.miners tbody input[data-act=select]', (b) => b.map((x) => x.checked && x.disabled));
	check(boxes.length === ids.length && boxes.every(Boolean), 'the rows do not show the selection');
	// The filter goes to the API, not the ids.
	const req = page.waitForRequest((r) => r.url().endsWith('/api/actions') && r.method() === 'POST');
	await page.click('.bulk [data-bulk=pause]');
	await page.waitForSelector('#confirm-dialog[open]');
	check((await page.textContent('#confirm-text')).includes(`${ids.length} now`), 'the confirmation does not say how many');
	await shot('miners-bulk-confirm.png');
	await page.click('#confirm-dialog .dlg-ok');
	const body = JSON.parse((await req).postData());
	check(body.action === 'pause' && body.filter?.q === q && !body.miners,
		`POST /api/actions sent ${JSON.stringify(body)}`);
	await bulkDone('Pause', ids.length);
	for (const id of ids) {
		const t = await sim(`/sim/miners/${id}`);
		check(t.paused === true && t.state === 'stopped', `minersim: ${id} is ${t.state}, paused ${t.paused}`);
	}
	await until('the table showing them paused', async () =>
		(await page.$$eval('table.miners tbody .pill', (p) => p.filter((x) => x.textContent === 'Paused').length)) === ids.length, 20000);
	await shot('miners-bulk-paused.png');

	// Resume: picked by hand.
	await page.click('.bulk [data-bulk=clear]');
	await until('the selection cleared', async () => /No miner selected/.test(await page.textContent('.bulk-count')));
	for (const id of ids)
		await page.check(`tr[data-id="${id}"] input[data-act=select]`);
	check((await page.textContent('.bulk-count')).trim() === `${ids.length} miners selected.`,
		`the count says "${await page.textContent('.bulk-count')}"`);
	check(await page.isChecked('input[data-act=page]'), 'the page box is not checked with every row selected');
	const req2 = page.waitForRequest((r) => r.url().endsWith('/api/actions') && r.method() === 'POST');
	await page.click('.bulk [data-bulk=resume]');
	const body2 = JSON.parse((await req2).postData());
	check(body2.action === 'resume' && JSON.stringify([...body2.miners].sort()) === JSON.stringify(ids),
		`POST /api/actions sent ${JSON.stringify(body2)}`);
	await bulkDone('Resume', ids.length);
	for (const id of ids) {
		const t = await sim(`/sim/miners/${id}`);
		check(t.paused === false, `minersim: ${id} is still paused`);
	}
	await shot('miners-bulk-resumed.png');
	await page.click('.bulk-result button[data-bulk=dismiss]');
	await page.click('form.filters button[type=reset]');
	await until('filters cleared', async () => !page.url().includes('q='));
	check(/No miner selected/.test(await page.textContent('.bulk-count')), 'a new filter kept the old selection');
});

test('presets above a managed miner\'s max preset: disabled on its page, refused in bulk, counted on Models', async () => {
	const models = (await api('GET', '/api/models')).models;
	let pick = null;
	for (const mo of models) {
		const ladder = mo.presets.filter((p) => Number.isFinite(p.watts)).sort((a, b) => a.watts - b.watts);
		const list = (await api('GET', `/api/miners?model=${mo.alias}&online=true&state=mining&limit=200`)).miners
			.filter((x) => x.has_api_key && !x.conflict && x.id !== detailId);
		// A: runs a preset below the top (it becomes the limit: nothing to
		// correct); B: another, unmanaged.
		const a = list.find((x) => !x.managed && ladder.findIndex((p) => p.name === x.status.preset) >= 0 &&
			ladder.findIndex((p) => p.name === x.status.preset) < ladder.length - 1);
		const b = a && list.find((x) => !x.managed && x.id !== a.id);
		if (a && b) {
			pick = { mo, ladder, a, b };
			break;
		}
	}
	check(pick, 'no model with two unmanaged mining miners');
	const { mo, ladder, a, b } = pick;
	const limit = ladder.find((p) => p.name === a.status.preset);
	const top = ladder.at(-1);
	await api('PATCH', `/api/miners/${a.id}`, { managed: true });
	await api('PATCH', `/api/models/${mo.alias}`, { max_preset: limit.name });
	try {
		// Its page: the limit marked, the presets above it disabled, and why.
		await page.goto(base + `/#/miners/${a.id}`);
		await until('the detail', viewLoaded);
		await until('presets above the limit disabled', async () =>
			page.isDisabled(`table.pick button[data-preset="${top.name}"]`));
		const shown = await page.$$eval('table.pick tbody tr[data-preset]', (t) => t.map((r) =>
			[r.dataset.preset, r.querySelector('button').disabled, r.textContent.replace(/\s+/g, ' '), r.classList.contains('is-max')]));
		const above = mo.presets.filter((p) => isAbove(p, limit)).map((p) => p.name).sort();
		const disabled = shown.filter((r) => r[1] && r[0] !== a.status.preset).map((r) => r[0]).sort();
		check(JSON.stringify(disabled) === JSON.stringify(above), `disabled ${disabled}, above the limit ${above}`);
		check(shown.filter((r) => r[1] && r[0] !== a.status.preset).every((r) => /above the max preset .*: refused while managed/.test(r[2])),
			'a disabled preset without its reason');
		check(shown.find((r) => r[3])?.[0] === limit.name, 'the max preset is not marked');
		check(/presets above it are refused while the miner is managed/.test(await page.textContent('.control-note')),
			'the note does not say what the limit does');
		await page.$eval('.control', (e) => e.scrollIntoView());
		await page.evaluate(() => window.scrollBy(0, -70));
		await shot('detail-limit.png');

		// Bulk: the managed one is refused with the API's reason, the other
		// one takes the preset.
		await page.goto(base + `/#/miners?model=${mo.alias}`);
		await tableSettled();
		await until('both rows', async () => (await rowIds()).includes(a.id) && (await rowIds()).includes(b.id));
		await page.check(`tr[data-id="${a.id}"] input[data-act=select]`);
		await page.check(`tr[data-id="${b.id}"] input[data-act=select]`);
		await until('the preset offered, marked above the limit', async () =>
			/above the max preset .*refused for managed miners/.test(
				await page.$eval(`select[name=bulk-preset] option[value="${top.name}"]`, (o) => o.textContent)));
		const offered = await page.$$eval('select[name=bulk-preset] option', (o) => o.map((x) => x.value).filter(Boolean));
		check(offered.length === mo.presets.length, `${offered.length} presets offered for ${mo.alias}, it has ${mo.presets.length}`);
		await page.selectOption('select[name=bulk-preset]', top.name);
		await page.click('.bulk [data-bulk=set_preset]');
		await until('the summary', async () => (await page.getAttribute('.bulk-result', 'data-refused')) === '1');
		check((await page.getAttribute('.bulk-result', 'data-accepted')) === '1', 'the unmanaged miner was not accepted');
		const why = await page.textContent(`.bulk-result details.refused tr[data-miner="${a.id}"]`);
		check(/409/.test(why) && /is managed and preset .* is above its model's max_preset/.test(why),
			`the refusal says "${why.replace(/\s+/g, ' ')}"`);
		await until('the accepted one done', async () =>
			(await page.getAttribute(`.bulk-result details.accepted tr[data-miner="${b.id}"]`, 'data-state')) === 'done', 60000, 250);
		check((await sim(`/sim/miners/${b.id}`)).preset === top.name, 'minersim does not run the preset');
		check((await sim(`/sim/miners/${a.id}`)).preset === limit.name, 'the refused miner changed preset');
		await shot('miners-bulk-refused.png');
		await page.click('.bulk-result button[data-bulk=dismiss]');

		// Models: what the limit does, and how the fleet stands against it.
		await page.click('.tabs a[data-view=models]');
		await until('the models view', viewLoaded);
		const card = `section.model[data-alias="${mo.alias}"]`;
		const text = await page.textContent(card);
		check(!/run at most/.test(text), 'the card still promises a limit the code does not keep');
		check(/holds managed miners only/.test(await page.textContent(`${card} .limit-rule`)), 'the rule is not stated');
		let seen = '';
		await until('the figures of /api/models', async () => {
			const m = await api('GET', `/api/models/${mo.alias}`);
			const ui = await page.$$eval(`${card} [data-fact]`, (e) => Object.fromEntries(e.map((x) => [x.dataset.fact, Number(x.textContent.replace(/,/g, ''))])));
			seen = `API ${m.managed_above_limit} above, ${m.conflicts} conflicts, ${m.managed} managed; page ${JSON.stringify(ui)}`;
			return ui.above === m.managed_above_limit && ui.conflicts === m.conflicts && ui.managed === m.managed;
		}, 40000, 1000).catch((e) => {
			throw new Error(`${e.message}: ${seen}`);
		});
		console.log(`figure: ${mo.alias} max preset ${limit.name}: ${seen}`);
		await page.$eval(card, (e) => e.scrollIntoView());
		await page.evaluate(() => window.scrollBy(0, -70));
		await shot('models-limit.png');
	} finally {
		await api('PATCH', `/api/models/${mo.alias}`, { max_preset: null });
		await api('PATCH', `/api/miners/${a.id}`, { managed: false });
	}
});

test('a miner whose firmware keeps raising its preset is flagged in conflict, and shown so', async () => {
	const models = (await api('GET', '/api/models')).models;
	let pick = null;
	for (const mo of models) {
		const ladder = mo.presets.filter((p) => Number.isFinite(p.watts)).sort((a, b) => a.watts - b.watts);
		const c = ladder.length >= 5 && (await api('GET', `/api/miners?model=${mo.alias}&online=true&managed=false&state=mining&limit=200`))
			.miners.find((x) => x.has_api_key && !x.conflict && x.id !== detailId);
		if (c) {
			pick = { mo, ladder, c };
			break;
		}
	}
	check(pick, 'no model with five presets and an unmanaged mining miner');
	const { mo, ladder, c } = pick;
	const limit = ladder[1];
	const timings = await sim('/sim/config');
	// Short tunes, and the firmware's switcher stepping up every second: the
	// enforcer lowers it, the switcher raises it again, until apid gives up.
	await sim('/sim/config', { tune_seconds: 1, tuned_seconds: 1 });
	await api('PATCH', `/api/models/${mo.alias}`, { max_preset: limit.name });
	await api('PATCH', `/api/miners/${c.id}`, { managed: true });
	await sim(`/sim/miners/${c.id}/switcher`, { enabled: true, top_preset: ladder.at(-1).name, check_time: 1 });
	try {
		const flagged = await until('apid to flag the conflict', async () =>
			(await api('GET', `/api/miners/${c.id}`)).conflict, 150000, 1000);
		console.log(`figure: ${c.id} in conflict: ${flagged.reason}`);
		// The table: a marker in the row, and the conflict filter finds it.
		await page.goto(base + `/#/miners?model=${mo.alias}&conflict=true`);
		await tableSettled();
		await until('the row with its marker', async () => (await rowIds()).includes(c.id) &&
			page.isVisible(`tr[data-id="${c.id}"] .conflict-pill`));
		const listed = await api('GET', `/api/miners?model=${mo.alias}&conflict=true&limit=200`);
		check((await rowIds()).length === listed.total, `${(await rowIds()).length} rows, the API has ${listed.total} in conflict`);
		check((await page.getAttribute(`tr[data-id="${c.id}"] .conflict-pill`, 'title')).includes(flagged.reason),
			'the marker does not give the reason');
		await shot('miners-conflict.png');
		// Its page: the flag with its reason, the enforcer's actions.
		await page.click(`tr[data-id="${c.id}"] a`);
		await until('the detail', viewLoaded);
		await until('the conflict box', async () => page.isVisible('.conflict'));
		check((await page.textContent('.conflict .conflict-reason')).trim() === flagged.reason, 'the reason differs from the API\'s');
		check(await page.isVisible('.pill-slot .conflict-pill'), 'no Conflict pill by the status');
		const byEnforcer = await page.$$eval('table.actions tbody tr[data-id]', (t) => t.filter((r) => r.children[2].textContent.trim() === 'enforcer').length);
		check(byEnforcer >= 1, 'the enforcer\'s corrections are not in the history');
		await shot('detail-conflict.png');
		// Models: the conflict counted as the API counts it.
		await page.click('.tabs a[data-view=models]');
		await until('the models view', viewLoaded);
		await until('the conflict counted', async () => {
			const m = await api('GET', `/api/models/${mo.alias}`);
			const ui = Number(await page.textContent(`section.model[data-alias="${mo.alias}"] [data-fact=conflicts]`));
			return m.conflicts >= 1 && ui === m.conflicts;
		}, 30000, 1000);
	} finally {
		await sim(`/sim/miners/${c.id}/switcher`, { enabled: false });
		await sim('/sim/config', { tune_seconds: timings.tune_seconds, tuned_seconds: timings.tuned_seconds });
		await api('PATCH', `/api/models/${mo.alias}`, { max_preset: null });
		await api('PATCH', `/api/miners/${c.id}`, { managed: false });
	}
});

// ---------------------------------------------------------------- power

// The API's answer whatever its status: [status, body].
async function apiRaw(method, p, body) {
	const res = await fetchRead(base + p, {
		method,
		headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
		body: body === undefined ? undefined : JSON.stringify(body),
	});
	return [res.status, await res.json().catch(() => null)];
}

const near = (a, b, rel) => Number.isFinite(a) && Number.isFinite(b) &&
	Math.abs(a - b) <= rel * Math.max(Math.abs(b), 1);

// Miners made managed for the plan, unmanaged again at the end; the mode
// and margin the suite started with.
const powerState = { managed: [], margin: null, budget: null };

async function powerReset() {
	await api('PATCH', '/api/power', { mode: 'off' });
	if (powerState.margin !== null)
		await api('PATCH', '/api/power', { margin_pct: powerState.margin });
	if (powerState.budget !== null)
		await api('PATCH', '/api/power', { budget_w: powerState.budget });
	powerState.budget = null;
	for (const id of powerState.managed)
		await api('PATCH', `/api/miners/${id}`, { managed: false });
	powerState.managed = [];
}

test('the Power view shows the balancer as GET /api/power has it', async () => {
	const p0 = await api('GET', '/api/power');
	check(p0.mode === 'off' && p0.source?.kind === 'manual', `the suite starts with mode ${p0.mode}, source ${p0.source?.kind}`);
	powerState.margin = p0.margin_pct;
	check(!(await page.isVisible('#fleet-draw-box')), 'the header shows draw against target while the mode is off');
	await page.click('.tabs a[data-view=power]');
	await until('the power view', viewLoaded);
	check((await page.getAttribute('.tabs a[data-view=power]', 'aria-current')) === 'page', 'the Power tab is not current');
	// Every figure as the API has it: the configured ones exactly, the
	// fleet's draw within 3 % (the page reads it every 5 s); each shown as
	// it formats (W, kW, MW).
	const FIXED = ['available_w', 'margin_pct', 'target_w', 'generation_w', 'measured_w'];
	const MOVING = ['estimate_w', 'managed_w', 'fixed_w'];
	let seen = '';
	await until('the figures of GET /api/power', async () => {
		const p = await api('GET', '/api/power');
		const ui = await page.$$eval('.power-tiles [data-k]', (t) => Object.fromEntries(t.map((x) =>
			[x.dataset.k, [x.dataset.value === undefined ? null : Number(x.dataset.value), x.querySelector('.tile-value').textContent.trim()]])));
		const n = await page.$$eval('.power-tiles [data-n]', (t) => Object.fromEntries(t.map((x) =>
			[x.dataset.n, Number(x.textContent.replace(/,/g, ''))])));
		const bad = [];
		for (const k of [...FIXED, ...MOVING, 'headroom_w']) {
			const [v, text] = ui[k] ?? [undefined, ''];
			if (p[k] === null || p[k] === undefined) {
				if (v !== null || text !== '–')
					bad.push(`${k}: API null, page ${v} "${text}"`);
				continue;
			}
			const rel = FIXED.includes(k) ? 0 : 0.03;
			const abs = k === 'headroom_w' ? Math.abs(v - p[k]) <= 0.03 * p.target_w : near(v, p[k], rel);
			const shown = k === 'margin_pct' ? near(parseFloat(text), p[k], 0.001)
				: near(wattsFromCell(text.replace('−', '')), Math.abs(v), 0.006);
			if (!abs || !shown)
				bad.push(`${k}: API ${p[k]}, page ${v} "${text}"`);
		}
		for (const k of ['managed', 'planned', 'pinned', 'excluded', 'in_flight'])
			if (n[k] !== p.miners[k])
				bad.push(`miners.${k}: API ${p.miners[k]}, page ${n[k]}`);
		for (const k of ['accepted', 'refused'])
			if (n[k] !== p.readings[k])
				bad.push(`readings.${k}: API ${p.readings[k]}, page ${n[k]}`);
		if (await page.getAttribute('.power-tiles [data-k=state] .pill', 'data-state') !== p.state)
			bad.push(`state: API ${p.state}`);
		if (await page.getAttribute('.power-tiles [data-k=mode] .pill', 'data-mode') !== p.mode)
			bad.push(`mode: API ${p.mode}`);
		if (!/Manual budget/.test(await page.textContent('.power-tiles [data-k=source]')))
			bad.push('source: not "Manual budget"');
		if (await page.isVisible('.power-banner') !== (p.state !== 'ok'))
			bad.push(`banner ${p.state === 'ok' ? 'shown' : 'missing'} in state ${p.state}`);
		seen = bad.join('; ');
		return !bad.length;
	}, 30000, 1000).catch((e) => {
		throw new Error(`${e.message}: ${seen}`);
	});
	check(p0.available_w === BUDGET_W, `available ${p0.available_w} W, the manual budget is ${BUDGET_W} W`);
	check(await page.inputValue('input[name=margin_pct]') === String(p0.margin_pct), 'the margin field does not show the margin');
	check(await page.isVisible('form[data-set=budget_w]'), 'no budget field for a manual source');
	check(Math.round(Number(await page.inputValue('input[name=budget_kw]')) * 1000) === BUDGET_W, 'the budget field does not show the budget');

	// The chart: the last hour by 15 s from /api/power/history, drawn.
	const to = Date.now();
	const h = await api('GET', `/api/power/history?from=${to - 3600000}&to=${to}&step=15`);
	check(Array.isArray(h.series), 'GET /api/power/history has no series');
	await until('a value in /api/power/history', async () => {
		const t = Date.now();
		const hh = await api('GET', `/api/power/history?from=${t - 3600000}&to=${t}&step=15`);
		return hh.series.some((x) => Number.isFinite(x.target_w) || Number.isFinite(x.estimate_w));
	}, 40000, 1000);
	await until('the chart with its history', async () =>
		/^History of \d+ points\. .*target: latest/.test(await page.getAttribute('canvas.power-chart', 'aria-label')), 40000, 500);
	const asked = apiRequests.filter((u) => u.includes('/api/power/history?')).map((u) => new URL(u).searchParams).at(-1);
	check(asked && asked.get('step') === '15' && Number(asked.get('to')) - Number(asked.get('from')) === 3600000,
		`the chart asked for ${asked}`);
	const inked = await page.$eval('canvas.power-chart', (c) => {
		const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
		let k = 0;
		for (let i = 3; i < d.length; i += 4)
			if (d[i] > 0)
				k++;
		return k;
	});
	check(inked > 5000, `the chart drew only ${inked} pixels`);
	check(/target/.test(await page.textContent('.power-legend')), 'the legend does not name the target');
	console.log(`figure: power view: ${await page.getAttribute('canvas.power-chart', 'aria-label')}`);
	const req6 = page.waitForRequest((r) => r.url().includes('/api/power/history?') && r.url().includes('step=60'));
	await page.click('.seg label:has(input[name=range][value="1"])');
	const six = new URL((await req6).url()).searchParams;
	check(Number(six.get('to')) - Number(six.get('from')) === 6 * 3600000, `6 h asked as ${six}`);
	await shot('power.png', true);
	await page.emulateMedia({ colorScheme: 'dark' });
	await shot('power-dark.png');
	await page.emulateMedia({ colorScheme: 'light' });
	await page.click('.seg label:has(input[name=range][value="0"])');
});

test('a power mode change is confirmed first and persists; the header shows draw against target', async () => {
	// Managed miners for the balancer to plan.
	const list = (await api('GET', '/api/miners?online=true&managed=false&state=mining&limit=200')).miners
		.filter((x) => x.has_api_key && !x.conflict && x.id !== detailId).slice(0, 6);
	check(list.length >= 3, `only ${list.length} unmanaged mining miners`);
	for (const m of list) {
		await api('PATCH', `/api/miners/${m.id}`, { managed: true });
		powerState.managed.push(m.id);
	}
	if ((await page.getAttribute('#view', 'data-view')) !== 'power') {
		await page.click('.tabs a[data-view=power]');
		await until('the power view', viewLoaded);
	}
	const p = await until('the new managed miners counted', async () => {
		const x = await api('GET', '/api/power');
		return x.miners.managed >= list.length && x;
	}, 20000, 500);
	// On: asked first, saying how many miners it would change; cancelled.
	await page.click('.pw-form .seg label:has(input[value=on])');
	await page.waitForSelector('#confirm-dialog[open]');
	const onText = await page.textContent('#confirm-text');
	check(new RegExp(`change the presets of ${p.miners.managed} managed miners?`).test(onText),
		`the confirmation says "${onText}" (${p.miners.managed} managed)`);
	await shot('power-confirm-on.png');
	await page.click('#confirm-dialog .dlg-cancel');
	await until('the mode shown as before', async () => page.isChecked('.pw-form input[name=mode][value=off]'));
	check((await api('GET', '/api/power')).mode === 'off', 'a cancelled change reached the API');
	// Dry run: confirmed.
	const req = page.waitForRequest((r) => r.url().endsWith('/api/power') && r.method() === 'PATCH');
	await page.click('.pw-form .seg label:has(input[value=dry_run])');
	await page.waitForSelector('#confirm-dialog[open]');
	check(/sends nothing/.test(await page.textContent('#confirm-text')), 'the dry-run confirmation does not say what it does');
	await page.click('#confirm-dialog .dlg-ok');
	check(JSON.parse((await req).postData()).mode === 'dry_run', 'PATCH /api/power did not carry the mode');
	await until('the API in dry run', async () => (await api('GET', '/api/power')).mode === 'dry_run', 10000, 250);
	await until('a confirmation', async () => (await page.textContent('#toasts')).includes('Power: mode dry run'));
	await page.reload();
	await until('the power view', viewLoaded);
	await until('dry run shown after a reload', async () =>
		(await page.isChecked('.pw-form input[name=mode][value=dry_run]')) &&
		(await page.getAttribute('.power-tiles [data-k=mode] .pill', 'data-mode')) === 'dry_run');
	// The header: the estimate against the target, as the API has them.
	let seen = '';
	await until('the header showing draw against target', async () => {
		if (!(await page.isVisible('#fleet-draw-box')))
			return false;
		const x = await api('GET', '/api/power');
		const [est, tgt] = (await page.textContent('#fleet-draw')).split('/').map(wattsFromCell);
		seen = `header ${est} / ${tgt}, API ${x.estimate_w} / ${x.target_w}`;
		return near(est, x.estimate_w, 0.03) && near(tgt, x.target_w, 0.006) &&
			/dry run/.test(await page.textContent('#fleet-draw-label')) &&
			(await page.$eval('#fleet-draw-box', (b) => b.classList.contains('bad'))) === (x.estimate_w > x.target_w);
	}, 20000, 500).catch((e) => {
		throw new Error(`${e.message}: ${seen}`);
	});
	console.log(`figure: header in dry run: ${seen}`);
	await shot('power-dry-run.png');
});

test('a bad margin shows the API\'s error; a good one persists', async () => {
	const [status, body] = await apiRaw('PATCH', '/api/power', { margin_pct: 150 });
	check(status === 400 && body?.error, `PATCH margin_pct 150 answered ${status} ${JSON.stringify(body)}`);
	const before = (await api('GET', '/api/power')).margin_pct;
	powerState.margin ??= before;
	check(before === powerState.margin, `a refused margin changed it to ${before}`);
	if ((await page.getAttribute('#view', 'data-view')) !== 'power') {
		await page.click('.tabs a[data-view=power]');
		await until('the power view', viewLoaded);
	}
	await page.fill('input[name=margin_pct]', '150');
	await page.click('form[data-set=margin_pct] button[type=submit]');
	await page.waitForSelector('#confirm-dialog[open]');
	check(/Margin 150/.test(await page.textContent('#confirm-text')), 'the confirmation does not say the margin');
	await page.click('#confirm-dialog .dlg-ok');
	await until('the API\'s error under the form', async () =>
		(await page.textContent('.pw-set-error')).includes(body.error));
	check((await api('GET', '/api/power')).margin_pct === before, 'the refused margin was stored');
	check(await page.inputValue('input[name=margin_pct]') === '150', 'the refused value was replaced before it could be corrected');
	await shot('power-margin-refused.png');
	const good = before === 12.5 ? 15 : 12.5;
	await page.fill('input[name=margin_pct]', String(good));
	await page.click('form[data-set=margin_pct] button[type=submit]');
	await page.waitForSelector('#confirm-dialog[open]');
	await page.click('#confirm-dialog .dlg-ok');
	await until('the API with the new margin', async () => (await api('GET', '/api/power')).margin_pct === good, 10000, 250);
	await until('the page with it', async () =>
		Number(await page.getAttribute('.power-tiles [data-k=margin_pct]', 'data-value')) === good &&
		(await page.textContent('.pw-set-error')) === '');
	// The target follows at the balancer's next cycle.
	let p;
	await until('the target less the new margin', async () => {
		p = await api('GET', '/api/power');
		return near(p.target_w, p.available_w * (1 - good / 100), 0.001);
	}, 15000, 500).catch((e) => {
		throw new Error(`${e.message}: target ${p.target_w} for ${p.available_w} less ${good} %`);
	});
});

test('the plan lists the managed miners, each linked to its page where it can be pinned', async () => {
	if ((await api('GET', '/api/power')).mode !== 'dry_run')
		await api('PATCH', '/api/power', { mode: 'dry_run' });
	if ((await page.getAttribute('#view', 'data-view')) !== 'power') {
		await page.click('.tabs a[data-view=power]');
		await until('the power view', viewLoaded);
	}
	const plan = await until('a plan with miners', async () => {
		const x = await api('GET', '/api/power/plan');
		return x.miners.length > 0 && x;
	}, 30000, 500);
	// Only the changed ones by default.
	await until('the changed miners', async () => {
		const rows = await page.$$eval('table.plan tbody tr[data-id]', (t) => t.map((r) => r.classList.contains('changed')));
		return rows.every(Boolean) && Number(await page.textContent('.plan-head [data-n=changed]')) === rows.length;
	}, 15000, 500);
	await page.check('input[name=plan-all]');
	let seen = '';
	await until('every miner of the plan', async () => {
		const x = await api('GET', '/api/power/plan');
		const rows = await page.$$eval('table.plan tbody tr[data-id]', (t) => t.map((r) => r.dataset.id));
		seen = `${rows.length} rows, the API plans ${x.miners.length}`;
		return rows.length === Math.min(x.miners.length, 1000) && powerState.managed.every((id) => rows.includes(id));
	}, 20000, 500).catch((e) => {
		throw new Error(`${e.message}: ${seen}`);
	});
	const row = `table.plan tr[data-id="${powerState.managed[0]}"]`;
	const cells = await page.$$eval(`${row} td`, (t) => t.map((c) => c.textContent.replace(/\s+/g, ' ').trim()));
	const m = plan.miners.find((x) => x.id === powerState.managed[0]);
	check(cells[1] === (m.model ?? '–') && cells[5] && /W/.test(cells[3]),
		`the row says ${JSON.stringify(cells)} for ${JSON.stringify(m)}`);
	console.log(`figure: plan in dry run: ${(await page.textContent('.plan-head')).replace(/\s+/g, ' ')}`);
	await page.$eval('table.plan', (e) => e.scrollIntoView());
	await shot('power-plan.png');
	// The miner's page: pinned, a switch that persists.
	await page.click(`${row} a`);
	await until('its detail', async () => (await page.getAttribute('#view', 'data-view')) === 'detail' && viewLoaded());
	const id = powerState.managed[0];
	await until('the pinned switch', async () => page.isVisible('.detail-head input[data-act=pinned]'));
	check(!(await page.isChecked('.detail-head input[data-act=pinned]')), 'a new managed miner shows pinned');
	await page.click('.detail-head input[data-act=pinned]');
	await until('the API pinning it', async () => (await api('GET', `/api/miners/${id}`)).pinned === true);
	await until('a confirmation', async () => (await page.textContent('#toasts')).includes(`${id} is pinned`));
	await shot('detail-pinned.png');
	await page.click('.detail-head input[data-act=pinned]');
	await until('the API unpinning it', async () => (await api('GET', `/api/miners/${id}`)).pinned === false);
	check((await api('GET', `/api/miners/${id}`)).power_excluded === null, 'a miner nobody commanded is excluded');
});

test('the decision log and the readings, as the API has them', async () => {
	try {
		if ((await page.getAttribute('#view', 'data-view')) !== 'power') {
			await page.click('.tabs a[data-view=power]');
			await until('the power view', viewLoaded);
		}
		// A budget under the estimate: the dry-run balancer records the cut it
		// would make at its next cycle (power.interval_seconds).
		const p = await api('GET', '/api/power');
		check(p.mode === 'dry_run' && p.budget_w !== null, `mode ${p.mode}, budget ${p.budget_w}`);
		if (!(await api('GET', '/api/power/decisions?limit=1')).decisions.length)
			await until('the empty log said so', async () =>
				/No decision recorded yet/.test(await page.textContent('table.decisions tbody')), 10000, 250);
		powerState.budget ??= p.budget_w;
		await api('PATCH', '/api/power', { budget_w: Math.round(p.estimate_w * 0.8) });
		const log = await until('a decision recorded', async () => {
			const d = await api('GET', '/api/power/decisions?limit=25');
			return d.decisions.length > 0 && d;
		}, 4 * p.interval_seconds * 1000 + 5000, 500);
		{
			let seen = '';
			await until('the newest decisions', async () => {
				const d = await api('GET', '/api/power/decisions?limit=25');
				const ids = await page.$$eval('table.decisions tbody tr[data-id]', (t) => t.map((r) => Number(r.dataset.id)));
				seen = `page ${ids.slice(0, 3)}…(${ids.length}), API ${d.decisions.slice(0, 3).map((x) => x.id)}…(${d.decisions.length})`;
				return ids.length === d.decisions.length && ids[0] === d.decisions[0].id;
			}, 15000, 500).catch((e) => {
				throw new Error(`${e.message}: ${seen}`);
			});
			const d = log.decisions[0];
			const tagged = await page.$$eval('table.decisions tbody tr[data-id]', (t) =>
				t.map((r) => [Number(r.dataset.id), !!r.querySelector('.dry-run')]));
			const untagged = tagged.filter(([i, tag]) => tag !== !!log.decisions.find((x) => x.id === i)?.dry_run &&
				log.decisions.some((x) => x.id === i));
			check(!untagged.length, `decisions with the wrong dry-run tag: ${untagged.map((x) => x[0])}`);
			if (await page.$('table.decisions tbody details')) {
				await page.click('table.decisions tbody details summary');
				check(await page.$eval('table.decisions tbody details', (x) => x.open && x.querySelectorAll('li').length > 0),
					'a decision\'s changes do not open');
			}
			console.log(`figure: decisions: ${log.decisions.length} on the first page; newest ${d.kind}${d.dry_run ? ' (dry run)' : ''}: ${d.summary}`);
			if (log.next_before !== null) {
				const first = await page.getAttribute('table.decisions tbody tr[data-id]', 'data-id');
				await page.click('.pager [data-page=older]');
				await until('the older page', async () =>
					Number(await page.getAttribute('table.decisions tbody tr[data-id]', 'data-id')) < Number(first));
				await page.click('.pager [data-page=newest]');
			}
		}
		await page.$eval('table.decisions', (e) => e.scrollIntoView());
		await shot('power-decisions.png');
		// Readings: the refused ones by default, every one on request.
		const r = await api('GET', '/api/power/readings?limit=100');
		await page.uncheck('input[name=refused-only]');
		await until('the readings', async () => {
			const n = await page.$$eval('table.readings tbody tr[data-id]', (t) => t.length);
			return r.readings.length ? n > 0 : /No reading stored yet/.test(await page.textContent('table.readings tbody'));
		}, 15000, 500);
		await page.check('input[name=refused-only]');
		check(await page.$$eval('table.readings tbody tr[data-id]', (t) => t.every((x) => x.classList.contains('refused'))),
			'"refused only" shows an accepted reading');
		console.log(`figure: readings: ${r.readings.length} in the last 100, ${r.readings.filter((x) => !x.accepted).length} refused`);
	} finally {
		await powerReset();
	}
	await until('the header without draw against target', async () => !(await page.isVisible('#fleet-draw-box')), 15000);
});

test('an offline miner and a failing miner show as such', async () => {
	const list = (await api('GET', '/api/miners?limit=20&offset=40')).miners;
	const [gone, failing] = [list[0], list[1]];
	await sim('/sim/fault', { target: gone.id, kind: 'offline' });
	await sim('/sim/fault', { target: failing.id, kind: 'http500', endpoints: ['summary'] });
	try {
		await until('apid to see both', async () => {
			const a = await api('GET', `/api/miners/${gone.id}`);
			const b = await api('GET', `/api/miners/${failing.id}`);
			return !a.online && b.last_error && b.last_error.ts > (b.status?.ts ?? 0);
		}, 30000, 500);
		await page.click('.tabs a[data-view=miners]');
		await tableSettled();
		await page.selectOption('select[name=online]', 'false');
		await until('online=false', async () => page.url().includes('online=false'));
		await until('the offline row', async () => page.isVisible(`tr[data-id="${gone.id}"]`));
		const row = `tr[data-id="${gone.id}"]`;
		check((await page.textContent(`${row} .pill`)) === 'Offline', 'no Offline pill');
		check(await page.$eval(row, (r) => r.classList.contains('offline')), 'the row is not greyed');
		const ip = await page.$eval(`${row} td:nth-child(3) span`, (e) => [e.textContent, e.className]);
		check(ip[0] === gone.last_ip && /muted/.test(ip[1]), `last IP shown as ${ip}`);
		check((await page.textContent(`${row} td:nth-child(6)`)).trim() === '–', 'an offline miner shows a hashrate');
		await shot('miners-offline.png');
		// Its detail: an action is refused, in the API's words.
		await page.goto(base + `/#/miners/${gone.id}`);
		await until('its detail', async () => (await page.getAttribute('#view', 'data-loaded')) === 'true');
		await until('the offline note', async () => /Offline/.test(await page.textContent('.control-note')));
		await page.click('.control button[data-do=restart]');
		await until('the refusal shown', async () =>
			/Restart mining refused: miner .* is offline/.test(await page.textContent('.control-error')));
		check((await page.textContent('#toasts')).includes('is offline'), 'no notice of the refusal');
		await page.goto(base + '/#/miners?online=false');
		await tableSettled();
		await page.click('form.filters button[type=reset]');
		await until('filters cleared', async () => !page.url().includes('online='));
		await page.fill('input[name=q]', failing.id);
		await until('the failing row', async () => (await rowIds()).length === 1 &&
			/http/i.test(await page.textContent(`tr[data-id="${failing.id}"] .errcell`)));
		check(await page.$eval(`tr[data-id="${failing.id}"] .errcell .err`, (e) => !e.classList.contains('old')),
			'the current error is not marked as current');
		await until('the header counting it', async () =>
			Number((await page.textContent('#fleet-errors')).replace(/,/g, '')) >= 1, 20000);
		await shot('miners-error.png');
		await page.click(`tr[data-id="${failing.id}"] a`);
		await until('its detail', async () => (await page.getAttribute('#view', 'data-loaded')) === 'true');
		await until('the error listed', async () =>
			!/No errors recorded/.test(await page.textContent('table.errors tbody')));
	} finally {
		await sim('/sim/reset', {});
	}
	await page.click('.tabs a[data-view=miners]');
	await tableSettled();
});

test('the miners view draws the fleet over time as /api/fleet/history has it', async () => {
	await page.click('.tabs a[data-view=miners]');
	await tableSettled();
	// apid totals a minute once every status of it is rolled up (a minute
	// or two after it ends); the chart asks again every 30 s, or when told.
	await page.click('.fleet-history .seg label:has(input[value="0"])');
	const pts = await until('fleet points drawn', async () => {
		const n = Number(await page.getAttribute('.fleet-history', 'data-points') || 0);
		if (!n)
			await page.click('.fleet-history .seg label:has(input[value="0"])');
		return n;
	}, 240000, 5000);
	const to = Date.now();
	const h = await api('GET', `/api/fleet/history?from=${to - 6 * 3600 * 1000}&to=${to}&step=60`);
	check(Math.abs(h.points.length - pts) <= 1, `${pts} points drawn, the API has ${h.points.length}`);
	const last = h.points[h.points.length - 1];
	check(last.online > 0 && last.hashrate_ghs > 0 && last.power_w > 0, `last point ${JSON.stringify(last)}`);
	const models = (await api('GET', '/api/models')).models.map((m) => m.alias);
	check(Object.keys(last.models).every((m) => models.includes(m)) &&
		Math.abs(Object.values(last.models).reduce((a, m) => a + m.online, 0) - last.online) < 1e-6,
	`the models ${JSON.stringify(last.models)} do not add up to the fleet`);
	check(/^History of \d+ points\. fleet: latest/.test(await page.getAttribute('canvas.fleet-chart', 'aria-label')),
		`aria-label ${await page.getAttribute('canvas.fleet-chart', 'aria-label')}`);
	const inked = await page.$eval('canvas.fleet-chart', (c) => {
		const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
		let n = 0;
		for (let i = 3; i < d.length; i += 4)
			if (d[i] > 0)
				n++;
		return n;
	});
	check(inked > 3000, `the fleet chart drew only ${inked} pixels`);
	await page.$eval('.fleet-history', (e) => e.scrollIntoView());
	await shot('miners-fleet.png');
	// Export CSV: the range the chart shows, a row for the fleet and one per model.
	const csv = await exportCsv('.fleet-history [data-export]');
	check(/^fleet-history-\d{8}-\d{6}\.csv$/.test(csv.name), `file name ${csv.name}`);
	check(csv.header.join(',') === 'ts_utc,model,minutes,online,mining,hashrate_ghs,power_w',
		`CSV header ${csv.header}`);
	const fleetRows = csv.rows.filter((r) => r[1] === 'all');
	check(Math.abs(fleetRows.length - h.points.length) <= 2 &&
		csv.rows.every((r) => r[1] === 'all' || models.includes(r[1])),
	`${fleetRows.length} fleet rows of ${csv.rows.length} for ${h.points.length} points`);
	// 30 days by the hour: the request the chart makes for it.
	const asked = page.waitForRequest((r) => /\/api\/fleet\/history\?.*step=3600/.test(r.url()));
	await page.click('.fleet-history .seg label:has(input[value="3"])');
	await asked;
	console.log(`figure: fleet chart ${pts} points over 6 h; last ${last.online} online,` +
		` ${(last.hashrate_ghs / 1000).toFixed(1)} TH/s, ${Math.round(last.power_w)} W`);
	await page.click('.fleet-history .seg label:has(input[value="1"])');
});

test('an alert: counted in the header, listed, acknowledged; a silence made and deleted; the miners filter and the miner\'s page', async () => {
	const list = (await api('GET', '/api/miners?limit=20&offset=60&online=true')).miners;
	const hot = list.find((m) => m.status?.state === 'mining');
	check(hot, 'no mining miner to overheat');
	await sim('/sim/fault', { target: hot.id, kind: 'overheat', temp: 99 });
	let alert;
	try {
		alert = await until('chip_temp_high firing in the API', async () => (await api('GET',
			`/api/alerts?state=firing&rule=chip_temp_high&miner=${hot.id}`)).alerts[0], 30000, 500);
		// (an earlier test may leave a preset_conflict alert firing)
		await until('the header counting it', async () =>
			/chip temp high: 1/.test(await page.getAttribute('#fleet-alerts', 'title')), 20000);
		const firing = (await api('GET', '/api/alerts?state=firing&limit=1')).firing;
		check(Number((await page.textContent('#fleet-alerts')).replace(/,/g, '')) >= 1 && firing >= 1,
			`the header says ${await page.textContent('#fleet-alerts')}, the API ${firing}`);
		check(await page.$eval('#fleet-alerts-box', (e) => e.classList.contains('bad')), 'the count is not red');
		await page.click('#fleet-alerts');
		await until('the Alerts view', async () => page.url().includes('#/alerts') &&
			(await page.getAttribute('#view', 'data-loaded')) === 'true');
		const row = `table.firing tr[data-alert="${alert.id}"]`;
		await until('the alert listed', async () => page.isVisible(row));
		check(/chip temp high/.test(await page.textContent(row)), 'the row does not name the rule');
		const href = decodeURIComponent(await page.getAttribute(`${row} a`, 'href'));
		check(href.toLowerCase() === `#/miners/${hot.id.toLowerCase()}`, `the subject links to ${href}`);
		check(/99/.test(await page.textContent(`${row} .summary`)), 'the summary lacks the temperature');
		await shot('alerts.png', true);
		// Ack: recorded with the actor, shown in its place.
		await page.click(`${row} button[data-ack]`);
		await until('acknowledged', async () => /acked by/.test(await page.textContent(row)));
		const acked = (await api('GET', `/api/alerts?state=firing&rule=chip_temp_high&miner=${hot.id}`)).alerts[0];
		check(acked.id === alert.id && acked.acked_by, `the API's alert: ${JSON.stringify(acked)}`);
		// A silence: the form's fields as the API records them; then deleted.
		const form = 'form.silence-form';
		await page.selectOption(`${form} select[name=rule]`, 'fan_stopped');
		await page.fill(`${form} input[name=miner]`, hot.id);
		await page.selectOption(`${form} select[name=seconds]`, '3600');
		await page.fill(`${form} input[name=comment]`, 'browser test');
		await page.click(`${form} button[type=submit]`);
		const sil = await until('the silence in the API', async () =>
			(await api('GET', '/api/silences')).silences.find((x) => x.comment === 'browser test'));
		check(sil.rule === 'fan_stopped' && sil.miner.toLowerCase() === hot.id.toLowerCase() &&
			Math.abs(sil.ends - sil.created - 3600000) < 5000, `the silence: ${JSON.stringify(sil)}`);
		await until('the silence listed', async () => page.isVisible(`tr[data-silence="${sil.id}"]`));
		await page.click(`tr[data-silence="${sil.id}"] button[data-unsilence]`);
		await page.click('#confirm-dialog .dlg-ok');
		await until('the silence ended', async () =>
			!(await api('GET', '/api/silences')).silences.some((x) => x.id === sil.id));
		await until('its row gone', async () => !(await page.isVisible(`tr[data-silence="${sil.id}"]`)));
		// Neither a rule nor a miner: refused on the form, nothing sent.
		await page.selectOption(`${form} select[name=rule]`, '');
		await page.click(`${form} button[type=submit]`);
		await until('the form refusing', async () => /rule or type a miner/.test(await page.textContent(`${form} .form-error`)));
		check(await page.isVisible('table.notifications'), 'no notifications table');
		// The miners table: only miners with a firing alert, each marked.
		await page.goto(base + '/#/miners?alerting=true');
		await tableSettled();
		await until('the alerting miner listed', async () => (await rowIds()).includes(hot.id.toLowerCase()) ||
			(await rowIds()).includes(hot.id));
		check((await page.$eval('select[name=alerting]', (e) => e.value)) === 'true', 'the filter does not show');
		const marks = await page.$$eval('table.miners tbody tr[data-id]', (trs) =>
			trs.map((t) => !!t.querySelector('.alert-pill')));
		check(marks.length >= 1 && marks.every(Boolean), `rows without an alert marker: ${marks}`);
		// A bulk action may go to every miner the filter matches, alerting with it.
		await page.click('[data-bulk=all]');
		await until('all matching selected', async () =>
			/matching the filter are selected \(alerting true\)/.test(await page.textContent('.bulk-count')));
		await page.click('[data-bulk=clear]');
		// Its page lists the alert, acknowledged.
		await page.goto(base + `/#/miners/${hot.id}`);
		await until('its detail', async () => (await page.getAttribute('#view', 'data-loaded')) === 'true');
		await until('its alert listed', async () => page.isVisible(`.miner-alerts tr[data-alert="${alert.id}"]`));
		check(/acked by/.test(await page.textContent(`.miner-alerts tr[data-alert="${alert.id}"]`)),
			'the miner\'s page does not show the acknowledgement');
	} finally {
		await sim('/sim/fault', { target: hot.id, kind: 'none' });
	}
	// Resolved: in the history.
	await until('resolved in the API', async () => (await api('GET',
		`/api/alerts?rule=chip_temp_high&miner=${hot.id}`)).alerts.find((a) => a.id === alert.id)?.state === 'resolved', 30000, 500);
	await page.click('.tabs a[data-view=alerts]');
	await until('the history listing it', async () =>
		page.isVisible(`table.history tr[data-alert="${alert.id}"]`), 20000);
	await page.click('.tabs a[data-view=miners]');
	await tableSettled();
});

test('a banner says when the API cannot be reached, and goes', async () => {
	await page.click('.tabs a[data-view=miners]');
	await tableSettled();
	await page.route('**/api/**', (route) => route.abort('connectionrefused'));
	await until('the banner', async () => page.isVisible('#banner'), 15000);
	check(/cannot be reached/.test(await page.textContent('#banner')), 'the banner does not say why');
	await shot('api-unreachable.png');
	await page.unroute('**/api/**');
	await until('the banner gone', async () => !(await page.isVisible('#banner')), 15000);
});

// Signs in with t as a person would, and waits for the miners table.
async function signInAs(t) {
	await page.evaluate(() => sessionStorage.removeItem('powerhive.token'));
	await page.goto(base + '/#/miners');
	await page.reload();
	await page.waitForSelector('#login:not([hidden])');
	await page.fill('#token', t);
	await page.click('#login-form button[type=submit]');
	await page.waitForSelector('table.miners tbody tr[data-id]');
}

test('a viewer and an operator see only what their role may do', async () => {
	const viewer = (await api('POST', '/api/tokens', { name: `ui-viewer-${Date.now()}`, role: 'viewer' })).token;
	const operator = (await api('POST', '/api/tokens', { name: `ui-operator-${Date.now()}`, role: 'operator' })).token;
	const visible = (sel) => page.isVisible(sel);
	try {
		await signInAs(viewer);
		await until('the viewer named in the header', async () =>
			/ui-viewer-\d+ · viewer/.test(await page.textContent('#whoami')));
		check(!(await visible('table.miners tbody tr[data-id] input[data-act=managed]')), 'a viewer sees managed switches');
		check(!(await visible('table.miners tbody tr[data-id] button[data-act=pass]')), 'a viewer sees unlock password buttons');
		check(!(await visible('.bulk')), 'a viewer sees the bulk actions');
		const id = (await rowIds())[0];
		await page.goto(`${base}/#/miners/${id}`);
		await page.waitForSelector('.detail-head');
		check(!(await visible('.control .btnrow button[data-do=restart]')), 'a viewer sees Restart');
		check(!(await visible('button[data-act=pass]')), 'a viewer sees Unlock password');
		await page.goto(`${base}/#/alerts`);
		await page.waitForSelector('.silence-new', { state: 'attached' });
		check(!(await visible('.silence-form')), 'a viewer sees the silence form');
		await shot('role-viewer-alerts.png');

		await signInAs(operator);
		await until('the operator named in the header', async () =>
			/ui-operator-\d+ · operator/.test(await page.textContent('#whoami')));
		check(await visible('table.miners tbody tr[data-id] input[data-act=managed] + span')
			|| await visible('table.miners tbody tr[data-id] label.switch'), 'an operator sees no managed switch');
		check(!(await visible('table.miners tbody tr[data-id] button[data-act=pass]')), 'an operator sees unlock password buttons');
		await page.goto(`${base}/#/miners/${id}`);
		await page.waitForSelector('.detail-head');
		await until('Restart for an operator', async () => visible('.control .btnrow button[data-do=restart]'));
		check(!(await visible('button[data-act=pass]')), 'an operator sees Unlock password');
		await page.goto(`${base}/#/models`);
		await page.waitForSelector('#view[data-loaded=true], .maxpreset', { state: 'attached' });
		check(!(await visible('form.maxpreset')), 'an operator sees the max preset form');
		await shot('role-operator-detail.png');
	} finally {
		await signInAs(token);
	}
	check(await visible('table.miners tbody tr[data-id] button[data-act=pass]'), 'the admin lost the unlock password buttons');
});

test('a token that stops working leads back to sign-in', async () => {
	await page.evaluate(() => sessionStorage.setItem('powerhive.token', 'revoked-token'));
	await until('the sign-in form', async () => page.isVisible('#login'), 15000);
	check(/refused the token/.test(await page.textContent('#login-error')), 'no reason given');
	check(!(await page.isVisible('#fleet')), 'the fleet header stays visible');
});

// ---------------------------------------------------------------- run

let failed = [];
let passed = 0;
try {
	await until('the stack to serve the fleet', async () => {
		if (stackExit !== null)
			throw new Fatal(`etc/run.sh exited (${stackExit}); see ${path.join(ART, 'run.log')}`);
		const l = await api('GET', '/api/miners?limit=200');
		return l.total === MINERS && l.miners.filter((x) => x.status).length >= MINERS * 0.9 &&
			(await api('GET', '/api/models')).models.length > 0;
	}, START_TIMEOUT_MS, 500);
	await until('some telemetry', async () =>
		(await api('GET', '/api/miners?limit=200')).miners.filter((x) => x.last_telemetry).length > MINERS / 2,
	30000, 500);

	ctx = await chromium.launchPersistentContext(path.join(tmp, 'chromium'), {
		executablePath: CHROMIUM,
		headless: true,
		args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
			'--disable-background-networking', '--disable-component-update', '--disable-sync'],
		viewport: { width: 1440, height: 900 },
	});
	page = ctx.pages()[0] || await ctx.newPage();
	page.on('request', (r) => {
		if (r.url().includes('/api/'))
			apiRequests.push(r.url());
	});
	const pageErrors = [];
	page.on('pageerror', (e) => pageErrors.push(e.message));
	page.on('console', (m) => {
		if (m.type() === 'error' && !/Failed to load resource|ERR_CONNECTION_REFUSED/.test(m.text()))
			pageErrors.push(m.text());
	});

	console.log(`[==========] Running ${tests.length} test(s).`);
	for (const [name, fn] of tests) {
		console.log(`[ RUN      ] ${name}`);
		pageErrors.length = 0;
		const t0 = Date.now();
		try {
			await fn();
			console.log(`browser: took ${Date.now() - t0} ms`);
			check(!pageErrors.length, `errors in the page: ${pageErrors.join(' | ')}`);
			console.log(`[       OK ] ${name}`);
			passed++;
		} catch (e) {
			console.log(`[  ERROR   ] --- ${e.message}`);
			console.log(`[  FAILED  ] ${name}`);
			failed.push(name);
			await shot(`failed-${tests.findIndex((t) => t[0] === name)}.png`, true).catch(() => {});
			// A dialog left open would block every later click.
			await page.evaluate(() => document.querySelectorAll('dialog[open]').forEach((d) => d.close())).catch(() => {});
		}
	}
} catch (e) {
	console.log(`[  ERROR   ] --- ${e.message}`);
	failed = tests.map((t) => t[0]).slice(passed);
}
await cleanup();
console.log(`[==========] ${tests.length} test(s) run.`);
console.log(`[  PASSED  ] ${passed} test(s).`);
if (failed.length) {
	console.log(`[  FAILED  ] ${failed.length} test(s), listed below:`);
	for (const n of failed)
		console.log(`[  FAILED  ] ${n}`);
}
console.log(`screenshots and logs: ${ART}`);
process.exit(failed.length ? 1 : 0);
