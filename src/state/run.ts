/**
 * The run store: the training run's state, its metrics as they stream in, errors, the latest adapter
 * checkpoint (kept after a failure, so it stays downloadable) and the playground's results.
 */
import type { ClassBaselines } from '../engine/train/baselines';
import { create } from 'zustand';
import type {
  AdapterFiles, ClassifyResult, EvalMetrics, LogEntry, RunState, StepMetrics, TaskType, WorkerEvent,
} from '../worker/protocol';

export interface Progress {
  step: number;
  totalSteps: number;
  epoch: number;
  elapsedMs: number;
  etaMs: number | null;
  tokensPerSec: number;
  /** Training time per optimizer step, evaluations taken out. */
  msPerStep?: number;
}

export interface Checkpoint {
  runId: number;
  step: number;
  files: AdapterFiles;
  /** What the adapter was trained for, for the README. */
  task: TaskType;
  receivedAt: number;
  /** The run's best checkpoint (load best model at end), by this metric's value, rather than its last step. */
  best?: { metric: string; value: number };
  /** The task, method and model its run was started with (null: not known). */
  from?: RunOrigin | null;
}

/** The charts' points of a log_history (a resumed run continues them), with the evaluation before step 1. */
export function pointsOf(history: LogEntry[], initialEval: { evalLoss: number; accuracy: number; f1?: number; exactMatch?: number; chrf?: number; rougeL?: number } | null): { metrics: StepMetrics[]; evals: EvalMetrics[] } {
  const metrics: StepMetrics[] = [];
  const evals: EvalMetrics[] = initialEval ? [{ step: 0, ...initialEval }] : [];
  for (const e of history) {
    if (e.eval_loss !== undefined) evals.push({ step: e.step, evalLoss: e.eval_loss, accuracy: e.eval_accuracy ?? NaN, ...(e.eval_f1 !== undefined ? { f1: e.eval_f1 } : {}), ...(e.eval_exact_match !== undefined ? { exactMatch: e.eval_exact_match, chrf: e.eval_chrf, rougeL: e.eval_rougeL } : {}) });
    else if (e.loss !== undefined) metrics.push({ step: e.step, epoch: e.epoch, loss: e.loss, lr: e.learning_rate ?? NaN, gradNorm: e.grad_norm ?? NaN, tokensPerSec: 0 });
  }
  return { metrics, evals };
}

export interface EvalProgress {
  step: number;
  phase: 'batches' | 'generation';
  done: number;
  total: number;
}

export interface RunError {
  code: string;
  message: string;
  at: number;
}

export interface RunOrigin {
  task: TaskType;
  method: string;
  model: string;
}

export interface RunStore {
  runId: number | null;
  state: RunState;
  task: TaskType;
  progress: Progress | null;
  metrics: StepMetrics[];
  evals: EvalMetrics[];
  /** The evaluation in progress (after `step`): loss batches done of total, then SEQ_2_SEQ_LM rows generated; null between evaluations. */
  evalProgress: EvalProgress | null;
  /** Classification reference accuracies on the data the run started with (majority class, bag of words). */
  baselines: ClassBaselines | null;
  /** The task, method and model the run on show was started with (null: not known, e.g. a resumed record). */
  from: RunOrigin | null;
  checkpoint: Checkpoint | null;
  outcome: 'completed' | 'stopped' | 'failed' | null;
  errors: RunError[];
  logs: string[];
  playground: {
    busy: boolean;
    generation?: { prompt: string; withAdapter: string; withoutAdapter: string; msPerToken?: number; streaming?: boolean; stopped?: boolean; chat?: { prompt: string; template: string; promptOff?: string } };
    classification?: { text: string; withAdapter: ClassifyResult; withoutAdapter: ClassifyResult };
    error?: string;
  };
}

const initial: RunStore = {
  runId: null,
  state: 'idle',
  task: 'CAUSAL_LM',
  progress: null,
  metrics: [],
  evals: [],
  evalProgress: null,
  baselines: null,
  from: null,
  checkpoint: null,
  outcome: null,
  errors: [],
  logs: [],
  playground: { busy: false },
};

export const useRun = create<RunStore>()(() => initial);
const set = useRun.setState;
const get = useRun.getState;

export const runActions = {
  /** A new run: charts start empty; the previous checkpoint stays until the new run sends one. */
  starting: (task: TaskType, baselines: ClassBaselines | null = null, from: RunOrigin | null = null) => {
    pending = [];
    set({ state: 'starting', task, progress: null, metrics: [], evals: [], evalProgress: null, baselines, from, outcome: null, errors: [], runId: null });
  },
  error: (code: string, message: string) => set((s) => ({ errors: [...s.errors.slice(-19), { code, message, at: Date.now() }] })),
  dismissErrors: () => set({ errors: [] }),
  /** The worker is gone: a run in progress ends as failed (its last checkpoint stays downloadable). */
  workerCrashed: (message: string) =>
    set((s) => (s.state === 'idle' ? {} : { state: 'idle', outcome: 'failed', errors: [...s.errors.slice(-19), { code: 'WORKER', message, at: Date.now() }] })),
  /** A new worker: nothing is running in it, and the playground waits for nothing. */
  workerRestarted: () => {
    flush();
    set((s) => ({ state: 'idle', playground: { ...s.playground, busy: false } }));
  },
  playgroundBusy: () => set((s) => ({ playground: { ...s.playground, busy: true, error: undefined } })),
  playgroundFailed: (error: string) =>
    set((s) => {
      const g = s.playground.generation;
      return { playground: { ...s.playground, busy: false, error, generation: g && { ...g, streaming: false } } };
    }),
  generated: (prompt: string, withAdapter: string, withoutAdapter: string, msPerToken?: number, stopped?: boolean, chat?: { prompt: string; template: string; promptOff?: string }) =>
    set((s) => ({
      playground: { ...s.playground, busy: false, generation: { prompt, withAdapter, withoutAdapter, msPerToken, ...(stopped ? { stopped } : {}), ...(chat ? { chat } : {}) } },
    })),
  /** A generation starts: both sides empty, filled as its tokens stream in. */
  generationStarted: (prompt: string) =>
    set((s) => ({ playground: { ...s.playground, generation: { prompt, withAdapter: '', withoutAdapter: '', streaming: true } } })),
  /** The text so far of one side of the generation in progress (ignored once it has ended). */
  generationPartial: (adapter: boolean, text: string) =>
    set((s) => {
      const g = s.playground.generation;
      if (!g?.streaming) return {};
      return { playground: { ...s.playground, generation: { ...g, ...(adapter ? { withAdapter: text } : { withoutAdapter: text }) } } };
    }),
  classified: (text: string, withAdapter: ClassifyResult, withoutAdapter: ClassifyResult) =>
    set((s) => ({ playground: { ...s.playground, busy: false, classification: { text, withAdapter, withoutAdapter } } })),

  /** Folds a run event from the worker into the store. */
  onEvent(e: WorkerEvent) {
    // Fast steps can arrive hundreds of times a second; metrics and progress are buffered and drawn a few
    // times a second so the page stays responsive. Any other event flushes the buffer first, keeping order.
    if (e.type === 'metrics' || e.type === 'progress') {
      pending.push(e);
      pendingTimer ??= setTimeout(flush, FLUSH_MS);
      return;
    }
    flush();
    const s = get();
    const current = (runId: number) => s.runId === null || s.runId === runId;
    switch (e.type) {
      case 'state':
        if (s.runId === null || e.runId >= s.runId) set({ runId: e.runId, state: e.state });
        return;
      case 'evalMetrics':
        if (current(e.runId)) set({ evals: [...s.evals, e.metrics], evalProgress: null });
        return;
      case 'evalProgress':
        if (current(e.runId)) set({ evalProgress: { step: e.step, phase: e.phase, done: e.done, total: e.total } });
        return;
      case 'checkpoint':
        set({
          checkpoint: {
            runId: e.runId, step: e.step, files: e.files, task: s.task, receivedAt: Date.now(), ...(e.best ? { best: e.best } : {}),
            from: current(e.runId) ? s.from : s.checkpoint?.runId === e.runId ? s.checkpoint.from : null,
          },
        });
        return;
      case 'runStarted': {
        // A new run starts empty; a resumed one continues the curves of its checkpoint's log_history.
        if (!current(e.runId)) return;
        const { metrics, evals: points } = pointsOf(e.history, e.record.initialEval);
        // A classification run's kept confusion matrix goes back on its evaluation point.
        const cm = e.record.confusion;
        const evals = cm ? points.map((x) => (x.step === cm.step ? { ...x, confusion: cm.matrix, classes: cm.classes } : x)) : points;
        const last = e.history[e.history.length - 1];
        set({
          runId: e.runId, task: e.record.config.task as TaskType, metrics, evals, evalProgress: null, outcome: null, errors: [],
          progress: last ? { step: last.step, totalSteps: e.record.totalSteps, epoch: last.epoch, elapsedMs: e.record.durationMs, etaMs: null, tokensPerSec: 0 } : null,
        });
        return;
      }
      case 'done':
        if (current(e.runId)) set({ outcome: e.reason, state: 'idle', evalProgress: null });
        return;
      case 'log':
        set({ logs: [...s.logs.slice(-99), e.message] });
        return;
      case 'error':
        // Errors of requests are shown where the request was made; run and worker errors land here.
        if (e.requestId === undefined) runActions.error(e.code, e.message);
        return;
    }
  },
};

const FLUSH_MS = 150;
let pending: Extract<WorkerEvent, { type: 'metrics' | 'progress' }>[] = [];
let pendingTimer: ReturnType<typeof setTimeout> | null = null;

/** Applies buffered metrics and the latest progress of the current run in one store update. */
function flush(): void {
  if (pendingTimer) clearTimeout(pendingTimer);
  pendingTimer = null;
  if (!pending.length) return;
  const s = get();
  const events = pending;
  pending = [];
  const current = (runId: number) => s.runId === null || s.runId === runId;
  const metrics: StepMetrics[] = [];
  let progress: Progress | null = null;
  for (const e of events) {
    if (!current(e.runId)) continue;
    if (e.type === 'metrics') metrics.push(e.metrics);
    else progress = { step: e.step, totalSteps: e.totalSteps, epoch: e.epoch, elapsedMs: e.elapsedMs, etaMs: e.etaMs, tokensPerSec: e.tokensPerSec, msPerStep: e.msPerStep };
  }
  set({ metrics: metrics.length ? [...s.metrics, ...metrics] : s.metrics, progress: progress ?? s.progress });
}
