/**
 * The only contract between the UI thread and the training worker: types, no code.
 * Every command carries a requestId; replies and errors caused by a command echo it, so the client can
 * resolve the matching promise. Run events (progress, metrics, evalMetrics, checkpoint, done) carry runId.
 */
import type { ModuleInfo, TaskType } from '../engine/models/types';
import type { ColumnMapping, TokenStats } from '../engine/train/data-parse';

export type { ColumnMapping, TokenStats, ModuleInfo, TaskType };

export type BackendChoice = 'auto' | 'webgpu' | 'wasm' | 'cpu';
export type BackendName = 'webgpu' | 'wasm' | 'cpu';

/** Where model files come from; all three go through the same loader in the worker. */
export type ModelSource =
  /** A folder URL ending in "/" (the built-in model under BASE_URL). */
  | { kind: 'url'; url: string; name: string }
  /** Files picked or dropped by the person (config.json, *.safetensors, tokenizer files). */
  | { kind: 'files'; files: File[] }
  /** https://huggingface.co/{repoId}/resolve/{revision}/{file} */
  | { kind: 'hub'; repoId: string; revision?: string };

/** Target selection in PEFT's own terms (LoraConfig fields). */
export interface TargetSpec {
  /** A list (exact name or "."-suffix match), a regex string (full match), or "all-linear". */
  targetModules: string[] | string;
  excludeModules: string[] | string | null;
  layersToTransform: number[] | null;
  layersPattern: string | null;
}

export interface LoraSettings extends TargetSpec {
  method: 'LORA';
  r: number;
  loraAlpha: number;
  loraDropout: number;
  bias: 'none' | 'all' | 'lora_only';
  useRslora: boolean;
  /** PEFT init_lora_weights: true (A kaiming-uniform, B zero), "gaussian", or false (not an identity start). */
  initLoraWeights: boolean | 'gaussian';
}

export interface PromptTuningSettings {
  method: 'PROMPT_TUNING';
  numVirtualTokens: number;
  promptTuningInit: 'RANDOM' | 'SAMPLE_VOCAB' | 'TEXT';
  promptTuningInitText: string;
}

export type PeftSettings = LoraSettings | PromptTuningSettings;

/** Trainer arguments, named as TrainingSession takes them. */
export interface TrainArgs {
  learningRate: number;
  epochs?: number;
  maxSteps?: number;
  batchSize: number;
  gradientAccumulationSteps: number;
  warmupSteps: number;
  scheduler: 'constant' | 'linear' | 'cosine';
  weightDecay: number;
  maxGradNorm: number;
  evalSteps: number;
  seed: number;
  maxLength: number;
}

export type DataSource = { kind: 'builtin'; id: string } | { kind: 'file'; file: File };

export interface DataRequest {
  source: DataSource;
  task: TaskType;
  /** Absent: guessed from the columns (the reply says which). */
  mapping?: ColumnMapping;
  /** Fraction held out for evaluation when the source has no validation file. */
  validationSplit: number;
  maxLength: number;
  seed: number;
}

export type WorkerCommand =
  /** baseUrl: the app's absolute BASE_URL, where built-in models, datasets and the wasm binaries live. */
  | { type: 'init'; requestId: number; backend: BackendChoice; baseUrl: string }
  | { type: 'loadModel'; requestId: number; source: ModelSource }
  | { type: 'inspect'; requestId: number; task: TaskType }
  | { type: 'setTargets'; requestId: number; task: TaskType; peft: PeftSettings }
  | { type: 'loadData'; requestId: number; request: DataRequest }
  | { type: 'start'; requestId: number; task: TaskType; peft: PeftSettings; args: TrainArgs }
  | { type: 'pause'; requestId: number }
  | { type: 'resume'; requestId: number }
  | { type: 'stop'; requestId: number }
  | { type: 'export'; requestId: number }
  | { type: 'generate'; requestId: number; prompt: string; maxNewTokens: number }
  | { type: 'classify'; requestId: number; text: string };

/** Summary of a loaded model, enough to render the Model panel. */
export interface ModelInfo {
  name: string;
  modelType: string;
  className: string;
  task: TaskType;
  hasTokenizer: boolean;
  weightBytes: number;
  files: string[];
  /** PEFT's default target_modules for this architecture. */
  defaultTargets: string[];
}

export interface TreeInfo {
  task: TaskType;
  modules: ModuleInfo[];
  totalParams: number;
}

/** What a target spec matches, with PEFT's trainable-parameter line. */
export interface TargetResult {
  matched: string[];
  modulesToSave: string[];
  trainable: number;
  all: number;
  /** Exactly PEFT's print_trainable_parameters() text. */
  line: string;
  /** Set when the spec matches nothing or is invalid; the UI shows it inline. */
  error?: { code: string; message: string };
}

export interface DataSummary {
  name: string;
  columns: string[];
  mapping: ColumnMapping;
  /** First rows as parsed (before mapping), with their source line. */
  preview: { line: number; cells: Record<string, string> }[];
  labels: string[];
  trainRows: number;
  validationRows: number;
  issues: string[];
  issueCount: number;
  /** Null until a tokenizer is loaded. */
  stats: TokenStats | null;
}

export interface StepMetrics {
  step: number;
  epoch: number;
  loss: number;
  lr: number;
  tokensPerSec: number;
  gradNorm: number;
  /** CLM next-token accuracy or SEQ_CLS batch accuracy, when the session reports it. */
  accuracy?: number;
}

export interface EvalMetrics {
  step: number;
  evalLoss: number;
  accuracy: number;
  f1?: number;
}

export interface AdapterFiles {
  'adapter_model.safetensors': ArrayBuffer;
  'adapter_config.json': string;
}

export type RunState = 'starting' | 'running' | 'paused' | 'stopping' | 'idle';

export interface ClassifyResult {
  label: string;
  probs: { label: string; p: number }[];
}

export type WorkerEvent =
  | { type: 'ready'; requestId?: number; backend: BackendName; reason: string }
  | { type: 'model'; requestId: number; info: ModelInfo }
  | { type: 'tree'; requestId: number; tree: TreeInfo }
  | { type: 'targets'; requestId: number; result: TargetResult }
  | { type: 'data'; requestId: number; summary: DataSummary }
  | { type: 'state'; requestId?: number; runId: number; state: RunState }
  | { type: 'progress'; runId: number; step: number; totalSteps: number; epoch: number; elapsedMs: number; etaMs: number | null; tokensPerSec: number }
  | { type: 'metrics'; runId: number; metrics: StepMetrics }
  | { type: 'evalMetrics'; runId: number; metrics: EvalMetrics }
  | { type: 'log'; level: 'info' | 'warn'; message: string }
  | { type: 'checkpoint'; requestId?: number; runId: number; step: number; files: AdapterFiles }
  | { type: 'generation'; requestId: number; withAdapter: string; withoutAdapter: string }
  | { type: 'classification'; requestId: number; withAdapter: ClassifyResult; withoutAdapter: ClassifyResult }
  | { type: 'error'; requestId?: number; runId?: number; code: string; message: string }
  | { type: 'done'; runId: number; reason: 'completed' | 'stopped' | 'failed'; step: number };

/** Replies a command may resolve with (everything but run events). */
export type WorkerReply = Extract<WorkerEvent, { requestId: number }>;
