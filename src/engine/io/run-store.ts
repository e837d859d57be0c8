/**
 * The studio's runs, kept across reloads: a record per run and its Trainer-style checkpoints, on any
 * CacheBackend (OPFS in the worker, memory in tests and where the browser offers no OPFS).
 *
 * Layout under the root (one folder per run; its id is timestamp-based, so it survives reloads):
 *   <runId>/run.json                  the run record (RunRecord): settings, status, metrics, checkpoint pointers
 *   <runId>/run.next.json             the same record, written completely before run.json is (see writeRecord)
 *   <runId>/checkpoint-<step>/...     a checkpoint's CheckpointFiles, trainer_state.json written last
 *
 * The rules are the CLI's (src/cli/checkpoints.ts), without a rename (OPFS folders cannot be renamed):
 *   1. a checkpoint goes into a folder no record points to, completely, trainer_state.json last;
 *   2. then the record's pointer switches to it (the record lists complete checkpoints only);
 *   3. then old checkpoints are rotated to saveTotalLimit (the best is never deleted; with a limit of 1 the
 *      best and the latest are kept), first out of the record, then off the disk.
 * A crash at any point leaves the previous checkpoint loadable; a folder the record does not list (cut off
 * mid-write) is never read, and is removed the next time the run is saved to or resumed. Reading a checkpoint
 * checks it with readTrainerState (every file at its recorded size) and falls back to an older one.
 */
import { EngineError } from '../errors';
import { asText, readTrainerState, TRAINER_STATE, type CheckpointFiles, type LogEntry } from '../train/checkpoint';
import type { CacheBackend } from './cache';

export const RUN_RECORD = 'run.json';
const RUN_RECORD_NEXT = 'run.next.json';
export const RUN_RECORD_VERSION = 1;

/** How a run ended, or that it is still going (as its record says). */
export type StoredRunStatus = 'running' | 'paused' | 'completed' | 'stopped' | 'failed';
/** What the history shows: a record that says running or paused but no page trains it was interrupted. */
export type RunStatus = StoredRunStatus | 'interrupted';

export interface StoredCheckpoint {
  step: number;
  /** Folder name under the run's folder. */
  dir: string;
  savedAt: number;
  bytes: number;
}

/** What a run was set up with, to show (the exact settings to resume with are in `start`). */
export interface RunConfigSummary {
  model: string;
  /** base_model_name_or_path: what a resume checks the loaded model against. */
  baseModel: string;
  task: string;
  method: string;
  methodLabel: string;
  /** Key settings of the method, e.g. "r=8, lora_alpha=16, target_modules=c_attn". */
  methodSettings: string;
  data: string;
  trainExamples: number;
  validationExamples: number;
  labels: string[];
  learningRate: number;
  batchSize: number;
  gradientAccumulationSteps: number;
  evalSteps: number;
  seed: number;
  maxLength: number;
}

/** A run's record (run.json). `start` is opaque here: the studio's start command (task, method, arguments). */
export interface RunRecord {
  v: number;
  id: string;
  name: string;
  createdAt: number;
  updatedAt: number;
  status: StoredRunStatus;
  error: { code: string; message: string } | null;
  config: RunConfigSummary;
  start: Record<string, unknown>;
  backend: string;
  /** Optimizer steps done, and planned. */
  step: number;
  totalSteps: number;
  /** Training time, pauses excluded, over every session of the run. */
  durationMs: number;
  /** Complete checkpoints, oldest step first. */
  checkpoints: StoredCheckpoint[];
  /** The newest complete checkpoint (a dir of `checkpoints`), the one a resume continues from. */
  latest: string | null;
  /** The best checkpoint by metricForBestModel (a dir of `checkpoints`), when one was saved at a best step. */
  best: string | null;
  metricForBestModel: string;
  bestMetric: number | null;
  bestStep: number | null;
  stoppedEarly: boolean;
  loadBestModelAtEnd: boolean;
  /** Last values: train loss, and the last evaluation. */
  final: { loss?: number; evalLoss?: number; evalAccuracy?: number; evalF1?: number };
  /** The evaluation before the first step (not part of Trainer's log_history), for the charts. */
  initialEval: { evalLoss: number; accuracy: number; f1?: number; exactMatch?: number; chrf?: number; rougeL?: number } | null;
  /** SEQ_CLS: the last evaluation's confusion matrix (confusion[true][predicted]) and per-class scores (absent in older records). */
  confusion?: RunConfusion | null;
}

export interface RunConfusion {
  step: number;
  matrix: number[][];
  classes: { precision: number; recall: number; f1: number; support: number }[];
}

/** A record with the status the history shows. */
export type RunSummary = RunRecord & { shownStatus: RunStatus; resumable: boolean; latestStep: number };

const RUN_ID = /^run-\d{8}-\d{6}-[a-z0-9]{4,8}$/;
const CHECKPOINT_DIR = /^checkpoint-(\d+)(?:\.(\d+))?$/;

/** A run id that sorts by time and survives reloads: run-YYYYMMDD-HHMMSS-xxxx (UTC). */
export function newRunId(now = new Date(), random = Math.random): string {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  const d = `${now.getUTCFullYear()}${p(now.getUTCMonth() + 1)}${p(now.getUTCDate())}`;
  const t = `${p(now.getUTCHours())}${p(now.getUTCMinutes())}${p(now.getUTCSeconds())}`;
  const r = Math.floor(random() * 36 ** 6).toString(36).padStart(6, '0');
  return `run-${d}-${t}-${r}`;
}

export const isRunId = (id: string) => RUN_ID.test(id);

/**
 * The status to show: a record that says running or paused, with no page training it now, was interrupted (the
 * tab was closed, reloaded or crashed). It can be resumed, as can a stopped or failed run before its last step.
 */
export function summarize(r: RunRecord, live: boolean): RunSummary {
  const shownStatus: RunStatus = !live && (r.status === 'running' || r.status === 'paused') ? 'interrupted' : r.status;
  const resumable = !live && r.latest !== null && r.status !== 'completed' && latestStep(r) < r.totalSteps;
  return { ...r, shownStatus, resumable, latestStep: latestStep(r) };
}

/** The step of the latest checkpoint (0 without one). */
export function latestStep(r: RunRecord): number {
  return r.checkpoints.find((c) => c.dir === r.latest)?.step ?? 0;
}

/**
 * Which checkpoints rotation keeps (transformers' _rotate_checkpoints, as the CLI's rotateCheckpoints): the newest
 * `limit`, the best one always counted among them; with a limit of 1 and a best that is not the latest, both.
 */
export function checkpointsToKeep(all: StoredCheckpoint[], limit: number | null, best: string | null): Set<string> {
  const keep = new Set<string>();
  if (limit == null) {
    for (const c of all) keep.add(c.dir);
    return keep;
  }
  const latest = all[all.length - 1]?.dir;
  if (best && all.some((c) => c.dir === best)) keep.add(best);
  const effective = limit === 1 && keep.size && latest && best !== latest ? 2 : limit;
  for (const c of [...all].reverse()) {
    if (keep.size >= effective) break;
    keep.add(c.dir);
  }
  return keep;
}

const isText = (name: string) => name.endsWith('.json');
const encode = (v: Uint8Array | string) => (typeof v === 'string' ? new TextEncoder().encode(v) : v);

function checkRecord(x: unknown, id: string): RunRecord {
  const r = x as RunRecord;
  const ok =
    !!r && typeof r === 'object' && r.v === RUN_RECORD_VERSION && r.id === id && typeof r.name === 'string' &&
    ['running', 'paused', 'completed', 'stopped', 'failed'].includes(r.status) && Array.isArray(r.checkpoints) &&
    r.checkpoints.every((c) => c && typeof c.dir === 'string' && CHECKPOINT_DIR.test(c.dir) && Number.isInteger(c.step)) &&
    typeof r.config === 'object' && r.config !== null && typeof r.start === 'object' && r.start !== null;
  if (!ok) throw new EngineError('BAD_CHECKPOINT', `The record of run ${id} is not readable (another version of the studio, or damaged).`);
  return r;
}

export interface SaveResult {
  record: RunRecord;
  /** Checkpoint folders rotation deleted. */
  removed: string[];
}

/** Runs and their checkpoints on a storage backend. */
export class RunStore {
  constructor(private readonly fs: CacheBackend) {}

  private async readFile(path: string[]): Promise<Uint8Array | null> {
    const n = await this.fs.size(path);
    if (n === null) return null;
    return this.fs.read(path, 0, n);
  }

  private async readJson(path: string[]): Promise<unknown> {
    const b = await this.readFile(path);
    if (!b) return undefined;
    try {
      return JSON.parse(new TextDecoder().decode(b));
    } catch {
      return undefined;
    }
  }

  /**
   * Writes the record so that a crash mid-write never loses it: run.next.json completely first, then run.json.
   * One of the two is always whole (read() takes run.json, else run.next.json).
   */
  private async writeRecord(r: RunRecord): Promise<void> {
    const bytes = encode(`${JSON.stringify(r, null, 2)}\n`);
    await this.fs.write([r.id, RUN_RECORD_NEXT], bytes, 0);
    await this.fs.write([r.id, RUN_RECORD], bytes, 0);
  }

  /** Starts a run's record (status running, no checkpoint yet). */
  async create(r: RunRecord): Promise<RunRecord> {
    if (!isRunId(r.id)) throw new EngineError('BAD_ARGUMENT', `"${r.id}" is not a run id.`);
    if ((await this.fs.list([r.id])).length) throw new EngineError('BAD_ARGUMENT', `Run ${r.id} exists already.`);
    await this.writeRecord(r);
    return r;
  }

  /** A run's record, or null when there is none (or neither copy of it is readable). */
  async get(id: string): Promise<RunRecord | null> {
    if (!isRunId(id)) return null;
    for (const name of [RUN_RECORD, RUN_RECORD_NEXT]) {
      const raw = await this.readJson([id, name]);
      if (raw === undefined) continue;
      try {
        return checkRecord(raw, id);
      } catch {
        // the other copy, if it is whole
      }
    }
    return null;
  }

  /** Every readable run, newest first; `problems` names folders that are not (left alone, deletable). */
  async list(): Promise<{ runs: RunRecord[]; problems: string[] }> {
    const runs: RunRecord[] = [];
    const problems: string[] = [];
    for (const id of await this.fs.list([])) {
      if (!isRunId(id)) continue;
      const r = await this.get(id);
      if (r) runs.push(r);
      else problems.push(id);
    }
    runs.sort((a, b) => b.createdAt - a.createdAt || (a.id < b.id ? 1 : -1));
    return { runs, problems };
  }

  /** Changes the record's fields (status, metrics, duration): written at once. */
  async update(id: string, patch: Partial<Omit<RunRecord, 'id' | 'v' | 'checkpoints' | 'latest' | 'best'>>): Promise<RunRecord> {
    const r = await this.require(id);
    const next = { ...r, ...patch, updatedAt: Date.now() };
    await this.writeRecord(next);
    return next;
  }

  private async require(id: string): Promise<RunRecord> {
    const r = await this.get(id);
    if (!r) throw new EngineError('BAD_CHECKPOINT', `Run ${id} is not in this browser's storage any more.`);
    return r;
  }

  /** A folder name for a checkpoint at `step` that no record points to (a second save at a step gets ".1" ...). */
  private async freeDir(id: string, step: number): Promise<string> {
    const names = new Set(await this.fs.list([id]));
    let dir = `checkpoint-${step}`;
    for (let i = 1; names.has(dir); i++) dir = `checkpoint-${step}.${i}`;
    return dir;
  }

  /**
   * Saves a checkpoint of run `id` at `step` (the rules in the header): returns the new record and what rotation
   * removed. `best`: this step is the best so far. `patch` updates the record's other fields in the same write.
   * A failure while writing the files leaves the record as it was and removes the partial folder.
   */
  async saveCheckpoint(
    id: string, step: number, files: CheckpointFiles,
    o: { best?: boolean; limit?: number | null; patch?: Partial<RunRecord> } = {},
  ): Promise<SaveResult> {
    const r = await this.require(id);
    await this.removeOrphans(r);
    const dir = await this.freeDir(id, step);
    const names = Object.keys(files).sort((a, b) => Number(a === TRAINER_STATE) - Number(b === TRAINER_STATE));
    let bytes = 0;
    try {
      for (const name of names) {
        const data = encode(files[name]);
        await this.fs.write([id, dir, name], data, 0);
        bytes += data.length;
      }
    } catch (e) {
      await this.fs.remove([id, dir]).catch(() => undefined);
      throw e;
    }
    // Complete: the pointer switches to it. An older save at the same step is superseded by this one.
    const entry: StoredCheckpoint = { step, dir, savedAt: Date.now(), bytes };
    const superseded = r.checkpoints.filter((c) => c.step === step).map((c) => c.dir);
    const bestStep = o.best ? step : r.checkpoints.find((c) => c.dir === r.best)?.step ?? null;
    let checkpoints = [...r.checkpoints.filter((c) => c.step !== step), entry].sort((a, b) => a.step - b.step);
    const best = bestStep === null ? null : checkpoints.find((c) => c.step === bestStep)?.dir ?? null;
    const keep = checkpointsToKeep(checkpoints, o.limit === undefined ? null : o.limit, best);
    const rotated = checkpoints.filter((c) => !keep.has(c.dir)).map((c) => c.dir);
    checkpoints = checkpoints.filter((c) => keep.has(c.dir));
    const record: RunRecord = { ...r, ...(o.patch ?? {}), id: r.id, v: r.v, checkpoints, latest: dir, best, updatedAt: Date.now() };
    await this.writeRecord(record);
    // Only now, with no record pointing at them, do the old folders go.
    const removed = [...superseded, ...rotated];
    for (const d of removed) await this.fs.remove([id, d]);
    return { record, removed: rotated };
  }

  /** Folders of a run that its record does not list (a write cut off by a crash): removed. */
  private async removeOrphans(r: RunRecord): Promise<string[]> {
    const listed = new Set(r.checkpoints.map((c) => c.dir));
    const orphans = (await this.fs.list([r.id])).filter((n) => CHECKPOINT_DIR.test(n) && !listed.has(n));
    for (const d of orphans) await this.fs.remove([r.id, d]);
    return orphans;
  }

  /** The files of one checkpoint folder, checked complete (readTrainerState); throws BAD_CHECKPOINT when not. */
  async readCheckpointDir(id: string, dir: string): Promise<CheckpointFiles> {
    const files: CheckpointFiles = {};
    for (const name of await this.fs.list([id, dir])) {
      const b = await this.readFile([id, dir, name]);
      if (b) files[name] = isText(name) ? new TextDecoder().decode(b) : b;
    }
    readTrainerState(files, `${id}/${dir}`);
    return files;
  }

  /**
   * The newest complete checkpoint of a run: the latest, or when it is not complete (damaged storage) the next
   * older one, with a note for each one skipped. Null when the run has none.
   */
  async latestCheckpoint(id: string): Promise<{ step: number; dir: string; files: CheckpointFiles; skipped: string[] } | null> {
    const r = await this.require(id);
    const skipped: string[] = [];
    const order = [...r.checkpoints].sort((a, b) => b.step - a.step);
    for (const c of order) {
      try {
        return { step: c.step, dir: c.dir, files: await this.readCheckpointDir(id, c.dir), skipped };
      } catch (e) {
        skipped.push(e instanceof Error ? e.message : String(e));
      }
    }
    return null;
  }

  /**
   * Prepares a resume: drops checkpoints the record lists that are not complete any more and folders it does not
   * list, and returns the newest complete checkpoint (its step becomes the run's step). Throws BAD_CHECKPOINT
   * when there is none.
   */
  async checkpointToResume(id: string): Promise<{ record: RunRecord; step: number; files: CheckpointFiles; skipped: string[] }> {
    const r = await this.require(id);
    await this.removeOrphans(r);
    const found = await this.latestCheckpoint(id);
    if (!found) {
      throw new EngineError('BAD_CHECKPOINT', `Run ${r.name} has no complete checkpoint to resume from${r.checkpoints.length ? ' (its checkpoints are damaged)' : ''}. Start a new run.`);
    }
    let record = r;
    if (found.dir !== r.latest) {
      const checkpoints = r.checkpoints.filter((c) => c.step <= found.step && (c.step < found.step || c.dir === found.dir));
      record = { ...r, checkpoints, latest: found.dir, best: checkpoints.some((c) => c.dir === r.best) ? r.best : null, updatedAt: Date.now() };
      await this.writeRecord(record);
    }
    return { record, step: found.step, files: found.files, skipped: found.skipped };
  }

  /** The checkpoint a run's adapter comes from: the best one when the run loads the best model at the end, else the latest. */
  adapterCheckpoint(r: RunRecord): { dir: string; step: number; best: boolean } | null {
    const at = (dir: string | null) => r.checkpoints.find((c) => c.dir === dir);
    const best = r.loadBestModelAtEnd ? at(r.best) : undefined;
    const c = best ?? at(r.latest);
    return c ? { dir: c.dir, step: c.step, best: !!best } : null;
  }

  /** The run's log_history (from its newest complete checkpoint); [] without one. */
  async logHistory(id: string): Promise<LogEntry[]> {
    const c = await this.latestCheckpoint(id);
    if (!c) return [];
    return readTrainerState(c.files).log_history;
  }

  /** Deletes a run with every checkpoint. */
  async delete(id: string): Promise<void> {
    if (!isRunId(id)) throw new EngineError('BAD_ARGUMENT', `"${id}" is not a run id.`);
    await this.fs.remove([id]);
  }
}

/** The text of a file of a checkpoint (JSON files are stored as text). */
export const fileText = (v: Uint8Array | string | undefined): string => (v === undefined ? '' : asText(v));
