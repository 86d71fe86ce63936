// PowerHive dashboard: sign-in, the router (#/miners, #/miners/<mac>,
// #/models, #/health), the fleet header and the "API unreachable" banner.
// Plain ES modules; every asset comes from apid.

import * as api from './api.js';
import * as f from './fmt.js';
import * as H from './health.js';
import { poller } from './ui.js';
import * as minersView from './views/miners.js';
import * as detailView from './views/detail.js';
import * as modelsView from './views/models.js';
import * as healthView from './views/health.js';

const HEADER_MS = 5000;
const FLEET_MS = 10000;
const FLEET_PAGE = 10000;

const $ = (id) => document.getElementById(id);
let current = null;        // { key, hash, view }
let headerPoll = null, fleetPoll = null;
let models = [];
let lastHealth = null;

const ctx = {
	navigate(hash, replace) {
		if (replace)
			history.replaceState(null, '', hash);
		else
			history.pushState(null, '', hash);
		route();
	},
	models: () => models,
	setModels(list) {
		models = list;
	},
};

function parseHash() {
	const h = location.hash.replace(/^#\/?/, '');
	const [path, qs] = h.split('?');
	const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
	const params = new URLSearchParams(qs || '');
	if (!parts.length || (parts[0] === 'miners' && parts.length === 1))
		return { name: 'miners', params };
	if (parts[0] === 'miners' && parts.length === 2)
		return { name: 'detail', id: parts[1].toLowerCase(), params };
	if (parts[0] === 'models')
		return { name: 'models', params };
	if (parts[0] === 'health')
		return { name: 'health', params };
	return { name: 'unknown', params };
}

const VIEWS = {
	miners: [minersView, 'Miners'],
	detail: [detailView, 'Miner'],
	models: [modelsView, 'Models'],
	health: [healthView, 'Health'],
};

function route() {
	if (!api.token())
		return;
	const r = parseHash();
	const key = r.name === 'detail' ? `detail:${r.id}` : r.name;
	// popstate and hashchange may both report one move.
	if (current && current.hash === location.hash)
		return;
	// The same view with a new query (miners' filters) is updated in place.
	if (current && current.key === key && current.view.update) {
		current.hash = location.hash;
		current.view.update(r.params);
		return;
	}
	if (current)
		current.view.unmount();
	current = null;
	const el = $('view');
	el.replaceChildren();
	delete el.dataset.loaded;
	el.dataset.view = r.name;
	for (const a of document.querySelectorAll('.tabs a')) {
		const on = a.dataset.view === r.name || (r.name === 'detail' && a.dataset.view === 'miners');
		if (on)
			a.setAttribute('aria-current', 'page');
		else
			a.removeAttribute('aria-current');
	}
	if (r.name === 'unknown') {
		current = { key, hash: location.hash, view: { unmount() {} } };
		el.innerHTML = '<h1>Not found</h1><p>There is no such page. <a href="#/miners">Back to the miners</a>.</p>';
		return;
	}
	const [mod, title] = VIEWS[r.name];
	document.title = (r.name === 'detail' ? `${r.id} · ` : `${title} · `) + 'PowerHive';
	const view = mod.mount(el, r.params, ctx, r.id);
	current = { key, hash: location.hash, view: typeof view === 'function' ? { unmount: view } : view };
}

// ---------------------------------------------------------------- header

// Fleet totals: from /api/health when apid gives them, else summed over
// the whole list.
async function fleetFromList() {
	const acc = { total: 0, online: 0, hashrate_ghs: 0, power_w: 0, errors: 0, estimated: 0 };
	for (let offset = 0; ; offset += FLEET_PAGE) {
		const page = await api.get('/api/miners' + api.query({ limit: FLEET_PAGE, offset }));
		for (const m of page.miners) {
			acc.total++;
			if (!m.online)
				continue;
			acc.online++;
			const s = m.status;
			if (s && f.isNum(s.hr_realtime_ghs))
				acc.hashrate_ghs += s.hr_realtime_ghs;
			if (s && f.isNum(s.power_w)) {
				acc.power_w += s.power_w;
				if (s.power_metered === false)
					acc.estimated++;
			}
			if (f.inError(m))
				acc.errors++;
		}
		if (page.miners.length < FLEET_PAGE || offset + FLEET_PAGE >= page.total)
			break;
	}
	return acc;
}

function showFleet(fl) {
	$('fleet-online').textContent = `${f.num(fl.online)} / ${f.num(fl.total)}`;
	$('fleet-hashrate').textContent = f.hashrate(fl.hashrate_ghs);
	const est = fl.estimated ? ` (${f.num(fl.estimated)} estimated)` : '';
	$('fleet-power').textContent = f.power(fl.power_w);
	$('fleet-power').title = `total power of the online miners${est}`;
	$('fleet-errors').textContent = f.num(fl.errors);
	$('fleet-errors').closest('div').classList.toggle('bad', fl.errors > 0);
}

function showSuite(h) {
	const now = Date.now();
	const s = H.summary(h, now);
	const lost = H.lost(h);
	const w = h.workers;
	const sw = H.sweeps(h);
	const ages = sw.map((x) => (f.isNum(x.age_ms) ? x.age_ms : now - (x.ts_ms ?? x.ts ?? 0)));
	const lastSweep = ages.length ? Math.min(...ages) : null;
	const problems = [];
	if (s.missing.length)
		problems.push(`no ${s.missing.join(', ')}`);
	else if (w && w.status === 0)
		problems.push('no pollerd connected');
	if (lost)
		problems.push(`${f.num(lost)} lost events`);
	if (lastSweep === null && s.by.discoverd)
		problems.push('no sweep yet');
	else if (lastSweep !== null && lastSweep > 10 * 60000)
		problems.push(`last sweep ${f.ago(now - lastSweep, now)}`);
	const el = $('fleet-suite');
	el.textContent = problems.length ? problems.join(' · ') : 'all running';
	el.title = [`alive: ${s.text}`,
		w ? `workers connected: ${f.num(w.status)} status, ${f.num(w.telemetry)} telemetry` : '',
		f.isNum(lost) ? `lost events: ${lost}` : '',
		lastSweep !== null ? `last sweep ${f.ago(now - lastSweep, now)}` : 'no sweep yet',
	].filter(Boolean).join('\n');
	el.closest('div').classList.toggle('bad', problems.length > 0);
}

async function refreshHeader() {
	const h = await api.get('/api/health');
	lastHealth = h;
	showSuite(h);
	if (h.fleet && f.isNum(h.fleet.total))
		showFleet({ errors: 0, ...h.fleet });
}

async function refreshFleet() {
	if (lastHealth?.fleet && f.isNum(lastHealth.fleet.total))
		return;
	showFleet(await fleetFromList());
}

async function refreshModels() {
	try {
		models = modelsView.modelList(await api.get('/api/models'));
	} catch {
		models = [];
	}
}

// ---------------------------------------------------------------- sign-in

function showLogin(message) {
	stop();
	$('login').hidden = false;
	$('fleet').hidden = true;
	$('logout').hidden = true;
	$('view').replaceChildren();
	document.querySelector('.tabs').hidden = true;
	$('login-error').textContent = message || '';
	document.title = 'Sign in · PowerHive';
	$('token').focus();
}

function stop() {
	if (current)
		current.view.unmount();
	current = null;
	headerPoll?.stop();
	fleetPoll?.stop();
	headerPoll = fleetPoll = null;
}

async function start() {
	$('login').hidden = true;
	$('fleet').hidden = false;
	$('logout').hidden = false;
	document.querySelector('.tabs').hidden = false;
	await refreshModels();
	headerPoll = poller(refreshHeader, HEADER_MS);
	fleetPoll = poller(refreshFleet, FLEET_MS);
	route();
}

$('login-form').addEventListener('submit', async (e) => {
	e.preventDefault();
	const t = $('token').value.trim();
	const btn = e.target.querySelector('button');
	if (!t) {
		$('login-error').textContent = 'Paste the API token first.';
		return;
	}
	btn.disabled = true;
	$('login-error').textContent = 'Checking…';
	try {
		await api.get('/api/health', t);
		api.setToken(t);
		$('token').value = '';
		$('login-error').textContent = '';
		await start();
	} catch (err) {
		$('login-error').textContent = err.kind === 'auth'
			? `Refused: ${err.message}. Check the token and try again.`
			: `Cannot sign in: ${err.message}`;
		$('token').select();
	} finally {
		btn.disabled = false;
	}
});

$('logout').addEventListener('click', () => {
	api.setToken('');
	showLogin('Signed out.');
});

api.onAuthFailed((msg) => {
	api.setToken('');
	showLogin(`The API refused the token (${msg}). Sign in again.`);
});

api.onConnection((c) => {
	const b = $('banner');
	if (c.reachable) {
		b.hidden = true;
		b.textContent = '';
		return;
	}
	const since = c.lastOk ? ` Last contact ${f.when(c.lastOk).slice(11)}.` : '';
	b.textContent = `The PowerHive API cannot be reached (${c.lastError}). ` +
		`The figures below may be stale; retrying every few seconds.${since}`;
	b.hidden = false;
});

window.addEventListener('popstate', route);
window.addEventListener('hashchange', route);

if (api.token())
	start();
else
	showLogin('');
