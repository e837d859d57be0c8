/**
 * Import adapter: a folder PEFT saved (adapter_config.json + adapter_model.safetensors), picked, dropped or given
 * as the two files, loaded onto the current model. Shows what it is, evaluates it against the base model on the
 * validation rows, and can be the starting point of the next training run.
 */
import { useRef } from 'react';
import { startTraining } from '../state/actions';
import { closeImported, evaluateImported, importActions, importAdapter, importFolder, useImport } from '../state/import';
import { useProject } from '../state/project';
import { useRun } from '../state/run';
import type { AdapterEvalMetrics } from '../worker/protocol';
import { Check, DropZone, ErrorNote, Panel } from './controls';
import { filesFromDrop } from './drop-files';
import { bytes, num, thousands } from './format';

type DirectoryPicker = (o?: { mode?: 'read'; id?: string }) => Promise<FileSystemDirectoryHandle>;

/** How a set of picked files is named: its folder, or the files themselves. */
function nameOf(files: File[]): string {
  const folder = (files[0] as (File & { webkitRelativePath?: string }) | undefined)?.webkitRelativePath?.split('/')[0];
  return folder || (files.length === 1 ? files[0].name : `${files.length} files`);
}

function Metrics(props: { m: AdapterEvalMetrics; cls: boolean }) {
  return (
    <>
      <td className="mono">{num(props.m.evalLoss)}</td>
      <td className="mono">{(props.m.accuracy * 100).toFixed(1)}%</td>
      {props.cls && <td className="mono">{props.m.f1 === undefined ? '–' : props.m.f1.toFixed(3)}</td>}
      {props.m.chrf !== undefined && <td className="mono" data-testid="import-eval-chrf">{props.m.chrf.toFixed(1)}</td>}
      {props.m.exactMatch !== undefined && <td className="mono">{(props.m.exactMatch * 100).toFixed(1)}%</td>}
    </>
  );
}

export function ImportAdapter() {
  const imp = useImport();
  const ready = useProject((s) => s.model.status === 'ready');
  const modelName = useProject((s) => s.model.info?.name);
  const hasValidation = useProject((s) => (s.data.summary?.validationRows ?? 0) > 0);
  const dataReady = useProject((s) => s.data.status === 'ready');
  const running = useRun((s) => s.state !== 'idle');
  const folderInput = useRef<HTMLInputElement>(null);
  const disabled = !ready || running || imp.status === 'loading';
  const picker = (window as unknown as { showDirectoryPicker?: DirectoryPicker }).showDirectoryPicker;
  const pickFolder = () =>
    picker ? picker({ mode: 'read', id: 'peft-studio-adapter' }).then((h) => importFolder(h), () => undefined) : folderInput.current?.click();
  const openFiles = (files: File[]) => {
    if (files.length) void importAdapter(files, nameOf(files));
  };
  const info = imp.info;
  const result = imp.evaluation.result;
  const cls = (result?.task ?? info?.task) === 'SEQ_CLS';

  return (
    <Panel title="Import adapter" id="import">
      <DropZone testId="import-drop" disabled={disabled} onDrop={(dt) => void filesFromDrop(dt).then(openFiles)}>
        <div className="row wrap">
          <label
            className={`button ${disabled ? 'disabled' : ''}`}
            onClick={(e) => {
              if (!picker || disabled) return;
              e.preventDefault();
              void pickFolder();
            }}
          >
            Open adapter folder…
            <input
              ref={folderInput}
              type="file"
              hidden
              disabled={disabled}
              data-testid="import-folder-input"
              {...({ webkitdirectory: '' } as Record<string, string>)}
              onChange={(e) => {
                openFiles([...(e.target.files ?? [])]);
                e.target.value = '';
              }}
            />
          </label>
          <label className={`button ${disabled ? 'disabled' : ''}`}>
            Open files…
            <input
              type="file"
              hidden
              multiple
              disabled={disabled}
              accept=".json,.safetensors"
              data-testid="import-files-input"
              onChange={(e) => {
                openFiles([...(e.target.files ?? [])]);
                e.target.value = '';
              }}
            />
          </label>
          {imp.status === 'loading' && <span className="muted">Importing…</span>}
        </div>
        <p className="hint">
          …or drop a folder with adapter_config.json and adapter_model.safetensors (saved by PEFT or downloaded from the Export panel). It is
          loaded onto {modelName ?? 'the current model'} and checked strictly: every key and shape must fit.
        </p>
      </DropZone>
      {imp.error && (
        <ErrorNote testId="import-error">
          {imp.error}
          {info && <span className="muted"> The adapter imported before ({info.name}) is still loaded.</span>}
        </ErrorNote>
      )}
      {info && (
        <>
          <p data-testid="import-info">
            <strong>imported: {info.name}</strong>, {info.summary} · {info.task} · {info.tensors} tensors, {thousands(info.params)} parameters,{' '}
            {bytes(info.bytes)}
            {info.baseModel && info.baseModel !== modelName && <span className="muted"> · saved for {info.baseModel}</span>}
          </p>
          {info.notes.map((n) => (
            <p key={n} className="muted small">
              {n}
            </p>
          ))}
          <p className="muted small">The method, settings and targets panels now show its config{imp.active ? '; the playground uses it' : ''}.</p>
          <div className="row wrap">
            <button
              type="button"
              data-testid="import-evaluate"
              disabled={running || imp.evaluation.busy || !dataReady || !hasValidation}
              title={hasValidation ? 'Eval loss and accuracy on the validation split, with the adapter and without' : 'The dataset has no validation rows'}
              onClick={() => void evaluateImported()}
            >
              {imp.evaluation.busy ? 'Evaluating…' : 'Evaluate on validation'}
            </button>
            <button
              type="button"
              className="primary"
              data-testid="import-train"
              disabled={running || !dataReady}
              onClick={() => {
                importActions.setContinueFrom(true);
                void startTraining();
              }}
            >
              Continue training
            </button>
            <button type="button" data-testid="import-close" disabled={running} onClick={() => void closeImported()}>
              Remove
            </button>
          </div>
          <Check
            label="Start training runs from this adapter's weights (fresh optimizer)"
            checked={imp.continueFrom}
            onChange={importActions.setContinueFrom}
            disabled={running}
            testId="import-continue"
          />
          {imp.evaluation.error && <ErrorNote testId="import-eval-error">{imp.evaluation.error}</ErrorNote>}
          {result && (
            <table className="small" data-testid="import-eval">
              <thead>
                <tr>
                  <th>{result.rows} validation rows</th>
                  <th>eval loss</th>
                  <th>{result.task === 'SEQ_2_SEQ_LM' ? 'token acc.' : 'accuracy'}</th>
                  {cls && <th>F1</th>}
                  {result.withAdapter.chrf !== undefined && <th>chrF</th>}
                  {result.withAdapter.exactMatch !== undefined && <th>exact match</th>}
                </tr>
              </thead>
              <tbody>
                <tr data-testid="import-eval-on">
                  <td>adapter on</td>
                  <Metrics m={result.withAdapter} cls={cls} />
                </tr>
                <tr data-testid="import-eval-off">
                  <td>base model</td>
                  <Metrics m={result.withoutAdapter} cls={cls} />
                </tr>
              </tbody>
            </table>
          )}
        </>
      )}
    </Panel>
  );
}
