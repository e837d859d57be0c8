/** The live view of a run: progress, speed, time, charts, and any error the worker reported. */
import { runActions as R, useRun } from '../state/run';
import { Charts } from './Charts';
import { ErrorNote, Panel } from './controls';
import { duration, num, thousands } from './format';
import { RunControls } from './TrainingPanel';

const STATE_TEXT = { idle: 'Idle', starting: 'Starting', running: 'Training', paused: 'Paused', stopping: 'Stopping' } as const;

export function LiveView() {
  const run = useRun();
  const p = run.progress;
  const last = run.metrics[run.metrics.length - 1];
  const lastEval = run.evals[run.evals.length - 1];
  const pct = p ? (100 * p.step) / p.totalSteps : 0;
  const status = run.state === 'idle' && run.outcome ? { completed: 'Finished', stopped: 'Stopped', failed: 'Failed' }[run.outcome] : STATE_TEXT[run.state];

  return (
    <Panel title="Live" id="live" aside={<span className={`state state-${run.state} ${run.outcome ?? ''}`} data-testid="run-state">{status}</span>}>
      <RunControls />
      <div className="progress" role="progressbar" aria-valuemin={0} aria-valuemax={p?.totalSteps ?? 0} aria-valuenow={p?.step ?? 0} aria-label="Training progress">
        <div className="progress-bar" style={{ width: `${pct}%` }} />
      </div>
      <dl className="stats-row" data-testid="run-stats">
        <div>
          <dt>step</dt>
          <dd data-testid="step">{p ? `${p.step} / ${p.totalSteps}` : '–'}</dd>
        </div>
        <div>
          <dt>epoch</dt>
          <dd>{p ? p.epoch.toFixed(2) : '–'}</dd>
        </div>
        <div>
          <dt>loss</dt>
          <dd>{num(last?.loss)}</dd>
        </div>
        <div>
          <dt>eval loss</dt>
          <dd>{num(lastEval?.evalLoss)}</dd>
        </div>
        <div>
          <dt>{run.task === 'SEQ_CLS' ? 'accuracy' : 'next-token acc.'}</dt>
          <dd data-testid="accuracy">{lastEval ? `${(lastEval.accuracy * 100).toFixed(1)}%` : '–'}</dd>
        </div>
        <div>
          <dt>tokens/s</dt>
          <dd>{p ? thousands(p.tokensPerSec) : '–'}</dd>
        </div>
        <div>
          <dt>elapsed</dt>
          <dd>{duration(p?.elapsedMs ?? null)}</dd>
        </div>
        <div>
          <dt>ETA</dt>
          <dd>{run.state === 'running' ? duration(p?.etaMs ?? null) : '–'}</dd>
        </div>
      </dl>
      {run.errors.length > 0 && (
        <ErrorNote testId="run-error">
          {run.errors.slice(-3).map((e) => (
            <div key={e.at + e.message}>
              <strong>{e.code}</strong>: {e.message}
            </div>
          ))}
          {run.checkpoint && <div className="muted">The adapter from step {run.checkpoint.step} is still available under Export.</div>}
          <button type="button" className="link" onClick={R.dismissErrors}>
            Dismiss
          </button>
        </ErrorNote>
      )}
      <Charts metrics={run.metrics} evals={run.evals} classification={run.task === 'SEQ_CLS'} />
    </Panel>
  );
}
