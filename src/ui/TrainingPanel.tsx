/** Training: trainer arguments, the compute backend (with why it was chosen) and Start / Pause / Resume / Stop. */
import { initBackend, pauseTraining, resumeTraining, startTraining, stopTraining } from '../state/actions';
import { presetCustomFields, projectActions as P, useProject } from '../state/project';
import { PRESET_IDS, PRESET_LABELS, type PresetArgs } from '../engine/train/presets';
import { useRun } from '../state/run';
import type { BackendChoice } from '../worker/protocol';
import { Check, NumberField, OptionalNumberField, Panel, Segmented, SelectField } from './controls';

const BACKENDS: { value: BackendChoice; label: string }[] = [
  { value: 'auto', label: 'Auto' },
  { value: 'webgpu', label: 'WebGPU' },
  { value: 'wasm', label: 'WASM' },
  { value: 'cpu', label: 'CPU' },
];

/** Why Start is not possible yet, or null. */
export function blocker(s: ReturnType<typeof useProject.getState>): string | null {
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
  return checkpointProblem(s.args, s.data.summary.validationRows > 0);
}

/** Best-model settings that cannot work with these evaluation settings (the worker refuses them too). */
export function checkpointProblem(a: ReturnType<typeof useProject.getState>['args'], hasValidation: boolean): string | null {
  const evaluates = a.evalSteps > 0 && hasValidation;
  const need = a.evalSteps > 0 ? 'validation rows (a validation split above 0)' : '"eval every N steps" above 0';
  if (a.loadBestModelAtEnd && !evaluates) return `Load best model at end needs ${need}.`;
  if (a.earlyStoppingPatience !== null && !evaluates) return `Early stopping needs ${need}.`;
  if (a.loadBestModelAtEnd && a.saveSteps > 0 && a.saveSteps % a.evalSteps !== 0) {
    return `Load best model at end needs "save every N steps" to be 0 or a multiple of ${a.evalSteps}, so each best evaluation has a checkpoint.`;
  }
  return null;
}

/** How the Training panel names a preset's fields. */
const FIELD_NAMES: Record<keyof PresetArgs | 'targets', string> = {
  learningRate: 'learning rate', maxSteps: 'max steps', batchSize: 'batch size', maxLength: 'max length',
  warmupSteps: 'warmup steps', evalSteps: 'eval every N steps', scheduler: 'schedule', targets: 'target modules',
};
const TASK_NAMES: Record<string, string> = { CAUSAL_LM: 'language modelling', SEQ_CLS: 'classification' };

/** Quick demo / Thorough, which preset is applied, and the fields changed since (custom). */
function PresetBar() {
  const preset = useProject((s) => s.preset);
  const task = useProject((s) => s.task);
  const method = useProject((s) => s.method);
  const methods = useProject((s) => s.methods);
  const custom = useProject((s) => presetCustomFields(s).join(','));
  const lrFromMethod = useProject((s) => s.lrFromMethod);
  const label = (m: string) => methods.find((x) => x.peftType === m)?.label ?? m;
  const stale = preset && (preset.task !== task || preset.method !== method);
  return (
    <div className="preset-bar" data-testid="presets">
      <div className="row">
        <span className="label">Preset</span>
        {PRESET_IDS.map((id) => (
          <button key={id} type="button" className={`chip${preset?.id === id && !custom && !stale ? ' on' : ''}`} data-testid={`preset-${id}`} onClick={() => P.applyPreset(id)}>
            {PRESET_LABELS[id]}
          </button>
        ))}
      </div>
      <p className="hint" data-testid="preset-status" data-preset={preset?.id ?? ''} data-custom={custom}>
        {preset ? (
          <>
            <strong>{PRESET_LABELS[preset.id]}</strong> applied for {label(preset.method)}, {TASK_NAMES[preset.task] ?? preset.task}
            {preset.measured ? ` (measured: ${preset.measured})` : ' (not measured for this method: a starting point)'}
            {custom ? `; custom: ${custom.split(',').map((k) => FIELD_NAMES[k as keyof typeof FIELD_NAMES]).join(', ')}` : ''}
            {stale ? `. The ${preset.task !== task ? 'task' : 'method'} changed since: apply it again for this one.` : '.'}
          </>
        ) : (
          'A preset sets learning rate, steps, batch, length, warmup, evaluation and targets from measured runs; every field stays editable.'
        )}
      </p>
      {lrFromMethod && (
        <p className="hint" data-testid="lr-from-method">
          Learning rate set to <strong>{lrFromMethod.learningRate}</strong>, the example value PEFT uses for {label(lrFromMethod.method)}; change it below to keep your own.
        </p>
      )}
    </div>
  );
}

export function TrainingPanel() {
  const args = useProject((s) => s.args);
  const limitBy = useProject((s) => s.limitBy);
  const backend = useProject((s) => s.backend);
  const choice = useProject((s) => s.backendChoice);
  const running = useRun((s) => s.state !== 'idle');
  const checkpointingAuto = useProject((s) => (s.memory && s.args.gradientCheckpointing === 'auto' ? s.memory.checkpointing.on : null));
  const task = useProject((s) => s.task);
  const metrics: { value: typeof args.metricForBestModel; label: string }[] = [
    { value: 'eval_loss', label: 'eval_loss' },
    { value: 'eval_accuracy', label: 'eval_accuracy' },
    ...(task === 'SEQ_CLS' || args.metricForBestModel === 'eval_f1' ? [{ value: 'eval_f1' as const, label: 'eval_f1' }] : []),
    // SEQ_2_SEQ_LM: the scores of greedy generation (higher is better).
    ...(task === 'SEQ_2_SEQ_LM' || /^eval_(chrf|exact_match|rougeL)$/.test(args.metricForBestModel)
      ? (['eval_chrf', 'eval_exact_match', 'eval_rougeL'] as const).map((value) => ({ value, label: value }))
      : []),
  ];
  const lossMetric = args.metricForBestModel === 'eval_loss';

  return (
    <Panel title="Training" id="training">
      <fieldset disabled={running}>
        <PresetBar />
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
          <NumberField label="seed" value={args.seed} integer min={0} onChange={(seed) => P.updateArgs({ seed })} testId="seed" />
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
        <h3 className="subhead">Checkpoints and best model</h3>
        <div className="grid3" data-testid="checkpoint-settings">
          <NumberField
            label="save every N steps"
            value={args.saveSteps}
            integer
            min={0}
            onChange={(saveSteps) => P.updateArgs({ saveSteps })}
            hint="0: at each evaluation; also at pause, stop, the end and a failure (save_steps)"
            testId="save-steps"
          />
          <OptionalNumberField
            label="keep at most N checkpoints"
            value={args.saveTotalLimit}
            min={1}
            placeholder="all"
            onChange={(saveTotalLimit) => P.updateArgs({ saveTotalLimit })}
            hint="older ones are deleted, never the best (save_total_limit); empty: keep all"
            testId="save-total-limit"
          />
          <SelectField
            label="metric for best model"
            value={args.metricForBestModel}
            options={metrics}
            onChange={(metricForBestModel) => P.updateArgs({ metricForBestModel })}
            hint="the evaluation metric that picks the best checkpoint (metric_for_best_model)"
            testId="best-metric"
          />
          <SelectField
            label="better is"
            value={args.greaterIsBetter === null ? 'auto' : args.greaterIsBetter ? 'greater' : 'lower'}
            options={[
              { value: 'auto', label: `auto (${lossMetric ? 'lower' : 'greater'})` },
              { value: 'greater', label: 'greater' },
              { value: 'lower', label: 'lower' },
            ]}
            onChange={(v) => P.updateArgs({ greaterIsBetter: v === 'auto' ? null : v === 'greater' })}
            hint="greater_is_better; auto: lower for a loss, greater otherwise"
            testId="greater-is-better"
          />
          <OptionalNumberField
            label="early stopping patience"
            value={args.earlyStoppingPatience}
            min={1}
            placeholder="off"
            onChange={(earlyStoppingPatience) => P.updateArgs({ earlyStoppingPatience })}
            hint="stop after this many evaluations in a row without improvement; empty: off"
            testId="early-stopping"
          />
          <Check
            label="load best model at end"
            checked={args.loadBestModelAtEnd}
            onChange={(loadBestModelAtEnd) => P.updateArgs({ loadBestModelAtEnd })}
            hint="the adapter the run ends with (Export, Runs) is the best checkpoint's (load_best_model_at_end)"
            testId="load-best"
          />
        </div>
        <p className="hint">
          Checkpoints are kept in this browser: a run cut off by a reload or a closed tab resumes from its last one (Runs).
          {args.loadBestModelAtEnd && ' At the end, Export offers the best checkpoint\'s adapter; the playground uses the last step\'s weights.'}
        </p>
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
