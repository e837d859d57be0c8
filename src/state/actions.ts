/**
 * Actions that talk to the worker, and the sync that keeps the worker's view in step with the project store:
 * a changed model or task re-reads the module tree, changed target text re-resolves the targets, changed
 * data settings reload the data. Replies to superseded requests are dropped.
 *
 * The project is kept in the browser (persist.ts) and restored at boot in the order the worker needs it:
 * backend, then the model (training settings are in place first, for its memory estimate), then, once the
 * model's header is read, the task and targets it was set up with; method settings are checked against the
 * schemas the backend sends; data comes back from the built-in list or IndexedDB. A worker crash is
 * restarted from the same project.
 */
import { describeError } from '../engine/errors';
import type { BackendChoice, CachedModelInfo, ColumnMapping, DataSource, MemoryPlan, ModelInfo, ModelSource, SamplingSettings } from '../worker/protocol';
import {
  formDefaults, peftSettings, projectActions as P, trainArgs, useProject, type BuiltinDataset, type DataRef, type LoadError,
  type ModelRef, type ProjectState,
} from './project';
import {
  checkSettingsAgainst, datasets, loadSaved, onPersistAnswered, requestPersistentStorage, savedPatch, snapshotOf, startPersistence,
  storageStatus, storeFailure, type ProjectPersistence, type Saved,
} from './persist';
import { hubDataRequest } from './hub-data';
import { historyActions as H, refreshRuns, resumeRun, useHistory } from './history';
import { runActions as R, useRun } from './run';
import { startOptions } from './import';
import { DEFAULT_HUB_URL, hubEndpoint, useSettings } from './settings';
import { onWorkerCrash, onWorkerEvent, RequestError, restartWorker as replaceWorker, worker } from './worker-client';

/** Absolute BASE_URL of the app (built-in models, datasets and wasm binaries live under it). */
export const baseUrl = new URL(import.meta.env.BASE_URL, window.location.href).href;
export const BUILTIN_MODEL = { dir: 'models/sotu-gpt2/', name: 'sotu-gpt2' };
/** Every built-in model (public/models): the default decoder, and an encoder-decoder for SEQ_2_SEQ_LM. */
export const BUILTIN_MODELS = [
  { id: 'sotu-gpt2', ...BUILTIN_MODEL },
  { id: 'sotu-t5', dir: 'models/sotu-t5/', name: 'sotu-t5' },
] as const;

const latest = { tree: 0, targets: 0, data: 0, model: 0, memory: 0 };
const message = (e: unknown) => describeError(e);

function loadError(e: unknown): LoadError {
  if (e instanceof RequestError) return { code: e.code, message: e.message, retryable: e.retryable, ...(e.link ? { link: e.link } : {}) };
  return { code: 'INTERNAL', message: message(e), retryable: false };
}

/** Restored method settings, checked against the schemas once the backend has sent them. */
let restoredMethod: NonNullable<Saved['method']> | null = null;

export async function initBackend(choice: BackendChoice): Promise<void> {
  P.setBackendChoice(choice);
  P.backendStarting();
  try {
    const r = await worker().request({ type: 'init', backend: choice, baseUrl, ...diagnostics() }, 'ready');
    P.backendReady(r.backend, r.reason, r.methods);
    if (restoredMethod) {
      const { method, settings } = checkSettingsAgainst(r.methods, restoredMethod.method, restoredMethod.settings);
      restoredMethod = null;
      P.restore({
        method: method as ProjectState['method'],
        settings: Object.fromEntries(r.methods.map((m) => [m.peftType, { ...formDefaults(m), ...(settings[m.peftType] ?? {}) }])),
      });
    }
  } catch (e) {
    P.backendFailed(message(e));
  }
}

/** Sequence length the estimate assumes: the max length, plus the virtual tokens of prompt tuning. */
function seqLen(s: ProjectState): number {
  return s.args.maxLength + (s.targets.result?.virtualTokens ?? 0);
}

function memoryPlan(s: ProjectState): MemoryPlan {
  return { batch: s.args.batchSize, seqLen: seqLen(s), peft: peftSettings(s).peft, checkpointing: s.args.gradientCheckpointing };
}

/**
 * Diagnostics from the page address: `?wasmTensorLimitMB=N` makes wasm allocations fail past N MB of tensors,
 * as on a device with less memory (how the out-of-memory handling is checked end to end); `?wasmThreads=N`
 * sets the threaded wasm build's thread count (1-8) instead of the default.
 */
function diagnostics(): { wasmTensorLimitBytes?: number; wasmThreads?: number; loseWebGpuDeviceAtStep?: number } {
  const q = new URLSearchParams(globalThis.location?.search ?? '');
  const mb = Number(q.get('wasmTensorLimitMB'));
  const threads = Number(q.get('wasmThreads'));
  const lose = Number(q.get('loseWebGpuAtStep'));
  return {
    ...(mb > 0 ? { wasmTensorLimitBytes: mb * 2 ** 20 } : {}),
    ...(Number.isInteger(threads) && threads >= 1 && threads <= 8 ? { wasmThreads: threads } : {}),
    // `?loseWebGpuAtStep=N`: the worker destroys its WebGPU device after step N (how device loss is checked).
    ...(Number.isInteger(lose) && lose >= 1 ? { loseWebGpuDeviceAtStep: lose } : {}),
  };
}

/** How the last load can be repeated (Retry after its header could not be read). */
let lastLoad: (() => Promise<void>) | null = null;

const builtinUrl = (id: string = BUILTIN_MODEL.name) => new URL((BUILTIN_MODELS.find((m) => m.id === id) ?? BUILTIN_MODEL).dir, baseUrl).href;

/** What the project remembers of a model source (null: nothing; a reload starts on the built-in model). */
function refOf(source: ModelSource, info: ModelInfo): ModelRef | null {
  switch (source.kind) {
    case 'url':
    {
      const m = BUILTIN_MODELS.find((b) => new URL(source.url, baseUrl).href === builtinUrl(b.id));
      return m ? (m.id === BUILTIN_MODEL.name ? { kind: 'builtin' } : { kind: 'builtin', id: m.id }) : null;
    }
    case 'hub':
      return { kind: 'hub', repo: info.name.split('@')[0], revision: info.revision ?? 'main', endpoint: source.endpoint ?? DEFAULT_HUB_URL };
    case 'folder':
      return { kind: 'local', name: info.name, picker: 'folder' };
    case 'files':
      return { kind: 'local', name: info.name, picker: 'files' };
  }
}

/** The same model; a local folder is the same by its name (picked again through a drop or the picker alike). */
function sameRef(a: ModelRef | null, b: ModelRef | null): boolean {
  if (a?.kind === 'local' && b?.kind === 'local') return a.name === b.name;
  return JSON.stringify(a) === JSON.stringify(b);
}

/** The source of the model on show: a worker restart loads it again (a local folder is not asked for twice). */
let liveSource: { ref: ModelRef | null; source: ModelSource; label: string } | null = null;
/** Setup to put back once the model it was made for has been inspected (its defaults replace them first). */
let afterInspect: { ref: ModelRef; patch: Partial<ProjectState> } | null = null;

/**
 * Loads a model header first: the worker reads config.json and the safetensors headers, the tree and the memory
 * estimate show, then the weights download (at once, or after "Download anyway" when the estimate says it
 * will not fit).
 */
export async function loadModel(source: ModelSource, label: string): Promise<void> {
  const id = ++latest.model;
  lastLoad = () => loadModel(source, label);
  P.modelLoading(label);
  let r;
  try {
    r = await worker().request({ type: 'loadModel', source, plan: memoryPlan(useProject.getState()) }, 'inspected');
  } catch (e) {
    if (id === latest.model) P.inspectFailed(loadError(e));
    return;
  }
  if (id !== latest.model) return;
  const ref = refOf(source, r.info);
  P.modelInspected(r, ref);
  liveSource = { ref, source, label };
  const restore = afterInspect;
  afterInspect = null;
  if (restore && sameRef(restore.ref, ref)) P.restore(restore.patch);
  if (!r.memory.blocking) await downloadModel();
}

/** Downloads the inspected model (also Retry after a failure or cancel: it continues from the cached bytes). */
export async function downloadModel(): Promise<void> {
  const loadId = useProject.getState().model.loadId;
  if (loadId === undefined) return;
  P.downloadStarted(loadId);
  try {
    const r = await worker().request({ type: 'downloadModel' }, 'model');
    P.modelLoaded(loadId, r.info);
  } catch (e) {
    P.downloadFailed(loadId, loadError(e));
  }
  void refreshCache();
}

/** Retry: repeats the header read, or continues the download, whichever the error stopped. */
export function retryLoad(): Promise<void> {
  const m = useProject.getState().model;
  if (m.failedAt === 'download') return downloadModel();
  return lastLoad ? lastLoad() : Promise.resolve();
}

/** Cancel: stops the header read or the download shown (downloaded bytes stay in the cache for a resume). */
export function cancelLoad(): void {
  const phase = useProject.getState().model.phase;
  worker().send({ type: 'cancelLoad', step: phase === 'inspecting' ? 'inspect' : 'download' });
}

/** A built-in model by id (default sotu-gpt2). */
export const loadBuiltinModel = (id: string = BUILTIN_MODEL.name) => {
  lastLoad = null;
  const m = BUILTIN_MODELS.find((b) => b.id === id) ?? BUILTIN_MODELS[0];
  return loadModel({ kind: 'url', url: builtinUrl(m.id), name: m.name }, `${m.name} (built-in)`);
};

/** A Hub repo (`owner/name[@rev]`) with the Hub URL and token of the settings at the time of the call. */
export function loadHubModel(repoId: string): Promise<void> {
  const id = repoId.trim();
  const run = () => {
    const st = useSettings.getState();
    return loadModel({ kind: 'hub', repoId: id, endpoint: hubEndpoint(st), token: st.token.trim() || null }, id);
  };
  const p = run();
  lastLoad = run;
  return p;
}

/** A model from the cache list (or a restored project). The token goes along only when it is from the Hub URL set now. */
export function loadCachedModel(m: Pick<CachedModelInfo, 'endpoint' | 'repo' | 'revision'>): Promise<void> {
  const st = useSettings.getState();
  const sameHub = m.endpoint === hubEndpoint(st);
  const repoId = m.revision === 'main' ? m.repo : `${m.repo}@${m.revision}`;
  const run = () => loadModel({ kind: 'hub', repoId, endpoint: m.endpoint, token: sameHub ? st.token.trim() || null : null }, repoId);
  const p = run();
  lastLoad = run;
  return p;
}

export async function refreshCache(): Promise<void> {
  try {
    const r = await worker().request({ type: 'listCache' }, 'cache');
    P.cacheListed(r.persistent, r.models);
  } catch (e) {
    P.cacheFailed(message(e));
  }
  void refreshStorage();
}

export async function deleteCached(m: CachedModelInfo): Promise<void> {
  try {
    const r = await worker().request({ type: 'deleteCached', endpoint: m.endpoint, repo: m.repo, revision: m.revision }, 'cache');
    P.cacheListed(r.persistent, r.models);
  } catch (e) {
    P.cacheFailed(message(e));
  }
  void refreshStorage();
}

/** Storage used and granted for this site, and whether the browser keeps it (shown under the cache list). */
export async function refreshStorage(): Promise<void> {
  P.storageEstimated(await storageStatus());
}

// --- uploaded datasets ----------------------------------------------------------------------------------------

export async function refreshUploads(): Promise<void> {
  try {
    P.uploadsListed(await datasets.list());
  } catch (e) {
    P.uploadsFailed(`Stored datasets could not be listed: ${message(e)}`);
  }
}

/** An uploaded file: used at once; kept in the browser once it has loaded (a file that does not parse is not). */
export function uploadDataset(file: File): void {
  P.uploadsFailed(undefined);
  P.setDataSource({ kind: 'file', file });
}

const kept = new WeakSet<File>();

/** Keeps the upload on show in IndexedDB (once per file); a full storage is said, and the upload still works. */
async function keepUpload(file: File): Promise<void> {
  if (kept.has(file)) return;
  kept.add(file);
  requestPersistentStorage();
  try {
    const info = await datasets.put(file, useProject.getState().mapping);
    P.uploadStored(file, { kind: 'upload', id: info.id, name: info.name });
    // A mapping chosen while it was being written.
    const s = useProject.getState();
    if (s.dataRef?.kind === 'upload' && s.dataRef.id === info.id && s.mapping !== info.mapping) await datasets.setMapping(info.id, s.mapping);
  } catch (e) {
    P.uploadsFailed(storeFailure(e, file.name));
  }
  await refreshUploads();
  void refreshStorage();
}

/** A stored upload from the dataset list, with the column mapping chosen for it. */
export async function selectUpload(id: string): Promise<void> {
  const got = await datasets.get(id).catch(() => null);
  if (!got) {
    P.uploadsFailed('That dataset is no longer stored in this browser; upload it again.');
    void refreshUploads();
    return;
  }
  P.uploadsFailed(undefined);
  kept.add(got.file);
  P.setDataSource({ kind: 'file', file: got.file }, { kind: 'upload', id, name: got.info.name }, got.info.mapping);
}

export async function deleteUpload(id: string): Promise<void> {
  try {
    await datasets.delete(id);
    P.uploadDeleted(id);
  } catch (e) {
    P.uploadsFailed(`${message(e)}`);
  }
  void refreshUploads();
  void refreshStorage();
}

/** A remembered upload comes back from IndexedDB; when it is gone, the default dataset is used. */
async function restoreUpload(ref: Extract<DataRef, { kind: 'upload' }>): Promise<void> {
  const got = await datasets.get(ref.id).catch((e) => {
    console.warn(`[peft-studio] stored dataset ${ref.name} could not be read: ${message(e)}`);
    return null;
  });
  if (useProject.getState().dataRef !== ref) return; // another dataset was chosen meanwhile
  if (got) {
    kept.add(got.file);
    P.setDataSource({ kind: 'file', file: got.file }, ref, got.info.mapping);
  } else {
    console.warn(`[peft-studio] the uploaded dataset ${ref.name} is no longer stored: the default dataset is used`);
    P.useDefaultDataset();
  }
}

async function refreshMemory() {
  const s = useProject.getState();
  if (!s.model.info || !s.tree || !s.targets.result || s.targets.pending) return;
  const id = ++latest.memory;
  try {
    const downloadBytes = s.model.phase === 'confirm' && !s.model.inspection?.fromCache ? s.model.inspection?.downloadBytes : undefined;
    const r = await worker().request(
      {
        type: 'estimateMemory', task: s.task, batch: s.args.batchSize, seqLen: seqLen(s), trainable: s.targets.result.trainable, downloadBytes,
        checkpointing: s.args.gradientCheckpointing,
      },
      'memory',
    );
    if (id === latest.memory) P.memoryEstimated(r.report);
  } catch {
    if (id === latest.memory) P.memoryEstimated(null);
  }
}

async function refreshTree(s: ProjectState) {
  if (!s.model.info) return;
  const id = ++latest.tree;
  try {
    const r = await worker().request({ type: 'inspect', task: s.task }, 'tree');
    if (id === latest.tree) P.treeLoaded(r.tree);
  } catch (e) {
    if (id === latest.tree) P.modelProblem(loadError(e));
  }
}

async function refreshTargets() {
  const s = useProject.getState();
  if (!s.model.info || !s.tree) return;
  const { peft, error } = peftSettings(s);
  const id = ++latest.targets;
  if (error) {
    P.targetsResolved({ matched: [], modulesToSave: [], trainable: 0, all: s.tree.totalParams, line: '', error: { code: 'BAD_PEFT_CONFIG', message: error } });
    return;
  }
  P.targetsPending();
  try {
    const r = await worker().request({ type: 'setTargets', task: s.task, peft }, 'targets');
    if (id === latest.targets) P.targetsResolved(r.result);
  } catch (e) {
    if (id === latest.targets) P.targetsResolved({ matched: [], modulesToSave: [], trainable: 0, all: 0, line: '', error: { code: 'INTERNAL', message: message(e) } });
  }
}

async function refreshData() {
  const s = useProject.getState();
  if (!s.dataSource) return;
  const id = ++latest.data;
  P.dataLoading();
  try {
    const r = await worker().request(
      {
        type: 'loadData',
        request: {
          source: s.dataSource, task: s.task, mapping: s.mapping ?? undefined, validationSplit: s.validationSplit,
          maxLength: s.args.maxLength, seed: s.args.seed, chat: s.chat, hub: hubDataRequest(s.hubData),
          ...(s.task === 'TOKEN_CLS' ? { tokcls: { labelList: s.tokcls.labelList ?? undefined, labelAllTokens: s.tokcls.labelAllTokens } } : {}),
          ...(s.task === 'SEQ_2_SEQ_LM'
            ? { seq2seq: { ...(s.mapping?.kind === 'prompt-response' ? { sourceColumn: s.mapping.prompt, targetColumn: s.mapping.response } : {}), maxTargetLength: s.args.maxTargetLength ?? null } }
            : {}),
        },
      },
      'data',
    );
    if (id !== latest.data) return;
    P.dataLoaded(r.summary);
    const now = useProject.getState();
    loadedData = { source: s.dataSource, ref: now.dataSource === s.dataSource ? now.dataRef : null, mapping: s.mapping };
    if (s.dataSource.kind === 'file' && now.dataSource === s.dataSource && !now.dataRef) void keepUpload(s.dataSource.file);
  } catch (e) {
    if (id !== latest.data) return;
    P.dataFailed(message(e));
    // A new file that failed is not the dataset: the choice goes back to the one the worker still holds, so the
    // dropdown does not claim the failed file (without a reload: the worker's data never changed).
    const now = useProject.getState();
    if (s.hubData && now.hubData === s.hubData) {
      revertingData = true;
      P.setHubData(null); // the worker still holds the data it had
      revertingData = false;
    } else if (s.dataSource.kind === 'file' && now.dataSource === s.dataSource && loadedData && loadedData.source !== s.dataSource) {
      revertingData = true;
      P.setDataSource(loadedData.source, loadedData.ref, loadedData.mapping);
      revertingData = false;
    }
  }
}

/** The data source the worker last loaded, and whether the project is being put back to it. */
let loadedData: { source: DataSource; ref: DataRef | null; mapping: ColumnMapping | null } | null = null;
let revertingData = false;

function debounce(fn: () => void, ms: number): () => void {
  let t: ReturnType<typeof setTimeout> | undefined;
  return () => {
    clearTimeout(t);
    t = setTimeout(fn, ms);
  };
}

const scheduleTargets = debounce(() => void refreshTargets(), 120);
const scheduleData = debounce(() => void refreshData(), 200);
const scheduleMemory = debounce(() => void refreshMemory(), 150);

let persistence: ProjectPersistence | null = null;

/**
 * Brings a project back: the backend it chose, then its model (training settings and method settings are in
 * the store already; the method settings are checked against the schemas the backend sends), then its task
 * and targets once that model's header is read. A local folder waits for the person to pick it again, unless
 * this page still holds it (`reuse`, a worker restart).
 */
async function restoreProject(saved: Saved, reuse: { source: ModelSource; label: string } | null = null): Promise<void> {
  const ref = saved.model ?? { kind: 'builtin' };
  const patch = { ...(saved.task ? { task: saved.task } : {}), ...(saved.targets ? { targetText: saved.targets } : {}) };
  afterInspect = Object.keys(patch).length ? { ref, patch } : null;
  restoredMethod = saved.method ?? null;
  await initBackend(useProject.getState().backendChoice);
  if (reuse) await loadModel(reuse.source, reuse.label);
  else if (ref.kind === 'builtin') await loadBuiltinModel(ref.id);
  else if (ref.kind === 'hub') await loadCachedModel(ref);
  // ref.kind 'local': the Model panel asks for the folder; its task and targets come back once it is read.
}

/** Starts the worker, restores the saved project (or starts on the built-in model), and wires the sync. */
export function boot(): void {
  const saved = loadSaved();
  P.restore(savedPatch(saved));
  persistence = startPersistence(useProject);
  let lost: string | null = null;
  onWorkerEvent((e) => {
    if (e.type === 'downloadProgress') P.downloadProgress(e.loadId, e.progress);
    else if (e.type === 'generationPartial') R.generationPartial(e.adapter, e.text);
    else {
      R.onEvent(e);
      H.onEvent(e);
    }
    if (e.type === 'error' && e.code === 'DEVICE_LOST' && e.runId !== undefined) lost = e.message;
    if (e.type === 'done' && lost) {
      const m = lost;
      lost = null;
      void continueOnWasm(m);
    }
  });
  onWorkerCrash((reason) => {
    P.workerCrashed(reason);
    R.workerCrashed(`The training worker crashed: ${reason}`);
  });
  window.addEventListener('beforeunload', (e: BeforeUnloadEvent) => {
    if (!trainingActive()) return;
    e.preventDefault();
    e.returnValue = ''; // older browsers show the prompt only with returnValue set
  });
  useProject.subscribe((s, p) => {
    const labelsChanged = s.data.summary?.labels.join('\u0000') !== p.data.summary?.labels.join('\u0000');
    if (s.model.info !== p.model.info || s.task !== p.task || ((s.task === 'SEQ_CLS' || s.task === 'TOKEN_CLS') && labelsChanged)) void refreshTree(s);
    if (s.tree !== p.tree || s.settings !== p.settings || s.targetText !== p.targetText || s.method !== p.method) scheduleTargets();
    if (
      s.dataSource !== p.dataSource || s.mapping !== p.mapping || s.validationSplit !== p.validationSplit || s.task !== p.task || s.chat !== p.chat || s.hubData !== p.hubData || s.tokcls !== p.tokcls ||
      s.args.maxLength !== p.args.maxLength || s.args.maxTargetLength !== p.args.maxTargetLength || s.args.seed !== p.args.seed || (s.model.info !== p.model.info && s.model.status === 'ready')
    ) {
      if (!revertingData) scheduleData();
    }
    if (
      s.targets.result !== p.targets.result || s.args.batchSize !== p.args.batchSize || seqLen(s) !== seqLen(p) ||
      s.backend.name !== p.backend.name || s.model.phase !== p.model.phase || s.args.gradientCheckpointing !== p.args.gradientCheckpointing
    ) {
      scheduleMemory();
    }
  });
  if (useProject.getState().dataSource) scheduleData();
  onPersistAnswered(() => void refreshStorage());
  void refreshCache();
  void refreshUploads();
  void refreshRuns();
  const dataRef = useProject.getState().dataRef;
  if (dataRef?.kind === 'upload') void restoreUpload(dataRef);
  void restoreProject(saved);
  void fetch(new URL('datasets/index.json', baseUrl))
    .then((r) => (r.ok ? r.json() : []))
    .then((list: BuiltinDataset[]) => {
      P.setBuiltinDatasets(list);
      const ref = useProject.getState().dataRef;
      if (ref?.kind === 'builtin' && !list.some((d) => d.id === ref.id)) {
        console.warn(`[peft-studio] stored dataset "${ref.id}" is not a built-in dataset any more: the default is used`);
        P.useDefaultDataset();
      }
    })
    .catch(() => P.setBuiltinDatasets([]));
}

/** A training run is on: leaving the page would end it (the page asks first). */
export const trainingActive = () => useRun.getState().state !== 'idle';

/** Resolves once the project's model and data are loaded (false when either fails or it takes too long). */
function projectReady(timeoutMs = 300_000): Promise<boolean> {
  const ready = (s: ProjectState) => s.backend.status === 'ready' && s.model.status === 'ready' && s.data.status === 'ready';
  const failed = (s: ProjectState) => s.backend.status === 'error' || s.model.status === 'error' || s.data.status === 'error';
  return new Promise((resolve) => {
    const done = (ok: boolean) => {
      clearTimeout(timer);
      unsub();
      resolve(ok);
    };
    const unsub = useProject.subscribe((s) => {
      if (ready(s)) done(true);
      else if (failed(s)) done(false);
    });
    const timer = setTimeout(() => done(false), timeoutMs);
    if (ready(useProject.getState())) done(true);
  });
}

/**
 * The WebGPU device was lost mid-run: its tensors are gone, so the project moves to WASM in a new worker and
 * the run continues there from its last complete checkpoint (as the same run). What happened is said, and the
 * backend choice shows WASM; WebGPU can be chosen again once the GPU is back.
 */
async function continueOnWasm(lostMessage: string): Promise<void> {
  const id = useHistory.getState().currentId;
  R.error('DEVICE_LOST', `${lostMessage.split(';')[0]}. The project moves to WASM${id ? ' and the run continues from its last checkpoint' : ''}.`);
  P.setBackendChoice('wasm');
  await restartWorker();
  if (!id || !(await projectReady())) return;
  await refreshRuns();
  const run = useHistory.getState().runs.find((r) => r.id === id);
  if (!run?.resumable) return R.error('DEVICE_LOST', 'The run had no complete checkpoint yet; start it again on WASM.');
  await resumeRun(id);
}

/** A new worker after a crash (or on request): the same project, every setting kept, is set up in it again. */
export async function restartWorker(): Promise<void> {
  const s = useProject.getState();
  const saved = snapshotOf(s);
  const reuse = liveSource && s.modelRef?.kind === 'local' && sameRef(liveSource.ref, s.modelRef) ? liveSource : null;
  replaceWorker();
  R.workerRestarted();
  P.workerRestarted();
  void refreshCache();
  void refreshRuns();
  if (useProject.getState().dataSource) scheduleData();
  await restoreProject(saved, reuse);
}

/** New project: the stored project is forgotten; built-in model, default dataset, every setting at its default. */
export async function newProject(): Promise<void> {
  const choice = useProject.getState().backendChoice;
  afterInspect = null;
  restoredMethod = null;
  P.newProject();
  persistence?.forget(useProject.getState());
  P.uploadsFailed(undefined);
  if (choice !== 'auto') await initBackend('auto');
  await loadBuiltinModel();
}

/** Reset to defaults: training and method settings; the model, targets and data stay. */
export function resetToDefaults(): void {
  P.resetSettings();
}

// --- run control ----------------------------------------------------------------------------------------------

export async function startTraining(): Promise<void> {
  const s = useProject.getState();
  const { peft, error } = peftSettings(s);
  if (error) return R.error('BAD_PEFT_CONFIG', error);
  R.starting(s.task, s.task === 'SEQ_CLS' || s.task === 'TOKEN_CLS' ? s.data.summary?.baselines ?? null : null, { task: s.task, method: s.method, model: s.model.label });
  try {
    await worker().request({ type: 'start', task: s.task, peft, args: trainArgs(s), ...startOptions() }, 'state');
  } catch (e) {
    R.error((e as { code?: string }).code ?? 'INTERNAL', message(e));
    useRun.setState({ state: 'idle', outcome: 'failed' });
  }
}

export const pauseTraining = () => worker().send({ type: 'pause' });
export const resumeTraining = () => worker().send({ type: 'resume' });
export const stopTraining = () => worker().send({ type: 'stop' });

/** Asks for the current weights; the checkpoint event updates the run store. */
export async function snapshotAdapter(): Promise<void> {
  try {
    await worker().request({ type: 'export' }, 'checkpoint');
  } catch (e) {
    R.error('EXPORT', message(e));
  }
}

export async function generate(
  prompt: string, maxNewTokens: number, sampling?: SamplingSettings, chat?: { role: string; content: string }[], chatOff?: { role: string; content: string }[],
): Promise<void> {
  R.playgroundBusy();
  R.generationStarted(chat ? '' : prompt);
  try {
    const r = await worker().request({ type: 'generate', prompt, maxNewTokens, sampling, ...(chat ? { chat } : {}), ...(chat && chatOff ? { chatOff } : {}) }, 'generation');
    R.generated(chat ? '' : prompt, r.withAdapter, r.withoutAdapter, r.msPerToken, r.stopped, r.chat);
  } catch (e) {
    R.playgroundFailed(message(e));
  }
}

/** Ends the playground's generation in progress; what it had stays on show. */
export const stopGeneration = () => worker().send({ type: 'stopGeneration' });

export async function classify(text: string): Promise<void> {
  R.playgroundBusy();
  try {
    const r = await worker().request({ type: 'classify', text }, 'classification');
    R.classified(text, r.withAdapter, r.withoutAdapter);
  } catch (e) {
    R.playgroundFailed(message(e));
  }
}

export interface TagResult {
  words: string[];
  withAdapter: string[];
  withoutAdapter: string[];
}

/** TOKEN_CLS playground: the text's words tagged with the adapter and without; a failure comes back as its message. */
export async function tagText(text: string): Promise<TagResult | string> {
  try {
    const r = await worker().request({ type: 'tag', text }, 'tagged');
    return { words: r.words, withAdapter: r.withAdapter, withoutAdapter: r.withoutAdapter };
  } catch (e) {
    return message(e);
  }
}
