// chart — time series on a <canvas>, written for the miner detail view:
// one or more panels stacked over a shared time axis (hashrate, power,
// temperature), each with its own y scale and unit. Sharp on HiDPI screens,
// redrawn on resize, a crosshair with the values under the pointer.
//
//   const c = new TimeChart(canvas, [{ title: 'Hashrate', fmt: (v, dp) => ... }, ...]);
//   fmt(v) formats a value under the pointer; fmt(v, dp) an axis label with
//   the dp decimals its tick step needs.
//   c.setData([[{ label, color, points: [[ms, value|null], ...], dash }], ...], [t0, t1]?);
//   the optional [t0, t1] is the time axis (the window asked for); without
//   it the axis spans the points.
//
//   Options (the third argument): noun, what one point is for the text
//   alternative ("statuses"); height, of each panel in CSS pixels; legend
//   false when the page draws the legend itself (it wraps on a phone).

const PANEL_H = 120;
const GAP = 18;
const AXIS_H = 22;
const LEFT = 70;
const RIGHT = 14;
const TOP = 8;

export function niceTicks(min, max, want = 4) {
	if (!Number.isFinite(min) || !Number.isFinite(max))
		return { lo: 0, hi: 1, ticks: [0, 1], dp: 0 };
	if (max - min < 1e-9) {
		const pad = Math.abs(max) > 0 ? Math.abs(max) * 0.05 : 1;
		min -= pad;
		max += pad;
	}
	const raw = (max - min) / want;
	const mag = 10 ** Math.floor(Math.log10(raw));
	const n = raw / mag;
	const step = (n < 1.5 ? 1 : n < 3 ? 2 : n < 7 ? 5 : 10) * mag;
	const lo = Math.floor(min / step) * step;
	const hi = Math.ceil(max / step) * step;
	const ticks = [];
	for (let v = lo; v <= hi + step / 2; v += step)
		ticks.push(Math.abs(v) < step / 1e6 ? 0 : v);
	return { lo, hi, ticks, dp: Math.max(0, -Math.floor(Math.log10(step) + 1e-9)) };
}

const TIME_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200,
	10800, 21600, 43200, 86400, 172800, 604800].map((s) => s * 1000);

export function timeTicks(t0, t1, widthPx) {
	const want = Math.max(2, Math.floor(widthPx / 90));
	const span = Math.max(1, t1 - t0);
	const step = TIME_STEPS.find((s) => span / s <= want) || TIME_STEPS[TIME_STEPS.length - 1];
	// Align on local time so that ticks fall on round minutes and hours.
	const tz = new Date(t0).getTimezoneOffset() * 60000;
	const first = Math.ceil((t0 - tz) / step) * step + tz;
	const ticks = [];
	for (let t = first; t <= t1; t += step)
		ticks.push(t);
	return { step, ticks };
}

function timeLabel(t, step, span) {
	const d = new Date(t);
	const p = (n) => String(n).padStart(2, '0');
	const hm = `${p(d.getHours())}:${p(d.getMinutes())}`;
	if (span > 2 * 86400000)
		return `${p(d.getMonth() + 1)}-${p(d.getDate())} ${hm}`;
	return step < 60000 ? `${hm}:${p(d.getSeconds())}` : hm;
}

export class TimeChart {
	constructor(canvas, panels, { noun = 'statuses', height = PANEL_H, legend = true } = {}) {
		this.canvas = canvas;
		this.panels = panels;        // [{ title, fmt }]
		this.noun = noun;
		this.panelH = height;
		this.legend = legend;
		this.data = panels.map(() => []);
		this.hover = null;           // pointer x in CSS pixels
		canvas.style.height = `${TOP + panels.length * (height + GAP) + AXIS_H}px`;
		this.ro = new ResizeObserver(() => this.draw());
		this.ro.observe(canvas);
		canvas.addEventListener('pointermove', (e) => {
			const r = canvas.getBoundingClientRect();
			this.hover = e.clientX - r.left;
			this.draw();
		});
		canvas.addEventListener('pointerleave', () => {
			this.hover = null;
			this.draw();
		});
	}

	destroy() {
		this.ro.disconnect();
	}

	setData(data, span = null) {
		this.data = data;
		this.span = span;
		this.draw();
		this.canvas.setAttribute('aria-label', this.summary());
	}

	// What a screen reader says instead of the picture.
	summary() {
		const parts = [];
		this.panels.forEach((p, i) => {
			for (const s of this.data[i] || []) {
				const v = s.points.map((q) => q[1]).filter(Number.isFinite);
				if (!v.length)
					continue;
				parts.push(`${s.label}: latest ${p.fmt(v[v.length - 1])}, ` +
					`min ${p.fmt(Math.min(...v))}, max ${p.fmt(Math.max(...v))}`);
			}
		});
		const n = Math.max(0, ...this.data.flat().map((s) => s.points.length));
		return parts.length ? `History of ${n} ${this.noun}. ${parts.join('; ')}.`
			: 'No history yet.';
	}

	draw() {
		const c = this.canvas;
		const w = c.clientWidth, h = c.clientHeight;
		if (!w || !h)
			return;
		const dpr = window.devicePixelRatio || 1;
		if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) {
			c.width = Math.round(w * dpr);
			c.height = Math.round(h * dpr);
		}
		const g = c.getContext('2d');
		g.setTransform(dpr, 0, 0, dpr, 0, 0);
		g.clearRect(0, 0, w, h);
		const css = getComputedStyle(c);
		const ink = css.getPropertyValue('--chart-ink').trim() || '#333';
		const grid = css.getPropertyValue('--chart-grid').trim() || '#ddd';
		const font = `12px ${css.fontFamily || 'sans-serif'}`;
		g.font = font;

		const all = this.data.flat().flatMap((s) => s.points.map((p) => p[0]));
		const plotW = w - LEFT - RIGHT;
		if (!all.length || plotW < 50) {
			g.fillStyle = ink;
			g.textAlign = 'center';
			g.fillText('No history yet', w / 2, h / 2);
			return;
		}
		let t0 = this.span ? this.span[0] : Math.min(...all), t1 = this.span ? this.span[1] : Math.max(...all);
		if (t1 - t0 < 10000) {
			const mid = (t0 + t1) / 2;
			t0 = mid - 5000;
			t1 = mid + 5000;
		}
		const x = (t) => LEFT + ((t - t0) / (t1 - t0)) * plotW;
		const tt = timeTicks(t0, t1, plotW);

		let hoverT = null;
		if (this.hover !== null && this.hover >= LEFT && this.hover <= LEFT + plotW) {
			const target = t0 + ((this.hover - LEFT) / plotW) * (t1 - t0);
			hoverT = all.reduce((a, b) => (Math.abs(b - target) < Math.abs(a - target) ? b : a));
		}
		const readout = [];

		this.panels.forEach((panel, i) => {
			const top = TOP + i * (this.panelH + GAP);
			const series = this.data[i] || [];
			const vals = series.flatMap((s) => s.points.map((p) => p[1])).filter(Number.isFinite);
			const yt = niceTicks(vals.length ? Math.min(...vals) : 0,
				vals.length ? Math.max(...vals) : 1, 3);
			const y = (v) => top + this.panelH - ((v - yt.lo) / (yt.hi - yt.lo)) * this.panelH;

			g.strokeStyle = grid;
			g.lineWidth = 1;
			g.fillStyle = ink;
			g.textAlign = 'right';
			g.textBaseline = 'middle';
			for (const v of yt.ticks) {
				const yy = Math.round(y(v)) + 0.5;
				g.beginPath();
				g.moveTo(LEFT, yy);
				g.lineTo(LEFT + plotW, yy);
				g.stroke();
				g.fillText(panel.fmt(v, yt.dp), LEFT - 6, yy);
			}
			for (const t of tt.ticks) {
				const xx = Math.round(x(t)) + 0.5;
				g.beginPath();
				g.moveTo(xx, top);
				g.lineTo(xx, top + this.panelH);
				g.stroke();
			}

			// Lines break where a value is missing or the gap is far longer
			// than the usual spacing (the miner was away).
			series.forEach((s) => {
				const pts = s.points;
				const dts = [];
				for (let k = 1; k < pts.length; k++)
					dts.push(pts[k][0] - pts[k - 1][0]);
				dts.sort((a, b) => a - b);
				const gap = dts.length ? Math.max(dts[Math.floor(dts.length / 2)] * 4, 30000) : Infinity;
				g.strokeStyle = s.color;
				g.lineWidth = 2;
				g.setLineDash(s.dash ? [5, 4] : []);
				g.beginPath();
				let pen = false, prevT = null;
				for (const [t, v] of pts) {
					if (!Number.isFinite(v) || (prevT !== null && t - prevT > gap)) {
						pen = false;
					}
					if (Number.isFinite(v)) {
						if (pen)
							g.lineTo(x(t), y(v));
						else
							g.moveTo(x(t), y(v));
						pen = true;
					}
					prevT = t;
				}
				g.stroke();
				g.setLineDash([]);
				if (pts.length === 1 && Number.isFinite(pts[0][1])) {
					g.fillStyle = s.color;
					g.beginPath();
					g.arc(x(pts[0][0]), y(pts[0][1]), 3, 0, 2 * Math.PI);
					g.fill();
				}
				if (hoverT !== null) {
					const p = pts.find((q) => q[0] === hoverT);
					if (p && Number.isFinite(p[1])) {
						g.fillStyle = s.color;
						g.beginPath();
						g.arc(x(p[0]), y(p[1]), 4, 0, 2 * Math.PI);
						g.fill();
						readout.push([s.color, `${s.label}: ${panel.fmt(p[1])}`]);
					}
				}
			});

			// Title and legend above the plot.
			g.textAlign = 'left';
			g.textBaseline = 'top';
			g.fillStyle = ink;
			g.font = `600 ${font}`;
			let lx = LEFT + 6;
			g.fillText(panel.title, lx, top + 4);
			lx += g.measureText(panel.title).width + 14;
			g.font = font;
			for (const s of this.legend ? series : []) {
				g.fillStyle = s.color;
				g.fillRect(lx, top + 9, 14, 3);
				g.fillStyle = ink;
				g.fillText(s.label, lx + 18, top + 4);
				lx += 18 + g.measureText(s.label).width + 14;
			}
			g.strokeStyle = ink;
			g.beginPath();
			g.moveTo(LEFT + 0.5, top);
			g.lineTo(LEFT + 0.5, top + this.panelH + 0.5);
			g.lineTo(LEFT + plotW, top + this.panelH + 0.5);
			g.stroke();
		});

		const axisTop = TOP + this.panels.length * (this.panelH + GAP) - GAP + 4;
		g.fillStyle = ink;
		g.textAlign = 'center';
		g.textBaseline = 'top';
		for (const t of tt.ticks)
			g.fillText(timeLabel(t, tt.step, t1 - t0), x(t), axisTop);

		if (hoverT !== null) {
			const hx = Math.round(x(hoverT)) + 0.5;
			g.strokeStyle = ink;
			g.setLineDash([3, 3]);
			g.beginPath();
			g.moveTo(hx, TOP);
			g.lineTo(hx, axisTop - 4);
			g.stroke();
			g.setLineDash([]);
			const lines = [[ink, new Date(hoverT).toLocaleTimeString()], ...readout];
			const bw = 16 + Math.max(...lines.map((l) => g.measureText(l[1]).width));
			const bh = 8 + lines.length * 16;
			let bx = hx + 10;
			if (bx + bw > w - 2)
				bx = hx - 10 - bw;
			const bg = css.getPropertyValue('--chart-tip').trim() || '#fff';
			g.fillStyle = bg;
			g.strokeStyle = grid;
			g.fillRect(bx, TOP + 4, bw, bh);
			g.strokeRect(bx + 0.5, TOP + 4.5, bw, bh);
			g.textAlign = 'left';
			lines.forEach(([color, text], k) => {
				g.fillStyle = k ? color : ink;
				g.fillText(text, bx + 8, TOP + 9 + k * 16);
			});
		}
	}
}
