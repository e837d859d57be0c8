/**
 * The worker's side of run history: the run store on OPFS (folder "peft-studio-runs"; memory for the session
 * where the browser offers none), the RunRecorder that keeps a studio run's record and checkpoints as it trains,
 * and the answers to the history commands. Everything here goes through the engine's RunStore
 * (src/engine/io/run-store.ts), whose rules are tested in Node on the memory backend.
 *
 * A storage failure (the quota, a browser that refuses) never stops training: it becomes a `runWarning` that
 * says what is still kept.
 */
import { describeError, EngineError } from '../engine/errors';
import { memoryBackend, type CacheBackend } from '../engine/io/cache';
import { opfsBackend } from '../engine/io/opfs-cache';
import {
  latestStep, newRunId, RUN_RECORD_VERSION, RunStore, summarize, type RunConfigSummary, type RunConfusion, type RunRecord, type RunSummary, type StoredRunStatus,
} from '../engine/io/run-store';
import type { TrainingSession } from '../engine/session';
import { metricsJsonl, readTrainerState, TRAINER_STATE, TRAINING_ARGS, type CheckpointFiles, type LogEntry } from '../engine/train/checkpoint';
import type { AdapterFiles, WorkerEvent } from './protocol';
import type { TaskType } from '../engine/models/types';

type Post = (e: WorkerEvent, transfer?: Transferable[]) => void;

// --- the store --------------------------------------------------------------------------------------------

interface LocksLike {
  request(name: string, cb: () => Promise<void> | void): Promise<void>;
  query(): Promise<{ held?: { name?: string }[] }>;
}

const storage = () => (globalThis as { navigator?: { storage?: { getDirectory?: () => Promise<unknown> } } }).navigator?.storage;
const locks = () => (globalThis as { navigator?: { locks?: LocksLike } }).navigator?.locks;
const LOCK = 'peft-studio-run:';

let opened: Promise<{ store: RunStore; persistent: boolean }> | null = null;

/** The run store, opened once per worker: OPFS when the browser has it, else memory (`persistent: false`). */
export function runStore(): Promise<{ store: RunStore; persistent: boolean }> {
  opened ??= (async () => {
    const s = storage();
    if (s?.getDirectory) {
      try {
        const root = (await s.getDirectory()) as Parameters<typeof opfsBackend>[0];
        return { store: new RunStore(opfsBackend(await root.getDirectoryHandle('peft-studio-runs', { create: true }))), persistent: true };
      } catch {
        // private windows and some embedded browsers refuse OPFS
      }
    }
    return { store: new RunStore(memoryBackend()), persistent: false };
  })();
  return opened;
}

/** For tests: a store on a given backend. */
export function useRunBackend(fs: CacheBackend, persistent = true): void {
  opened = Promise.resolve({ store: new RunStore(fs), persistent });
}

const watching = new Set<string>();

/**
 * Runs some page is training now: this worker's, and any another tab's worker holds a lock for. A run held
 * elsewhere is watched: when its lock goes (that tab finished, closed, or was the page before a reload and is
 * still shutting down) `onChange` is called, so the history can show its new status.
 */
async function liveRuns(own: string | null, onChange?: () => void): Promise<Set<string>> {
  const live = new Set<string>(own ? [own] : []);
  const l = locks();
  try {
    const q = await l?.query();
    for (const h of q?.held ?? []) {
      if (!h.name?.startsWith(LOCK)) continue;
      const id = h.name.slice(LOCK.length);
      live.add(id);
      if (l && onChange && id !== own && !watching.has(id)) {
        watching.add(id);
        void l.request(h.name, () => undefined).then(() => {
          watching.delete(id);
          onChange();
        }, () => watching.delete(id));
      }
    }
  } catch {
    // no Web Locks: only this worker's run counts as live
  }
  return live;
}

/** Why a save failed, in the person's terms. */
export function storageProblem(e: unknown): string {
  const err = e as { name?: string; message?: string } | null;
  if (err?.name === 'QuotaExceededError' || /quota/i.test(err?.message ?? '')) {
    return "the browser's storage for this site is full (delete old runs or cached models to free space)";
  }
  return `the browser refused (${describeError(e)})`;
}

// --- recording a run ----------------------------------------------------------------------------------------

export interface RunInfo {
  name: string;
  config: RunConfigSummary;
  start: Record<string, unknown>;
  backend: string;
}

const ADAPTER = ['adapter_model.safetensors', 'adapter_config.json'] as const;

/**
 * Keeps a studio run's record and checkpoints: created (or continued, on a resume) when the run starts, a
 * checkpoint at every save point, at pause, stop, completion and failure (skipped when nothing changed since
 * the last one), and the run's status at its end. Holds a Web Lock named after the run while it trains, so
 * other tabs see it as live rather than interrupted.
 */
export class RunRecorder {
  private record: RunRecord | null;
  private saved = { step: -1, log: -1 };
  private release: (() => void) | null = null;
  private warned = new Set<string>();
  /** SEQ_CLS: the last evaluation's confusion matrix, kept with the record's metrics. */
  private confusion: RunConfusion | null;

  private constructor(
    private readonly store: RunStore,
    record: RunRecord,
    private readonly session: TrainingSession,
    readonly runId: number,
    private readonly post: Post,
    private readonly persistent: boolean,
  ) {
    this.record = record;
    this.confusion = record.confusion ?? null;
    const held = locks();
    if (held) {
      void held.request(`${LOCK}${record.id}`, () => new Promise<void>((r) => (this.release = r))).catch(() => undefined);
    }
  }

  get id(): string {
    return this.record!.id;
  }

  /** The record as the history shows it (this run is live). */
  summary(live = true): RunSummary {
    return summarize(this.record!, live);
  }

  /** A new run's record. A store that cannot write it gives a warning; the run trains without a record. */
  static async create(session: TrainingSession, info: RunInfo, runId: number, post: Post): Promise<RunRecorder> {
    const { store, persistent } = await runStore();
    const now = Date.now();
    const record: RunRecord = {
      v: RUN_RECORD_VERSION, id: newRunId(new Date(now)), name: info.name, createdAt: now, updatedAt: now, status: 'running', error: null,
      config: info.config, start: info.start, backend: info.backend, step: 0, totalSteps: session.totalSteps, durationMs: 0,
      checkpoints: [], latest: null, best: null, metricForBestModel: session.args.metricForBestModel, bestMetric: null, bestStep: null,
      stoppedEarly: false, loadBestModelAtEnd: session.args.loadBestModelAtEnd, final: {}, initialEval: null,
    };
    const rec = new RunRecorder(store, record, session, runId, post, persistent);
    try {
      await store.create(record);
    } catch (e) {
      rec.warn('create', `This run is not kept in the browser: ${storageProblem(e)}. Training continues; download the adapter before leaving the page.`);
    }
    if (!persistent) rec.warn('memory', 'This browser offers no persistent storage (OPFS): runs are kept for this session only and cannot be resumed after a reload.');
    return rec;
  }

  /** A resumed run: the same record, status running again, at its checkpoint's step. */
  static async resume(session: TrainingSession, record: RunRecord, backend: string, runId: number, post: Post): Promise<RunRecorder> {
    const { store, persistent } = await runStore();
    const rec = new RunRecorder(store, record, session, runId, post, persistent);
    rec.saved = { step: session.completedSteps, log: session.logHistory.length };
    await rec.update({ status: 'running', error: null, backend, step: session.completedSteps });
    return rec;
  }

  private warn(key: string, message: string): void {
    if (this.warned.has(key)) return;
    this.warned.add(key);
    this.post({ type: 'runWarning', runId: this.runId, message });
  }

  private postRecord(): void {
    if (this.record) this.post({ type: 'runRecord', runId: this.runId, record: this.summary() });
  }

  /** The record's metric fields from the session. */
  private metrics(durationMs: number): Partial<RunRecord> {
    const s = this.session;
    const log = s.logHistory;
    const lastTrain = [...log].reverse().find((e) => e.loss !== undefined);
    const lastEval = [...log].reverse().find((e) => e.eval_loss !== undefined);
    const final: RunRecord['final'] = {};
    if (lastTrain?.loss !== undefined) final.loss = lastTrain.loss;
    if (lastEval) {
      final.evalLoss = lastEval.eval_loss;
      if (lastEval.eval_accuracy !== undefined) final.evalAccuracy = lastEval.eval_accuracy;
      if (lastEval.eval_f1 !== undefined) final.evalF1 = lastEval.eval_f1;
    }
    return { step: s.completedSteps, durationMs, bestMetric: s.bestMetric, bestStep: s.bestStep, stoppedEarly: s.stoppedEarly, final, ...(this.confusion ? { confusion: this.confusion } : {}) };
  }

  /** Writes record fields (a failure is a warning); the page hears of the change either way. */
  private async update(patch: Partial<RunRecord>): Promise<void> {
    if (!this.record) return;
    this.record = { ...this.record, ...patch };
    try {
      this.record = await this.store.update(this.record.id, patch);
    } catch (e) {
      this.warn('update', `The run's record could not be updated: ${storageProblem(e)}. Training continues.`);
    }
    this.postRecord();
  }

  /** SEQ_CLS: an evaluation's confusion matrix, recorded with the noteEval that follows (and every save). */
  noteConfusion(c: RunConfusion): void {
    this.confusion = c;
  }

  /** The evaluation before the first step, and evaluations between checkpoints: shown at once, written with the next save. */
  async noteEval(initial?: { evalLoss: number; accuracy: number; f1?: number; exactMatch?: number; chrf?: number; rougeL?: number }, durationMs = this.record?.durationMs ?? 0): Promise<void> {
    if (!this.record) return;
    if (initial) return this.update({ ...this.metrics(durationMs), initialEval: initial });
    this.record = { ...this.record, ...this.metrics(durationMs) };
    this.postRecord();
  }

  /**
   * A checkpoint of the session as it is now, unless one of this same state was written already. `files`:
   * checkpoint files taken by the caller under the training lock. Returns whether one was written.
   */
  async save(take: (bestModelCheckpoint: string | null) => Promise<CheckpointFiles>, durationMs: number): Promise<boolean> {
    const s = this.session;
    if (!this.record || (this.saved.step === s.completedSteps && this.saved.log === s.logHistory.length)) return false;
    const step = s.completedSteps;
    const best = s.latestIsBest;
    const bestName = best ? `checkpoint-${step}` : this.record.best;
    try {
      const files = await take(bestName ? `${this.record.id}/${bestName}` : null);
      const r = await this.store.saveCheckpoint(this.record.id, step, files, {
        best, limit: s.args.saveTotalLimit, patch: this.metrics(durationMs),
      });
      this.record = r.record;
      this.saved = { step, log: s.logHistory.length };
      this.warned.delete('save');
      this.postRecord();
      return true;
    } catch (e) {
      const kept = this.record.latest ? `the run can still resume from step ${latestStep(this.record)}` : 'no checkpoint of this run is kept yet';
      this.warn('save', `The checkpoint at step ${step} could not be saved: ${storageProblem(e)}. Training continues; ${kept}.`);
      await this.noteEval(undefined, durationMs);
      return false;
    }
  }

  /**
   * The best checkpoint's adapter when the run loads the best model at the end (and it is not the last step's),
   * else null.
   */
  async bestAdapter(): Promise<{ step: number; files: AdapterFiles } | null> {
    const r = this.record;
    if (!r?.loadBestModelAtEnd || !r.best) return null;
    const c = this.store.adapterCheckpoint(r);
    if (!c?.best) return null;
    try {
      const files = await this.store.readCheckpointDir(r.id, c.dir);
      const w = files[ADAPTER[0]] as Uint8Array;
      const buf = w.buffer.slice(w.byteOffset, w.byteOffset + w.byteLength) as ArrayBuffer;
      return { step: c.step, files: { 'adapter_model.safetensors': buf, 'adapter_config.json': files[ADAPTER[1]] as string } };
    } catch (e) {
      this.warn('best', `The best checkpoint (step ${c.step}) could not be read back: ${describeError(e)}. The last step's adapter is offered instead.`);
      return null;
    }
  }

  /** The run ended: its status, metrics and time; the lock goes, so the run shows as not live. */
  async finish(status: Exclude<StoredRunStatus, 'running'> | 'paused', durationMs: number, error?: { code: string; message: string }): Promise<void> {
    await this.update({ ...this.metrics(durationMs), status, error: error ?? null });
    if (status !== 'paused') this.close();
  }

  /** The run is paused: the record says so (a reload then finds it interrupted, resumable from here). */
  async paused(durationMs: number): Promise<void> {
    await this.update({ ...this.metrics(durationMs), status: 'paused' });
  }

  async running(): Promise<void> {
    await this.update({ status: 'running' });
  }

  close(): void {
    this.release?.();
    this.release = null;
  }

  get isPersistent(): boolean {
    return this.persistent;
  }
}

// --- history commands ---------------------------------------------------------------------------------------

/** onChange: a run that was live in another tab (or the page before a reload) is not any more. */
export async function listRuns(own: string | null, onChange?: () => void): Promise<{ runs: RunSummary[]; persistent: boolean; problems: string[] }> {
  const { store, persistent } = await runStore();
  const { runs, problems } = await store.list();
  const live = await liveRuns(own, onChange);
  return { runs: runs.map((r) => summarize(r, live.has(r.id))), persistent, problems };
}

export async function runLog(id: string): Promise<LogEntry[]> {
  const { store } = await runStore();
  return store.logHistory(id);
}

/** A run's downloadable files (see the `runFiles` command). */
export async function runFiles(id: string): Promise<{ step: number; best: boolean; files: Record<string, string | ArrayBuffer> }> {
  const { store } = await runStore();
  const r = await store.get(id);
  if (!r) throw new EngineError('BAD_CHECKPOINT', `Run ${id} is not in this browser's storage any more.`);
  const latest = await store.latestCheckpoint(id);
  if (!latest) throw new EngineError('BAD_CHECKPOINT', `Run ${r.name} has no complete checkpoint, so there are no files to download.`);
  const c = store.adapterCheckpoint(r);
  const from = c && c.dir !== latest.dir ? await store.readCheckpointDir(id, c.dir).catch(() => null) : null;
  const adapterFiles = from ?? latest.files;
  const w = adapterFiles[ADAPTER[0]] as Uint8Array;
  const st = readTrainerState(latest.files);
  return {
    step: from ? c!.step : latest.step,
    best: !!from && !!c?.best,
    files: {
      [ADAPTER[0]]: w.buffer.slice(w.byteOffset, w.byteOffset + w.byteLength) as ArrayBuffer,
      [ADAPTER[1]]: adapterFiles[ADAPTER[1]] as string,
      'metrics.jsonl': metricsJsonl(st.log_history),
      [TRAINING_ARGS]: latest.files[TRAINING_ARGS] as string,
      [TRAINER_STATE]: latest.files[TRAINER_STATE] as string,
    },
  };
}

export async function deleteRun(id: string, own: string | null): Promise<void> {
  if ((await liveRuns(own)).has(id)) throw new EngineError('BAD_ARGUMENT', 'This run is training now: stop it before deleting it.');
  const { store } = await runStore();
  await store.delete(id);
}

/** What a resume needs: the record (its own settings) and its newest complete checkpoint. */
export async function prepareResume(id: string, own: string | null): Promise<{ record: RunRecord; files: CheckpointFiles; step: number; skipped: string[] }> {
  if ((await liveRuns(own)).has(id)) throw new EngineError('BAD_ARGUMENT', 'This run is training in another tab (or here) right now.');
  const { store } = await runStore();
  const r = await store.checkpointToResume(id);
  if (r.record.status === 'completed' || r.step >= r.record.totalSteps) throw new EngineError('BAD_CHECKPOINT', `Run ${r.record.name} is complete (step ${r.step} of ${r.record.totalSteps}).`);
  return r;
}

// --- a run's description ------------------------------------------------------------------------------------

const targetsText = (t: unknown) => (Array.isArray(t) ? t.join(', ') : typeof t === 'string' ? t : 'default targets');

/** Key settings of a method's config, e.g. "r=8, lora_alpha=16 on c_attn". */
export function describeMethod(c: Record<string, unknown> & { peftType: string }, prompt: boolean): string {
  if (prompt) return `${c.numVirtualTokens} virtual tokens`;
  const on = ` on ${targetsText(c.targetModules)}`;
  if (c.peftType === 'LORA') return `r=${c.r}, lora_alpha=${c.loraAlpha}${c.loraDropout ? `, dropout ${c.loraDropout}` : ''}${c.useDora ? ', DoRA' : ''}${c.useRslora ? ', rsLoRA' : ''}${on}`;
  if (c.peftType === 'ADALORA') return `init_r=${c.initR} → target_r=${c.targetR}${on}`;
  return on.trim();
}

/** What a resume starts with: the run's own task, method settings and arguments, checked for shape. */
export function startOf(r: RunRecord): { task: TaskType; peft: Record<string, unknown> & { peftType: string }; args: Record<string, unknown> & { maxLength: number; seed: number; evalSteps: number } } {
  const st = r.start as { task?: unknown; peft?: { peftType?: unknown }; args?: { maxLength?: unknown } };
  if (!(['CAUSAL_LM', 'SEQ_CLS', 'TOKEN_CLS', 'SEQ_2_SEQ_LM'] as unknown[]).includes(st.task) || typeof st.peft?.peftType !== 'string' || typeof st.args?.maxLength !== 'number') {
    throw new EngineError('BAD_CHECKPOINT', `The settings of run ${r.name} are not readable (another version of the studio); start a new run.`);
  }
  return r.start as ReturnType<typeof startOf>;
}

/** The data a run was read with, against the data loaded now: a mismatch is named before the engine's fingerprint check. */
export function checkResumeData(r: RunRecord, now: { maxLength: number; seed: number; validationSplit: number } | null): void {
  const then = (r.start as { data?: { maxLength: number; seed: number; validationSplit: number } }).data;
  if (!then || !now) return;
  const diff: string[] = [];
  if (then.maxLength !== now.maxLength) diff.push(`max length ${then.maxLength} (now ${now.maxLength})`);
  if (then.seed !== now.seed) diff.push(`seed ${then.seed} (now ${now.seed})`);
  if (then.validationSplit !== now.validationSplit) diff.push(`validation split ${then.validationSplit} (now ${now.validationSplit})`);
  if (diff.length) {
    throw new EngineError('BAD_CHECKPOINT', `Run ${r.name} read its data with ${diff.join(', ')}. Set these back in the Training and Data panels to resume it; nothing of the run is lost.`);
  }
}

/** The loaded model must be the run's: resuming on another base model would not continue it. */
export function checkResumeModel(r: RunRecord, baseName: string): void {
  if (r.config.baseModel !== baseName) {
    throw new EngineError('BAD_CHECKPOINT', `Run ${r.name} trained ${r.config.baseModel}, but ${baseName} is loaded. Load ${r.config.baseModel} in the Model panel to resume it; nothing of the run is lost.`);
  }
}

/** Checks of the run's own arguments that need the data (as the CLI's usage errors). */
export function checkRunArgs(a: { evalSteps: number; saveSteps?: number; loadBestModelAtEnd?: boolean; earlyStoppingPatience?: number | null }, hasValidation: boolean): void {
  const evaluates = a.evalSteps > 0 && hasValidation;
  const why = a.evalSteps > 0 ? 'validation rows (Data panel: a validation split above 0)' : '"eval every N steps" above 0 and validation rows';
  if (a.loadBestModelAtEnd && !evaluates) throw new EngineError('BAD_ARGUMENT', `Load best model at end needs ${why}.`);
  if (a.earlyStoppingPatience != null && !evaluates) throw new EngineError('BAD_ARGUMENT', `Early stopping needs ${why}.`);
  if (a.loadBestModelAtEnd && a.saveSteps && a.saveSteps % a.evalSteps !== 0) {
    throw new EngineError('BAD_ARGUMENT', `Load best model at end needs "save every N steps" to be 0 or a multiple of "eval every N steps" (${a.evalSteps}), so every best evaluation has a checkpoint.`);
  }
}
