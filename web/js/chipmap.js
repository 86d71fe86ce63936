// chipmap — one grid per hashboard, chips placed as on the board (the
// model's topology: rows × cols of chip ids, -1 = empty slot) and coloured
// by temperature, grade or hashrate from the latest telemetry sample.

import { esc, isNum, num } from './fmt.js';

export const MODES = [
	['temp', 'Temperature'],
	['grade', 'Grade'],
	['hr', 'Hashrate'],
];

// The firmware's chip grades: grey is a chip running as it should,
// orange and red the ones it flags.
const GRADES = {
	g: ['Grey (normal)', 'var(--grade-g)'],
	o: ['Orange', 'var(--grade-o)'],
	r: ['Red', 'var(--grade-r)'],
	'?': ['Unknown', 'var(--grade-u)'],
};

// Temperature scale: cool blue → green → yellow → red at 90 °C.
const T_LO = 40, T_HI = 90;
const T_STOPS = [[0, [49, 104, 196]], [0.4, [46, 160, 67]], [0.7, [230, 190, 30]],
	[1, [200, 40, 40]]];

function mix(stops, f) {
	f = Math.min(1, Math.max(0, f));
	for (let i = 1; i < stops.length; i++) {
		if (f <= stops[i][0]) {
			const [a, ca] = stops[i - 1], [b, cb] = stops[i];
			const k = (f - a) / (b - a || 1);
			const c = ca.map((v, j) => Math.round(v + (cb[j] - v) * k));
			return `rgb(${c[0]},${c[1]},${c[2]})`;
		}
	}
	const c = stops[stops.length - 1][1];
	return `rgb(${c[0]},${c[1]},${c[2]})`;
}

export function tempColour(t) {
	return isNum(t) ? mix(T_STOPS, (t - T_LO) / (T_HI - T_LO)) : 'var(--grade-u)';
}

const HR_STOPS = [[0, [200, 40, 40]], [0.5, [230, 150, 30]], [0.8, [230, 210, 60]],
	[1, [46, 160, 67]]];

function median(v) {
	const s = v.filter(isNum).sort((a, b) => a - b);
	return s.length ? s[Math.floor(s.length / 2)] : NaN;
}

// The board layout: the model's topology when it has one, else a plain
// grid. Ids in the topology may count from 0 or from 1.
export function layout(topology, nChips) {
	const rows = topology && (topology.rows ?? topology.num_rows);
	const cols = topology && (topology.cols ?? topology.num_cols);
	const grid = topology && topology.chips;
	if (Array.isArray(grid) && grid.length && isNum(cols) && cols > 0) {
		const ids = grid.flat().filter((v) => isNum(v) && v >= 0);
		const base = ids.length && Math.min(...ids) === 0 ? 0 : 1;
		return {
			rows: isNum(rows) ? rows : grid.length, cols,
			cells: grid.flat().map((v) => (isNum(v) && v >= 0 ? v - base : -1)),
			fromModel: true,
		};
	}
	const c = Math.max(1, Math.min(nChips, Math.ceil(Math.sqrt(nChips * 4))));
	const cells = [];
	for (let i = 0; i < Math.ceil(nChips / c) * c; i++)
		cells.push(i < nChips ? i : -1);
	return { rows: Math.ceil(nChips / c), cols: c, cells, fromModel: false };
}

function chipTitle(ch, i) {
	const p = [`chip ${i + 1}`];
	if (isNum(ch.temp?.[i]))
		p.push(`${num(ch.temp[i], 1)} °C`);
	if (isNum(ch.hr?.[i]))
		p.push(`${num(ch.hr[i], 1)} GH/s`);
	if (isNum(ch.freq?.[i]))
		p.push(`${ch.freq[i]} MHz`);
	if (isNum(ch.volt?.[i]))
		p.push(`${ch.volt[i]} mV`);
	const gr = ch.grade?.[i];
	if (gr)
		p.push(`grade ${(GRADES[gr] || GRADES['?'])[0].toLowerCase()}`);
	if (isNum(ch.errs?.[i]))
		p.push(`${ch.errs[i]} errors`);
	if (ch.throttled?.[i] === '1')
		p.push('throttled');
	return p.join(', ');
}

function board(chain, topology, mode) {
	const ch = chain.chips || {};
	const n = Math.max(ch.temp?.length || 0, ch.hr?.length || 0, chain.n_chips || 0);
	const lay = layout(topology, n);
	const med = median(ch.hr || []);
	const temps = (ch.temp || []).filter(isNum);
	const thr = [...(ch.throttled || '')].filter((c) => c === '1').length;
	const red = [...(ch.grade || '')].filter((c) => c === 'r').length;
	const cells = lay.cells.map((i) => {
		if (i < 0 || i >= n)
			return '<div class="chip empty" aria-hidden="true"></div>';
		let bg, text = '';
		if (mode === 'grade') {
			const g = GRADES[ch.grade?.[i]] ? ch.grade[i] : '?';
			bg = GRADES[g][1];
			text = g;
		} else if (mode === 'hr') {
			bg = isNum(ch.hr?.[i]) && isNum(med) && med > 0
				? mix(HR_STOPS, ch.hr[i] / med) : 'var(--grade-u)';
		} else {
			bg = tempColour(ch.temp?.[i]);
		}
		const cls = ch.throttled?.[i] === '1' ? 'chip throttled' : 'chip';
		const t = chipTitle(ch, i);
		return `<div class="${cls}" style="background:${bg}" title="${esc(t)}" ` +
			`data-chip="${i}">${text}</div>`;
	}).join('');
	const stats = [];
	stats.push(`${n} chips`);
	if (temps.length)
		stats.push(`${num(Math.min(...temps), 0)}–${num(Math.max(...temps), 0)} °C`);
	if (isNum(chain.freq))
		stats.push(`${num(chain.freq)} MHz`);
	if (isNum(chain.hr_realtime_ghs))
		stats.push(`${num(chain.hr_realtime_ghs / 1000, 2)} TH/s`);
	if (red)
		stats.push(`${red} red`);
	if (thr)
		stats.push(`${thr} throttled`);
	return `<figure class="board">
		<figcaption><strong>Hashboard ${esc(chain.chain ?? chain.id ?? '?')}</strong>
			${chain.state ? `<span class="muted">${esc(chain.state)}</span>` : ''}
			<span class="muted">${esc(stats.join(' · '))}</span></figcaption>
		<div class="chipgrid" role="img" aria-label="Hashboard ${esc(chain.chain ?? '')}: ${esc(stats.join(', '))}"
			style="grid-template-columns: repeat(${lay.cols}, minmax(10px, 1fr))">${cells}</div>
	</figure>`;
}

function legend(mode) {
	if (mode === 'grade')
		return '<div class="legend">' + Object.entries(GRADES).map(([k, [label, c]]) =>
			`<span><i style="background:${c}">${k}</i>${label}</span>`).join('') + '</div>';
	if (mode === 'hr')
		return `<div class="legend"><span class="scale" style="background:linear-gradient(90deg,
			${mix(HR_STOPS, 0)}, ${mix(HR_STOPS, 0.5)}, ${mix(HR_STOPS, 0.8)}, ${mix(HR_STOPS, 1)})"></span>
			<span>0 → the board's median hashrate and above</span></div>`;
	return `<div class="legend"><span>${T_LO} °C</span><span class="scale" style="background:linear-gradient(90deg,
		${tempColour(T_LO)}, ${tempColour(T_LO + 20)}, ${tempColour(T_LO + 35)}, ${tempColour(T_HI)})"></span>
		<span>${T_HI} °C</span><span><i class="chip throttled legend-chip"></i>throttled</span></div>`;
}

// sample: one /telemetry sample {ts, chains:[{chain, state, freq, chips}]}
export function renderChipMaps(el, sample, topology, mode) {
	if (!sample || !Array.isArray(sample.chains) || !sample.chains.length) {
		el.innerHTML = '<p class="muted">No chip telemetry yet: it arrives every telemetry interval.</p>';
		return;
	}
	const note = topology ? '' :
		'<p class="muted">The model\'s board layout is not known yet: chips shown in order.</p>';
	el.innerHTML = note + sample.chains.map((c) => board(c, topology, mode)).join('') +
		legend(mode);
}
