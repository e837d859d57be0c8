/** Export: the latest adapter (during or after training) as PEFT's two files, or a zip with a README. */
import { snapshotAdapter } from '../state/actions';
import { useState } from 'react';
import { download } from '../state/export-files';
import { downloadAdapterZip, useExport } from '../state/export-actions';
import { setBaseModelName, usePush } from '../state/push-actions';
import { useProject } from '../state/project';
import { useRun } from '../state/run';
import { STALE_ADAPTER } from '../state/feedback';
import { PreviousRunNote } from './StaleNote';
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
  const builtin = useProject((s) => s.modelRef?.kind === 'builtin');
  const baseBytes = useProject((s) => s.model.info?.weightBytes);
  const baseName = usePush((s) => s.baseModelName);
  const zipBusy = useExport((s) => s.busy === 'zip');
  const zipError = useExport((s) => (s.error?.job === 'zip' ? s.error.message : null));
  const [includeBase, setIncludeBase] = useState(false);
  // Which method the adapter on offer was trained with: after a switch, its files are an earlier method's.
  const cpType = cp ? String((JSON.parse(cp.files['adapter_config.json']) as { peft_type?: string }).peft_type ?? '') : '';
  const cpLabel = methods.find((m) => m.peftType === cpType)?.label ?? cpType;
  const cpBase = cp ? String((JSON.parse(cp.files['adapter_config.json']) as { base_model_name_or_path?: string }).base_model_name_or_path ?? '') : '';

  const zip = () => {
    if (cp) void downloadAdapterZip({ labels: cp.task === 'SEQ_CLS' || cp.task === 'TOKEN_CLS' ? labels : [], includeBase: builtin && includeBase });
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
      {cp && <PreviousRunNote from={cp.from} what={STALE_ADAPTER} testId="export-stale" />}
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
        <button type="button" className="primary" data-testid="download-zip" disabled={!cp || zipBusy} onClick={zip}>
          Zip with README
        </button>
        {live && (
          <button type="button" data-testid="snapshot" onClick={() => void snapshotAdapter()} title="Fetch the weights as they are right now">
            Update to current step
          </button>
        )}
      </div>
      <div className="row wrap">
        <label title="What PEFT loads the base model from: a Hub id (owner/name) or a folder. Written into the zipped and pushed adapter_config.json and the model card.">
          base_model_name_or_path{' '}
          <input data-testid="base-model-name" value={baseName ?? cpBase} placeholder={cpBase || 'owner/name'} onChange={(e) => setBaseModelName(e.target.value)} />
        </label>
        {builtin && (
          <label title="The built-in model is not on the Hub: the zip can carry its files, and the README loads them from there.">
            <input type="checkbox" data-testid="zip-include-base" checked={includeBase} onChange={(e) => setIncludeBase(e.target.checked)} /> zip includes the base model's files{baseBytes ? ` (${bytes(baseBytes)})` : ''}
          </label>
        )}
      </div>
      {zipError && <p className="error-text small" data-testid="zip-error">{zipError}</p>}
      <BeyondTab hasAdapter={!!cp || imported} />
      <PushToHub />
    </Panel>
  );
}
