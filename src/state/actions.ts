/**
 * Actions that talk to the worker, and the sync that keeps the worker's view in step with the project store:
 * a changed model or task re-reads the module tree, changed target text re-resolves the targets, changed
 * data settings reload the data. Replies to superseded requests are dropped.
 */
import { describeError } from '../engine/errors';
import type { BackendChoice, CachedModelInfo, MemoryPlan, ModelSource, SamplingSettings } from '../worker/protocol';
import { peftSettings, projectActions as P, trainArgs, useProject, type BuiltinDataset, type LoadError, type ProjectState } from './project';
import { runActions as R, useRun } from './run';
import { hubEndpoint, useSettings } from './settings';
import { RequestError, worker } from './worker-client';

/** Absolute BASE_URL of the app (built-in models, datasets and wasm binaries live under it). */
export const baseUrl = new URL(import.meta.env.BASE_URL, window.location.href).href;
export const BUILTIN_MODEL = { dir: 'models/sotu-gpt2/', name: 'sotu-gpt2' };

const latest = { tree: 0, targets: 0, data: 0, model: 0, memory: 0 };
const message = (e: unknown) => describeError(e);

function loadError(e: unknown): LoadError {
  if (e instanceof RequestError) return { code: e.code, message: e.message, retryable: e.retryable, ...(e.link ? { link: e.link } : {}) };
  return { code: 'INTERNAL', message: message(e), retryable: false };
}

export async function initBackend(choice: BackendChoice): Promise<void> {
  P.setBackendChoice(choice);
  P.backendStarting();
  try {
    const r = await worker().request({ type: 'init', backend: choice, baseUrl, ...diagnostics() }, 'ready');
    P.backendReady(r.backend, r.reason, r.methods);
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
function diagnostics(): { wasmTensorLimitBytes?: number; wasmThreads?: number } {
  const q = new URLSearchParams(globalThis.location?.search ?? '');
  const mb = Number(q.get('wasmTensorLimitMB'));
  const threads = Number(q.get('wasmThreads'));
  return {
    ...(mb > 0 ? { wasmTensorLimitBytes: mb * 2 ** 20 } : {}),
    ...(Number.isInteger(threads) && threads >= 1 && threads <= 8 ? { wasmThreads: threads } : {}),
  };
}

/** How the last load can be repeated (Retry after its header could not be read). */
let lastLoad: (() => Promise<void>) | null = null;

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
  P.modelInspected(r);
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

export const loadBuiltinModel = () => {
  lastLoad = null;
  return loadModel({ kind: 'url', url: new URL(BUILTIN_MODEL.dir, baseUrl).href, name: BUILTIN_MODEL.name }, `${BUILTIN_MODEL.name} (built-in)`);
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

/** A model from the cache list. The token goes along only when the entry is from the Hub URL set now. */
export function loadCachedModel(m: CachedModelInfo): Promise<void> {
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
}

export async function deleteCached(m: CachedModelInfo): Promise<void> {
  try {
    const r = await worker().request({ type: 'deleteCached', endpoint: m.endpoint, repo: m.repo, revision: m.revision }, 'cache');
    P.cacheListed(r.persistent, r.models);
  } catch (e) {
    P.cacheFailed(message(e));
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
          maxLength: s.args.maxLength, seed: s.args.seed,
        },
      },
      'data',
    );
    if (id === latest.data) P.dataLoaded(r.summary);
  } catch (e) {
    if (id === latest.data) P.dataFailed(message(e));
  }
}

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

/** Starts the worker, the backend, the built-in model and the dataset list, and wires the sync. */
export function boot(): void {
  worker().on((e) => {
    if (e.type === 'downloadProgress') P.downloadProgress(e.loadId, e.progress);
    else R.onEvent(e);
  });
  useProject.subscribe((s, p) => {
    const labelsChanged = s.data.summary?.labels.join('\u0000') !== p.data.summary?.labels.join('\u0000');
    if (s.model.info !== p.model.info || s.task !== p.task || (s.task === 'SEQ_CLS' && labelsChanged)) void refreshTree(s);
    if (s.tree !== p.tree || s.settings !== p.settings || s.targetText !== p.targetText || s.method !== p.method) scheduleTargets();
    if (
      s.dataSource !== p.dataSource || s.mapping !== p.mapping || s.validationSplit !== p.validationSplit || s.task !== p.task ||
      s.args.maxLength !== p.args.maxLength || s.args.seed !== p.args.seed || (s.model.info !== p.model.info && s.model.status === 'ready')
    ) {
      scheduleData();
    }
    if (
      s.targets.result !== p.targets.result || s.args.batchSize !== p.args.batchSize || seqLen(s) !== seqLen(p) ||
      s.backend.name !== p.backend.name || s.model.phase !== p.model.phase || s.args.gradientCheckpointing !== p.args.gradientCheckpointing
    ) {
      scheduleMemory();
    }
  });
  void refreshCache();
  void (async () => {
    await initBackend(useProject.getState().backendChoice);
    await loadBuiltinModel();
  })();
  void fetch(new URL('datasets/index.json', baseUrl))
    .then((r) => (r.ok ? r.json() : []))
    .then((list: BuiltinDataset[]) => P.setBuiltinDatasets(list))
    .catch(() => P.setBuiltinDatasets([]));
}

// --- run control ----------------------------------------------------------------------------------------------

export async function startTraining(): Promise<void> {
  const s = useProject.getState();
  const { peft, error } = peftSettings(s);
  if (error) return R.error('BAD_PEFT_CONFIG', error);
  R.starting(s.task);
  try {
    await worker().request({ type: 'start', task: s.task, peft, args: trainArgs(s) }, 'state');
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

export async function generate(prompt: string, maxNewTokens: number, sampling?: SamplingSettings): Promise<void> {
  R.playgroundBusy();
  try {
    const r = await worker().request({ type: 'generate', prompt, maxNewTokens, sampling }, 'generation');
    R.generated(prompt, r.withAdapter, r.withoutAdapter, r.msPerToken);
  } catch (e) {
    R.playgroundFailed(message(e));
  }
}

export async function classify(text: string): Promise<void> {
  R.playgroundBusy();
  try {
    const r = await worker().request({ type: 'classify', text }, 'classification');
    R.classified(text, r.withAdapter, r.withoutAdapter);
  } catch (e) {
    R.playgroundFailed(message(e));
  }
}
