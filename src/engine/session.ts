/**
 * A fine-tuning run end to end: base model + PEFT method + data + optimizer + schedule, driven one optimizer
 * step at a time so that a worker (or the CLI) can report metrics, pause, export and stop between steps.
 */
import type * as tf from '@tensorflow/tfjs';
import { EngineError } from './errors';
import type { LoadedTensor } from './io/safetensors';
import { buildModel, type BuildReport } from './models';
import type { Model, TaskType } from './models/types';
import { createPeftModel, type PeftModel } from './peft';
import type { PeftConfig } from './peft/config';
import { exportAdapter, type AdapterFiles } from './adapter/export';
import { BatchSampler, collate, disposeBatch, encodeExamples, type CollateOptions, type Encoded, type Example } from './train/data';
import { AdamW, loraPlusGroups, type ParamGroup } from './train/optimizer';
import { learningRateAt, plannedSteps, type SchedulerType } from './train/schedule';
import { optimizerStep, peftTrainable, type Trainable } from './train/step';
import { Rng } from './random';
import { setPackPolicy } from './wasm-matmul';
import { evaluate, type EvalMetrics } from './train/evaluate';
import { generate, classify, type GenerateOptions } from './train/generate';

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
}

/** Defaults of transformers' TrainingArguments where they exist (lr 5e-5 is low for LoRA; 2e-4 is common). */
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
};

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
    this.model = buildModel(raw, init.weights, { task, seed: this.args.seed });
    try {
      this.peft = createPeftModel(this.model, { ...init.peft, taskType: this.model.task }, this.args.seed, init.tokenizer?.encode.bind(init.tokenizer));
    } catch (e) {
      this.model.dispose();
      throw e;
    }
    // Anything below failing (bad data, bad pad id) must not leak the model's tensors.
    try {
      const c = this.model.config;
      if (this.model.task === 'SEQ_CLS' && this.model.arch !== 'bert' && c.padTokenId === null && this.args.batchSize > 1) {
        throw new EngineError('BAD_CONFIG', `${this.model.className} needs pad_token_id (in config.json or the tokenizer) to classify batches of more than one row.`);
      }
      this.padId = c.padTokenId ?? init.tokenizer?.padTokenId ?? init.tokenizer?.eosTokenId ?? 0;
      const enc = {
        task: this.model.task,
        maxLength: Math.min(this.args.maxLength, c.maxPositions - this.peft.virtualTokens),
        encode: init.tokenizer ? (s: string) => init.tokenizer!.encode(s) : undefined,
        eosTokenId: init.tokenizer?.eosTokenId ?? c.eosTokenId,
        numLabels: c.numLabels,
      };
      this.padding = { padToMultipleOf: 16, maxLength: enc.maxLength };
      this.train = encodeExamples(init.data.train, enc);
      this.validation = encodeExamples(init.data.validation ?? [], enc);
      for (const e of [...this.train, ...this.validation]) {
        if (e.ids.some((t) => t >= c.vocabSize)) throw new EngineError('BAD_DATA', `A token id is outside the model's vocabulary of ${c.vocabSize}.`);
      }
      this.sampler = new BatchSampler(this.train.length, this.args.batchSize, this.args.seed);
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
    return new TrainingSession(init);
  }

  get done(): boolean {
    return this.completedSteps >= this.totalSteps;
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
      return {
        step: this.completedSteps, totalSteps: this.totalSteps, epoch: this.epoch,
        loss: r.loss, lr, gradNorm: r.gradNorm, tokens: r.tokens, tokensPerSec: (r.tokens / ms) * 1000, ms,
      };
    } finally {
      setPackPolicy(pack);
      micro.forEach(disposeBatch);
    }
  }


  /** Eval loss and accuracy (SEQ_CLS: accuracy + F1; CLM: next-token accuracy) on the validation set. */
  async evaluate(limit?: number): Promise<EvalMetrics> {
    const rows = limit ? this.validation.slice(0, limit) : this.validation;
    const pack = setPackPolicy('marked');
    try {
      return await evaluate(this.peft, rows, this.args.batchSize, this.padId, this.padding);
    } finally {
      setPackPolicy(pack);
    }
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
}

