/**
 * Model: the built-in default, a local folder or files (picker or drop), or a Hub repo id. Every source is read
 * header first: the module tree, parameter count, download size and memory estimate show before any weight is
 * downloaded; then a progress bar (bytes, speed, file) with Cancel, and Retry that continues where it stopped.
 * Below: Hub settings (URL, token) and the models kept in the browser's cache.
 */
import { useRef, useState, type ReactNode } from 'react';
import { cancelLoad, downloadModel, loadBuiltinModel, loadHubModel, loadModel, retryLoad } from '../state/actions';
import { useProject, type ModelRef, type ModelState } from '../state/project';
import { useRun } from '../state/run';
import { CacheList } from './CacheList';
import { DropZone, ErrorNote, Panel } from './controls';
import { modelFromDrop } from './drop-files';
import { bytes, compact, thousands } from './format';
import { HubSettings } from './HubSettings';
import { MemoryView } from './MemoryView';

type DirectoryPicker = (o?: { mode?: 'read' | 'readwrite'; id?: string }) => Promise<FileSystemDirectoryHandle>;

/** Text with its http(s) URLs as links (error messages name repo pages, token pages, tree pages). */
export function Linkified({ text }: { text: string }) {
  const parts: ReactNode[] = [];
  const re = /https?:\/\/[^\s)"']+/g;
  let last = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    const url = m[0].replace(/[.,;:]+$/, '');
    parts.push(text.slice(last, m.index));
    parts.push(
      <a key={m.index} href={url} target="_blank" rel="noreferrer">
        {url}
      </a>,
    );
    last = m.index + url.length;
  }
  parts.push(text.slice(last));
  return <>{parts}</>;
}

function LoadStatus({ model }: { model: ModelState }) {
  const info = model.info;
  if (model.phase === 'inspecting') {
    return (
      <>
        <span className="spinner" aria-hidden />
        <span>Reading the header of {model.label}…</span>
        <button type="button" className="link" data-testid="load-cancel" onClick={cancelLoad}>
          Cancel
        </button>
      </>
    );
  }
  if (!info) return model.status === 'idle' ? <span className="muted">No model loaded.</span> : null;
  const state =
    model.status === 'ready' ? null
      : model.phase === 'confirm' ? <span className="badge warn-badge">not downloaded</span>
        : model.phase === 'downloading' ? <span className="badge info-badge">downloading</span>
          : model.phase === 'cancelled' ? <span className="badge warn-badge">download cancelled</span>
            : <span className="badge err-badge">download failed</span>;
  return (
    <>
      {model.phase === 'downloading' && <span className="spinner" aria-hidden />}
      <strong data-testid="model-name">{model.label}</strong>
      {state}
      <span className="muted">
        {info.modelType} · {info.className} · {bytes(info.weightBytes)} · {info.hasTokenizer ? 'tokenizer' : 'no tokenizer'}
        {model.status === 'ready' && info.sourceKind === 'cache' && ' · from the cache'}
      </span>
      {info.repoUrl && (
        <a href={info.repoUrl} target="_blank" rel="noreferrer" className="small">
          repo page
        </a>
      )}
    </>
  );
}

function DownloadProgressView({ model }: { model: ModelState }) {
  const p = model.progress;
  const total = p?.total ?? model.inspection?.downloadBytes ?? 0;
  const loaded = p?.loaded ?? 0;
  const pct = total ? Math.min(100, (100 * loaded) / total) : 0;
  const filePct = p && p.fileTotal ? Math.round((100 * p.fileLoaded) / p.fileTotal) : 0;
  return (
    <div className="download" data-testid="download">
      <div
        className="progress"
        role="progressbar"
        aria-label="Download progress"
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={Math.round(pct)}
        data-testid="load-progress"
        data-loaded={loaded}
        data-total={total}
      >
        <div className="progress-bar" style={{ width: `${pct}%` }} />
      </div>
      <div className="row wrap small" data-testid="progress-text">
        <span className="mono">
          {bytes(loaded)} / {bytes(total)}
        </span>
        {p && (p.fromCache ? <span className="muted">from the cache</span> : <span className="mono">{bytes(p.bytesPerSec)}/s</span>)}
        {p && (
          <span className="muted">
            {p.file} {filePct}%
          </span>
        )}
        {!p && <span className="muted">starting…</span>}
        <button type="button" className="link" data-testid="load-cancel" onClick={cancelLoad}>
          Cancel
        </button>
      </div>
    </div>
  );
}

function InspectionView({ model }: { model: ModelState }) {
  const i = model.inspection;
  if (!i || !model.info) return null;
  const dtypes = Object.entries(i.dtypes).filter(([, n]) => n > 0);
  const stored = dtypes.reduce((a, [, n]) => a + n, 0);
  return (
    <div className="inspection" data-testid="inspection">
      <div className="small">
        <strong>{compact(i.totalParams)}</strong> parameters ({thousands(i.totalParams)}) · stored as{' '}
        {dtypes.map(([d, n]) => `${d}${dtypes.length > 1 ? ` ${Math.round((100 * n) / stored)}%` : ''}`).join(', ') || '–'} · {i.fromCache ? 'cached' : 'download'}{' '}
        {bytes(i.downloadBytes)} in {i.files.length} file{i.files.length === 1 ? '' : 's'} · float32 in memory {bytes(i.f32Bytes)}
        <span className="muted"> · header read: {bytes(i.bytesRead)}</span>
        {i.commit && <span className="muted mono"> · commit {i.commit.slice(0, 10)}</span>}
      </div>
      {i.notes.length > 0 && (
        <ul className="notes" data-testid="model-notes">
          {i.notes.map((n) => (
            <li key={n}>{n}</li>
          ))}
        </ul>
      )}
    </div>
  );
}

/** A restored project whose model is a local folder: the browser hands it back only when the person picks it again. */
function ReselectPrompt({ local, onPick, disabled }: { local: Extract<ModelRef, { kind: 'local' }>; onPick: () => void; disabled: boolean }) {
  const what = local.picker === 'folder' || local.name !== 'local files' ? `folder "${local.name}"` : 'model files';
  return (
    <div className="reselect" data-testid="reselect-model">
      <span>
        This project used the local {what}. The browser does not let a page open it again by itself: pick it again to go on with
        its targets and settings.
      </span>
      <div className="row">
        <button type="button" className="primary" data-testid="reselect-button" disabled={disabled} onClick={onPick}>
          Re-select {what}…
        </button>
        <button type="button" disabled={disabled} onClick={() => void loadBuiltinModel()}>
          Use the built-in model instead
        </button>
      </div>
    </div>
  );
}

export function ModelPanel() {
  const model = useProject((s) => s.model);
  const modelRef = useProject((s) => s.modelRef);
  const folderInput = useRef<HTMLInputElement>(null);
  const filesInput = useRef<HTMLInputElement>(null);
  const blocking = useProject((s) => !!s.memory?.blocking);
  const running = useRun((s) => s.state !== 'idle');
  const [hubId, setHubId] = useState('');

  const openFiles = (files: File[]) => {
    if (!files.length) return;
    const folder = (files[0] as File & { webkitRelativePath?: string }).webkitRelativePath?.split('/')[0];
    void loadModel({ kind: 'files', files }, folder || `${files.length} local file${files.length > 1 ? 's' : ''}`);
  };
  const openFolder = (handle: FileSystemDirectoryHandle) => void loadModel({ kind: 'folder', handle }, `folder "${handle.name}"`);
  const picker = (window as unknown as { showDirectoryPicker?: DirectoryPicker }).showDirectoryPicker;
  const pickFolder = () => (picker ? picker({ mode: 'read', id: 'peft-studio-model' }).then(openFolder, () => undefined) : folderInput.current?.click());

  const err = model.error;
  const busy = model.status === 'loading';
  return (
    <Panel title="Model" id="model">
      <DropZone testId="model-drop" disabled={running} onDrop={(dt) => void modelFromDrop(dt).then((d) => ('handle' in d ? openFolder(d.handle) : openFiles(d.files)))}>
        <div className="model-status" data-testid="model-status" data-phase={model.phase ?? model.status} aria-live="polite">
          <LoadStatus model={model} />
        </div>
        {model.phase === 'downloading' && <DownloadProgressView model={model} />}
        {modelRef?.kind === 'local' && !model.info && model.status !== 'loading' && (
          <ReselectPrompt
            local={modelRef}
            disabled={running}
            onPick={() => (modelRef.picker === 'folder' ? void pickFolder() : filesInput.current?.click())}
          />
        )}
        <div className="row wrap">
          <button type="button" onClick={() => void loadBuiltinModel()} disabled={running}>
            Built-in (sotu-gpt2)
          </button>
          <button type="button" onClick={() => void loadBuiltinModel('sotu-t5')} disabled={running} data-testid="builtin-t5" title="A small T5ForConditionalGeneration for SEQ_2_SEQ_LM">
            Built-in T5 (sotu-t5)
          </button>
          <label
            className={`button ${running ? 'disabled' : ''}`}
            onClick={(e) => {
              // The directory picker reads only what the loader asks for; the folder input lists every file below.
              if (!picker || running) return;
              e.preventDefault();
              void pickFolder();
            }}
          >
            Open folder…
            <input
              ref={folderInput}
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
              ref={filesInput}
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
            if (!hubId.trim()) return;
            // A user gesture: ask the browser to keep the cache under storage pressure (no prompt in most browsers).
            void navigator.storage?.persist?.().catch(() => false);
            void loadHubModel(hubId);
          }}
        >
          <input
            aria-label="Hugging Face repo id"
            data-testid="hub-id-input"
            placeholder="Hub repo id, e.g. openai-community/gpt2 or owner/name@revision"
            className="grow mono"
            value={hubId}
            disabled={running}
            spellCheck={false}
            onChange={(e) => setHubId(e.target.value)}
          />
          <button type="submit" data-testid="hub-load" disabled={running || !hubId.trim()}>
            Load from Hub
          </button>
        </form>
      </DropZone>
      {err && (
        <ErrorNote testId="model-error">
          <div>
            <Linkified text={err.message} />
          </div>
          {err.link && (
            <div>
              <a href={err.link} target="_blank" rel="noreferrer" data-testid="model-error-link">
                Open {err.link}
              </a>
            </div>
          )}
          {model.info && model.failedAt === 'inspect' && (
            <div className="muted">{model.status === 'ready' ? `Still using ${model.label}.` : `${model.label} is still loading.`}</div>
          )}
          {(err.retryable || model.phase === 'cancelled' || (model.failedAt === 'download' && model.phase === 'failed')) && !busy && (
            <div className="row">
              <button type="button" data-testid="load-retry" onClick={() => void retryLoad()} disabled={running}>
                {model.phase === 'cancelled' ? 'Resume download' : 'Retry'}
              </button>
              {model.failedAt === 'download' && <span className="muted small">Downloaded bytes are kept; it continues from there.</span>}
            </div>
          )}
        </ErrorNote>
      )}
      <InspectionView model={model} />
      <MemoryView
        confirm={
          model.phase === 'confirm' ? (
            <div className="row">
              <button type="button" className="primary" data-testid="download-anyway" onClick={() => void downloadModel()}>
                {blocking ? 'Download anyway' : 'Download'} ({bytes(model.inspection?.downloadBytes ?? 0)})
              </button>
              {blocking && <span className="muted small">or lower the batch size or max length in Training first.</span>}
            </div>
          ) : null
        }
      />
      <HubSettings />
      <CacheList />
    </Panel>
  );
}
