/** Export: the latest adapter (during or after training) as PEFT's two files, or a zip with a README. */
import { snapshotAdapter } from '../state/actions';
import { CURVES_FILE } from '../engine/export/chart-svg';
import { buildReadme, buildZip, download } from '../state/export-files';
import { runCurvesSvg } from '../state/push-actions';
import { useProject } from '../state/project';
import { useRun } from '../state/run';
import { useImport } from '../state/import';
import { BeyondTab } from './BeyondTab';
import { PushToHub } from './PushToHub';
import { Panel } from './controls';
import { bytes, num } from './format';

const NO_LABELS: string[] = [];

export function ExportPanel() {
  const cp = useRun((s) => s.checkpoint);
  const state = useRun((s) => s.state);
  const runId = useRun((s) => s.runId);
  const labels = useProject((s) => s.data.summary?.labels ?? NO_LABELS);
  const method = useProject((s) => s.method);
  const methods = useProject((s) => s.methods);
  const live = state === 'running' || state === 'paused';
  const imported = useImport((s) => !!s.info);
  // Which method the adapter on offer was trained with: after a switch, its files are an earlier method's.
  const cpType = cp ? String((JSON.parse(cp.files['adapter_config.json']) as { peft_type?: string }).peft_type ?? '') : '';
  const cpLabel = methods.find((m) => m.peftType === cpType)?.label ?? cpType;

  const zip = () => {
    if (!cp) return;
    const config = JSON.parse(cp.files['adapter_config.json']) as Record<string, unknown>;
    // The data's chat template, when this run trained on chat data (the data can't change during a run).
    const chatTemplate = cp.task === 'CAUSAL_LM' && cp.runId === runId ? useProject.getState().data.summary?.chat?.template ?? null : null;
    // The curves are this run's: an adapter of an earlier run has none here.
    const curves = cp.runId === runId ? runCurvesSvg() : null;
    const readme = buildReadme({ task: cp.task, step: cp.step, labels: cp.task === 'SEQ_CLS' ? labels : [], config, chatTemplate, curvesFile: curves ? CURVES_FILE : null });
    download(`peft-studio-adapter-step${cp.step}.zip`, buildZip(cp.files, readme, chatTemplate?.text, curves ? { [CURVES_FILE]: curves } : {}), 'application/zip');
  };

  return (
    <Panel title="Export" id="export">
      {cp ? (
        <p data-testid="checkpoint-info">
          {cpLabel} adapter from step <strong>{cp.step}</strong>
          {cp.step === 0 && <strong data-testid="checkpoint-untrained"> (untrained: its weights are the initial ones, it does not change the model)</strong>}
          {cp.runId !== runId && ' of an earlier run'}
          {cpType !== method && <strong data-testid="checkpoint-other-method"> (an earlier method: the settings now are for {methods.find((m) => m.peftType === method)?.label ?? method})</strong>} ·{' '}
          {bytes(cp.files['adapter_model.safetensors'].byteLength)} · saved{' '}
          {new Date(cp.receivedAt).toLocaleTimeString()}
          {cp.best && (
            <strong data-testid="checkpoint-best">
              {' '}· the run's best checkpoint ({cp.best.metric} {num(cp.best.value)}), as load best model at end asks
            </strong>
          )}
        </p>
      ) : (
        <p className="muted">Start training to get an adapter; it can be downloaded at any time during and after the run.</p>
      )}
      <div className="row wrap">
        <button type="button" data-testid="download-weights" disabled={!cp} onClick={() => cp && download('adapter_model.safetensors', cp.files['adapter_model.safetensors'])}>
          adapter_model.safetensors
        </button>
        <button
          type="button"
          data-testid="download-config"
          disabled={!cp}
          onClick={() => cp && download('adapter_config.json', cp.files['adapter_config.json'], 'application/json')}
        >
          adapter_config.json
        </button>
        <button type="button" className="primary" data-testid="download-zip" disabled={!cp} onClick={zip}>
          Zip with README
        </button>
        {live && (
          <button type="button" data-testid="snapshot" onClick={() => void snapshotAdapter()} title="Fetch the weights as they are right now">
            Update to current step
          </button>
        )}
      </div>
      <BeyondTab hasAdapter={!!cp || imported} />
      <PushToHub />
    </Panel>
  );
}
