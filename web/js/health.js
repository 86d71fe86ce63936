// health — the daemons of GET /api/health: which are alive, and the suite
// in one line. Shared by the header and the Health view. Like them, it
// reads the names apid sends (docs/api.md) and no others: a rename on
// either side must fail the browser test, not degrade quietly.

// Three missed beats at the default 5 s, and a little slack.
const SILENT_MS = 20000;

// A daemon (an element of "daemons") is alive while its heartbeats keep
// coming. apid's own age of the last beat is free of clock skew between
// apid and the browser.
export function alive(d) {
	return d.heartbeat_age_ms < SILENT_MS;
}

// "apid, discoverd, 4 pollerd, 1 telemetryd", how many processes that is,
// and the roles nobody fills.
const ROLES = ['apid', 'discoverd', 'pollerd', 'telemetryd'];

export function summary(h) {
	const ds = h.daemons.filter(alive);
	const by = {};
	for (const d of ds)
		by[d.daemon] = (by[d.daemon] || 0) + 1;
	by.apid = by.apid || 1;          // it answered
	const missing = ROLES.filter((n) => !by[n]);
	const names = [...ROLES.filter((n) => by[n]), ...Object.keys(by).filter((n) => !ROLES.includes(n)).sort()];
	const text = names.map((n) => (by[n] > 1 ? `${by[n]} ${n}` : n)).join(', ');
	const count = Object.values(by).reduce((a, b) => a + b, 0);
	return { by, missing, text, count };
}
