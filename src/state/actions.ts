/**
 * Actions that talk to the worker, and the sync that keeps the worker's view in step with the project store:
 * a changed model or task re-reads the module tree, changed target text re-resolves the targets, changed
 * data settings reload the data. Replies to superseded requests are dropped.
 */
import { describeError } from '../engine/errors';
import type { BackendChoice, ModelSource } from '../worker/protocol';
import { peftSettings, projectActions as P, trainArgs, useProject, type BuiltinDataset, type ProjectState } from './project';
import { runActions as R, useRun } from './run';
import { worker } from './worker-client';

/** Absolute BASE_URL of the app (built-in models, datasets and wasm binaries live under it). */
export const baseUrl = new URL(import.meta.env.BASE_URL, window.location.href).href;
export const BUILTIN_MODEL = { dir: 'models/sotu-gpt2/', name: 'sotu-gpt2' };

const latest = { tree: 0, targets: 0, data: 0, model: 0 };
const message = (e: unknown) => describeError(e);

export async function initBackend(choice: BackendChoice): Promise<void> {
  P.setBackendChoice(choice);
  P.backendStarting();
  try {
    const r = await worker().request({ type: 'init', backend: choice, baseUrl }, 'ready');
    P.backendReady(r.backend, r.reason);
  } catch (e) {
    P.backendFailed(message(e));
  }
}

export async function loadModel(source: ModelSource, label: string): Promise<void> {
  const id = ++latest.model;
  P.modelLoading(label);
  try {
    const r = await worker().request({ type: 'loadModel', source }, 'model');
    if (id === latest.model) P.modelLoaded(r.info);
  } catch (e) {
    if (id === latest.model) P.modelFailed(message(e));
  }
}

export const loadBuiltinModel = () =>
  loadModel({ kind: 'url', url: new URL(BUILTIN_MODEL.dir, baseUrl).href, name: BUILTIN_MODEL.name }, `${BUILTIN_MODEL.name} (built-in)`);

async function refreshTree(s: ProjectState) {
  if (s.model.status !== 'ready') return;
  const id = ++latest.tree;
  try {
    const r = await worker().request({ type: 'inspect', task: s.task }, 'tree');
    if (id === latest.tree) P.treeLoaded(r.tree);
  } catch (e) {
    if (id === latest.tree) P.modelFailed(message(e));
  }
}

async function refreshTargets() {
  const s = useProject.getState();
  if (s.model.status !== 'ready' || !s.tree) return;
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

/** Starts the worker, the backend, the built-in model and the dataset list, and wires the sync. */
export function boot(): void {
  worker().on((e) => R.onEvent(e));
  useProject.subscribe((s, p) => {
    const labelsChanged = s.data.summary?.labels.join('\u0000') !== p.data.summary?.labels.join('\u0000');
    if (s.model.info !== p.model.info || s.task !== p.task || (s.task === 'SEQ_CLS' && labelsChanged)) void refreshTree(s);
    if (s.tree !== p.tree || s.lora !== p.lora || s.targetText !== p.targetText || s.prompt !== p.prompt || s.method !== p.method) scheduleTargets();
    if (
      s.dataSource !== p.dataSource || s.mapping !== p.mapping || s.validationSplit !== p.validationSplit || s.task !== p.task ||
      s.args.maxLength !== p.args.maxLength || s.args.seed !== p.args.seed || (s.model.info !== p.model.info && s.model.status === 'ready')
    ) {
      scheduleData();
    }
  });
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

export async function generate(prompt: string, maxNewTokens: number): Promise<void> {
  R.playgroundBusy();
  try {
    const r = await worker().request({ type: 'generate', prompt, maxNewTokens }, 'generation');
    R.generated(prompt, r.withAdapter, r.withoutAdapter);
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
