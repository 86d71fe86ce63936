// fmt — how numbers, times and states read on the dashboard. Pure
// functions: no DOM, no fetch.

const NBSP = '\u00a0';

export function esc(s) {
	return String(s ?? '').replace(/[&<>"']/g, (c) => ({
		'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
	})[c]);
}

export function isNum(v) {
	return typeof v === 'number' && Number.isFinite(v);
}

export function num(v, digits = 0) {
	if (!isNum(v))
		return '–';
	return v.toLocaleString('en-US', {
		minimumFractionDigits: digits, maximumFractionDigits: digits,
	});
}

// Hashrate arrives in GH/s; a miner is tens of TH/s, a farm PH/s or EH/s.
export function hashrate(ghs) {
	if (!isNum(ghs))
		return '–';
	const th = ghs / 1000;
	if (Math.abs(th) >= 1e6)
		return num(th / 1e6, 2) + NBSP + 'EH/s';
	if (Math.abs(th) >= 1000)
		return num(th / 1000, 2) + NBSP + 'PH/s';
	if (Math.abs(th) >= 1)
		return num(th, th >= 100 ? 1 : 2) + NBSP + 'TH/s';
	return num(ghs, 0) + NBSP + 'GH/s';
}

export function power(w) {
	if (!isNum(w))
		return '–';
	if (Math.abs(w) >= 1e6)
		return num(w / 1e6, 2) + NBSP + 'MW';
	if (Math.abs(w) >= 10000)
		return num(w / 1000, 1) + NBSP + 'kW';
	return num(w, 0) + NBSP + 'W';
}

export function temp(c) {
	return isNum(c) ? num(c, Number.isInteger(c) ? 0 : 1) + NBSP + '°C' : '–';
}

// Relative time for "last seen": short, and absolute in the title.
export function ago(ms, now = Date.now()) {
	if (!isNum(ms) || ms <= 0)
		return 'never';
	const s = Math.round((now - ms) / 1000);
	if (s < 0)
		return 'just now';
	if (s < 60)
		return s + NBSP + 's ago';
	if (s < 3600)
		return Math.floor(s / 60) + NBSP + 'min ago';
	if (s < 86400)
		return Math.floor(s / 3600) + NBSP + 'h ago';
	return Math.floor(s / 86400) + NBSP + 'd ago';
}

export function when(ms) {
	if (!isNum(ms) || ms <= 0)
		return '';
	const d = new Date(ms);
	const p = (n) => String(n).padStart(2, '0');
	return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ` +
		`${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

export function duration(s) {
	if (!isNum(s))
		return '–';
	if (s < 60)
		return `${Math.round(s)} s`;
	if (s < 3600)
		return `${Math.floor(s / 60)} min`;
	if (s < 86400)
		return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
	return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

// The firmware's miner_state values, and the one pill each shows as.
const STATES = {
	'mining': ['Mining', 'ok'],
	'auto-tuning': ['Auto-tuning', 'tune'],
	'initializing': ['Initializing', 'warn'],
	'starting': ['Starting', 'warn'],
	'restarting': ['Restarting', 'warn'],
	'shutting-down': ['Stopping', 'idle'],
	'stopped': ['Stopped', 'idle'],
	'failure': ['Error', 'bad'],
};

export const STATE_NAMES = Object.keys(STATES);

export function stateLabel(state) {
	return (STATES[state] || [state || 'Unknown'])[0];
}

// A paused miner is "stopped" with the description "paused" (the firmware
// has no paused state).
export function paused(s) {
	return !!s && s.state === 'stopped' && s.state_description === 'paused';
}

// [label, class] of a miner's pill: an offline miner is Offline whatever
// its last status said.
export function pill(m) {
	if (!m.online)
		return ['Offline', 'off'];
	const s = m.status;
	if (!s || !s.state)
		return ['No status yet', 'idle'];
	if (paused(s))
		return ['Paused', 'idle'];
	return STATES[s.state] || [s.state, 'idle'];
}

export function pillHtml(m) {
	const [label, cls] = pill(m);
	return `<span class="pill pill-${cls}">${esc(label)}</span>`;
}

// Fans arrive as a list of rpm.
export function fanRpms(fans) {
	return Array.isArray(fans) ? fans.filter(isNum) : [];
}

export function fans(status) {
	if (!status)
		return '–';
	const rpm = fanRpms(status.fans);
	const parts = [];
	if (isNum(status.fan_duty))
		parts.push(`${num(status.fan_duty)}%`);
	if (rpm.length)
		parts.push(rpmRange(rpm));
	return parts.length ? parts.join(' · ') : '–';
}

// "3.6–3.7k rpm": the slowest and fastest fan.
export function rpmRange(rpm) {
	if (!rpm.length)
		return '–';
	const lo = Math.min(...rpm), hi = Math.max(...rpm);
	if (hi < 1000)
		return `${lo === hi ? num(lo) : num(lo) + '–' + num(hi)}${NBSP}rpm`;
	const k = (v) => num(v / 1000, 1);
	return `${lo === hi || k(lo) === k(hi) ? k(hi) : k(lo) + '–' + k(hi)}k${NBSP}rpm`;
}

export function fansTitle(status) {
	const rpm = fanRpms(status?.fans);
	return rpm.length ? rpm.map((r, i) => `fan ${i + 1}: ${r} rpm`).join(', ') : '';
}

export function minerId(m) {
	return m.id;
}

export function lastSeen(m) {
	return m.last_seen;
}

export function statusTs(s) {
	return s ? s.ts : null;
}

// A miner "has an error" when its latest outcome is one: the last error is
// newer than its last status, or its firmware reports a failure.
export function inError(m) {
	if (!m.online)
		return false;
	if (m.status && m.status.state === 'failure')
		return true;
	const e = m.last_error;
	if (!e || !isNum(e.ts))
		return false;
	const st = statusTs(m.status);
	return !isNum(st) || e.ts > st;
}

// ------------------------------------------------------------- actions

// An action's states (GET /api/actions), as its pill shows them.
const ACTION_STATES = {
	'queued': ['Queued', 'idle'],
	'sent': ['Sent', 'tune'],
	'confirming': ['Confirming', 'tune'],
	'done': ['Done', 'ok'],
	'failed': ['Failed', 'bad'],
	'expired': ['Expired', 'bad'],
	'superseded': ['Superseded', 'off'],
};

export const ACTION_STATE_NAMES = Object.keys(ACTION_STATES);

// Still on its way: the dashboard keeps watching it.
export function actionOpen(state) {
	return state === 'queued' || state === 'sent' || state === 'confirming';
}

export function actionPillHtml(state) {
	const [label, cls] = ACTION_STATES[state] || [state, 'idle'];
	return `<span class="pill pill-${cls}" data-state="${esc(state)}">${esc(label)}</span>`;
}

const ACTION_NAMES = {
	'set_preset': 'Set preset',
	'restart': 'Restart mining',
	'pause': 'Pause',
	'resume': 'Resume',
	'reboot': 'Reboot',
};

// "Set preset 2620", "Pause": what was asked, in words.
export function actionText(action, preset) {
	const name = ACTION_NAMES[action] || action;
	return action === 'set_preset' ? `${name} ${preset}` : name;
}
