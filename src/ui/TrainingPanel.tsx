/** Training: trainer arguments, the compute backend (with why it was chosen) and Start / Pause / Resume / Stop. */
import { initBackend, pauseTraining, resumeTraining, startTraining, stopTraining } from '../state/actions';
import { projectActions as P, useProject } from '../state/project';
import { useRun } from '../state/run';
import type { BackendChoice } from '../worker/protocol';
import { NumberField, Panel, Segmented, SelectField } from './controls';

const BACKENDS: { value: BackendChoice; label: string }[] = [
  { value: 'auto', label: 'Auto' },
  { value: 'webgpu', label: 'WebGPU' },
  { value: 'wasm', label: 'WASM' },
  { value: 'cpu', label: 'CPU' },
];

/** Why Start is not possible yet, or null. */
function blocker(s: ReturnType<typeof useProject.getState>): string | null {
  if (s.backend.status !== 'ready') return s.backend.status === 'error' ? 'No compute backend could start.' : 'Starting the compute backend…';
  if (s.model.status !== 'ready') {
    if (s.model.phase === 'confirm') return 'Download the model first (Model panel).';
    if (s.model.phase === 'downloading') return 'Downloading the model…';
    if (s.model.status === 'loading') return 'Loading the model…';
    return s.model.info ? 'The model is not downloaded: Retry in the Model panel.' : 'Load a model first.';
  }
  if (s.data.status === 'loading') return 'Reading the data…';
  if (!s.data.summary) return 'Choose a dataset.';
  if (s.targets.pending || !s.targets.result) return 'Resolving targets…';
  if (s.targets.result.error) return s.targets.result.virtualTokens === undefined && s.targets.result.error.code === 'TARGETS_NOT_FOUND' ? 'Fix the target modules first.' : 'Fix the method settings first.';
  return null;
}

export function TrainingPanel() {
  const args = useProject((s) => s.args);
  const limitBy = useProject((s) => s.limitBy);
  const backend = useProject((s) => s.backend);
  const choice = useProject((s) => s.backendChoice);
  const running = useRun((s) => s.state !== 'idle');
  const checkpointingAuto = useProject((s) => (s.memory && s.args.gradientCheckpointing === 'auto' ? s.memory.checkpointing.on : null));

  return (
    <Panel title="Training" id="training">
      <fieldset disabled={running}>
        <div className="grid3">
          <NumberField label="learning rate" value={args.learningRate} min={1e-8} max={10} onChange={(learningRate) => P.updateArgs({ learningRate })} testId="lr" />
          <SelectField
            label="stop after"
            value={limitBy}
            options={[
              { value: 'maxSteps', label: 'max steps' },
              { value: 'epochs', label: 'epochs' },
            ]}
            onChange={P.setLimitBy}
            testId="limit-by"
          />
          {limitBy === 'maxSteps' ? (
            <NumberField label="max steps" value={args.maxSteps ?? 60} integer min={1} onChange={(maxSteps) => P.updateArgs({ maxSteps })} testId="max-steps" />
          ) : (
            <NumberField label="epochs" value={args.epochs ?? 1} min={0.01} onChange={(epochs) => P.updateArgs({ epochs })} testId="epochs" />
          )}
          <NumberField label="batch size" value={args.batchSize} integer min={1} max={512} onChange={(batchSize) => P.updateArgs({ batchSize })} testId="batch-size" />
          <NumberField
            label="gradient accumulation"
            value={args.gradientAccumulationSteps}
            integer
            min={1}
            onChange={(gradientAccumulationSteps) => P.updateArgs({ gradientAccumulationSteps })}
          />
          <NumberField label="warmup steps" value={args.warmupSteps} integer min={0} onChange={(warmupSteps) => P.updateArgs({ warmupSteps })} />
          <SelectField
            label="schedule"
            value={args.scheduler}
            options={[
              { value: 'linear', label: 'linear' },
              { value: 'cosine', label: 'cosine' },
              { value: 'constant', label: 'constant' },
            ]}
            onChange={(scheduler) => P.updateArgs({ scheduler })}
          />
          <NumberField label="weight decay" value={args.weightDecay} min={0} onChange={(weightDecay) => P.updateArgs({ weightDecay })} />
          <NumberField label="max grad norm" value={args.maxGradNorm} min={0} onChange={(maxGradNorm) => P.updateArgs({ maxGradNorm })} hint="0 turns clipping off" />
          <NumberField label="eval every N steps" value={args.evalSteps} integer min={0} onChange={(evalSteps) => P.updateArgs({ evalSteps })} hint="0: only at the end" testId="eval-steps" />
          <NumberField label="seed" value={args.seed} integer min={0} onChange={(seed) => P.updateArgs({ seed })} />
          <NumberField
            label="LoRA+ lr ratio"
            value={args.loraplusLrRatio ?? 0}
            min={0}
            onChange={(r) => P.updateArgs({ loraplusLrRatio: r > 0 ? r : null })}
            hint="lora_B trains at lr x ratio (LoRA+; 0: off, the paper uses 16)"
          />
          <SelectField
            label="gradient checkpointing"
            value={args.gradientCheckpointing}
            options={[
              { value: 'auto', label: checkpointingAuto === null ? 'auto' : `auto (${checkpointingAuto ? 'on' : 'off'} for this run)` },
              { value: 'on', label: 'on' },
              { value: 'off', label: 'off' },
            ]}
            onChange={(gradientCheckpointing) => P.updateArgs({ gradientCheckpointing })}
            hint="recompute activations in the backward pass: much less memory, about 35% slower"
            testId="checkpointing"
          />
        </div>
      </fieldset>
      <div className="backend">
        <div className="row">
          <span className="label">Backend</span>
          <Segmented label="Backend" value={choice} options={BACKENDS} disabled={running || backend.status === 'loading'} onChange={(c) => void initBackend(c)} />
        </div>
        <p className="hint" data-testid="backend-reason">
          {backend.status === 'loading' && 'Starting…'}
          {backend.status === 'ready' && (
            <>
              Using <strong data-testid="backend-name">{backend.name}</strong>: {backend.reason}
            </>
          )}
          {backend.status === 'error' && <span className="error-text">{backend.error}</span>}
        </p>
      </div>
    </Panel>
  );
}

/** Start / Pause / Resume / Stop, with the reason Start is disabled. */
export function RunControls() {
  const why = useProject(blocker);
  const state = useRun((s) => s.state);
  return (
    <div className="run-controls">
      {state === 'idle' && (
        <button type="button" className="primary" data-testid="start" disabled={!!why} onClick={() => void startTraining()}>
          Start training
        </button>
      )}
      {state === 'running' && (
        <button type="button" data-testid="pause" onClick={pauseTraining}>
          Pause
        </button>
      )}
      {state === 'paused' && (
        <button type="button" className="primary" data-testid="resume" onClick={resumeTraining}>
          Resume
        </button>
      )}
      {(state === 'running' || state === 'paused' || state === 'starting') && (
        <button type="button" className="danger" data-testid="stop" onClick={stopTraining} disabled={state === 'starting'}>
          Stop
        </button>
      )}
      {state === 'starting' && <span className="muted">Building the model…</span>}
      {state === 'stopping' && <span className="muted">Stopping after this step…</span>}
      {state === 'idle' && why && <span className="muted">{why}</span>}
    </div>
  );
}
