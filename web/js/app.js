// PowerHive dashboard: sign-in, the router (#/miners, #/miners/<mac>,
// #/models, #/power, #/alerts, #/health), the fleet header (with the farm's
// draw against the power target and the alerts firing) and the "API
// unreachable" banner.
// Plain ES modules; every asset comes from apid.

import * as api from './api.js';
import * as f from './fmt.js';
import * as H from './health.js';
import { poller } from './ui.js';
import * as minersView from './views/miners.js';
import * as detailView from './views/detail.js';
import * as modelsView from './views/models.js';
import * as healthView from './views/health.js';
import * as powerView from './views/power.js';
import * as alertsView from './views/alerts.js';
import { ruleLabel } from './alerts.js';

const HEADER_MS = 5000;

const $ = (id) => document.getElementById(id);
let current = null;        // { key, hash, view }
let headerPoll = null;
let models = [];
let power = null;          // GET /api/power as the header last read it

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
	power: () => power,
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
	if (parts[0] === 'power')
		return { name: 'power', params };
	if (parts[0] === 'alerts')
		return { name: 'alerts', params };
	return { name: 'unknown', params };
}

const VIEWS = {
	miners: [minersView, 'Miners'],
	detail: [detailView, 'Miner'],
	models: [modelsView, 'Models'],
	health: [healthView, 'Health'],
	power: [powerView, 'Power'],
	alerts: [alertsView, 'Alerts'],
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

// Fleet totals: apid computes them in /api/health ("fleet"), so the header
// never walks the miner list. fl is null when apid could not read them.
function showFleet(fl) {
	const ok = fl && f.isNum(fl.miners);
	const online = $('fleet-online'), hr = $('fleet-hashrate'), pw = $('fleet-power');
	const errs = $('fleet-errors');
	if (!ok) {
		for (const el of [online, hr, pw, errs]) {
			el.textContent = '–';
			el.title = 'fleet totals unavailable (see Health)';
		}
		errs.closest('div').classList.remove('bad');
		return;
	}
	online.textContent = `${f.num(fl.online)} / ${f.num(fl.miners)}`;
	online.title = [`${f.num(fl.online)} of ${f.num(fl.miners)} miners online`,
		f.isNum(fl.mining) ? `${f.num(fl.mining)} mining` : '',
		f.isNum(fl.managed) ? `${f.num(fl.managed)} managed` : '',
	].filter(Boolean).join('\n');
	hr.textContent = f.hashrate(fl.hashrate_ghs);
	hr.title = 'sum of the online miners\' realtime hashrate';
	pw.textContent = f.power(fl.power_w);
	pw.title = 'total power of the online miners' + (fl.power_estimated_w > 0
		? `, ≈${f.power(fl.power_estimated_w)} of it estimated from the running presets`
		: '');
	// Errors: a last error newer than the latest status, or a latest status
	// in state failure (apid counts each miner once across the two).
	const failure = f.isNum(fl.failure) ? fl.failure : 0;
	const n = (f.isNum(fl.errors) ? fl.errors : 0) + failure;
	errs.textContent = f.num(n);
	errs.title = `${f.num(fl.errors)} online miners with an error newer than their last status` +
		(failure ? `, ${f.num(failure)} reporting state failure` : '');
	errs.closest('div').classList.toggle('bad', n > 0);
}

function showSuite(h) {
	const now = Date.now();
	const s = H.summary(h);
	const lost = h.events.lost;
	const w = h.workers;
	const ages = h.sweeps.map((x) => x.age_ms);
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

// The farm's draw against the power target, while the balancer is not off
// (GET /api/power): red when the estimate is over the target, amber while
// the feed is stale or the fallback is in force.
function showDraw(p) {
	const box = $('fleet-draw-box'), dd = $('fleet-draw');
	box.hidden = !p || p.mode === 'off';
	if (box.hidden)
		return;
	const over = f.isNum(p.estimate_w) && f.isNum(p.target_w) && p.estimate_w > p.target_w;
	dd.textContent = `${f.power(p.estimate_w)} / ${f.power(p.target_w)}`;
	$('fleet-draw-label').textContent = p.mode === 'dry_run' ? 'Draw / target (dry run)' : 'Draw / target';
	box.classList.toggle('bad', over);
	box.classList.toggle('warn', !over && p.state !== 'ok');
	dd.title = [
		`power balancing ${powerView.modeLabel(p.mode).toLowerCase()}` +
			(p.mode === 'dry_run' ? ': the plan is computed, nothing is sent' : ''),
		`estimated draw ${f.power(p.estimate_w)}` + (f.isNum(p.measured_w) ? `, measured ${f.power(p.measured_w)}` : ''),
		`target ${f.power(p.target_w)}` + (f.isNum(p.available_w)
			? ` (${f.power(p.available_w)} available less ${f.num(p.margin_pct, 1)} %)` : ''),
		over ? `over the target by ${f.power(p.estimate_w - p.target_w)}` : '',
		p.state !== 'ok' ? `feed ${p.state}: ${p.state_reason || ''}` : '',
	].filter(Boolean).join('\n');
}

// Alerts firing now: the count (red while any), by rule in the title. a is
// null when apid could not say (an apid without alerts hides the box).
function showAlerts(a, missing) {
	const box = $('fleet-alerts-box'), dd = $('fleet-alerts');
	box.hidden = missing;
	if (missing)
		return;
	const n = a && f.isNum(a.firing) ? a.firing : null;
	dd.textContent = n === null ? '–' : f.num(n);
	dd.dataset.firing = n === null ? '' : String(n);
	box.classList.toggle('bad', n > 0);
	dd.title = n === null ? 'alerts unavailable'
		: n === 0 ? 'no alert firing'
			: Object.entries(a.firing_by_rule || {}).filter(([, k]) => k > 0)
				.map(([r, k]) => `${ruleLabel(r)}: ${f.num(k)}`).join('\n');
}

// The header: the suite's health and the fleet in one request, then the
// alerts firing and the balancer's few figures (an apid without a
// balancer hides them).
async function refreshHeader() {
	const h = await api.get('/api/health');
	showSuite(h);
	showFleet(h.fleet);
	try {
		showAlerts(await api.get('/api/alerts' + api.query({ state: 'firing', limit: 1 })), false);
	} catch (e) {
		if (e.kind === 'auth')
			throw e;
		showAlerts(null, e.status === 404);
	}
	try {
		power = await api.get('/api/power');
	} catch (e) {
		power = null;
		if (e.kind === 'auth')
			throw e;
	}
	showDraw(power);
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
	delete document.body.dataset.role;
	$('whoami').hidden = true;
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
	headerPoll = null;
	power = null;
	showDraw(null);
}

// The token's name and role: controls its role may not use are hidden
// (style.css, data-needs). Until known, the least role is assumed.
async function whoami() {
	document.body.dataset.role = 'viewer';
	try {
		const w = await api.get('/api/whoami');
		document.body.dataset.role = w.role;
		$('whoami').textContent = `${w.name} · ${w.role}`;
		$('whoami').title = `Signed in as ${w.name} (${w.role})`;
		$('whoami').hidden = false;
	} catch {
		$('whoami').hidden = true;
	}
}

async function start() {
	$('login').hidden = true;
	await whoami();
	$('fleet').hidden = false;
	$('logout').hidden = false;
	document.querySelector('.tabs').hidden = false;
	await refreshModels();
	headerPoll = poller(refreshHeader, HEADER_MS);
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
