/**
 * A fine-tuning run end to end: base model + PEFT method + data + optimizer + schedule, driven one optimizer
 * step at a time so that a worker (or the CLI) can report metrics, pause, export and stop between steps.
 */
import * as tf from '@tensorflow/tfjs';
import { EngineError } from './errors';
import { readSafetensors, writeSafetensors, type LoadedTensor, type TensorToWrite } from './io/safetensors';
import {
  asBytes, CHECKPOINT_FORMAT, fileBytes, fingerprintExamples, greaterIsBetterFor, readTrainerState, TRAINER_STATE, TRAINING_ARGS,
  TRAINING_STATE_WEIGHTS, trainingArgsJson, type CheckpointFiles, type LogEntry, type ResumeState, type TrainerStateJson,
} from './train/checkpoint';
import { buildModel, type BuildReport } from './models';
import type { Model, TaskType } from './models/types';
import { createPeftModel, type PeftModel } from './peft';
import type { PeftConfig } from './peft/config';
import { exportAdapter, type AdapterFiles } from './adapter/export';
import { startFromAdapter, type AdapterSource } from './adapter/import';
import { BatchSampler, collate, disposeBatch, encodeExamples, type CollateOptions, type Encoded, type Example } from './train/data';
import { AdamW, loraPlusGroups, type ParamGroup } from './train/optimizer';
import { learningRateAt, plannedSteps, type SchedulerType } from './train/schedule';
import { optimizerStep, peftTrainable, type Trainable } from './train/step';
import { Rng } from './random';
import { setPackPolicy } from './wasm-matmul';
import { evaluate, type EvalMetrics, type EvalProgressFn } from './train/evaluate';
import { generate, classify, type GenerateOptions } from './train/generate';
import { encodeSentence } from './train/tokcls-data';
import { decodeKnown, seq2seqText } from './train/seq2seq-generate';

/** The subset of a tokenizer the engine needs. */
export interface TokenizerLike {
  encode(text: string): number[];
  decode(ids: number[]): string;
  eosTokenId?: number | null;
  padTokenId?: number | null;
}

export interface TrainingArgs {
  learningRate: number;
  /** Used when maxSteps is not set. */
  epochs: number;
  maxSteps?: number | null;
  batchSize: number;
  gradientAccumulationSteps: number;
  warmupSteps: number;
  scheduler: SchedulerType;
  weightDecay: number;
  maxGradNorm: number;
  /** Evaluate every N optimizer steps (0 = only when asked). */
  evalSteps: number;
  /** Recompute each block's activations in the backward pass (TrainingArguments.gradient_checkpointing). */
  gradientCheckpointing: boolean;
  seed: number;
  maxLength: number;
  /**
   * LoRA+ (PEFT's create_loraplus_optimizer): lora_B tensors (and 1-D ones) train at learningRate * this
   * ratio; null = off. An optimizer option in PEFT, not a config field, so it is not in adapter_config.json.
   */
  loraplusLrRatio?: number | null;
  /** Write a checkpoint every N optimizer steps; 0 = at each evaluation (TrainingArguments.save_steps). */
  saveSteps: number;
  /** Keep at most this many checkpoints (the best one is never deleted); null = all (save_total_limit). */
  saveTotalLimit: number | null;
  /** The eval metric that picks the best checkpoint: eval_loss, eval_accuracy or eval_f1 (metric_for_best_model). */
  metricForBestModel: string;
  /** Whether a larger metric is better; null = Trainer's rule (false for a loss, true otherwise). */
  greaterIsBetter: boolean | null;
  /** The adapter a run ends with is its best checkpoint's (load_best_model_at_end). */
  loadBestModelAtEnd: boolean;
  /** Stop after this many evaluations in a row without improvement (EarlyStoppingCallback); null = never. */
  earlyStoppingPatience: number | null;
  /**
   * SEQ_2_SEQ_LM: score greedy generation (exact match, chrF, ROUGE-L) on the first this many validation rows, the
   * loss on all of them; null / absent = all (like evaluating on eval_dataset.select(range(N))).
   */
  generationEvalRows?: number | null;
}

/**
 * A session's fallbacks for args it is not given: transformers' TrainingArguments where they exist (lr 5e-5 is
 * low for LoRA; 2e-4 is common). What the studio and the CLI start a run with is RUN_DEFAULTS (train/defaults.ts).
 */
export const DEFAULT_ARGS: TrainingArgs = {
  learningRate: 2e-4,
  epochs: 1,
  maxSteps: null,
  batchSize: 8,
  gradientAccumulationSteps: 1,
  warmupSteps: 0,
  scheduler: 'linear',
  weightDecay: 0,
  maxGradNorm: 1,
  evalSteps: 0,
  gradientCheckpointing: false,
  seed: 42,
  maxLength: 128,
  loraplusLrRatio: null,
  saveSteps: 0,
  saveTotalLimit: null,
  metricForBestModel: 'eval_loss',
  greaterIsBetter: null,
  loadBestModelAtEnd: false,
  earlyStoppingPatience: null,
};

/** Eval metrics a run can pick its best checkpoint by (Trainer accepts them with or without "eval_"). */
export const BEST_METRICS = ['eval_loss', 'eval_accuracy', 'eval_f1', 'eval_chrf', 'eval_exact_match', 'eval_rougeL'] as const;

export interface SessionInit {
  config: Record<string, unknown>;
  /** Checkpoint tensors: from files, or already on the backend (uploadWeights), shared rather than copied. */
  weights: Map<string, LoadedTensor | tf.Tensor>;
  tokenizer?: TokenizerLike;
  task?: TaskType;
  peft: PeftConfig;
  data: { train: Example[]; validation?: Example[] };
  args?: Partial<TrainingArgs>;
  /** Written to adapter_config.json's base_model_name_or_path. */
  baseModelName?: string | null;
  revision?: string | null;
  /** Number of classes for SEQ_CLS when the checkpoint has no head yet (defaults to the labels in the data). */
  numLabels?: number;
  /** SEQ_2_SEQ_LM: most target tokens (default args.maxLength). */
  maxTargetLength?: number;
  /** Continue the run this checkpoint was taken from (same model, method, data and arguments). */
  resumeFrom?: CheckpointFiles;
  /**
   * Start the trainable weights from a PEFT-saved adapter of this method and shape (fresh optimizer); its tensors
   * must cover exactly the trainable set (adapter/import.ts startFromAdapter).
   */
  initialAdapter?: AdapterSource;
}

export interface StepMetrics {
  step: number;
  totalSteps: number;
  epoch: number;
  loss: number;
  lr: number;
  gradNorm: number;
  tokensPerSec: number;
  tokens: number;
  ms: number;
}

export class TrainingSession {
  readonly model: Model & { report: BuildReport };
  readonly peft: PeftModel;
  readonly args: TrainingArgs;
  readonly totalSteps: number;
  readonly tokenizer?: TokenizerLike;
  private readonly train: Encoded[];
  private readonly validation: Encoded[];
  private readonly sampler: BatchSampler;
  private readonly opt: AdamW;
  /** LoRA+ learning-rate groups (undefined: one group). */
  private readonly groups?: Map<tf.Variable, ParamGroup>;
  private readonly padId: number;
  private readonly meta: { baseModelName: string | null; revision: string | null };
  /** Batches are padded to multiples of 16 tokens (never past the model's positions). */
  private readonly padding: CollateOptions;
  /** Seeds of each forward pass's dropout masks. */
  private readonly dropoutRng: Rng;
  /** Optimizer steps done. */
  completedSteps = 0;
  /** Trainer's log_history: one row per optimizer step and per evaluation (kept in checkpoints). */
  readonly logHistory: LogEntry[] = [];
  /** The best value of args.metricForBestModel so far, and the step it was measured at. */
  bestMetric: number | null = null;
  bestStep: number | null = null;
  /** Evaluations in a row that did not improve on the best (early stopping). */
  private patienceCounter = 0;
  private readonly dataFingerprint: string;

  private constructor(init: SessionInit) {
    this.args = { ...DEFAULT_ARGS, ...init.args };
    validateArgs(this.args);
    this.tokenizer = init.tokenizer;
    const raw = { ...init.config };
    const labelsInData = new Set([...init.data.train, ...(init.data.validation ?? [])].map((e) => e.label).filter((l) => l !== undefined));
    const task = init.task ?? init.peft.taskType ?? undefined;
    if (task === 'SEQ_CLS') {
      if (init.numLabels) raw.num_labels = init.numLabels;
      else if (raw.num_labels === undefined && raw.id2label === undefined) raw.num_labels = Math.max(2, labelsInData.size);
      // GPT-2-style pooling needs a pad id; HF recipes set it to the tokenizer's pad (or eos) token.
      if (raw.pad_token_id == null) raw.pad_token_id = init.tokenizer?.padTokenId ?? init.tokenizer?.eosTokenId ?? null;
    }
    if (task === 'TOKEN_CLS' && init.numLabels) raw.num_labels = init.numLabels;
    this.model = buildModel(raw, init.weights, { task, seed: this.args.seed });
    try {
      this.peft = createPeftModel(this.model, { ...init.peft, taskType: this.model.task }, this.args.seed, init.tokenizer?.encode.bind(init.tokenizer));
    } catch (e) {
      this.model.dispose();
      throw e;
    }
    if (init.initialAdapter) {
      try {
        startFromAdapter(this.peft, init.initialAdapter);
      } catch (e) {
        this.peft.dispose();
        this.model.dispose();
        throw e;
      }
    }
    // Anything below failing (bad data, bad pad id) must not leak the model's tensors.
    try {
      const c = this.model.config;
      if (this.model.task === 'SEQ_CLS' && this.model.spec.seqClsPooling === 'last' && c.padTokenId === null && this.args.batchSize > 1) {
        throw new EngineError('BAD_CONFIG', `${this.model.className} needs pad_token_id (in config.json or the tokenizer) to classify batches of more than one row.`);
      }
      this.padId = c.padTokenId ?? init.tokenizer?.padTokenId ?? init.tokenizer?.eosTokenId ?? 0;
      const enc = {
        task: this.model.task,
        maxLength: Math.min(this.args.maxLength, c.maxPositions - this.peft.virtualTokens),
        encode: init.tokenizer ? (s: string) => init.tokenizer!.encode(s) : undefined,
        eosTokenId: init.tokenizer?.eosTokenId ?? c.eosTokenId,
        numLabels: c.numLabels,
        maxTargetLength: init.maxTargetLength,
      };
      this.padding = { padToMultipleOf: 16, maxLength: enc.maxLength };
      this.train = encodeExamples(init.data.train, enc);
      this.validation = encodeExamples(init.data.validation ?? [], enc);
      for (const e of [...this.train, ...this.validation]) {
        if (e.ids.some((t) => t >= c.vocabSize)) throw new EngineError('BAD_DATA', `A token id is outside the model's vocabulary of ${c.vocabSize}.`);
      }
      this.sampler = new BatchSampler(this.train.length, this.args.batchSize, this.args.seed);
      this.dataFingerprint = fingerprintExamples(this.train);
      this.totalSteps = plannedSteps(this.args, this.train.length);
      this.opt = new AdamW({ weightDecay: this.args.weightDecay });
      if (this.args.loraplusLrRatio != null) this.groups = loraPlusGroups(this.peft, this.args.loraplusLrRatio, this.args.weightDecay);
    } catch (e) {
      this.peft.dispose();
      this.model.dispose();
      throw e;
    }
    this.meta = { baseModelName: init.baseModelName ?? null, revision: init.revision ?? null };
    this.dropoutRng = new Rng(this.args.seed + 1);
  }

  static async create(init: SessionInit): Promise<TrainingSession> {
    const s = new TrainingSession(init);
    if (init.resumeFrom) {
      try {
        s.restore(init.resumeFrom);
      } catch (e) {
        s.dispose();
        throw e;
      }
    }
    return s;
  }

  /** All steps done, or early stopping ended the run. */
  get done(): boolean {
    return this.completedSteps >= this.totalSteps || this.stoppedEarly;
  }

  /** Early stopping: the metric did not improve for earlyStoppingPatience evaluations in a row. */
  get stoppedEarly(): boolean {
    const p = this.args.earlyStoppingPatience;
    return p != null && this.patienceCounter >= p;
  }

  /** Whether a checkpoint is due after optimizer step `step` (save_steps, or every evaluation when 0). */
  saveDue(step: number): boolean {
    const every = this.args.saveSteps > 0 ? this.args.saveSteps : this.args.evalSteps;
    return every > 0 && step % every === 0;
  }

  /** Epochs done, as transformers' Trainer reports them: micro-batches seen / micro-batches per epoch. */
  get epoch(): number {
    return (this.completedSteps * this.args.gradientAccumulationSteps) / this.sampler.batchesPerEpoch;
  }

  /** The PEFT model as the training step sees it. */
  private trainable(): Trainable {
    return peftTrainable(this.peft, { checkpoint: this.args.gradientCheckpointing, seed: () => this.dropoutRng.int(2 ** 30) });
  }

  /** One optimizer step (gradient accumulation included). */
  async step(): Promise<StepMetrics> {
    if (this.done) throw new EngineError('BAD_ARGUMENT', 'Training is already complete.');
    const t0 = performance.now();
    const lr = learningRateAt(this.completedSteps, {
      type: this.args.scheduler, learningRate: this.args.learningRate, warmupSteps: this.args.warmupSteps, totalSteps: this.totalSteps,
    });
    // A failed step (out of memory, a lost device, a NaN) changes no weight; the data order and the dropout
    // generator go back too, so a checkpoint taken after the failure is exactly the last good step.
    const before = { sampler: this.sampler.state, rng: this.dropoutRng.state };
    let ok = false;
    const micro = [];
    for (let i = 0; i < this.args.gradientAccumulationSteps; i++) {
      micro.push(collate(this.sampler.next().map((j) => this.train[j]), this.model.task, this.padId, this.padding));
    }
    // Training products have many rows: packing a weight per product costs ~3%, keeping every packed copy
    // doubles the weights' memory on wasm (see wasm-matmul.ts).
    const pack = setPackPolicy('marked');
    try {
      // The global step (0-based) is what AdaLoRA's budget schedule runs on.
      const r = await optimizerStep(this.trainable(), this.opt, micro, lr, this.args.maxGradNorm, { step: this.completedSteps, groups: this.groups });
      this.completedSteps += 1;
      const ms = performance.now() - t0;
      this.logHistory.push({ step: this.completedSteps, epoch: round4(this.epoch), loss: r.loss, learning_rate: lr, grad_norm: r.gradNorm });
      ok = true;
      return {
        step: this.completedSteps, totalSteps: this.totalSteps, epoch: this.epoch,
        loss: r.loss, lr, gradNorm: r.gradNorm, tokens: r.tokens, tokensPerSec: (r.tokens / ms) * 1000, ms,
      };
    } finally {
      setPackPolicy(pack);
      micro.forEach(disposeBatch);
      if (!ok) {
        this.sampler.state = before.sampler;
        this.dropoutRng.state = before.rng;
      }
    }
  }


  /**
   * Eval loss and accuracy (SEQ_CLS: accuracy + F1; CLM: next-token accuracy) on the validation set. A full
   * evaluation after a step is logged and scored for the best checkpoint and early stopping.
   */
  async evaluate(limit?: number, onProgress?: EvalProgressFn): Promise<EvalMetrics> {
    const rows = limit ? this.validation.slice(0, limit) : this.validation;
    const pack = setPackPolicy('marked');
    let m: EvalMetrics;
    try {
      const tok = this.tokenizer;
      m = await evaluate(this.peft, rows, this.args.batchSize, this.padId, this.padding, this.tagNames(), {
        decode: tok ? (ids) => decodeKnown(tok, ids) : undefined, eosTokenId: tok?.eosTokenId ?? this.model.config.eosTokenId,
        maxRows: this.args.generationEvalRows ?? undefined,
      }, onProgress);
    } finally {
      setPackPolicy(pack);
    }
    const last = this.logHistory[this.logHistory.length - 1];
    if (!limit && this.completedSteps > 0 && !(last && last.step === this.completedSteps && last.eval_loss !== undefined)) this.record(m);
    return m;
  }

  /** TOKEN_CLS: the tag of each class id from config.json's id2label (scored by seqeval), else none. */
  private tagNames(): string[] | undefined {
    if (this.model.task !== 'TOKEN_CLS') return undefined;
    const m = (this.model.rawConfig as { id2label?: Record<string, string> }).id2label;
    const n = this.model.config.numLabels;
    return m ? Array.from({ length: n }, (_, i) => m[String(i)] ?? `LABEL_${i}`) : undefined;
  }

  /** Logs an evaluation and updates the best metric and the early-stopping count. */
  private record(m: EvalMetrics): void {
    const row: LogEntry = { step: this.completedSteps, epoch: round4(this.epoch), eval_loss: m.evalLoss, eval_accuracy: m.accuracy };
    if (m.precision !== undefined) (row.eval_precision = m.precision), (row.eval_recall = m.recall);
    if (m.f1 !== undefined) row.eval_f1 = m.f1;
    if (m.exactMatch !== undefined) (row.eval_exact_match = m.exactMatch), (row.eval_chrf = m.chrf), (row.eval_rougeL = m.rougeL);
    this.logHistory.push(row);
    const key = this.args.metricForBestModel as keyof LogEntry;
    const value = row[key];
    if (value === undefined || !Number.isFinite(value)) return;
    const greater = greaterIsBetterFor(this.args.metricForBestModel, this.args.greaterIsBetter);
    const better = this.bestMetric === null || (greater ? value > this.bestMetric : value < this.bestMetric);
    if (better) {
      this.bestMetric = value;
      this.bestStep = this.completedSteps;
      this.patienceCounter = 0;
    } else this.patienceCounter += 1;
  }

  /** Whether the latest evaluation is the best so far (so its checkpoint is the one to keep). */
  get latestIsBest(): boolean {
    return this.bestStep !== null && this.bestStep === this.completedSteps;
  }

  /**
   * Everything needed to continue this run exactly (see train/checkpoint.ts): the adapter, the trainable
   * tensors and optimizer moments, the method's state, the data order and generators, and log_history.
   * `bestModelCheckpoint` is what trainer_state.json records as best_model_checkpoint (a path).
   */
  async checkpoint(o: { outputDir?: string; bestModelCheckpoint?: string | null } = {}): Promise<CheckpointFiles> {
    const adapter = await this.exportAdapter();
    const vars = this.peft.trainableVariables();
    const tensors = new Map<string, TensorToWrite>();
    const put = async (name: string, t: tf.Tensor) => tensors.set(name, { shape: t.shape.slice(), data: (await t.data()) as Float32Array });
    const opt = this.opt.exportState(vars);
    for (let i = 0; i < vars.length; i++) {
      await put(`trainable.${i}`, vars[i]);
      const mv = opt.moments[i];
      if (mv) (await put(`exp_avg.${i}`, mv.m), await put(`exp_avg_sq.${i}`, mv.v));
    }
    const method = this.peft.trainingState?.();
    if (method) for (const [k, t] of method.tensors) await put(`method.${k}`, t);
    const files: CheckpointFiles = {
      ...adapter,
      [TRAINING_STATE_WEIGHTS]: writeSafetensors(tensors, { format: 'pt', content: 'peft-studio training state' }),
      [TRAINING_ARGS]: `${JSON.stringify(trainingArgsJson(this.args, o.outputDir ?? ''), null, 2)}\n`,
    };
    const resume: ResumeState = {
      format: CHECKPOINT_FORMAT,
      step: this.completedSteps,
      sampler: this.sampler.state,
      dropoutRng: this.dropoutRng.state,
      optimizerStep: opt.step,
      dataFingerprint: this.dataFingerprint,
      trainExamples: this.train.length,
      peftType: this.peft.peftType,
      trainableShapes: vars.map((v) => v.shape.slice()),
      methodState: method?.json ?? null,
      patienceCounter: this.patienceCounter,
      bestStep: this.bestStep,
      args: { ...this.args },
      files: Object.fromEntries(Object.entries(files).map(([k, v]) => [k, fileBytes(v)])),
    };
    const state: TrainerStateJson = {
      best_metric: this.bestMetric,
      best_model_checkpoint: o.bestModelCheckpoint ?? null,
      epoch: round4(this.epoch),
      eval_steps: this.args.evalSteps,
      global_step: this.completedSteps,
      is_hyper_param_search: false,
      is_local_process_zero: true,
      is_world_process_zero: true,
      log_history: this.logHistory.slice(),
      logging_steps: 1,
      max_steps: this.totalSteps,
      num_input_tokens_seen: 0,
      num_train_epochs: Math.ceil((this.totalSteps * this.args.gradientAccumulationSteps) / this.sampler.batchesPerEpoch),
      save_steps: this.args.saveSteps > 0 ? this.args.saveSteps : this.args.evalSteps,
      stateful_callbacks: {},
      total_flos: 0,
      train_batch_size: this.args.batchSize,
      trial_name: null,
      trial_params: null,
      resume,
    };
    files[TRAINER_STATE] = `${JSON.stringify(state, null, 2)}\n`;
    return files;
  }

  /** Continues from a checkpoint of this same run (create({ resumeFrom })). */
  private restore(files: CheckpointFiles): void {
    const st = readTrainerState(files);
    const r = st.resume;
    const keys = Object.keys(RESUME_ARGS) as (keyof TrainingArgs)[];
    const differs = keys.filter((k) => JSON.stringify(r.args[k] ?? null) !== JSON.stringify(this.args[k] ?? null));
    if (differs.length) {
      const what = differs.map((k) => `${RESUME_ARGS[k]} ${JSON.stringify(r.args[k] ?? null)} (now ${JSON.stringify(this.args[k] ?? null)})`).join(', ');
      throw new EngineError('BAD_CHECKPOINT', `The checkpoint was trained with ${what}. Resume with the run's own settings (its training_args.json) to continue it exactly.`);
    }
    if (r.peftType !== this.peft.peftType) {
      throw new EngineError('BAD_CHECKPOINT', `The checkpoint trains ${r.peftType} but this run is set up for ${this.peft.peftType}.`);
    }
    if (r.trainExamples !== this.train.length || r.dataFingerprint !== this.dataFingerprint) {
      throw new EngineError('BAD_CHECKPOINT', `The training data differs from the run's (${r.trainExamples} examples then, ${this.train.length} now, or other contents). Resume with the same data file and column settings.`);
    }
    if (r.step > this.totalSteps) throw new EngineError('BAD_CHECKPOINT', `The checkpoint is at step ${r.step}, past this run's ${this.totalSteps} steps.`);
    const vars = this.peft.trainableVariables();
    const shapes = vars.map((v) => v.shape.join('x')).join(',');
    if (r.trainableShapes.map((s) => s.join('x')).join(',') !== shapes) {
      throw new EngineError('BAD_CHECKPOINT', `The checkpoint's trainable tensors (${r.trainableShapes.length}) do not fit this model and method (${vars.length}); check the base model and target modules.`);
    }
    let tensors: Map<string, LoadedTensor>;
    try {
      tensors = readSafetensors(asBytes(files[TRAINING_STATE_WEIGHTS]), TRAINING_STATE_WEIGHTS).tensors;
    } catch (e) {
      throw new EngineError('BAD_CHECKPOINT', `${TRAINING_STATE_WEIGHTS}: ${e instanceof Error ? e.message : String(e)}`);
    }
    const floats = (name: string): Float32Array | undefined => {
      const t = tensors.get(name);
      if (t && !(t.data instanceof Float32Array)) throw new EngineError('BAD_CHECKPOINT', `${TRAINING_STATE_WEIGHTS}: ${name} is not a float tensor.`);
      return t?.data as Float32Array | undefined;
    };
    const values = vars.map((v, i) => {
      const d = floats(`trainable.${i}`);
      if (!d || d.length !== v.size) throw new EngineError('BAD_CHECKPOINT', `${TRAINING_STATE_WEIGHTS}: trainable.${i} is missing or has the wrong size.`);
      return d;
    });
    const moments = vars.map((_, i) => {
      const m = floats(`exp_avg.${i}`);
      const v = floats(`exp_avg_sq.${i}`);
      return m && v ? { m, v } : null;
    });
    this.opt.importState(vars, { step: r.optimizerStep, moments });
    vars.forEach((v, i) => {
      const t = tf.tensor(values[i], v.shape);
      v.assign(t);
      t.dispose();
    });
    if (this.peft.loadTrainingState) {
      const method = new Map<string, LoadedTensor>();
      for (const [k, t] of tensors) if (k.startsWith('method.')) method.set(k.slice('method.'.length), t);
      this.peft.loadTrainingState({ tensors: method, json: r.methodState ?? {} });
    }
    this.sampler.state = r.sampler;
    this.dropoutRng.state = r.dropoutRng;
    this.completedSteps = r.step;
    this.logHistory.splice(0, this.logHistory.length, ...st.log_history);
    this.bestMetric = st.best_metric;
    this.bestStep = r.bestStep;
    this.patienceCounter = r.patienceCounter;
  }

  get hasValidation(): boolean {
    return this.validation.length > 0;
  }

  async exportAdapter(): Promise<AdapterFiles> {
    return exportAdapter(this.peft, { baseModelNameOrPath: this.meta.baseModelName, revision: this.meta.revision });
  }

  async generate(prompt: string, o: GenerateOptions & { adapter?: boolean } = {}): Promise<string> {
    if (!this.tokenizer) throw new EngineError('BAD_ARGUMENT', 'This model has no tokenizer, so it cannot generate text.');
    return this.withAdapter(o.adapter ?? true, () => generate(this.peft, this.tokenizer!, prompt, o));
  }

  async classify(text: string, o: { adapter?: boolean } = {}): Promise<{ label: number; probs: number[] }> {
    if (!this.tokenizer) throw new EngineError('BAD_ARGUMENT', 'This model has no tokenizer, so it cannot classify text.');
    return this.withAdapter(o.adapter ?? true, () => classify(this.peft, this.tokenizer!.encode(text).slice(0, this.args.maxLength)));
  }

  /**
   * SEQ_2_SEQ_LM: the greedy target for a source text (encoded as training encodes sources: </s> last, cut to max
   * length), with the adapter on or off; onText gets the text so far after each token.
   */
  async generateSeq2Seq(
    source: string, o: { maxNewTokens: number; adapter?: boolean; onText?: (text: string) => void | Promise<void>; shouldStop?: () => boolean },
  ): Promise<string> {
    const tok = this.tokenizer;
    if (!tok) throw new EngineError('BAD_ARGUMENT', 'This model has no tokenizer, so it cannot generate text.');
    const [enc] = encodeExamples([{ text: source, target: '.' }], {
      task: 'SEQ_2_SEQ_LM', maxLength: this.args.maxLength, encode: (s) => tok.encode(s), eosTokenId: tok.eosTokenId ?? this.model.config.eosTokenId,
    });
    return this.withAdapter(o.adapter ?? true, () => seq2seqText(this.peft, tok, enc.ids, o));
  }

  /** TOKEN_CLS: each word's tag id (its first sub-token's argmax, as run_ner.py scores it), words split as given. */
  async tagWords(words: string[], o: { adapter?: boolean } = {}): Promise<number[]> {
    if (!this.tokenizer) throw new EngineError('BAD_ARGUMENT', 'This model has no tokenizer, so it cannot tag text.');
    const enc = encodeSentence(words, this.tokenizer);
    const n = Math.min(enc.ids.length, this.args.maxLength);
    const { probs } = await this.withAdapter(o.adapter ?? true, () => classify(this.peft, enc.ids.slice(0, n)));
    const c = probs.length / n;
    return words.map((_, w) => {
      const t = enc.wordIds.indexOf(w);
      if (t < 0 || t >= n) return 0;
      let best = 0;
      for (let k = 1; k < c; k++) if (probs[t * c + k] > probs[t * c + best]) best = k;
      return best;
    });
  }

  private async withAdapter<T>(on: boolean, f: () => Promise<T>): Promise<T> {
    const was = this.peft.enabled;
    this.peft.enabled = on;
    try {
      return await f();
    } finally {
      this.peft.enabled = was;
    }
  }

  dispose(): void {
    this.opt.dispose();
    this.peft.dispose();
    this.model.dispose();
  }
}

/** Arguments that shape a run's trajectory: a resumed run must use the checkpoint's. */
const RESUME_ARGS: Partial<Record<keyof TrainingArgs, string>> = {
  learningRate: 'learning_rate', epochs: 'num_train_epochs', maxSteps: 'max_steps', batchSize: 'per_device_train_batch_size',
  gradientAccumulationSteps: 'gradient_accumulation_steps', warmupSteps: 'warmup_steps', scheduler: 'lr_scheduler_type',
  weightDecay: 'weight_decay', maxGradNorm: 'max_grad_norm', seed: 'seed', maxLength: 'max_length', loraplusLrRatio: 'loraplus_lr_ratio',
};

const round4 = (x: number) => Math.round(x * 1e4) / 1e4;

function validateArgs(a: TrainingArgs): void {
  const bad = (m: string) => {
    throw new EngineError('BAD_ARGUMENT', m);
  };
  if (!(a.learningRate > 0)) bad(`learning rate must be > 0, got ${a.learningRate}`);
  if (!Number.isInteger(a.batchSize) || a.batchSize < 1) bad(`batch size must be a positive integer, got ${a.batchSize}`);
  if (!Number.isInteger(a.gradientAccumulationSteps) || a.gradientAccumulationSteps < 1) bad(`gradient accumulation steps must be a positive integer`);
  if (a.maxSteps != null && (!Number.isInteger(a.maxSteps) || a.maxSteps < 1)) bad(`max steps must be a positive integer, got ${a.maxSteps}`);
  if (a.maxSteps == null && !(a.epochs > 0)) bad(`epochs must be > 0, got ${a.epochs}`);
  if (!Number.isInteger(a.maxLength) || a.maxLength < 2) bad(`max length must be an integer >= 2, got ${a.maxLength}`);
  if (a.warmupSteps < 0 || a.weightDecay < 0 || a.maxGradNorm < 0) bad('warmup, weight decay and max grad norm must be >= 0');
  if (a.loraplusLrRatio != null && !(a.loraplusLrRatio > 0 && Number.isFinite(a.loraplusLrRatio))) {
    bad(`LoRA+ learning-rate ratio (loraplus_lr_ratio) must be a number > 0, got ${a.loraplusLrRatio}`);
  }
  if (!Number.isInteger(a.saveSteps) || a.saveSteps < 0) bad(`save steps must be an integer >= 0, got ${a.saveSteps}`);
  if (a.saveTotalLimit != null && (!Number.isInteger(a.saveTotalLimit) || a.saveTotalLimit < 1)) bad(`save total limit must be a positive integer, got ${a.saveTotalLimit}`);
  if (a.earlyStoppingPatience != null && (!Number.isInteger(a.earlyStoppingPatience) || a.earlyStoppingPatience < 1)) {
    bad(`early stopping patience must be a positive integer, got ${a.earlyStoppingPatience}`);
  }
  if (a.generationEvalRows != null && (!Number.isInteger(a.generationEvalRows) || a.generationEvalRows < 1)) {
    bad(`generation eval rows must be a positive integer, got ${a.generationEvalRows}`);
  }
  const metric = a.metricForBestModel.startsWith('eval_') ? a.metricForBestModel : `eval_${a.metricForBestModel}`;
  if (!(BEST_METRICS as readonly string[]).includes(metric)) bad(`metric for best model must be one of ${BEST_METRICS.join(', ')}, got "${a.metricForBestModel}"`);
  a.metricForBestModel = metric;
}

