/**
 * The run's training curves as one standalone SVG (no DOM, no fonts beyond the viewer's sans-serif): a loss
 * panel (train loss, eval loss) and, when the run has one, a task-metric panel (accuracy / F1 / next-token
 * accuracy) with the known baselines (majority class, bag-of-words, the base model's step-0 evaluation) as
 * dashed lines. Saved as training_curves.svg beside a pushed or zipped adapter and linked from its model card.
 */

export interface CurvePoint {
  step: number;
  value: number;
}

export interface CurveSeries {
  name: string;
  points: CurvePoint[];
}

export interface Baseline {
  name: string;
  value: number;
}

export interface CurvesInput {
  /** Training loss per logged step. */
  trainLoss: CurvePoint[];
  /** Evaluation loss per evaluation (step 0 is the base model). */
  evalLoss: CurvePoint[];
  /** The task metric per evaluation, e.g. { name: 'eval_accuracy', points }. */
  metric?: CurveSeries | null;
  /** Horizontal lines on the metric panel. */
  baselines?: Baseline[];
  title?: string;
}

const W = 360; // one panel's width
const H = 240;
const PAD = { left: 52, right: 12, top: 28, bottom: 36 };
const COLORS = ['#2563eb', '#dc2626', '#059669', '#7c3aed', '#d97706', '#6b7280'];

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const num = (v: number) => (Math.abs(v) < 1e-9 ? '0' : String(Number(v.toFixed(2))));

/** Round tick values covering [lo, hi]: about `count` steps of 1, 2 or 5 times a power of ten. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let t = Math.ceil(lo / step - 1e-9) * step; t <= hi + step * 1e-9; t += step) out.push(Number(t.toPrecision(12)));
  return out;
}

const label = (v: number) => (Math.abs(v) >= 1000 || Number.isInteger(v) ? String(Math.round(v)) : String(Number(v.toPrecision(3))));

interface Panel {
  title: string;
  series: CurveSeries[];
  baselines: Baseline[];
}

/** The [min, max] of finite values, widened a little so flat lines and baselines do not sit on the frame. */
function extent(values: number[]): [number, number] {
  const v = values.filter(Number.isFinite);
  if (!v.length) return [0, 1];
  let lo = Math.min(...v);
  let hi = Math.max(...v);
  if (hi === lo) {
    lo -= Math.abs(lo) * 0.05 || 0.5;
    hi += Math.abs(hi) * 0.05 || 0.5;
  }
  return [lo, hi];
}

function panel(p: Panel, x0: number, colorAt: (name: string) => string): string {
  const pts = p.series.flatMap((s) => s.points).filter((q) => Number.isFinite(q.value));
  const [sx0, sx1] = extent(pts.map((q) => q.step));
  const [vy0, vy1] = extent([...pts.map((q) => q.value), ...p.baselines.map((b) => b.value)]);
  const iw = W - PAD.left - PAD.right;
  const ih = H - PAD.top - PAD.bottom;
  const X = (s: number) => x0 + PAD.left + ((s - sx0) / (sx1 - sx0)) * iw;
  const Y = (v: number) => PAD.top + ih - ((v - vy0) / (vy1 - vy0)) * ih;
  const out: string[] = [`<g class="panel" data-title="${esc(p.title)}" data-x-min="${sx0}" data-x-max="${sx1}" data-y-min="${vy0}" data-y-max="${vy1}">`];
  out.push(`<text x="${num(x0 + PAD.left)}" y="18" font-size="13" font-weight="bold">${esc(p.title)}</text>`);
  out.push(`<rect x="${num(x0 + PAD.left)}" y="${PAD.top}" width="${iw}" height="${ih}" fill="none" stroke="#9ca3af"/>`);
  for (const t of niceTicks(vy0, vy1)) {
    out.push(`<line class="y-tick" x1="${num(x0 + PAD.left - 4)}" x2="${num(x0 + PAD.left)}" y1="${num(Y(t))}" y2="${num(Y(t))}" stroke="#9ca3af"/>`);
    out.push(`<text x="${num(x0 + PAD.left - 6)}" y="${num(Y(t) + 4)}" font-size="10" text-anchor="end">${label(t)}</text>`);
  }
  for (const t of niceTicks(sx0, sx1)) {
    out.push(`<line class="x-tick" x1="${num(X(t))}" x2="${num(X(t))}" y1="${PAD.top + ih}" y2="${PAD.top + ih + 4}" stroke="#9ca3af"/>`);
    out.push(`<text x="${num(X(t))}" y="${PAD.top + ih + 16}" font-size="10" text-anchor="middle">${label(t)}</text>`);
  }
  out.push(`<text x="${num(x0 + PAD.left + iw / 2)}" y="${H - 4}" font-size="11" text-anchor="middle">step</text>`);
  for (const b of p.baselines) {
    if (!Number.isFinite(b.value)) continue;
    out.push(`<line class="baseline" data-series="${esc(b.name)}" x1="${num(X(sx0))}" x2="${num(X(sx1))}" y1="${num(Y(b.value))}" y2="${num(Y(b.value))}" stroke="${colorAt(b.name)}" stroke-dasharray="5 4"/>`);
  }
  for (const s of p.series) {
    const ok = s.points.filter((q) => Number.isFinite(q.value));
    if (!ok.length) continue;
    const c = colorAt(s.name);
    out.push(`<polyline data-series="${esc(s.name)}" fill="none" stroke="${c}" stroke-width="1.5" points="${ok.map((q) => `${num(X(q.step))},${num(Y(q.value))}`).join(' ')}"/>`);
    if (ok.length === 1) out.push(`<circle cx="${num(X(ok[0].step))}" cy="${num(Y(ok[0].value))}" r="2.5" fill="${c}"/>`);
  }
  // Legend, top right inside the frame.
  const names = [...p.series.filter((s) => s.points.some((q) => Number.isFinite(q.value))).map((s) => s.name), ...p.baselines.filter((b) => Number.isFinite(b.value)).map((b) => b.name)];
  names.forEach((n, i) => {
    const y = PAD.top + 12 + i * 13;
    const lx = x0 + W - PAD.right - 130;
    out.push(`<line x1="${num(lx)}" x2="${num(lx + 14)}" y1="${y - 3}" y2="${y - 3}" stroke="${colorAt(n)}" stroke-width="2"/>`);
    out.push(`<text x="${num(lx + 18)}" y="${y}" font-size="10">${esc(n)}</text>`);
  });
  out.push('</g>');
  return out.join('\n');
}

/** The standalone SVG document of the run's curves (a loss panel, and a metric panel when there is a metric). */
export function trainingCurvesSvg(c: CurvesInput): string {
  const panels: Panel[] = [{ title: 'Loss', series: [{ name: 'train loss', points: c.trainLoss }, { name: 'eval loss', points: c.evalLoss }], baselines: [] }];
  if (c.metric && c.metric.points.some((q) => Number.isFinite(q.value))) panels.push({ title: c.metric.name, series: [c.metric], baselines: c.baselines ?? [] });
  const names = panels.flatMap((p) => [...p.series.map((s) => s.name), ...p.baselines.map((b) => b.name)]);
  const colorAt = (n: string) => COLORS[Math.max(0, names.indexOf(n)) % COLORS.length];
  const width = W * panels.length;
  const height = H + (c.title ? 18 : 0);
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    ...(c.title ? [`<text x="${width / 2}" y="${height - 4}" font-size="11" text-anchor="middle" fill="#4b5563">${esc(c.title)}</text>`] : []),
    ...panels.map((p, i) => panel(p, i * W, colorAt)),
    '</svg>',
    '',
  ].join('\n');
}

/** The file name the curves are saved under, beside the adapter (the model card links it relatively). */
export const CURVES_FILE = 'training_curves.svg';

/** The task metric to chart from metrics.jsonl-style rows: chrF for seq2seq runs, else accuracy when logged, else F1. */
const METRIC_KEYS = ['eval_chrf', 'eval_accuracy', 'eval_f1'];

/**
 * CurvesInput from Trainer-style log rows (metrics.jsonl: `loss` rows per step, `eval_*` rows per evaluation);
 * null when there is nothing to draw.
 */
export function curvesFromRows(rows: Record<string, unknown>[], o: { baselines?: Baseline[]; title?: string } = {}): CurvesInput | null {
  const val = (r: Record<string, unknown>, k: string) => (typeof r[k] === 'number' && typeof r.step === 'number' ? { step: r.step as number, value: r[k] as number } : null);
  const pick = (k: string) => rows.map((r) => val(r, k)).filter((p): p is CurvePoint => p !== null && Number.isFinite(p.value));
  const trainLoss = pick('loss');
  const evalLoss = pick('eval_loss');
  const key = METRIC_KEYS.find((k) => pick(k).length > 0);
  if (!trainLoss.length && !evalLoss.length) return null;
  return { trainLoss, evalLoss, metric: key ? { name: key, points: pick(key) } : null, baselines: o.baselines, title: o.title };
}
