/**
 * The only contract between the UI thread and the training worker: types, no code.
 * Every command carries a requestId; replies and errors caused by a command echo it, so the client can
 * resolve the matching promise. Run events (progress, metrics, evalMetrics, checkpoint, done) carry runId.
 */
import type { ClassBaselines } from '../engine/train/baselines';
import type { BenchSetup, BenchShape, benchMatmul, benchTraining } from '../engine/bench';
import type { CachedModelInfo } from '../engine/io/cache';
import type { RunSummary } from '../engine/io/run-store';
import type { LogEntry } from '../engine/train/checkpoint';
import type { DownloadProgress } from '../engine/io/download';
import type { DeviceLimits, FitWarning, MemoryEstimate } from '../engine/memory';
import type { ModuleInfo, ModuleRole, TaskType } from '../engine/models/types';
import type { TokenClsStats } from '../engine/train/tokcls-data';
import type { ColumnMapping, TokenStats } from '../engine/train/data-parse';
import type { ChatSettings, ChatSummary } from './chat-data';
import type { HubDataInfo, HubDataSpec } from './hub-data';
import type { MethodInfo } from '../engine/peft/method';
import type { PeftSettings, PeftType } from '../engine/peft/registry';
import type { Field } from '../engine/peft/schema';

export type {
  CachedModelInfo, ColumnMapping, DeviceLimits, LogEntry, RunSummary, DownloadProgress, Field, FitWarning, MemoryEstimate, MethodInfo, ModuleInfo, PeftSettings, PeftType,
  TaskType, TokenStats,
};

export type BackendChoice = 'auto' | 'webgpu' | 'wasm' | 'cpu';
export type BackendName = 'webgpu' | 'wasm' | 'cpu';

/** Where model files come from; all of them go through the engine's one inspector and loader in the worker. */
export type ModelSource =
  /** A folder URL ending in "/" (the built-in model under BASE_URL). */
  | { kind: 'url'; url: string; name: string }
  /** Files picked or dropped by the person (config.json, *.safetensors, tokenizer files). */
  | { kind: 'files'; files: File[] }
  /** A folder from the directory picker or a drop (getAsFileSystemHandle); its top-level files are read. */
  | { kind: 'folder'; handle: FileSystemDirectoryHandle }
  /**
   * {endpoint}/{repo}/resolve/{revision}/{file}. repoId: `owner/name`, `owner/name@rev` or a Hub page URL; an
   * explicit `revision` wins over one in the id. The token is only ever sent to the endpoint's own origin.
   */
  | { kind: 'hub'; repoId: string; revision?: string; token?: string | null; endpoint?: string };

/** How the playground picks each next token (transformers' generate arguments); temperature 0 is greedy. */
export interface SamplingSettings {
  temperature: number;
  topK: number;
  topP: number;
  repetitionPenalty: number;
  seed: number;
}

/** Gradient checkpointing: on, off, or on when the memory estimate says the run needs it. */
export type CheckpointingChoice = 'auto' | 'on' | 'off';

/** What the memory estimate assumes: the batch, the sequence length and the method (for the adapter's size). */
export interface MemoryPlan {
  batch: number;
  seqLen: number;
  peft: PeftSettings;
  checkpointing?: CheckpointingChoice;
}

/** Target selection in PEFT's own terms (LoraConfig fields). */
export interface TargetSpec {
  /** A list (exact name or "."-suffix match), a regex string (full match), or "all-linear". */
  targetModules: string[] | string;
  excludeModules: string[] | string | null;
  layersToTransform: number[] | null;
  layersPattern: string | null;
}

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
  gradientCheckpointing: CheckpointingChoice;
  /** LoRA+: lora_B tensors train at learningRate x this (null: off). */
  loraplusLrRatio?: number | null;
  /** Write a checkpoint every N steps; 0 = at each evaluation (save_steps). */
  saveSteps: number;
  /** Keep at most this many checkpoints, the best always among them (save_total_limit); null = all. */
  saveTotalLimit: number | null;
  /** The eval metric that picks the best checkpoint (metric_for_best_model). */
  metricForBestModel: 'eval_loss' | 'eval_accuracy' | 'eval_f1' | 'eval_chrf' | 'eval_exact_match' | 'eval_rougeL';
  /** null: Trainer's rule (lower is better for a loss, higher otherwise). */
  greaterIsBetter: boolean | null;
  /** The adapter a run ends with is its best checkpoint's (load_best_model_at_end). */
  loadBestModelAtEnd: boolean;
  /** Stop after this many evaluations in a row without improvement; null = off. */
  earlyStoppingPatience: number | null;
  /** SEQ_2_SEQ_LM: score greedy generation on the first N validation rows (the loss on all); null = all. */
  generationEvalRows?: number | null;
  /** SEQ_2_SEQ_LM: most target tokens, </s> included (the CLI's --max-target-length); null = max length. */
  maxTargetLength?: number | null;
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
  /** Instruction / chat format, template and what to train on (default: detected, the model's, the responses). */
  chat?: ChatSettings;
  /** A Hub dataset, read instead of `source`. */
  hub?: HubDataSpec;
  /** TOKEN_CLS: the tags in id order (default: the built-in list, else the data's tags sorted) and run_ner.py's label_all_tokens. */
  tokcls?: { labelList?: string[]; labelAllTokens?: boolean };
  /** SEQ_2_SEQ_LM: the source and target columns (default: the built-in dataset's, else source / target, input / output, ...). */
  seq2seq?: { sourceColumn?: string; targetColumn?: string; maxTargetLength?: number | null };
}

export type WorkerCommand =
  /** baseUrl: the app's absolute BASE_URL, where built-in models, datasets and the wasm binaries live. */
  /**
   * wasmTensorLimitBytes: tensor memory past which wasm allocations fail, as on a device with less memory (a
   * diagnostics setting, the `wasmTensorLimitMB` page parameter; how out-of-memory handling is tested).
   * wasmThreads: XNNPACK threads for the threaded wasm build (the `wasmThreads` page parameter; default: every
   * core up to 4, see defaultWasmThreads); fixed once wasm has started in this worker.
   */
  /** loseWebGpuDeviceAtStep: destroys the WebGPU device after that training step, as a driver reset would (diagnostics). */
  | { type: 'init'; requestId: number; backend: BackendChoice; baseUrl: string; wasmTensorLimitBytes?: number; wasmThreads?: number; loseWebGpuDeviceAtStep?: number }
  /**
   * Header-first step: reads config.json and the safetensors headers (or a complete cached copy), replies
   * `inspected` with the tree's model, the checkpoint summary and the memory estimate. Nothing is downloaded yet;
   * the inspected model becomes the one the tree and targets describe (the previous one is released).
   */
  | { type: 'loadModel'; requestId: number; source: ModelSource; plan: MemoryPlan }
  /** Downloads (or reads from the cache) the inspected model; `downloadProgress` events, then `model`. Also Retry. */
  | { type: 'downloadModel'; requestId: number }
  /** Aborts the header read and/or the download in progress (partial bytes stay in the cache). No reply. */
  | { type: 'cancelLoad'; requestId: number; step?: 'inspect' | 'download' }
  /**
   * Memory for training the current model at this batch and length with `trainable` adapter parameters;
   * with downloadBytes, also whether the download fits in the free storage.
   */
  | {
    type: 'estimateMemory'; requestId: number; task: TaskType; batch: number; seqLen: number; trainable: number; downloadBytes?: number;
    checkpointing?: CheckpointingChoice;
  }
  | { type: 'listCache'; requestId: number }
  | { type: 'deleteCached'; requestId: number; endpoint: string; repo: string; revision: string }
  | { type: 'inspect'; requestId: number; task: TaskType }
  | { type: 'setTargets'; requestId: number; task: TaskType; peft: PeftSettings }
  | { type: 'loadData'; requestId: number; request: DataRequest }
  /** fromImport: the run's trainable weights start from the imported adapter (fresh optimizer). */
  | { type: 'start'; requestId: number; task: TaskType; peft: PeftSettings; args: TrainArgs; fromImport?: boolean; resume?: string }
  /** The runs kept in this browser (OPFS), newest first; replies `runs`. */
  | { type: 'listRuns'; requestId: number }
  /** A run's log_history (the charts' points); replies `runLog`. */
  | { type: 'runLog'; requestId: number; id: string }
  /**
   * A run's files: its adapter (the best checkpoint's when it loads the best model at the end, else the latest),
   * metrics.jsonl, training_args.json and trainer_state.json; replies `runFiles`.
   */
  | { type: 'runFiles'; requestId: number; id: string }
  /** Deletes a run and its checkpoints; replies `runs`. Refused for the run training now. */
  | { type: 'deleteRun'; requestId: number; id: string }
  /**
   * A PEFT-saved adapter (adapter_config.json + adapter_model.safetensors among `files`, a folder's or the two
   * picked) loaded strictly onto the current model; replies `adapterImported`. A bad one leaves the previous as it was.
   * task: the project's, used when adapter_config.json names none.
   */
  | { type: 'importAdapter'; requestId: number; files: File[]; name: string; task: TaskType }
  /** Eval loss / accuracy (F1) of the imported adapter and of the base model on the data's validation rows. */
  | { type: 'evaluateAdapter'; requestId: number; batchSize: number; maxLength: number; generationEvalRows?: number | null }
  /** Forgets the imported adapter; replies `adapterClosed`. */
  | { type: 'closeAdapter'; requestId: number }
  | { type: 'pause'; requestId: number }
  | { type: 'resume'; requestId: number }
  | { type: 'stop'; requestId: number }
  | { type: 'export'; requestId: number }
  /** chat: the prompt is the conversation rendered with the run's (else the model's) chat template. */
  /** chat: the conversation the adapter answers; chatOff: the base model's own (its replies in it; default chat). */
  | { type: 'generate'; requestId: number; prompt: string; maxNewTokens: number; sampling?: SamplingSettings; chat?: { role: string; content: string }[]; chatOff?: { role: string; content: string }[] }
  /** Ends the playground's generation in progress; the `generation` reply carries what it had. */
  | { type: 'stopGeneration'; requestId: number }
  | { type: 'classify'; requestId: number; text: string }
  /** TOKEN_CLS: the text's words tagged with the adapter and without it; replies `tagged`. */
  | { type: 'tag'; requestId: number; text: string }
  /**
   * bench.html (`npm run bench:browser`): LoRA training steps and 1024^3 matmuls on the current backend
   * (src/engine/bench.ts); replies `benchResult`. Refused while a run is active.
   */
  | { type: 'bench'; requestId: number; shape: BenchShape; steps: number; checkpointing: boolean; matmulRuns: number }
  /** bench.html: backend settings for the benchmark (WebGPU feature level, wasm threads); send before `init`. No reply. */
  | { type: 'benchSetup'; requestId: number; setup: BenchSetup }
  /**
   * Export beyond the tab (worker/export-jobs.ts), on the adapter the playground uses: the merged model written
   * tensor by tensor into `folder` (picked by the user) or, without one, into OPFS (replies `merged` with the
   * OPFS folder to download from; `mergeProgress` on the way); the GGUF adapter + Modelfile; the Python project
   * for these settings and this data.
   */
  | { type: 'mergeModel'; requestId: number; dtype: 'F32' | 'F16' | 'BF16'; maxShardSize: number; folder?: FileSystemDirectoryHandle }
  | { type: 'exportGguf'; requestId: number; outtype: 'F32' | 'F16'; ollamaFrom?: string }
  | { type: 'exportPython'; requestId: number; task: TaskType; peft: PeftSettings; args: TrainArgs; data: DataRequest };

/** Summary of a model (inspected or loaded), enough to render the Model panel. */
export interface ModelInfo {
  name: string;
  modelType: string;
  className: string;
  task: TaskType;
  /** Every task the architecture builds a class for, with that class (GPT2ForTokenClassification, ...). */
  tasks?: { task: TaskType; className: string }[];
  hasTokenizer: boolean;
  /** Bytes of the weight files as stored (safetensors). */
  weightBytes: number;
  files: string[];
  /** PEFT's default LoRA target_modules for this architecture (empty where PEFT has none). */
  defaultTargets: string[];
  /** Where it comes from: the Hub, a URL folder (built-in), local files, or a complete cached Hub snapshot. */
  sourceKind: 'hub' | 'url' | 'local' | 'cache';
  /** Hub revision (null for local and URL sources). */
  revision: string | null;
  /** The repo's page (gated models are accepted there); Hub sources only. */
  repoUrl?: string;
}

/** What the header-first inspection found, before any weight is downloaded. */
export interface InspectionInfo {
  label: string;
  totalParams: number;
  /** Elements stored per dtype (F32, F16, BF16, ...). */
  dtypes: Record<string, number>;
  /** Every file a download fetches, with its size. */
  files: { name: string; size: number }[];
  weightFiles: number;
  downloadBytes: number;
  /** The weights once converted to float32. */
  f32Bytes: number;
  /** Bytes read to inspect (config + headers). */
  bytesRead: number;
  /** A complete cached snapshot: loading needs no network. */
  fromCache: boolean;
  commit: string | null;
  notes: string[];
}

/** The training memory estimate against what this device offers. */
export interface MemoryReport {
  estimate: MemoryEstimate;
  warnings: FitWarning[];
  limits: DeviceLimits;
  batch: number;
  seqLen: number;
  trainable: number;
  /** The checkpointing setting and what it resolves to here (auto: on when the run needs it). */
  checkpointing: { choice: CheckpointingChoice; on: boolean };
  /** An error-level warning, or more memory than the device has: the download waits for the person's go-ahead. */
  blocking: boolean;
}

export interface TreeInfo {
  task: TaskType;
  modules: ModuleInfo[];
  totalParams: number;
  /** Parameter name -> the parameter it shares storage with (tied lm_head), counted once in totals. */
  tied: Record<string, string>;
  /** Linear / Conv1D module -> its role from the architecture file (attention, MLP, head), for the quick picks. */
  roles: Record<string, ModuleRole>;
}

/** What a target spec matches, with PEFT's trainable-parameter line. */
export interface TargetResult {
  matched: string[];
  modulesToSave: string[];
  /** Module -> how the method treats it (IA3: 'feedforward'). */
  roles?: Record<string, string>;
  /** Prompt methods: virtual tokens prepended to every input. */
  virtualTokens?: number;
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
  /** Usable but doubtful data (for example only one or two rows), shown above the preview. */
  warnings: string[];
  /** Null until a tokenizer is loaded. */
  stats: TokenStats | null;
  /** Present when the rows are instruction / chat data. */
  chat?: ChatSummary;
  /** Present for a Hub dataset: its configs, splits and row counts. */
  hub?: HubDataInfo;
  /** Classification with validation rows: majority-class rate and bag-of-words logistic regression on this split. */
  baselines?: ClassBaselines;
  /** TOKEN_CLS: sentences, words, entities per type and truncation of each split, and one sentence with its tags. */
  tokcls?: { train: TokenClsStats; validation: TokenClsStats; sample: { line: number; words: string[]; tags: string[] } | null; labelAllTokens: boolean };
  /** SEQ_2_SEQ_LM: the columns read (null: pre-tokenized rows), source / target token lengths (with </s>), and one row. */
  seq2seq?: Seq2SeqSummary;
}

export interface Seq2SeqSummary {
  sourceColumn: string | null;
  targetColumn: string | null;
  /** Source lengths against max length and target lengths against max target length (null without a tokenizer). */
  source: TokenStats | null;
  target: TokenStats | null;
  sample: { line: number; source: string; target: string } | null;
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
  /** SEQ_CLS: confusion[true][predicted] on the validation split, and each class's scores. */
  confusion?: number[][];
  classes?: { precision: number; recall: number; f1: number; support: number }[];
  /** SEQ_2_SEQ_LM, from greedy generation: exact match (0-1), chrF (0-100), ROUGE-L F (0-1). */
  exactMatch?: number;
  chrf?: number;
  rougeL?: number;
  /** How long this evaluation took. */
  durationMs?: number;
}

export interface AdapterFiles {
  'adapter_model.safetensors': ArrayBuffer;
  'adapter_config.json': string;
}

/** An imported adapter, as the studio shows it. */
export interface ImportedAdapterInfo {
  /** The folder (or file) name it was picked as. */
  name: string;
  peftType: PeftType;
  methodLabel: string;
  /** e.g. "LoRA r=8, alpha 16 on c_attn". */
  summary: string;
  task: TaskType;
  tensors: number;
  params: number;
  bytes: number;
  /** base_model_name_or_path from adapter_config.json. */
  baseModel: string | null;
  /** The method form values and targets it was saved with (the project takes them). */
  settings: { values: Record<string, unknown>; targets: TargetSpec | null };
  notes: string[];
}

export interface AdapterEvalMetrics {
  evalLoss: number;
  accuracy: number;
  f1?: number;
  /** SEQ_2_SEQ_LM, from greedy generation. */
  exactMatch?: number;
  chrf?: number;
  rougeL?: number;
}

export interface AdapterEvalResult {
  rows: number;
  task: TaskType;
  withAdapter: AdapterEvalMetrics;
  withoutAdapter: AdapterEvalMetrics;
}

export type RunState = 'starting' | 'running' | 'paused' | 'stopping' | 'idle';

export interface ClassifyResult {
  label: string;
  probs: { label: string; p: number }[];
}

export type WorkerEvent =
  /** methods: every PEFT method the engine implements, with its config schema (the studio's forms come from it). */
  | { type: 'ready'; requestId?: number; backend: BackendName; reason: string; methods: MethodInfo[] }
  /** loadId numbers this load's `downloadProgress` events. */
  | { type: 'inspected'; requestId: number; loadId: number; info: ModelInfo; inspection: InspectionInfo; memory: MemoryReport }
  | { type: 'downloadProgress'; loadId: number; progress: DownloadProgress }
  | { type: 'model'; requestId: number; info: ModelInfo }
  | { type: 'memory'; requestId: number; report: MemoryReport }
  /** persistent: false when the browser offers no OPFS (downloads then last only for this session). */
  | { type: 'cache'; requestId: number; persistent: boolean; models: CachedModelInfo[] }
  | { type: 'tree'; requestId: number; tree: TreeInfo }
  | { type: 'targets'; requestId: number; result: TargetResult }
  | { type: 'data'; requestId: number; summary: DataSummary }
  | { type: 'state'; requestId?: number; runId: number; state: RunState }
  /** etaMs: steps left at msPerStep (evaluation time taken out) plus the evaluations left at their measured length. */
  | { type: 'progress'; runId: number; step: number; totalSteps: number; epoch: number; elapsedMs: number; etaMs: number | null; tokensPerSec: number; msPerStep?: number }
  | { type: 'metrics'; runId: number; metrics: StepMetrics }
  | { type: 'evalMetrics'; runId: number; metrics: EvalMetrics }
  /** An evaluation in progress after `step`: done of total loss batches, then (SEQ_2_SEQ_LM) rows generated; a few a second at most. */
  | { type: 'evalProgress'; runId: number; step: number; phase: 'batches' | 'generation'; done: number; total: number }
  | { type: 'log'; level: 'info' | 'warn'; message: string }
  /** best: the run's best checkpoint (load best model at end), not its last step. */
  | { type: 'checkpoint'; requestId?: number; runId: number; step: number; files: AdapterFiles; best?: { metric: string; value: number } }
  /** msPerToken: the adapter-on generation's time per new token (KV-cached decoding). */
  | { type: 'generation'; requestId: number; withAdapter: string; withoutAdapter: string; msPerToken?: number; stopped?: boolean; chat?: { prompt: string; template: string; promptOff?: string } }
  /** The text so far while `generate` runs (no requestId: the request is answered by `generation`). */
  | { type: 'generationPartial'; forRequest: number; adapter: boolean; text: string }
  | { type: 'classification'; requestId: number; withAdapter: ClassifyResult; withoutAdapter: ClassifyResult }
  /** retryable: a network failure, timeout, 429 or 5xx (Retry continues a download). link: the Hub repo page. */
  | { type: 'error'; requestId?: number; runId?: number; code: string; message: string; retryable?: boolean; link?: string }
  | { type: 'done'; runId: number; reason: 'completed' | 'stopped' | 'failed'; step: number }
  | { type: 'tagged'; requestId: number; words: string[]; withAdapter: string[]; withoutAdapter: string[] }
  /**
   * A run began (or resumed): its record, and the log_history it continues (empty for a new run) with the
   * evaluation before its first step, so the charts continue the same curves.
   */
  | { type: 'runStarted'; runId: number; record: RunSummary; history: LogEntry[] }
  /** The run's record changed (a checkpoint, an evaluation, its end). */
  | { type: 'runRecord'; runId: number; record: RunSummary }
  /** Saving the run failed (storage full, no storage): training goes on; the message says what was kept. */
  | { type: 'runWarning'; runId: number; message: string }
  /** A run another tab (or the page before a reload) was training has ended there: list the runs again. */
  | { type: 'runsChanged' }
  /** persistent: false when runs last only for this session (no OPFS); problems: run folders that are unreadable. */
  | { type: 'runs'; requestId: number; runs: RunSummary[]; persistent: boolean; problems: string[] }
  | { type: 'runLog'; requestId: number; id: string; history: LogEntry[] }
  /** Text files as strings, the safetensors as bytes; step: the adapter's checkpoint, best: it is the best one. */
  | { type: 'runFiles'; requestId: number; id: string; step: number; best: boolean; files: Record<string, string | ArrayBuffer> }
  | { type: 'benchResult'; requestId: number; result: BenchResult }
  | { type: 'adapterImported'; requestId: number; info: ImportedAdapterInfo }
  | { type: 'adapterEval'; requestId: number; result: AdapterEvalResult }
  | { type: 'adapterClosed'; requestId: number }
  /** mergeId: the mergeModel command's requestId (not named so: progress must not settle the request). */
  | { type: 'mergeProgress'; mergeId: number; done: number; total: number; name: string }
  /** opfsFolder: where the files wait when no folder was picked (null: they are in the picked folder). */
  | { type: 'merged'; requestId: number; files: string[]; totalBytes: number; opfsFolder: string | null }
  /** Files by path: text as strings, binary as bytes (the GGUF adapter, data files). */
  | { type: 'exportFiles'; requestId: number; files: Record<string, string | ArrayBuffer> };

/** Replies a command may resolve with (everything but run events). */
export type WorkerReply = Extract<WorkerEvent, { requestId: number }>;

/** What a `bench` command measured, on which backend, and what that backend runs on (see engine/bench.ts). */
export type BenchResult = Awaited<ReturnType<typeof benchTraining>> & Awaited<ReturnType<typeof benchMatmul>> & {
  backend: BackendName;
  details: Record<string, unknown>;
};
