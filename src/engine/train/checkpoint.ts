/**
 * Training checkpoints: the files that let a run continue exactly where it stopped, laid out like the
 * `checkpoint-<step>/` folders of transformers' Trainer.
 *
 *   adapter_model.safetensors + adapter_config.json   the adapter at this step (PEFT loads it as is)
 *   training_state.safetensors                         what PyTorch keeps in optimizer.pt / rng_state.pth: every
 *                                                      trainable tensor (P-tuning's encoder too, which the adapter
 *                                                      file replaces by its output), both AdamW moments, and the
 *                                                      method's own state (AdaLoRA's importance scores)
 *   training_args.json                                 TrainingArguments' fields (Trainer's names)
 *   trainer_state.json                                 Trainer's TrainerState (global_step, log_history,
 *                                                      best_metric, ...) plus `resume`: data order, generators,
 *                                                      and the size of every other file
 *
 * trainer_state.json is written last and lists the other files' sizes, so a checkpoint cut off mid-write is
 * recognisably incomplete and the previous one stays the one to resume from.
 */
import { EngineError } from '../errors';
import type { RngState } from '../random';
import type { SamplerState } from './data';

export const TRAINER_STATE = 'trainer_state.json';
export const TRAINING_ARGS = 'training_args.json';
export const TRAINING_STATE_WEIGHTS = 'training_state.safetensors';
/** The resume format this engine writes and reads. */
export const CHECKPOINT_FORMAT = 1;

/** A checkpoint's files by name (binary or text). */
export type CheckpointFiles = Record<string, Uint8Array | string>;

/** One row of Trainer's log_history: a training step or an evaluation. */
export interface LogEntry {
  step: number;
  epoch: number;
  loss?: number;
  learning_rate?: number;
  grad_norm?: number;
  eval_loss?: number;
  eval_accuracy?: number;
  eval_f1?: number;
  /** TOKEN_CLS: seqeval's entity precision and recall (eval_f1 is its entity F1), as run_ner.py logs them. */
  eval_precision?: number;
  eval_recall?: number;
  /** SEQ_2_SEQ_LM, from greedy generation: exact match, chrF (0-100) and ROUGE-L. */
  eval_exact_match?: number;
  eval_chrf?: number;
  eval_rougeL?: number;
}

/** What the engine needs beyond Trainer's fields to continue a run exactly. */
export interface ResumeState {
  format: number;
  /** Optimizer steps done (= global_step). */
  step: number;
  sampler: SamplerState;
  dropoutRng: RngState;
  optimizerStep: number;
  /** Hash of the encoded training examples: resuming on other data would not continue the same run. */
  dataFingerprint: string;
  trainExamples: number;
  peftType: string;
  /** Shapes of the trainable tensors, in training order (training_state.safetensors' trainable.<i>). */
  trainableShapes: number[][];
  /** The method's JSON state (PeftModel.trainingState). */
  methodState: Record<string, unknown> | null;
  /** Early stopping: evaluations in a row without improvement. */
  patienceCounter: number;
  bestStep: number | null;
  /** The session's training arguments (camelCase), compared on resume. */
  args: Record<string, unknown>;
  /** Byte size of every other file of the checkpoint. */
  files: Record<string, number>;
}

/** trainer_state.json: TrainerState's fields (transformers 4.43) plus `resume`. */
export interface TrainerStateJson {
  best_metric: number | null;
  best_model_checkpoint: string | null;
  epoch: number;
  eval_steps: number;
  global_step: number;
  is_hyper_param_search: boolean;
  is_local_process_zero: boolean;
  is_world_process_zero: boolean;
  log_history: LogEntry[];
  logging_steps: number;
  max_steps: number;
  num_input_tokens_seen: number;
  num_train_epochs: number;
  save_steps: number;
  stateful_callbacks: Record<string, unknown>;
  total_flos: number;
  train_batch_size: number;
  trial_name: null;
  trial_params: null;
  resume: ResumeState;
}

/** The byte length of a file as it will be stored (text as UTF-8). */
export function fileBytes(v: Uint8Array | string): number {
  return typeof v === 'string' ? new TextEncoder().encode(v).length : v.length;
}

export const asBytes = (v: Uint8Array | string): Uint8Array => (typeof v === 'string' ? new TextEncoder().encode(v) : v);
export const asText = (v: Uint8Array | string): string => (typeof v === 'string' ? v : new TextDecoder().decode(v));

/**
 * Reads and checks a checkpoint's trainer_state.json and that every file it lists is there at its recorded
 * size: a checkpoint cut off mid-write (or a folder that is not a checkpoint) is refused with what is missing.
 */
export function readTrainerState(files: CheckpointFiles, where = 'the checkpoint'): TrainerStateJson {
  const raw = files[TRAINER_STATE];
  if (raw === undefined) {
    throw new EngineError('BAD_CHECKPOINT', `${where} has no ${TRAINER_STATE}: it is not a checkpoint, or it was cut off before it was complete. Resume from an earlier checkpoint.`);
  }
  let st: TrainerStateJson;
  try {
    st = JSON.parse(asText(raw)) as TrainerStateJson;
  } catch {
    throw new EngineError('BAD_CHECKPOINT', `${where}/${TRAINER_STATE} is not valid JSON; resume from an earlier checkpoint.`);
  }
  const r = st?.resume;
  if (!r || typeof r !== 'object' || typeof r.files !== 'object' || r.files === null) {
    throw new EngineError('BAD_CHECKPOINT', `${where}/${TRAINER_STATE} has no "resume" section: it was not written by PEFT Studio, so its optimizer state can't be restored. Start a new run, or load its adapter to continue from those weights.`);
  }
  if (r.format !== CHECKPOINT_FORMAT) {
    throw new EngineError('BAD_CHECKPOINT', `${where} uses checkpoint format ${String(r.format)}; this version reads format ${CHECKPOINT_FORMAT}.`);
  }
  for (const [name, size] of Object.entries(r.files)) {
    const f = files[name];
    if (f === undefined) throw new EngineError('BAD_CHECKPOINT', `${where} is incomplete: ${name} is missing. Resume from an earlier checkpoint.`);
    const n = fileBytes(f);
    if (n !== size) throw new EngineError('BAD_CHECKPOINT', `${where} is incomplete: ${name} has ${n} bytes but ${size} were written. Resume from an earlier checkpoint.`);
  }
  return st;
}

/** FNV-1a (32-bit) over the training examples' token ids and labels, as hex. */
export function fingerprintExamples(rows: { ids: number[]; label?: number; labels?: number[] }[]): string {
  let h = 0x811c9dc5;
  const mix = (x: number) => {
    h ^= x & 0xffff;
    h = Math.imul(h, 0x01000193);
    h ^= x >>> 16;
    h = Math.imul(h, 0x01000193);
  };
  for (const r of rows) {
    mix(r.ids.length);
    for (const t of r.ids) mix(t);
    mix((r.label ?? -1) + 1);
    if (r.labels) for (const t of r.labels) mix(t + 101);
  }
  return (h >>> 0).toString(16).padStart(8, '0');
}

/** Trainer's TrainingArguments field names for the arguments a session runs with. */
export function trainingArgsJson(a: {
  learningRate: number; epochs: number; maxSteps?: number | null; batchSize: number; gradientAccumulationSteps: number;
  warmupSteps: number; scheduler: string; weightDecay: number; maxGradNorm: number; evalSteps: number; saveSteps: number;
  saveTotalLimit: number | null; gradientCheckpointing: boolean; seed: number; maxLength: number; loraplusLrRatio?: number | null;
  metricForBestModel: string | null; greaterIsBetter: boolean | null; loadBestModelAtEnd: boolean; earlyStoppingPatience: number | null;
}, outputDir: string): Record<string, unknown> {
  const evaluates = a.evalSteps > 0;
  return {
    output_dir: outputDir,
    per_device_train_batch_size: a.batchSize,
    per_device_eval_batch_size: a.batchSize,
    gradient_accumulation_steps: a.gradientAccumulationSteps,
    learning_rate: a.learningRate,
    weight_decay: a.weightDecay,
    adam_beta1: 0.9,
    adam_beta2: 0.999,
    adam_epsilon: 1e-8,
    max_grad_norm: a.maxGradNorm,
    num_train_epochs: a.epochs,
    max_steps: a.maxSteps ?? -1,
    lr_scheduler_type: a.scheduler,
    warmup_steps: a.warmupSteps,
    logging_strategy: 'steps',
    logging_steps: 1,
    eval_strategy: evaluates ? 'steps' : 'no',
    eval_steps: evaluates ? a.evalSteps : null,
    save_strategy: 'steps',
    save_steps: a.saveSteps > 0 ? a.saveSteps : a.evalSteps,
    save_total_limit: a.saveTotalLimit,
    load_best_model_at_end: a.loadBestModelAtEnd,
    metric_for_best_model: a.metricForBestModel,
    greater_is_better: a.greaterIsBetter,
    seed: a.seed,
    gradient_checkpointing: a.gradientCheckpointing,
    optim: 'adamw_torch',
    report_to: [],
    // Not TrainingArguments fields: the tokenised length and LoRA+ (an optimizer option in PEFT).
    max_length: a.maxLength,
    loraplus_lr_ratio: a.loraplusLrRatio ?? null,
    early_stopping_patience: a.earlyStoppingPatience,
  };
}

/** Trainer's default for greater_is_better: true unless the metric is a loss. */
export function greaterIsBetterFor(metric: string, given: boolean | null | undefined): boolean {
  return given ?? !/loss$/.test(metric);
}

const round = (x: number, d = 6) => (Number.isFinite(x) ? Number(x.toPrecision(d)) : x);

/**
 * A metrics.jsonl row for a log_history entry (a training step or an evaluation): the rows the CLI writes and
 * the studio downloads, rounded to 6 significant digits. tokensPerSec is known only while the run is live.
 */
export function metricsRow(e: LogEntry, tokensPerSec?: number): Record<string, unknown> {
  if (e.eval_loss !== undefined) {
    const row: Record<string, unknown> = { step: e.step, eval_loss: round(e.eval_loss), eval_accuracy: round(e.eval_accuracy ?? NaN) };
    if (e.eval_precision !== undefined) (row.eval_precision = round(e.eval_precision)), (row.eval_recall = round(e.eval_recall ?? NaN));
    if (e.eval_f1 !== undefined) row.eval_f1 = round(e.eval_f1);
    if (e.eval_exact_match !== undefined) (row.eval_exact_match = round(e.eval_exact_match)), (row.eval_chrf = round(e.eval_chrf ?? NaN)), (row.eval_rougeL = round(e.eval_rougeL ?? NaN));
    return row;
  }
  const row: Record<string, unknown> = { step: e.step, epoch: round(e.epoch, 4), loss: round(e.loss ?? NaN), lr: round(e.learning_rate ?? NaN) };
  if (tokensPerSec !== undefined) row.tokens_per_sec = round(tokensPerSec, 4);
  row.grad_norm = round(e.grad_norm ?? NaN);
  return row;
}

/** metrics.jsonl of a whole log history (one JSON object per line, no timings). */
export const metricsJsonl = (log: LogEntry[]): string => log.map((e) => `${JSON.stringify(metricsRow(e))}\n`).join('');
