/**
 * training_curves.svg: a well-formed standalone SVG (checked by a small XML reader: one root, tags nest and
 * close, attributes quoted, only XML's five entities), one polyline per series with one point per data point,
 * axes spanning the data, baselines as dashed lines inside the metric panel's range.
 */
import { describe, expect, it } from 'vitest';
import { niceTicks, trainingCurvesSvg } from '../src/engine/export/chart-svg';

interface El { name: string; attrs: Record<string, string>; children: El[] }

/** A strict little XML parser (elements, attributes, text; no DTD, CDATA or processing instructions). */
function parseXml(s: string): El {
  let i = 0;
  const stack: El[] = [];
  let root: El | null = null;
  const text = (t: string) => {
    if (/&(?!(amp|lt|gt|quot|apos);)/.test(t)) throw new Error(`bad entity in ${t}`);
    if (t.includes('<')) throw new Error('stray <');
  };
  while (i < s.length) {
    const lt = s.indexOf('<', i);
    if (lt < 0) { text(s.slice(i)); if (s.slice(i).trim() && !stack.length) throw new Error('text after root'); break; }
    text(s.slice(i, lt));
    const gt = s.indexOf('>', lt);
    if (gt < 0) throw new Error('unclosed tag');
    const tag = s.slice(lt + 1, gt);
    i = gt + 1;
    if (tag.startsWith('/')) {
      const open = stack.pop();
      if (!open || open.name !== tag.slice(1).trim()) throw new Error(`</${tag.slice(1)}> closes ${open?.name}`);
      continue;
    }
    const self = tag.endsWith('/');
    const body = self ? tag.slice(0, -1) : tag;
    const m = /^([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*$/.exec(body);
    if (!m) throw new Error(`bad tag <${tag}>`);
    const attrs: Record<string, string> = {};
    for (const a of m[2].matchAll(/([\w:-]+)="([^"]*)"/g)) {
      if (a[1] in attrs) throw new Error(`duplicate attribute ${a[1]}`);
      text(a[2]);
      attrs[a[1]] = a[2].replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&amp;/g, '&');
    }
    const el: El = { name: m[1], attrs, children: [] };
    if (stack.length) stack[stack.length - 1].children.push(el);
    else if (root) throw new Error('two roots');
    else root = el;
    if (!self) stack.push(el);
  }
  if (stack.length || !root) throw new Error('unclosed elements');
  return root;
}

const all = (e: El): El[] => [e, ...e.children.flatMap(all)];

describe('training curves SVG', () => {
  const trainLoss = Array.from({ length: 40 }, (_, k) => ({ step: k + 1, value: 3 - k * 0.05 }));
  const evalLoss = [0, 10, 20, 30, 40].map((step) => ({ step, value: 3.2 - step * 0.04 }));
  const acc = [0, 10, 20, 30, 40].map((step, k) => ({ step, value: 0.5 + k * 0.1 }));

  it('parses as XML, one polyline per series with its point count, axes spanning the data, baselines dashed', () => {
    const svg = trainingCurvesSvg({ trainLoss, evalLoss, metric: { name: 'eval_accuracy', points: acc }, baselines: [{ name: 'majority class', value: 0.62 }, { name: 'bag-of-words <LR> & co', value: 0.81 }], title: 'gpt2 "LoRA"' });
    const root = parseXml(svg);
    expect(root.name).toBe('svg');
    expect(root.attrs.xmlns).toBe('http://www.w3.org/2000/svg');
    const els = all(root);
    const lines = els.filter((e) => e.name === 'polyline');
    expect(lines.map((l) => l.attrs['data-series'])).toEqual(['train loss', 'eval loss', 'eval_accuracy']);
    expect(lines.map((l) => l.attrs.points.split(' ').length)).toEqual([40, 5, 5]);
    const panels = els.filter((e) => e.name === 'g' && e.attrs.class === 'panel');
    expect(panels).toHaveLength(2);
    // Loss panel: steps 0..40 (eval at 0, train 1..40); values 1.05 (train at 40: 3 - 39 * 0.05) .. 3.2 (eval at 0).
    expect(Number(panels[0].attrs['data-x-min'])).toBe(0);
    expect(Number(panels[0].attrs['data-x-max'])).toBe(40);
    expect(Number(panels[0].attrs['data-y-min'])).toBeCloseTo(1.05, 10);
    expect(Number(panels[0].attrs['data-y-max'])).toBeCloseTo(3.2, 10);
    // Metric panel: 0.5 .. 0.9, the baselines (0.62, 0.81) inside.
    expect(Number(panels[1].attrs['data-y-min'])).toBeCloseTo(0.5, 10);
    expect(Number(panels[1].attrs['data-y-max'])).toBeCloseTo(0.9, 10);
    const base = els.filter((e) => e.attrs.class === 'baseline');
    expect(base.map((b) => b.attrs['data-series'])).toEqual(['majority class', 'bag-of-words <LR> & co']);
    expect(base.every((b) => b.attrs['stroke-dasharray'])).toBe(true);
    // Every plotted point lies inside its panel's frame (x 52..348 for the first panel, 412..708 for the second; y 28..204).
    const frame = (k: number) => ({ x0: k * 360 + 52, x1: k * 360 + 348 });
    lines.forEach((l, n) => {
      const f = frame(n < 2 ? 0 : 1);
      for (const p of l.attrs.points.split(' ')) {
        const [x, y] = p.split(',').map(Number);
        expect(x).toBeGreaterThanOrEqual(f.x0 - 0.01);
        expect(x).toBeLessThanOrEqual(f.x1 + 0.01);
        expect(y).toBeGreaterThanOrEqual(28 - 0.01);
        expect(y).toBeLessThanOrEqual(204 + 0.01);
      }
    });
    // By hand: the first train point (step 1, loss 3): x = 52 + 1 / 40 * 296 = 59.4, y = 204 - (3 - 1.05) / 2.15 * 176
    // = 44.37; the last (step 40, loss 1.05) is the frame's bottom right (348, 204); eval at step 0 (3.2) its top left.
    expect(lines[0].attrs.points.split(' ')[0]).toBe('59.4,44.37');
    expect(lines[0].attrs.points.split(' ')[39]).toBe('348,204');
    expect(lines[1].attrs.points.split(' ')[0]).toBe('52,28');
    expect(svg).toContain('bag-of-words &lt;LR&gt; &amp; co');
  });

  it('a language-modelling run without a metric has one panel; NaN values are left out; a single point still draws', () => {
    const svg = trainingCurvesSvg({ trainLoss: [{ step: 1, value: 2 }, { step: 2, value: NaN }, { step: 3, value: 1.5 }], evalLoss: [{ step: 0, value: 2.5 }], metric: { name: 'eval_accuracy', points: [{ step: 0, value: NaN }] } });
    const els = all(parseXml(svg));
    expect(els.filter((e) => e.name === 'g' && e.attrs.class === 'panel')).toHaveLength(1);
    const lines = els.filter((e) => e.name === 'polyline');
    expect(lines.map((l) => l.attrs.points.split(' ').length)).toEqual([2, 1]);
    expect(els.filter((e) => e.name === 'circle')).toHaveLength(1);
  });

  it('ticks are round numbers covering the range', () => {
    expect(niceTicks(0, 40)).toEqual([0, 10, 20, 30, 40]);
    expect(niceTicks(1.6, 3.2)).toEqual([2, 2.5, 3]); // (3.2 - 1.6) / 5 = 0.32 -> steps of 0.5
    expect(niceTicks(0.5, 0.9)).toEqual([0.5, 0.6, 0.7, 0.8, 0.9]);
  });
});
