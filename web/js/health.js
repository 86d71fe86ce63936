// health — reading GET /api/health: which daemons are alive, how many
// workers are connected, lost events, the last sweep. Shared by the header
// and the Health view. Tolerant of fields it does not know.

import { isNum } from './fmt.js';

export function pick(o, ...names) {
	for (const n of names)
		if (o && o[n] !== undefined && o[n] !== null)
			return o[n];
	return undefined;
}

// Any timestamp-like field of a heartbeat, in ms.
export function heartbeatMs(d, now = Date.now()) {
	const age = pick(d, 'heartbeat_age_ms');
	if (isNum(age))
		return now - age;
	return pick(d, 'last_heartbeat_ms', 'last_ms', 'last_seen_ms', 'ts', 'ts_ms', 'last');
}

export function daemonName(d) {
	return pick(d, 'daemon', 'name') || String(pick(d, 'src', 'source') || '?').split('/')[0];
}

// A daemon is alive while its heartbeats keep coming; the server may say so
// itself, else three missed beats of 5 s mean it is gone.
export function alive(d, now = Date.now()) {
	const a = pick(d, 'alive', 'up', 'connected');
	if (typeof a === 'boolean')
		return a;
	// The server's own age of the last beat is free of clock skew.
	const age = pick(d, 'heartbeat_age_ms');
	if (isNum(age))
		return age < 20000;
	const t = heartbeatMs(d);
	const every = (pick(d, 'heartbeat_seconds', 'interval_seconds') || 5) * 1000;
	return isNum(t) ? now - t < 3 * every + 2000 : false;
}

export function daemons(h) {
	const d = pick(h, 'daemons', 'processes');
	if (Array.isArray(d))
		return d;
	if (d && typeof d === 'object')
		return Object.entries(d).map(([k, v]) => ({ daemon: k, ...v }));
	return [];
}

export function lost(h) {
	const v = pick(h, 'lost', 'lost_events');
	if (isNum(v))
		return v;
	const ev = pick(h, 'events', 'ingest', 'bus');
	return isNum(ev?.lost) ? ev.lost : undefined;
}

export function sweeps(h) {
	const s = pick(h, 'sweeps') ?? pick(h, 'discovery')?.sweeps ?? pick(h, 'ingest', 'events')?.sweeps;
	if (Array.isArray(s))
		return s;
	if (s && typeof s === 'object')
		return Object.entries(s).map(([k, v]) => ({ subnet: k, ...v }));
	return [];
}

// "apid, discoverd, 4 pollerd, 1 telemetryd", how many processes that is,
// and the roles nobody fills.
const ROLES = ['apid', 'discoverd', 'pollerd', 'telemetryd'];

export function summary(h, now = Date.now()) {
	const ds = daemons(h).filter((d) => alive(d, now));
	const by = {};
	for (const d of ds)
		by[daemonName(d)] = (by[daemonName(d)] || 0) + 1;
	by.apid = by.apid || 1;          // it answered
	const missing = ROLES.filter((n) => !by[n]);
	const names = [...ROLES.filter((n) => by[n]), ...Object.keys(by).filter((n) => !ROLES.includes(n)).sort()];
	const text = names.map((n) => (by[n] > 1 ? `${by[n]} ${n}` : n)).join(', ');
	const count = Object.values(by).reduce((a, b) => a + b, 0);
	return { by, missing, text, count };
}
