/**
 * The Export panel's "beyond the tab" actions: Merge and download (the worker writes the merged model tensor by
 * tensor into a folder the user picks, or into OPFS, from where each file downloads as a disk-backed File, so the
 * page never holds the model in memory), Download GGUF adapter (adapter.gguf + Modelfile in a zip) and Export as
 * Python project (a zip of train.py, requirements.txt, accelerate configs, data and README).
 */
import { CURVES_FILE } from '../engine/export/chart-svg';
import { describeError, EngineError } from '../engine/errors';
import { create } from 'zustand';
import type { WorkerEvent } from '../worker/protocol';
import { peftSettings, trainArgs, useProject } from './project';
import { BUILTIN_MODEL, BUILTIN_MODELS, baseUrl } from './actions';
import { BUILTIN_MODEL_FILES, buildReadme, buildZip, download, zipFiles } from './export-files';
import { adapterConfigText, runCurvesSvg } from './push-actions';
import { useRun } from './run';
import { onWorkerEvent, worker } from './worker-client';

export type ExportJob = 'merge' | 'gguf' | 'python' | 'zip';

export interface ExportState {
  busy: ExportJob | null;
  /** Merge: tensors written so far. */
  progress: { done: number; total: number; name: string } | null;
  /** What the last job produced, for the panel to say. */
  result: { job: ExportJob; text: string } | null;
  error: { job: ExportJob; message: string } | null;
}

export const useExport = create<ExportState>(() => ({ busy: null, progress: null, result: null, error: null }));

const set = (p: Partial<ExportState>) => useExport.setState(p);

// One merge runs at a time: its progress events fill the bar while it is under way.
onWorkerEvent((e: WorkerEvent) => {
  if (e.type === 'mergeProgress' && useExport.getState().busy === 'merge') set({ progress: { done: e.done, total: e.total, name: e.name } });
});

async function run(job: ExportJob, f: () => Promise<string>): Promise<void> {
  if (useExport.getState().busy) return;
  set({ busy: job, progress: null, error: null, result: null });
  try {
    set({ result: { job, text: await f() } });
  } catch (e) {
    if ((e as Error)?.name === 'AbortError') return set({ busy: null }); // the folder picker was cancelled
    set({ error: { job, message: describeError(e) } });
  } finally {
    set({ busy: null, progress: null });
  }
}

type PickerWindow = Window & { showDirectoryPicker?: (o?: { mode?: 'readwrite' }) => Promise<FileSystemDirectoryHandle> };

/** Whether the browser can write the merged model straight into a folder the user picks (File System Access). */
export function canPickFolder(): boolean {
  return typeof (window as PickerWindow).showDirectoryPicker === 'function';
}

const SIZE = (n: number) => (n >= 1e9 ? `${(n / 1e9).toFixed(2)} GB` : `${(n / 1e6).toFixed(1)} MB`);

/** Merges the adapter into the model and saves the folder (picked, or downloaded file by file from OPFS). */
export function mergeAndDownload(o: { dtype: 'F32' | 'F16' | 'BF16'; maxShardSize: number; pickFolder: boolean }): Promise<void> {
  return run('merge', async () => {
    const folder = o.pickFolder && canPickFolder() ? await (window as PickerWindow).showDirectoryPicker!({ mode: 'readwrite' }) : undefined;
    const r = await worker().request({ type: 'mergeModel', dtype: o.dtype, maxShardSize: o.maxShardSize, ...(folder ? { folder } : {}) }, 'merged');
    if (r.opfsFolder) {
      let dir = await navigator.storage.getDirectory();
      for (const part of r.opfsFolder.split('/')) dir = await dir.getDirectoryHandle(part);
      for (const name of r.files) {
        download(name, await (await dir.getFileHandle(name)).getFile());
        // Chromium drops downloads started in quick succession; a pause between files lets each one through.
        await new Promise((res) => setTimeout(res, 500));
      }
    }
    return `Merged model (${o.dtype}, ${SIZE(r.totalBytes)} of weights): ${r.files.join(', ')}${folder ? ` written to the folder ${folder.name}` : ' downloaded'}.`;
  });
}

/** adapter.gguf + Modelfile, zipped. */
export function downloadGguf(o: { outtype: 'F32' | 'F16'; ollamaFrom?: string }): Promise<void> {
  return run('gguf', async () => {
    const r = await worker().request({ type: 'exportGguf', outtype: o.outtype, ...(o.ollamaFrom ? { ollamaFrom: o.ollamaFrom } : {}) }, 'exportFiles');
    download('peft-studio-gguf-adapter.zip', zipFiles(r.files), 'application/zip');
    return `GGUF adapter (${o.outtype}) with its Modelfile: ${Object.keys(r.files).join(', ')}.`;
  });
}

/** The Python project for the current settings and data, zipped. */
export function exportPythonProject(): Promise<void> {
  return run('python', async () => {
    const s = useProject.getState();
    const { peft, error } = peftSettings(s);
    if (error) throw new Error(error);
    if (!s.dataSource) throw new Error('Choose a dataset first: the project trains on it.');
    const r = await worker().request(
      {
        type: 'exportPython', task: s.task, peft, args: trainArgs(s),
        data: { source: s.dataSource, task: s.task, mapping: s.mapping ?? undefined, validationSplit: s.validationSplit, maxLength: s.args.maxLength, seed: s.args.seed },
      },
      'exportFiles',
    );
    download('peft-studio-python-project.zip', zipFiles(r.files), 'application/zip');
    return `Python project: ${Object.keys(r.files).length} files (train.py, requirements.txt, accelerate configs, data, README); run it with accelerate launch train.py.`;
  });
}

/** The built-in model the project uses (sotu-gpt2, or the built-in T5). */
function builtinInUse(): { dir: string; name: string } {
  const ref = useProject.getState().modelRef;
  const id = ref?.kind === 'builtin' ? (ref.id ?? BUILTIN_MODEL.name) : BUILTIN_MODEL.name;
  return BUILTIN_MODELS.find((m) => m.id === id) ?? BUILTIN_MODEL;
}

/** The built-in model's files from the app's own URL, each under `<name>/`, for the export zip. */
async function builtinModelFiles(m: { dir: string; name: string }): Promise<Record<string, ArrayBuffer>> {
  const out: Record<string, ArrayBuffer> = {};
  for (const f of BUILTIN_MODEL_FILES) {
    const url = new URL(`${m.dir}${f}`, baseUrl).href;
    // no-store: the model loader's Range reads of model.safetensors (header, resumed chunks) sit in the HTTP
    // cache, and a plain GET answered from those partial entries came back short (15.9 of 17.1 MB in Chromium).
    const res = await fetch(url, { cache: 'no-store' }).catch(() => null);
    const fail = (why: string) => new EngineError('BAD_ARGUMENT', `Could not read the built-in model's ${f} (${why}): reload the page, or download the zip without the base model's files.`);
    if (!res?.ok) throw fail(res ? `HTTP ${res.status}` : 'no response');
    const bytes = await res.arrayBuffer();
    const want = Number(res.headers.get('content-length') ?? NaN);
    if (Number.isFinite(want) && !res.headers.get('content-encoding') && bytes.byteLength !== want) throw fail(`${bytes.byteLength} of ${want} bytes arrived`);
    out[`${m.name}/${f}`] = bytes;
  }
  return out;
}

/**
 * The Zip with README: the adapter's two files (base_model_name_or_path as chosen), README, the chat template and
 * training_curves.svg of this run, and with `includeBase` the built-in model's files in their own folder.
 */
export function downloadAdapterZip(o: { labels: string[]; includeBase: boolean }): Promise<void> {
  return run('zip', async () => {
    const cp = useRun.getState().checkpoint;
    if (!cp) throw new EngineError('BAD_ARGUMENT', 'Train first: there is no adapter to download yet.');
    const sameRun = cp.runId === useRun.getState().runId;
    const configText = adapterConfigText(cp.files['adapter_config.json']);
    const config = JSON.parse(configText) as Record<string, unknown>;
    // The data's chat template, when this run trained on chat data (the data can't change during a run).
    const chatTemplate = cp.task === 'CAUSAL_LM' && sameRun ? useProject.getState().data.summary?.chat?.template ?? null : null;
    // The curves are this run's: an adapter of an earlier run has none here.
    const curves = sameRun ? runCurvesSvg() : null;
    const model = builtinInUse();
    const base = o.includeBase ? await builtinModelFiles(model) : {};
    const readme = buildReadme({
      task: cp.task, step: cp.step, labels: o.labels, config, chatTemplate,
      curvesFile: curves ? CURVES_FILE : null, baseModelDir: o.includeBase ? model.name : null,
    });
    const extra = { ...(curves ? { [CURVES_FILE]: curves } : {}), ...base };
    download(`peft-studio-adapter-step${cp.step}.zip`, buildZip({ ...cp.files, 'adapter_config.json': configText }, readme, chatTemplate?.text, extra), 'application/zip');
    return `Zip: the adapter, README${curves ? ', training_curves.svg' : ''}${o.includeBase ? ` and the ${model.name} base model's files` : ''}.`;
  });
}
