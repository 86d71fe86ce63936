// presets — a model's preset catalogue (GET /api/models: name, pretty,
// watts, th, order, tuned) as the dashboard shows it, and which presets are
// above the model's max preset. "Above" is apid's rule, by the catalogue's
// expected watts: a preset drawing more than the max preset, "disabled"
// (stock clocks) and a preset without known watts are above any limit; a
// max preset without known watts limits nothing.

import * as f from './fmt.js';

// Cheapest first: the ladder reads from economy to overclock.
export function byWatts(a, b) {
	const wa = f.isNum(a.watts) ? a.watts : Infinity, wb = f.isNum(b.watts) ? b.watts : Infinity;
	return wa - wb || a.order - b.order;
}

export function sorted(presets) {
	return [...presets].sort(byWatts);
}

// The max preset's catalogue entry, or null (no limit, or not in the catalogue).
export function limitOf(presets, maxPreset) {
	return maxPreset === null ? null : presets.find((p) => p.name === maxPreset) || null;
}

export function isAbove(p, limit) {
	if (!limit || !f.isNum(limit.watts) || p.name === limit.name)
		return false;
	return p.name === 'disabled' || !f.isNum(p.watts) || p.watts > limit.watts;
}

export function watts(p) {
	return f.isNum(p.watts) ? f.num(p.watts) + '\u00a0W' : '–';
}

export function th(p) {
	return f.isNum(p.th) ? f.num(p.th, p.th % 1 ? 1 : 0) + '\u00a0TH/s' : '–';
}

// Joules per terahash at the preset's expected figures.
export function jth(p) {
	return f.isNum(p.watts) && f.isNum(p.th) && p.th > 0 ? f.num(p.watts / p.th, 1) : '–';
}

// "2620 · 2,620 W · 101 TH/s · 25.9 J/TH", for a selector's option.
export function label(p) {
	const bits = [p.name];
	if (f.isNum(p.watts))
		bits.push(watts(p));
	if (f.isNum(p.th))
		bits.push(th(p));
	if (jth(p) !== '–')
		bits.push(`${jth(p)} J/TH`);
	if (!f.isNum(p.watts) && p.pretty && p.pretty !== p.name)
		bits.push(p.pretty);
	return bits.join(' · ');
}
