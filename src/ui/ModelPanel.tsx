/** Model: the built-in default, a local folder or files (picker or drop), or a Hub repo id. */
import { useState } from 'react';
import { loadBuiltinModel, loadModel } from '../state/actions';
import { useProject } from '../state/project';
import { useRun } from '../state/run';
import { ErrorNote, Panel } from './controls';
import { filesFromDrop } from './drop-files';
import { bytes } from './format';

export function ModelPanel() {
  const model = useProject((s) => s.model);
  const running = useRun((s) => s.state !== 'idle');
  const [hubId, setHubId] = useState('');
  const [over, setOver] = useState(false);

  const openFiles = (files: File[]) => {
    if (!files.length) return;
    const folder = (files[0] as File & { webkitRelativePath?: string }).webkitRelativePath?.split('/')[0];
    void loadModel({ kind: 'files', files }, folder || `${files.length} local file${files.length > 1 ? 's' : ''}`);
  };

  const info = model.info;
  return (
    <Panel title="Model" id="model">
      <div
        className={`dropzone ${over ? 'over' : ''}`}
        data-testid="model-drop"
        onDragOver={(e) => {
          e.preventDefault();
          setOver(true);
        }}
        onDragLeave={() => setOver(false)}
        onDrop={async (e) => {
          e.preventDefault();
          setOver(false);
          if (!running) openFiles(await filesFromDrop(e.dataTransfer));
        }}
      >
        <div className="model-status" data-testid="model-status" aria-live="polite">
          {model.status === 'loading' && <span className="spinner" aria-hidden />}
          {model.status === 'loading' && <span>Loading {model.label}…</span>}
          {model.status !== 'loading' && info && (
            <>
              <strong>{model.label}</strong>
              <span className="muted">
                {info.modelType} · {info.className} · {bytes(info.weightBytes)} · {info.hasTokenizer ? 'tokenizer' : 'no tokenizer'}
              </span>
            </>
          )}
          {model.status === 'idle' && <span className="muted">No model loaded.</span>}
        </div>
        <div className="row">
          <button type="button" onClick={() => void loadBuiltinModel()} disabled={running}>
            Built-in (sotu-gpt2)
          </button>
          <label className={`button ${running ? 'disabled' : ''}`}>
            Open folder…
            <input
              type="file"
              hidden
              disabled={running}
              data-testid="model-folder-input"
              {...({ webkitdirectory: '' } as Record<string, string>)}
              onChange={(e) => openFiles([...(e.target.files ?? [])])}
            />
          </label>
          <label className={`button ${running ? 'disabled' : ''}`}>
            Open files…
            <input
              type="file"
              hidden
              multiple
              disabled={running}
              data-testid="model-files-input"
              accept=".json,.safetensors"
              onChange={(e) => openFiles([...(e.target.files ?? [])])}
            />
          </label>
        </div>
        <p className="hint">…or drop a folder with config.json, model.safetensors and tokenizer.json here.</p>
        <form
          className="row"
          onSubmit={(e) => {
            e.preventDefault();
            if (hubId.trim()) void loadModel({ kind: 'hub', repoId: hubId.trim() }, hubId.trim());
          }}
        >
          <input
            aria-label="Hugging Face repo id"
            placeholder="Hub repo id, e.g. openai-community/gpt2"
            className="grow mono"
            value={hubId}
            disabled={running}
            onChange={(e) => setHubId(e.target.value)}
          />
          <button type="submit" disabled={running || !hubId.trim()}>
            Load from Hub
          </button>
        </form>
      </div>
      {model.error && (
        <ErrorNote testId="model-error">
          {model.error}
          {model.info && <div className="muted">Still using {model.label}.</div>}
        </ErrorNote>
      )}
    </Panel>
  );
}
