/** The live view of a run: progress, speed, time, charts, and any error the worker reported. */
import { historyActions as H, resumeRun, useHistory } from '../state/history';
import { runActions as R, useRun } from '../state/run';
import { Charts } from './Charts';
import { ConfusionMatrix } from './ConfusionMatrix';
import { learningHint, staleNote } from '../state/feedback';
import { ErrorNote, Panel } from './controls';
import { duration, num, thousands } from './format';
import { useProject } from '../state/project';
import { blocker, RunControls } from './TrainingPanel';

const STATE_TEXT = { idle: 'Idle', starting: 'Starting', running: 'Training', paused: 'Paused', stopping: 'Stopping' } as const;

/**
 * The newest kept run, when it was cut off (a reload, a closed or crashed tab) or stopped, paused or failed before
 * its last step: "Resume run from step K", and why a resume was refused.
 */
function ResumeOffer() {
  const state = useRun((s) => s.state);
  const newest = useHistory((s) => s.runs[0]);
  const resume = useHistory((s) => s.resume);
  // The model and data must be in place (the run's own settings are used; the checkpoint checks the rest).
  const notReady = useProject((s) => {
    const b = blocker(s);
    return b && !b.startsWith('Fix') && !b.startsWith('Load best') && !b.startsWith('Early') ? b : null;
  });
  if (state !== 'idle' || !newest?.resumable) return null;
  const k = newest.latestStep;
  const why = { interrupted: 'was interrupted', stopped: 'was stopped', failed: 'failed', paused: 'was paused', running: 'is running', completed: 'completed' }[newest.shownStatus];
  return (
    <div className="resume-offer" data-testid="resume-offer" data-run={newest.id} data-step={k}>
      <span>
        <strong>{newest.name}</strong> {why} at step {newest.step} of {newest.totalSteps}.
      </span>
      <button type="button" className="primary" data-testid="resume-run" disabled={resume.busy || !!notReady} onClick={() => void resumeRun(newest.id)}>
        {resume.busy && resume.id === newest.id ? 'Resuming…' : `Resume run from step ${k}`}
      </button>
      {notReady && <span className="muted">{notReady}</span>}
      {resume.error && resume.id === newest.id && (
        <ErrorNote testId="resume-error">
          {resume.error}
          <button type="button" className="link" onClick={H.clearResumeError}>
            Dismiss
          </button>
        </ErrorNote>
      )}
    </div>
  );
}

/** Best checkpoint so far, early stopping, and storage warnings of the run on show. */
function RunRecordLine() {
  const rec = useHistory((s) => s.runs.find((r) => r.id === s.currentId));
  const warnings = useHistory((s) => s.warnings);
  if (!rec && !warnings.length) return null;
  return (
    <>
      {rec && (
        <p className="hint" data-testid="run-best">
          {rec.bestStep !== null && rec.bestMetric !== null ? (
            <>
              best {rec.metricForBestModel} <strong data-testid="best-metric-value">{num(rec.bestMetric)}</strong> at step{' '}
              <strong data-testid="best-step">{rec.bestStep}</strong>
            </>
          ) : (
            'best checkpoint: after the first evaluation'
          )}
          {' · '}
          {rec.checkpoints.length ? `checkpoint at step ${rec.latestStep} kept in this browser` : 'no checkpoint kept yet'}
          {rec.stoppedEarly && (
            <strong data-testid="stopped-early"> · stopped early: no improvement for {String((rec.start as { args?: { earlyStoppingPatience?: number } }).args?.earlyStoppingPatience ?? '')} evaluations</strong>
          )}
        </p>
      )}
      {warnings.length > 0 && (
        <div className="issues" role="status" data-testid="run-warning">
          {warnings.map((w) => (
            <div key={w}>{w}</div>
          ))}
          <button type="button" className="link" onClick={H.dismissWarnings}>
            Dismiss
          </button>
        </div>
      )}
    </>
  );
}

/** "Didn't learn": the evaluations are flat, worse, or at the majority-class rate; what to try. */
function LearningHintNote() {
  const evals = useRun((s) => s.evals);
  const task = useRun((s) => s.task);
  const baselines = useRun((s) => s.baselines);
  const hint = learningHint(evals, task, baselines);
  if (!hint) return null;
  return (
    <div className="issues learning-hint" role="status" data-testid="learning-hint">
      <strong>{hint.reason}</strong> Things to try:
      <ul>
        {hint.tips.map((t) => (
          <li key={t}>{t}</li>
        ))}
      </ul>
    </div>
  );
}

/** The run on show was started with another task, method or model than the studio is now set to. */
function StaleNote() {
  const from = useRun((s) => (s.state === 'idle' && s.metrics.length ? s.from : null));
  const task = useProject((s) => s.task);
  const method = useProject((s) => s.method);
  const model = useProject((s) => s.model.label);
  const note = staleNote(from, { task, method, model });
  if (!note) return null;
  return (
    <p className="issues stale-note" role="status" data-testid="stale-results">
      {note}
    </p>
  );
}

export function LiveView() {
  const run = useRun();
  const p = run.progress;
  const last = run.metrics[run.metrics.length - 1];
  const lastEval = run.evals[run.evals.length - 1];
  const labels = useProject((s) => s.data.summary?.labels);
  const pct = p ? (100 * p.step) / p.totalSteps : 0;
  const status = run.state === 'idle' && run.outcome ? { completed: 'Finished', stopped: 'Stopped', failed: 'Failed' }[run.outcome] : STATE_TEXT[run.state];

  return (
    <Panel title="Live" id="live" aside={<span className={`state state-${run.state} ${run.outcome ?? ''}`} data-testid="run-state">{status}</span>}>
      <RunControls />
      <ResumeOffer />
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
          <dd data-testid="loss">{num(last?.loss)}</dd>
        </div>
        <div>
          <dt>eval loss</dt>
          <dd data-testid="eval-loss" data-value={lastEval?.evalLoss}>{num(lastEval?.evalLoss)}</dd>
        </div>
        <div>
          <dt>{run.task === 'SEQ_CLS' ? 'accuracy' : run.task === 'TOKEN_CLS' ? 'token acc.' : run.task === 'SEQ_2_SEQ_LM' ? 'chrF' : 'next-token acc.'}</dt>
          {run.task === 'SEQ_2_SEQ_LM' ? (
            <dd data-testid="chrf" data-value={lastEval?.chrf} title={lastEval?.exactMatch !== undefined ? `exact match ${(lastEval.exactMatch * 100).toFixed(1)}%, ROUGE-L ${(lastEval.rougeL! * 100).toFixed(1)}%` : undefined}>
              {lastEval?.chrf !== undefined ? lastEval.chrf.toFixed(1) : '–'}
            </dd>
          ) : (
            <dd data-testid="accuracy" data-value={lastEval?.accuracy}>{lastEval ? `${(lastEval.accuracy * 100).toFixed(1)}%` : '–'}</dd>
          )}
        </div>
        <div hidden={run.task !== 'SEQ_2_SEQ_LM'}>
          <dt>exact match</dt>
          <dd data-testid="exact-match" data-value={lastEval?.exactMatch}>{lastEval?.exactMatch !== undefined ? `${(lastEval.exactMatch * 100).toFixed(1)}%` : '–'}</dd>
        </div>
        <div>
          <dt>tokens/s</dt>
          <dd>{p ? thousands(p.tokensPerSec) : '–'}</dd>
        </div>
        <div>
          <dt>ms/step</dt>
          <dd data-testid="ms-per-step">{p?.msPerStep ? thousands(Math.round(p.msPerStep)) : '–'}</dd>
        </div>
        <div>
          <dt>{run.evalProgress ? 'evaluating' : 'last eval'}</dt>
          {run.evalProgress ? (
            <dd data-testid="eval-progress" title={`Evaluation after step ${run.evalProgress.step} on the validation split, in progress`}>
              {run.evalProgress.phase === 'batches' ? 'batch' : 'generating'} {run.evalProgress.done} / {run.evalProgress.total}
            </dd>
          ) : (
            <dd data-testid="eval-time" title="How long the last evaluation on the validation split took; the ETA counts the ones still to come">
              {lastEval?.durationMs !== undefined ? `${(lastEval.durationMs / 1000).toFixed(1)} s` : '–'}
            </dd>
          )}
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
      <RunRecordLine />
      <StaleNote />
      <LearningHintNote />
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
      <Charts metrics={run.metrics} evals={run.evals} classification={run.task === 'SEQ_CLS' || run.task === 'TOKEN_CLS'} tagging={run.task === 'TOKEN_CLS'} seq2seq={run.task === 'SEQ_2_SEQ_LM'} baselines={run.baselines} />
      {run.task === 'SEQ_CLS' && <ConfusionMatrix evals={run.evals} labels={labels} />}
    </Panel>
  );
}
