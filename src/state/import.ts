/**
 * The imported-adapter store: a PEFT adapter folder the person brought, loaded onto the current model in the
 * worker. A good import becomes the playground's adapter (until a training run starts) and its config becomes
 * the project's method, settings, targets and task; a bad one is a message, and nothing else changes. The
 * next run can start from its weights ("Continue training").
 */
import { create } from 'zustand';
import { describeError } from '../engine/errors';
import type { AdapterEvalResult, ImportedAdapterInfo, TargetSpec } from '../worker/protocol';
import { projectActions as P, useProject } from './project';
import { useRun } from './run';
import { formatLayers, formatList, type TargetText } from './targets-text';
import { worker } from './worker-client';

export interface ImportStore {
  status: 'idle' | 'loading' | 'ready';
  info: ImportedAdapterInfo | null;
  /** Why the last import failed (the previous adapter, if any, is still the one loaded). */
  error: string | null;
  /** The playground uses the imported adapter (a training run started since takes over). */
  active: boolean;
  /** The next training run starts from the imported adapter's weights. */
  continueFrom: boolean;
  evaluation: { busy: boolean; result?: AdapterEvalResult; error?: string };
  /** The run that started from the imported adapter's weights, and the adapter's name. */
  trainedFrom: { runId: number; name: string } | null;
}

const initial: ImportStore = { status: 'idle', info: null, error: null, active: false, continueFrom: false, evaluation: { busy: false }, trainedFrom: null };

export const useImport = create<ImportStore>()(() => initial);
const set = useImport.setState;

/** The Targets panel's text for a saved target spec. */
export function textForSpec(spec: TargetSpec, prev: TargetText): TargetText {
  const t = spec.targetModules;
  const ex = spec.excludeModules;
  return {
    mode: t === 'all-linear' ? 'all-linear' : typeof t === 'string' ? 'regex' : 'list',
    target: t === 'all-linear' ? prev.target : typeof t === 'string' ? t : formatList(t),
    exclude: ex == null ? '' : typeof ex === 'string' ? ex : formatList(ex),
    excludeRegex: typeof ex === 'string',
    layers: formatLayers(spec.layersToTransform),
    layersPattern: spec.layersPattern ?? '',
  };
}

/** The project takes the adapter's task, method, form values and targets, so its panels show what was imported. */
function adoptSettings(info: ImportedAdapterInfo): void {
  const s = useProject.getState();
  if (s.task !== info.task) P.setTask(info.task);
  if (s.method !== info.peftType) P.setMethod(info.peftType);
  P.updateSettings(info.settings.values);
  if (info.settings.targets) P.setTargetText(textForSpec(info.settings.targets, useProject.getState().targetText));
}

/** Imports the adapter among `files` (a folder's, or the two files); `name` is how it was picked. */
export async function importAdapter(files: File[], name: string): Promise<void> {
  set({ status: 'loading', error: null });
  try {
    const r = await worker().request({ type: 'importAdapter', files, name, task: useProject.getState().task }, 'adapterImported');
    set({ status: 'ready', info: r.info, error: null, active: true, continueFrom: false, evaluation: { busy: false } });
    adoptSettings(r.info);
  } catch (e) {
    set((s) => ({ status: s.info ? 'ready' : 'idle', error: describeError(e) }));
  }
}

/** Reads a directory picker's folder (its top-level files) and imports it. */
export async function importFolder(handle: FileSystemDirectoryHandle): Promise<void> {
  const files: File[] = [];
  try {
    for await (const entry of (handle as unknown as { values(): AsyncIterable<FileSystemHandle> }).values()) {
      if (entry.kind === 'file') files.push(await (entry as FileSystemFileHandle).getFile());
    }
  } catch (e) {
    set({ error: `The folder "${handle.name}" could not be read (${describeError(e)}); pick it again.` });
    return;
  }
  await importAdapter(files, handle.name);
}

/** Eval loss / accuracy (F1) of the imported adapter and the base model on the dataset's validation rows. */
export async function evaluateImported(): Promise<void> {
  const a = useProject.getState().args;
  set((s) => ({ evaluation: { ...s.evaluation, busy: true, error: undefined } }));
  try {
    const r = await worker().request({ type: 'evaluateAdapter', batchSize: a.batchSize, maxLength: a.maxLength, generationEvalRows: a.generationEvalRows ?? null }, 'adapterEval');
    set({ evaluation: { busy: false, result: r.result } });
  } catch (e) {
    set((s) => ({ evaluation: { ...s.evaluation, busy: false, error: describeError(e) } }));
  }
}

export async function closeImported(): Promise<void> {
  try {
    await worker().request({ type: 'closeAdapter' }, 'adapterClosed');
  } catch {
    // The worker is gone or busy; either way nothing is imported any more.
  }
  set(initial);
}

export const importActions = {
  setContinueFrom: (continueFrom: boolean) => set({ continueFrom }),
  /** Back to the imported adapter in the playground (nothing to reload: the worker keeps it until a run starts). */
  dismissError: () => set({ error: null }),
};

/** What startTraining adds to its `start` command. */
export function startOptions(): { fromImport?: true } {
  const s = useImport.getState();
  pendingFrom = null;
  if (!s.info || !s.continueFrom) return {};
  pendingFrom = s.info.name;
  return { fromImport: true };
}

// The worker releases the import with the model it was built on (another model, another backend, a new worker);
// a run that starts takes the playground over.
let lastModel = useProject.getState().model.info;
let lastRun = useRun.getState().runId;
/** A start asked for with fromImport: the run it becomes was trained on from the imported adapter. */
let pendingFrom: string | null = null;
useProject.subscribe((s, p) => {
  if (s.backend.status === 'loading' && p.backend.status !== 'loading' && useImport.getState().info) set(initial);
  if (s.model.info === lastModel) return;
  const was = lastModel;
  lastModel = s.model.info;
  // Weights arriving for the header already on show keep the import (the worker loaded nothing new).
  if (was && s.model.info && was.name === s.model.info.name && s.model.status === 'ready') return;
  if (useImport.getState().info) set(initial);
});
useRun.subscribe((s) => {
  if (s.state !== 'running' || s.runId === lastRun) return;
  lastRun = s.runId;
  set({ active: false, trainedFrom: pendingFrom && s.runId !== null ? { runId: s.runId, name: pendingFrom } : null });
  pendingFrom = null;
});
