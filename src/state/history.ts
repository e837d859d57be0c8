/**
 * Run history: every run this browser keeps (the worker's run store on OPFS), the run this page trains, the runs
 * picked for the overlay chart with their log_history, storage warnings, and the actions on runs (resume,
 * download a run's files, delete). Components render it; the worker computes.
 */
import { create } from 'zustand';
import { describeError } from '../engine/errors';
import type { LogEntry, RunSummary, WorkerEvent } from '../worker/protocol';
import { buildReadme, buildZip, download } from './export-files';
import { useRun } from './run';
import { worker } from './worker-client';
import type { TaskType } from '../worker/protocol';

export interface HistoryState {
  runs: RunSummary[];
  /** false: runs last only for this session (no OPFS); null: not known yet. */
  persistent: boolean | null;
  /** Run folders that could not be read (another studio version, damaged). */
  problems: string[];
  /** Listing the runs failed. */
  error: string | null;
  /** The kept run this page trains now or trained last. */
  currentId: string | null;
  /** Storage warnings about the current run (training went on). */
  warnings: string[];
  /** Runs picked for the overlay chart, in the order they were picked. */
  selected: string[];
  /** log_history per run, with the record's updatedAt it was read at. */
  logs: Record<string, { at: number; history: LogEntry[] }>;
  /** A resume in progress, or why the last one was refused (shown by its button). */
  resume: { id: string | null; busy: boolean; error: string | null };
  /** Per run: why the last download or delete failed. */
  rowErrors: Record<string, string>;
}

const initial: HistoryState = {
  runs: [], persistent: null, problems: [], error: null, currentId: null, warnings: [], selected: [], logs: {},
  resume: { id: null, busy: false, error: null }, rowErrors: {},
};

export const useHistory = create<HistoryState>()(() => initial);
const set = useHistory.setState;
const get = useHistory.getState;

const message = (e: unknown) => describeError(e);

/** A record in the list, replacing the one with its id (new ones first: the list is newest first). */
function upsert(runs: RunSummary[], r: RunSummary): RunSummary[] {
  const i = runs.findIndex((x) => x.id === r.id);
  if (i < 0) return [r, ...runs].sort((a, b) => b.createdAt - a.createdAt);
  const next = runs.slice();
  next[i] = r;
  return next;
}

function rowError(id: string, e: unknown | null) {
  set((s) => {
    const rowErrors = { ...s.rowErrors };
    if (e === null) delete rowErrors[id];
    else rowErrors[id] = message(e);
    return { rowErrors };
  });
}

export const historyActions = {
  /** Folds the worker's run events in (records as they change, storage warnings). */
  onEvent(e: WorkerEvent) {
    switch (e.type) {
      case 'runStarted':
        set((s) => ({ runs: upsert(s.runs, e.record), currentId: e.record.id, warnings: [], resume: { id: null, busy: false, error: null } }));
        return;
      case 'runRecord':
        set((s) => ({ runs: upsert(s.runs, e.record) }));
        return;
      case 'runWarning':
        set((s) => ({ warnings: [...s.warnings.slice(-4), e.message] }));
        return;
      case 'runsChanged':
        void refreshRuns();
        return;
      case 'done':
        // The record's final status comes as a runRecord first; the list refreshes its live flags.
        void refreshRuns();
        return;
    }
  },
  toggleSelected(id: string) {
    set((s) => ({ selected: s.selected.includes(id) ? s.selected.filter((x) => x !== id) : [...s.selected, id] }));
    void loadSelectedLogs();
  },
  dismissWarnings: () => set({ warnings: [] }),
  clearResumeError: () => set({ resume: { id: null, busy: false, error: null } }),
};

export async function refreshRuns(): Promise<void> {
  try {
    const r = await worker().request({ type: 'listRuns' }, 'runs');
    set((s) => ({
      runs: r.runs, persistent: r.persistent, problems: r.problems, error: null,
      selected: s.selected.filter((id) => r.runs.some((x) => x.id === id)),
    }));
    void loadSelectedLogs();
  } catch (e) {
    set({ error: `The runs kept in this browser could not be listed: ${message(e)}` });
  }
}

/** Reads the log_history of every picked run that changed since it was read. */
async function loadSelectedLogs(): Promise<void> {
  const s = get();
  for (const id of s.selected) {
    const r = s.runs.find((x) => x.id === id);
    if (!r || s.logs[id]?.at === r.updatedAt) continue;
    try {
      const reply = await worker().request({ type: 'runLog', id }, 'runLog');
      set((st) => ({ logs: { ...st.logs, [id]: { at: r.updatedAt, history: reply.history } } }));
      rowError(id, null);
    } catch (e) {
      rowError(id, e);
    }
  }
}

export type RunFile = 'adapter' | 'metrics.jsonl' | 'training_args.json' | 'trainer_state.json';

/** Downloads one of a run's files (the adapter as a zip of PEFT's two files with a README). */
export async function downloadRunFile(id: string, which: RunFile): Promise<void> {
  const run = get().runs.find((r) => r.id === id);
  try {
    const r = await worker().request({ type: 'runFiles', id }, 'runFiles');
    rowError(id, null);
    if (which === 'adapter') {
      const files = { 'adapter_model.safetensors': r.files['adapter_model.safetensors'] as ArrayBuffer, 'adapter_config.json': r.files['adapter_config.json'] as string };
      const config = JSON.parse(files['adapter_config.json']) as Record<string, unknown>;
      const task = (run?.config.task ?? 'CAUSAL_LM') as TaskType;
      const readme = buildReadme({ task, step: r.step, labels: task === 'SEQ_CLS' || task === 'TOKEN_CLS' ? run?.config.labels ?? [] : [], config });
      download(`${id}-step${r.step}${r.best ? '-best' : ''}-adapter.zip`, buildZip(files, readme), 'application/zip');
      return;
    }
    const type = which.endsWith('.jsonl') ? 'application/jsonl' : 'application/json';
    download(`${id}-${which}`, r.files[which] as string, type);
  } catch (e) {
    rowError(id, e);
  }
}

export async function deleteRun(id: string): Promise<void> {
  try {
    const r = await worker().request({ type: 'deleteRun', id }, 'runs');
    set((s) => {
      const logs = { ...s.logs };
      delete logs[id];
      return { runs: r.runs, persistent: r.persistent, problems: r.problems, selected: s.selected.filter((x) => x !== id), logs, currentId: s.currentId === id ? null : s.currentId };
    });
    rowError(id, null);
  } catch (e) {
    rowError(id, e);
  }
}

/**
 * Continues a kept run from its newest complete checkpoint, with its own settings, as the same run (same id,
 * more checkpoints); the charts continue its curves. A refusal (another model or data loaded, a damaged
 * checkpoint) is shown by the button, and nothing of the run changes.
 */
export async function resumeRun(id: string): Promise<void> {
  const run = get().runs.find((r) => r.id === id);
  if (!run || useRun.getState().state !== 'idle') return;
  const start = run.start as { task: TaskType; peft: never; args: never };
  set({ resume: { id, busy: true, error: null } });
  try {
    await worker().request({ type: 'start', task: start.task, peft: start.peft, args: start.args, resume: id }, 'state');
  } catch (e) {
    set({ resume: { id, busy: false, error: message(e) } });
    useRun.setState({ state: 'idle' });
    return;
  }
  set({ resume: { id: null, busy: false, error: null } });
}
