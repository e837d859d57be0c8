/** Live charts: loss (raw, smoothed, eval), accuracy (+F1 for classification) and learning rate by step. */
import { useMemo } from 'react';
import { CartesianGrid, Legend, Line, LineChart, ReferenceLine, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import type { ClassBaselines } from '../engine/train/baselines';
import type { EvalMetrics, StepMetrics } from '../worker/protocol';
import { num } from './format';

/** At most this many points per line: recharts redraws every series on every update. */
const MAX_POINTS = 400;

/** TensorBoard's debiased exponential moving average. */
export function smooth(values: number[], weight = 0.8): number[] {
  let last = 0;
  let n = 0;
  return values.map((v) => {
    last = last * weight + (1 - weight) * v;
    n++;
    return last / (1 - weight ** n);
  });
}

function thin<T>(rows: T[]): T[] {
  if (rows.length <= MAX_POINTS) return rows;
  const stride = Math.ceil(rows.length / MAX_POINTS);
  return rows.filter((_, i) => i % stride === 0 || i === rows.length - 1);
}

/** chrF is drawn as a share (chrF / 100) on the same percent axis as exact match and ROUGE-L. */
type Row = { step: number; loss?: number; smoothed?: number; evalLoss?: number; accuracy?: number; f1?: number; lr?: number; exactMatch?: number; chrf?: number; rougeL?: number };

function merge(metrics: StepMetrics[], evals: EvalMetrics[]): Row[] {
  const byStep = new Map<number, Row>();
  const row = (step: number) => byStep.get(step) ?? (byStep.set(step, { step }), byStep.get(step)!);
  const s = smooth(metrics.map((m) => m.loss));
  thin(metrics.map((m, i) => ({ m, sm: s[i] }))).forEach(({ m, sm }) => Object.assign(row(m.step), { loss: m.loss, smoothed: sm, lr: m.lr }));
  for (const e of evals) {
    Object.assign(row(e.step), { evalLoss: e.evalLoss, accuracy: e.accuracy, f1: e.f1 });
    if (e.exactMatch !== undefined) Object.assign(row(e.step), { exactMatch: e.exactMatch, chrf: e.chrf !== undefined ? e.chrf / 100 : undefined, rougeL: e.rougeL });
  }
  return [...byStep.values()].sort((a, b) => a.step - b.step);
}

const axis = { stroke: '#64748b', fontSize: 11 };
const tip = (v: unknown) => (typeof v === 'number' ? num(v) : String(v));

/** A dashed horizontal reference line with its name at the right end; it widens the axis to stay in view. */
function refLine(key: string, y: number, name: string, color: string) {
  return (
    <ReferenceLine
      key={key}
      y={y}
      stroke={color}
      strokeDasharray="5 4"
      ifOverflow="extendDomain"
      label={{ value: name, position: 'insideTopRight', fontSize: 10.5, fill: color }}
    />
  );
}

/** Axis labels: percentages for accuracy, short exponents for tiny values (learning rates), 3 digits otherwise. */
function tick(kind: 'percent' | 'exp' | 'plain') {
  return (v: number) => {
    if (kind === 'percent') return `${Number((v * 100).toPrecision(3))}%`;
    if (kind === 'exp' && v !== 0 && Math.abs(v) < 1e-2) return v.toExponential(1).replace('.0e', 'e');
    return String(Number(v.toPrecision(3)));
  };
}

type Ref = { key: string; y: number; name: string; color: string };

function Chart(props: { title: string; testId: string; points: number; rows: Row[]; children: React.ReactNode; ticks?: 'percent' | 'exp' | 'plain'; empty: string; steps?: string; refs?: Ref[] }) {
  const refs = props.refs ?? [];
  return (
    <figure className="chart" data-testid={props.testId} data-points={props.points} data-steps={props.steps} data-refs={refs.map((r) => `${r.key}=${r.y}`).join(',')}>
      <figcaption>{props.title}</figcaption>
      {props.points === 0 ? (
        <div className="chart-empty muted">{props.empty}</div>
      ) : (
        <ResponsiveContainer width="100%" height={180}>
          <LineChart data={props.rows} margin={{ top: 6, right: 12, bottom: 0, left: 0 }}>
            <CartesianGrid stroke="#e2e8f0" strokeDasharray="3 3" />
            <XAxis dataKey="step" type="number" domain={['dataMin', 'dataMax']} allowDecimals={false} {...axis} />
            <YAxis {...axis} width={58} domain={['auto', 'auto']} tickCount={5} tickFormatter={tick(props.ticks ?? 'plain')} />
            <Tooltip formatter={tip} labelFormatter={(l) => `step ${l}`} isAnimationActive={false} />
            <Legend iconSize={10} wrapperStyle={{ fontSize: 12 }} />
            {props.children}
            {refs.map((r) => refLine(r.key, r.y, r.name, r.color))}
          </LineChart>
        </ResponsiveContainer>
      )}
    </figure>
  );
}

/**
 * The charts of a run. Reference lines: the base model's evaluation before training (the step-0 evaluation), and
 * for classification the majority-class rate and a bag-of-words logistic regression on the same split.
 */
export function Charts(props: { metrics: StepMetrics[]; evals: EvalMetrics[]; classification: boolean; baselines?: ClassBaselines | null; tagging?: boolean; seq2seq?: boolean }) {
  const rows = useMemo(() => merge(props.metrics, props.evals), [props.metrics, props.evals]);
  const n = props.metrics.length;
  const e = props.evals.length;
  // The train-loss steps in order (a resumed run continues its curve: 1..N with no gap or repeat).
  const steps = useMemo(() => props.metrics.map((m) => m.step).join(','), [props.metrics]);
  const line = { dot: false, isAnimationActive: false, connectNulls: true, strokeWidth: 2 } as const;
  const base = props.evals[0]?.step === 0 ? props.evals[0] : undefined;
  const lossRefs: Ref[] = base ? [{ key: 'base', y: base.evalLoss, name: 'base model', color: '#64748b' }] : [];
  const accRefs: Ref[] = props.seq2seq ? (base?.chrf !== undefined ? [{ key: 'base', y: base.chrf / 100, name: 'base model chrF', color: '#64748b' }] : []) : [
    ...(base && Number.isFinite(base.accuracy) ? [{ key: 'base', y: base.accuracy, name: 'base model', color: '#64748b' }] : []),
    ...(props.tagging && props.baselines
      ? [{ key: 'all-o', y: props.baselines.majority, name: 'all-O tagger (entity F1 0)', color: '#b45309' }]
      : props.classification && props.baselines
      ? [
          { key: 'majority', y: props.baselines.majority, name: 'majority class', color: '#b45309' },
          { key: 'bow', y: props.baselines.bagOfWords, name: 'bag-of-words LR', color: '#be123c' },
        ]
      : []),
  ];
  return (
    // data-f1: the evaluations' F1 in step order (entity F1 for TOKEN_CLS), for tests to read what the chart draws.
    // data-chrf / data-exact-match / data-rouge-l: SEQ_2_SEQ_LM's generation scores in step order, as drawn.
    <div
      className="charts" data-testid="charts" data-f1={props.classification ? props.evals.map((x) => x.f1 ?? '').join(',') : undefined}
      data-chrf={props.seq2seq ? props.evals.map((x) => x.chrf ?? '').join(',') : undefined}
      data-exact-match={props.seq2seq ? props.evals.map((x) => x.exactMatch ?? '').join(',') : undefined}
      data-rouge-l={props.seq2seq ? props.evals.map((x) => x.rougeL ?? '').join(',') : undefined}
    >
      <Chart title="Loss" testId="chart-loss" points={n + e} rows={rows} steps={steps} refs={lossRefs} empty="Train loss appears after the first step.">
        <Line type="linear" dataKey="loss" name="train (raw)" stroke="#93c5fd" {...line} strokeWidth={1} />
        <Line type="monotone" dataKey="smoothed" name="train (smoothed)" stroke="#2563eb" {...line} />
        <Line type="monotone" dataKey="evalLoss" name="eval" stroke="#ea580c" {...line} dot={{ r: 3 }} />
      </Chart>
      <Chart
        title={props.seq2seq ? 'Eval chrF, exact match and ROUGE-L (greedy generation)' : props.tagging ? 'Eval token accuracy and entity F1' : props.classification ? 'Eval accuracy and F1' : 'Eval next-token accuracy'}
        testId="chart-accuracy"
        points={e}
        rows={rows}
        ticks="percent"
        refs={e ? accRefs : []}
        empty={props.seq2seq ? 'The generation scores appear at the first evaluation.' : 'Accuracy appears at the first evaluation.'}
      >
        {props.seq2seq ? (
          [
            <Line key="chrf" type="monotone" dataKey="chrf" name="chrF" stroke="#16a34a" {...line} dot={{ r: 3 }} />,
            <Line key="em" type="monotone" dataKey="exactMatch" name="exact match" stroke="#9333ea" {...line} dot={{ r: 3 }} />,
            <Line key="rl" type="monotone" dataKey="rougeL" name="ROUGE-L" stroke="#0d9488" {...line} dot={{ r: 3 }} />,
          ]
        ) : (
          <Line type="monotone" dataKey="accuracy" name="accuracy" stroke="#16a34a" {...line} dot={{ r: 3 }} />
        )}
        {props.classification && <Line type="monotone" dataKey="f1" name={props.tagging ? 'entity F1' : 'F1'} stroke="#9333ea" {...line} dot={{ r: 3 }} />}
      </Chart>
      <Chart title="Learning rate" testId="chart-lr" points={n} rows={rows} ticks="exp" empty="The schedule appears as training runs.">
        <Line type="stepAfter" dataKey="lr" name="learning rate" stroke="#0891b2" {...line} />
      </Chart>
    </div>
  );
}
