/**
 * Runs: every run kept in this browser with its settings, status, metrics, duration and backend; pick two or
 * more to overlay their loss and eval-loss curves; download a run's adapter, metrics.jsonl, training_args.json
 * or trainer_state.json; show a classification run's last confusion matrix; resume a run that was cut off; delete one.
 */
import { useMemo, useState } from 'react';
import { CartesianGrid, Legend, Line, LineChart, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import { deleteRun, downloadRunFile, historyActions as H, resumeRun, useHistory } from '../state/history';
import { useRun } from '../state/run';
import type { LogEntry, RunSummary } from '../worker/protocol';
import { ConfusionMatrix } from './ConfusionMatrix';
import { ErrorNote, Panel } from './controls';
import { duration, num } from './format';

const COLORS = ['#2563eb', '#ea580c', '#16a34a', '#9333ea', '#0891b2', '#db2777', '#65a30d', '#b45309'];
const STATUS = { running: 'running', paused: 'paused', completed: 'completed', stopped: 'stopped', failed: 'failed', interrupted: 'interrupted' } as const;

type Series = { id: string; name: string; color: string; loss: { step: number; v: number }[]; evalLoss: { step: number; v: number }[] };

function seriesOf(runs: RunSummary[], selected: string[], logs: Record<string, { history: LogEntry[] }>): Series[] {
  return selected.flatMap((id, i) => {
    const r = runs.find((x) => x.id === id);
    const log = logs[id]?.history;
    if (!r || !log) return [];
    return [{
      id, name: r.name, color: COLORS[i % COLORS.length],
      loss: log.filter((e) => e.loss !== undefined).map((e) => ({ step: e.step, v: e.loss! })),
      evalLoss: log.filter((e) => e.eval_loss !== undefined).map((e) => ({ step: e.step, v: e.eval_loss! })),
    }];
  });
}

/** Rows by step with one column per run and curve (loss:<id>, eval:<id>). */
function rowsOf(series: Series[]): Record<string, number>[] {
  const byStep = new Map<number, Record<string, number>>();
  const row = (step: number) => byStep.get(step) ?? (byStep.set(step, { step }), byStep.get(step)!);
  for (const s of series) {
    for (const p of s.loss) row(p.step)[`loss:${s.id}`] = p.v;
    for (const p of s.evalLoss) row(p.step)[`eval:${s.id}`] = p.v;
  }
  return [...byStep.values()].sort((a, b) => a.step - b.step);
}

function Overlay() {
  const runs = useHistory((s) => s.runs);
  const selected = useHistory((s) => s.selected);
  const logs = useHistory((s) => s.logs);
  const series = useMemo(() => seriesOf(runs, selected, logs), [runs, selected, logs]);
  const rows = useMemo(() => rowsOf(series), [series]);
  if (selected.length < 2) return <p className="hint">Tick two or more runs to overlay their loss and eval-loss curves.</p>;
  const line = { dot: false, isAnimationActive: false, connectNulls: true } as const;
  return (
    <figure
      className="chart"
      data-testid="runs-overlay"
      data-series={series.map((s) => `${s.id}:${s.loss.length}:${s.evalLoss.length}`).join(' ')}
    >
      <figcaption>Loss (solid) and eval loss (dashed), by step</figcaption>
      <ResponsiveContainer width="100%" height={220}>
        <LineChart data={rows} margin={{ top: 6, right: 12, bottom: 0, left: 0 }}>
          <CartesianGrid stroke="#e2e8f0" strokeDasharray="3 3" />
          <XAxis dataKey="step" type="number" domain={['dataMin', 'dataMax']} allowDecimals={false} stroke="#64748b" fontSize={11} />
          <YAxis width={52} stroke="#64748b" fontSize={11} domain={['auto', 'auto']} tickFormatter={(v: number) => String(Number(v.toPrecision(3)))} />
          <Tooltip formatter={(v: unknown) => (typeof v === 'number' ? num(v) : String(v))} labelFormatter={(l) => `step ${l}`} isAnimationActive={false} />
          <Legend iconSize={10} wrapperStyle={{ fontSize: 11 }} />
          {series.map((s) => (
            <Line key={`l${s.id}`} type="monotone" dataKey={`loss:${s.id}`} name={`${s.name} (${s.id.slice(-6)}) loss`} stroke={s.color} strokeWidth={1.5} {...line} />
          ))}
          {series.map((s) => (
            <Line key={`e${s.id}`} type="monotone" dataKey={`eval:${s.id}`} name={`eval`} stroke={s.color} strokeDasharray="5 3" strokeWidth={2} legendType="none" {...line} />
          ))}
        </LineChart>
      </ResponsiveContainer>
    </figure>
  );
}

function RunRow({ r }: { r: RunSummary }) {
  const selected = useHistory((s) => s.selected.includes(r.id));
  const error = useHistory((s) => s.rowErrors[r.id]);
  const resume = useHistory((s) => s.resume);
  const idle = useRun((s) => s.state === 'idle');
  const [showConfusion, setShowConfusion] = useState(false);
  const c = r.config;
  const live = r.shownStatus === 'running' || r.shownStatus === 'paused';
  const best = r.bestMetric !== null && r.bestStep !== null ? `${num(r.bestMetric)} @ ${r.bestStep}` : '–';
  return (
    <>
      <tr data-testid="run-row" data-run={r.id} data-status={r.shownStatus} data-step={r.step} data-latest-step={r.latestStep}>
        <td>
          <input type="checkbox" aria-label={`overlay ${r.name}`} data-testid="run-select" checked={selected} onChange={() => H.toggleSelected(r.id)} />
        </td>
        <td>
          <div className="run-name">{r.name}</div>
          <div className="sub">
            {c.methodLabel} {c.methodSettings} · {c.task} · {c.data} ({c.trainExamples} train / {c.validationExamples} eval)
          </div>
          <div className="sub">
            lr {c.learningRate} · batch {c.batchSize}
            {c.gradientAccumulationSteps > 1 ? ` × ${c.gradientAccumulationSteps}` : ''} · max length {c.maxLength} · seed {c.seed} · {r.backend} ·{' '}
            {new Date(r.createdAt).toLocaleString()}
          </div>
        </td>
        <td>
          <span className={`run-status ${r.shownStatus}`} data-testid="run-status" title={r.error?.message}>
            {STATUS[r.shownStatus]}
          </span>
          {r.stoppedEarly && <div className="sub">stopped early</div>}
        </td>
        <td>
          {r.step} / {r.totalSteps}
        </td>
        <td>
          {num(r.final.loss)}
          <div className="sub">eval {num(r.final.evalLoss)}</div>
        </td>
        <td title={r.metricForBestModel}>
          {best}
          {r.loadBestModelAtEnd && <div className="sub">adapter: best</div>}
        </td>
        <td>{duration(r.durationMs)}</td>
        <td className="actions">
          {r.resumable && (
            <button type="button" data-testid="run-resume" disabled={!idle || resume.busy} onClick={() => void resumeRun(r.id)} title={`continue from step ${r.latestStep}`}>
              Resume from {r.latestStep}
            </button>
          )}{' '}
          {r.confusion && (
            <button type="button" data-testid="run-confusion-toggle" aria-expanded={showConfusion} onClick={() => setShowConfusion((v) => !v)} title={`the validation split's confusion matrix at step ${r.confusion.step}`}>
              {showConfusion ? 'hide' : 'confusion'}
            </button>
          )}{' '}
          <button type="button" data-testid="run-download-adapter" disabled={!r.latest} onClick={() => void downloadRunFile(r.id, 'adapter')} title={r.loadBestModelAtEnd ? "the best checkpoint's adapter" : "the latest checkpoint's adapter"}>
            adapter
          </button>{' '}
          <button type="button" data-testid="run-download-metrics" disabled={!r.latest} onClick={() => void downloadRunFile(r.id, 'metrics.jsonl')}>
            metrics.jsonl
          </button>{' '}
          <button type="button" data-testid="run-download-args" disabled={!r.latest} onClick={() => void downloadRunFile(r.id, 'training_args.json')}>
            training_args
          </button>{' '}
          <button type="button" data-testid="run-download-state" disabled={!r.latest} onClick={() => void downloadRunFile(r.id, 'trainer_state.json')}>
            trainer_state
          </button>{' '}
          <button
            type="button"
            className="danger"
            data-testid="run-delete"
            disabled={live}
            title={live ? 'stop the run first' : 'delete the run and its checkpoints'}
            onClick={() => {
              if (window.confirm(`Delete ${r.name} and its ${r.checkpoints.length} checkpoint(s) from this browser?`)) void deleteRun(r.id);
            }}
          >
            Delete
          </button>
        </td>
      </tr>
      {showConfusion && r.confusion && (
        <tr>
          <td colSpan={8}>
            <ConfusionMatrix
              testId="run-confusion"
              labels={c.labels.length ? c.labels : undefined}
              evals={[{ step: r.confusion.step, evalLoss: NaN, accuracy: NaN, confusion: r.confusion.matrix, classes: r.confusion.classes }]}
            />
          </td>
        </tr>
      )}
      {(error || (resume.error && resume.id === r.id)) && (
        <tr>
          <td colSpan={8}>
            <ErrorNote testId="run-row-error">{error ?? resume.error}</ErrorNote>
          </td>
        </tr>
      )}
    </>
  );
}

export function RunHistory() {
  const runs = useHistory((s) => s.runs);
  const persistent = useHistory((s) => s.persistent);
  const problems = useHistory((s) => s.problems);
  const error = useHistory((s) => s.error);
  return (
    <Panel title="Runs" id="runs" aside={<span className="muted">{runs.length ? `${runs.length} kept in this browser` : ''}</span>}>
      {error && <ErrorNote testId="runs-error">{error}</ErrorNote>}
      {persistent === false && <p className="hint">This browser offers no persistent storage: runs are kept for this session only.</p>}
      {runs.length === 0 ? (
        <p className="muted" data-testid="runs-empty">
          No runs yet. Every run is kept here with its checkpoints, so it can be compared, downloaded or resumed after a reload.
        </p>
      ) : (
        <div className="table-wrap">
          <table className="runs-table" data-testid="runs-table">
            <thead>
              <tr>
                <th />
                <th>run</th>
                <th>status</th>
                <th>steps</th>
                <th>final loss</th>
                <th>best</th>
                <th>time</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {runs.map((r) => (
                <RunRow key={r.id} r={r} />
              ))}
            </tbody>
          </table>
        </div>
      )}
      {problems.length > 0 && <p className="hint">Not readable (another version of the studio?): {problems.join(', ')}</p>}
      {runs.length > 0 && <Overlay />}
    </Panel>
  );
}
