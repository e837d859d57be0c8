/**
 * "Export as Python project": a folder that reproduces a studio run with the tools that scale (transformers'
 * Trainer + PEFT under accelerate, DeepSpeed ZeRO-2 or FSDP): train.py, requirements.txt with versions, accelerate
 * configs, the data, and a README. Plain data in, file contents out, so the CLI and the studio (zip) share it.
 */
import type { TaskType } from '../models/types';
import type { PeftConfig } from '../peft/registry';
import { methodOf } from '../peft/registry';
import type { TrainingArgs } from '../session';
import { trainPy } from './python-train';

export interface PythonDataFile {
  /** File name as the user had it (its extension gives the format: .jsonl / .json, .csv, .txt). */
  name: string;
  bytes: Uint8Array;
}

export interface PythonDataSpec {
  train?: PythonDataFile | null;
  validation?: PythonDataFile | null;
  /** A Hub dataset id instead of files (datasets.load_dataset). */
  hubDataset?: string | null;
  /** Share of the training rows held out for evaluation when there is no validation file. */
  validationSplit?: number | null;
  textColumn?: string;
  labelColumn?: string;
  promptColumn?: string;
  responseColumn?: string;
  /** TXT: one example per line instead of per paragraph. */
  txtLines?: boolean;
}

export interface PythonProjectSpec {
  /** The base model as from_pretrained loads it: a Hub repo id, or a path on the machine that runs train.py. */
  model: string;
  revision?: string | null;
  /** config.json model_type (picks FSDP's layer class). */
  modelType: string;
  task: TaskType;
  /** The run's validated PEFT config (AdaLoRA's total_step filled from the run). */
  peft: PeftConfig;
  args: TrainingArgs;
  data: PythonDataSpec;
  /** SEQ_CLS class names by id and class count. */
  labels?: string[] | null;
  numLabels?: number | null;
  padTokenId?: number | null;
  title?: string;
}

/** Versions of the era this project's numbers are checked against (transformers 4.43.4, PEFT 0.15.2). */
export const PYTHON_REQUIREMENTS = [
  'torch>=2.1,<2.6',
  'transformers==4.43.4',
  'peft==0.15.2',
  'accelerate==0.33.0',
  'datasets==2.20.0',
  'safetensors>=0.4.3',
  'numpy<2',
];

/** The decoder layer FSDP wraps, per model_type. */
const FSDP_LAYER: Record<string, string> = {
  gpt2: 'GPT2Block', llama: 'LlamaDecoderLayer', mistral: 'MistralDecoderLayer', qwen2: 'Qwen2DecoderLayer', bert: 'BertLayer',
};

function formatOf(name: string): string {
  const ext = name.toLowerCase().split('.').pop() ?? '';
  return ext === 'jsonl' || ext === 'json' ? 'jsonl' : ext === 'csv' ? 'csv' : 'txt';
}

/** A file name safe in data/ (the user's name, without folders or odd characters). */
function safeName(name: string, fallback: string): string {
  const base = name.split(/[\\/]/).pop() ?? '';
  const clean = base.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^\.+/, '');
  return clean || fallback;
}

function acceleratePreamble(): string[] {
  return ['compute_environment: LOCAL_MACHINE', 'debug: false', 'machine_rank: 0', 'main_training_function: main', 'num_machines: 1', 'rdzv_backend: static', 'same_network: true', 'use_cpu: false'];
}

/** accelerate config files: plain multi-GPU (DDP), DeepSpeed ZeRO-2, FSDP. */
export function accelerateConfigs(spec: PythonProjectSpec): Record<string, string> {
  const a = spec.args;
  const lines = (extra: string[]) => `${[...acceleratePreamble(), ...extra].join('\n')}\n`;
  const gpus = ['# GPUs on this machine: set num_processes to their count.', ''];
  return {
    'accelerate/multi_gpu.yaml': gpus.join('\n') + lines(['distributed_type: MULTI_GPU', 'downcast_bf16: \'no\'', 'gpu_ids: all', 'mixed_precision: \'no\'', 'num_processes: 2']),
    'accelerate/deepspeed_zero2.yaml': gpus.join('\n') + lines([
      'deepspeed_config:',
      `  gradient_accumulation_steps: ${a.gradientAccumulationSteps}`,
      `  gradient_clipping: ${a.maxGradNorm > 0 ? a.maxGradNorm : 'auto'}`,
      '  offload_optimizer_device: none',
      '  offload_param_device: none',
      '  zero3_init_flag: false',
      '  zero_stage: 2',
      'distributed_type: DEEPSPEED',
      'downcast_bf16: \'no\'',
      'mixed_precision: \'no\'',
      'num_processes: 2',
    ]),
    'accelerate/fsdp.yaml': gpus.join('\n') + lines([
      'distributed_type: FSDP',
      'downcast_bf16: \'no\'',
      'fsdp_config:',
      '  fsdp_auto_wrap_policy: TRANSFORMER_BASED_WRAP',
      '  fsdp_backward_prefetch: BACKWARD_PRE',
      '  fsdp_cpu_ram_efficient_loading: true',
      '  fsdp_forward_prefetch: false',
      '  fsdp_offload_params: false',
      '  fsdp_sharding_strategy: FULL_SHARD',
      '  fsdp_state_dict_type: SHARDED_STATE_DICT',
      '  fsdp_sync_module_states: true',
      `  fsdp_transformer_layer_cls_to_wrap: ${FSDP_LAYER[spec.modelType] ?? 'auto'}`,
      '  fsdp_use_orig_params: false',
      'mixed_precision: \'no\'',
      'num_processes: 2',
    ]),
  };
}

function readme(spec: PythonProjectSpec, files: string[]): string {
  const m = methodOf(spec.peft.peftType);
  const a = spec.args;
  return `# ${spec.title ?? `${spec.model} + ${m.label}`}

The PEFT Studio run as a Python project: \`train.py\` trains \`${spec.model}\` with PEFT's ${m.label} (${spec.task}) under
transformers' \`Trainer\`, with the same method config, targets, data and training settings. Its
\`output/adapter/\` is a PEFT adapter the studio imports back.

## Run

\`\`\`bash
pip install -r requirements.txt
python train.py                                                        # one GPU (or CPU)
accelerate launch --config_file accelerate/multi_gpu.yaml train.py     # data parallel on every GPU (set num_processes)
accelerate launch --config_file accelerate/deepspeed_zero2.yaml train.py   # DeepSpeed ZeRO-2 (pip install deepspeed==0.14.4)
accelerate launch --config_file accelerate/fsdp.yaml train.py          # FSDP, full sharding
accelerate launch train.py --resume-adapter path/to/downloaded-adapter # continue from the studio's adapter
\`\`\`

\`--bf16\` / \`--fp16\` turn on mixed precision (the studio trains in float32); \`--output-dir\` moves checkpoints and the
final adapter; \`--resume-from-checkpoint output/checkpoint-N\` continues a run of this script.

## What it reproduces

- Method: \`${m.label}\` as \`peft_config()\` builds it (PEFT's field names).
- Training: learning_rate ${a.learningRate}, ${a.maxSteps ? `max_steps ${a.maxSteps}` : `num_train_epochs ${a.epochs}`},
  per_device_train_batch_size ${a.batchSize}, gradient_accumulation_steps ${a.gradientAccumulationSteps}, warmup_steps ${a.warmupSteps},
  lr_scheduler_type ${a.scheduler}, weight_decay ${a.weightDecay}, max_grad_norm ${a.maxGradNorm}, seed ${a.seed}, max length ${a.maxLength}.
- With N GPUs each one takes per_device_train_batch_size examples, so a step sees N times the studio's batch: divide
  the batch size (or gradient_accumulation_steps) by N to keep the studio's effective batch.
- Data: ${spec.data.hubDataset ? `the Hub dataset \`${spec.data.hubDataset}\`` : files.filter((f) => f.startsWith('data/')).map((f) => `\`${f}\``).join(', ')}.
  A validation split is drawn with datasets' \`train_test_split\`, so its rows differ from the studio's split.

## Files

${files.map((f) => `- \`${f}\``).join('\n')}
`;
}

/** Every file of the project, by path (text or bytes). */
export function pythonProject(spec: PythonProjectSpec): Record<string, string | Uint8Array> {
  const out: Record<string, string | Uint8Array> = {};
  let train: string | null = null;
  let validation: string | null = null;
  if (spec.data.train) {
    train = `data/${safeName(spec.data.train.name, 'train.jsonl')}`;
    out[train] = spec.data.train.bytes;
  }
  if (spec.data.validation) {
    validation = `data/${safeName(spec.data.validation.name, 'validation.jsonl')}`;
    if (validation === train) validation = validation.replace(/(\.[^.]*)?$/, '-validation$1');
    out[validation] = spec.data.validation.bytes;
  }
  const format = spec.data.train ? formatOf(spec.data.train.name) : 'jsonl';
  out['train.py'] = trainPy(spec, { train: train ?? '', validation, format });
  out['requirements.txt'] = `# The versions PEFT Studio's numbers are checked against; newer ones work too.\n${PYTHON_REQUIREMENTS.join('\n')}\n# For accelerate/deepspeed_zero2.yaml: deepspeed==0.14.4\n`;
  Object.assign(out, accelerateConfigs(spec));
  out['README.md'] = readme(spec, [...Object.keys(out), 'README.md'].sort());
  return out;
}
