/**
 * "Merge and download": the base model with the adapter folded into its weights, as PEFT 0.15.2's
 * `merge_and_unload()` followed by transformers' `save_pretrained` writes it: the task class's state dict (tied
 * weights stored once), modules_to_save heads in place of the base's, config.json naming the task class, and a
 * model card. Each method folds itself in through its PeftModel's `mergedParam` (LoRA / rsLoRA / patterns and
 * DoRA, IA3, AdaLoRA); prompt methods say why they cannot be merged. Tensors are produced one at a time, so only
 * the loaded model and one tensor's bytes are ever in memory.
 */
import type * as tf from '@tensorflow/tfjs';
import { EngineError } from '../errors';
import { FLOAT_SIZE, torchDtypeName, type FloatDType } from '../io/float-encode';
import { writeCheckpoint, type OpenFile, type StreamTensor, type WrittenCheckpoint } from '../io/safetensors-stream';
import type { Model } from '../models/types';
import { formatAdapterConfigJson } from '../peft/config';
import type { PeftModel } from '../peft/model';
import { methodOf } from '../peft/registry';
import { adapterConfigObject } from './export';

/** Files of a model folder that a merged model keeps as they are (tokenizer and generation settings). */
export const COPIED_MODEL_FILES = [
  'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'added_tokens.json', 'vocab.json', 'merges.txt',
  'vocab.txt', 'tokenizer.model', 'spiece.model', 'chat_template.jinja', 'chat_template.json', 'generation_config.json',
] as const;

/** Throws NOT_MERGEABLE, naming why, unless the adapter's method can be folded into the base weights. */
export function assertMergeable(peft: PeftModel): asserts peft is PeftModel & { mergedParam(p: string): tf.Tensor | null } {
  if (peft.mergedParam) return;
  const m = methodOf(peft.peftType);
  throw new EngineError('NOT_MERGEABLE', `Cannot merge a ${m.label} adapter into the model: ${m.unmergeable ?? `${m.label} has no merge.`}`);
}

/** The merged model's tensors in state-dict order (tied parameters once, under the name transformers saves). */
export function mergedTensors(peft: PeftModel): StreamTensor[] {
  assertMergeable(peft);
  const model = peft.base;
  const out: StreamTensor[] = [];
  for (const m of model.modules) {
    for (const [p, shape] of Object.entries(m.params)) {
      const name = m.name ? `${m.name}.${p}` : p;
      if (name in model.tied) {
        const changed = peft.mergedParam(name);
        if (changed) {
          changed.dispose();
          throw new EngineError(
            'NOT_MERGEABLE',
            `The adapter changes ${name}, which this model ties to ${model.tied[name]} (the input embeddings); merging would change both. ` +
              'Leave that module out of target_modules, or use the adapter unmerged.',
          );
        }
        continue;
      }
      out.push({
        name,
        shape,
        values: async () => {
          const merged = peft.mergedParam(name);
          try {
            return (await (merged ?? model.params.get(name)!).data()) as Float32Array;
          } finally {
            merged?.dispose();
          }
        },
      });
    }
  }
  return out;
}

/**
 * config.json of the merged model: the base's, with `architectures` set to the task class the adapter was trained
 * for, `torch_dtype` to the written type, and for classification the head's size (and label names when known).
 */
export function mergedConfig(model: Model, dtype: FloatDType, labels?: string[] | null): Record<string, unknown> {
  const c: Record<string, unknown> = { ...model.rawConfig, architectures: [model.className], torch_dtype: torchDtypeName(dtype) };
  if (model.task === 'SEQ_CLS') {
    const n = model.config.numLabels;
    c.num_labels = n;
    if (labels && labels.length === n) {
      c.id2label = Object.fromEntries(labels.map((l, i) => [String(i), l]));
      c.label2id = Object.fromEntries(labels.map((l, i) => [l, i]));
    }
    // Classification pools at the last non-pad token: without a pad id transformers refuses batches above 1, so
    // the merged config names the one the studio trained with (pad, else eos, as TrainingSession sets it).
    if (c.pad_token_id == null && model.config.eosTokenId != null) c.pad_token_id = model.config.eosTokenId;
    // id2label decides num_labels when transformers reads the file; keep the two consistent.
    if (c.id2label && Object.keys(c.id2label as object).length !== n) delete c.id2label;
    if (c.label2id && Object.keys(c.label2id as object).length !== n) delete c.label2id;
  }
  return Object.fromEntries(Object.entries(c).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

export interface MergeOptions {
  dtype: FloatDType;
  /** Bytes per shard (transformers' max_shard_size; default 5 GB). */
  maxShardSize?: number;
  open: OpenFile;
  /** base_model for the model card and adapter_config.json (the model folder or Hub repo id). */
  baseModelName: string;
  /** Where the adapter came from, for the model card. */
  adapterName?: string;
  /** SEQ_CLS label names by class id (labels.json of a CLI run), written into config.json. */
  labels?: string[] | null;
  /** Files copied as they are (tokenizer, generation_config.json; see COPIED_MODEL_FILES). */
  copy?: Record<string, Uint8Array>;
  onTensor?: (name: string, done: number, total: number) => void;
}

export interface MergeResult extends WrittenCheckpoint {
  /** Every file written, config.json and README.md included. */
  written: string[];
  tensors: number;
}

/** Writes the merged model folder through `open`: config.json, the weights (sharded above maxShardSize), copied files, README.md. */
export async function writeMergedModel(peft: PeftModel, o: MergeOptions): Promise<MergeResult> {
  const tensors = mergedTensors(peft);
  const model = peft.base;
  const put = async (name: string, data: Uint8Array | string) => {
    const w = await o.open(name);
    await w.write(typeof data === 'string' ? new TextEncoder().encode(data) : data);
    await w.close();
  };
  await put('config.json', `${JSON.stringify(mergedConfig(model, o.dtype, o.labels), null, 2)}\n`);
  const ckpt = await writeCheckpoint(tensors, { dtype: o.dtype, maxShardSize: o.maxShardSize, open: o.open, onTensor: o.onTensor });
  const copied = Object.keys(o.copy ?? {}).filter((n) => n !== 'README.md' && n !== 'config.json');
  for (const n of copied) await put(n, o.copy![n]);
  await put('README.md', mergedModelCard(peft, { ...o, checkpoint: ckpt, tensors: tensors.length }));
  const written = ['config.json', ...ckpt.files, ...(ckpt.index ? ['model.safetensors.index.json'] : []), ...copied, 'README.md'];
  return { ...ckpt, written, tensors: tensors.length };
}

const AUTO_CLASS: Record<string, string> = { CAUSAL_LM: 'AutoModelForCausalLM', SEQ_CLS: 'AutoModelForSequenceClassification' };

function sizeText(bytes: number): string {
  return bytes >= 1e9 ? `${(bytes / 1e9).toFixed(2)} GB` : bytes >= 1e6 ? `${(bytes / 1e6).toFixed(1)} MB` : `${(bytes / 1e3).toFixed(1)} kB`;
}

/** The merged folder's README.md: what it is, how it was made, how to load it. */
export function mergedModelCard(
  peft: PeftModel,
  o: Pick<MergeOptions, 'dtype' | 'baseModelName' | 'adapterName'> & { checkpoint: WrittenCheckpoint; tensors: number },
): string {
  const model = peft.base;
  const method = methodOf(peft.peftType);
  const cfg = adapterConfigObject(peft, { baseModelNameOrPath: o.baseModelName });
  const kind = peft.peftType === 'LORA' && cfg.use_dora ? 'DoRA' : method.label;
  const auto = AUTO_CLASS[model.task] ?? 'AutoModel';
  const files = o.checkpoint.index ? `${o.checkpoint.files.length} shards + model.safetensors.index.json` : 'model.safetensors';
  return [
    '---',
    `base_model: ${JSON.stringify(o.baseModelName)}`,
    'library_name: transformers',
    'tags:',
    '- peft-studio',
    '- merged',
    `- ${kind.toLowerCase().replace(/[^a-z0-9]+/g, '-')}`,
    '---',
    '',
    `# ${o.baseModelName.split('/').pop()} + ${kind} (merged)`,
    '',
    `\`${o.baseModelName}\` with a ${kind} adapter${o.adapterName ? ` (\`${o.adapterName}\`)` : ''} folded into its weights, as PEFT's`,
    '`merge_and_unload()` does, written by PEFT Studio. It is a plain transformers model: PEFT is not needed to run it.',
    '',
    `- Class: \`${model.className}\` (task ${model.task})`,
    `- Weights: ${o.dtype} (${torchDtypeName(o.dtype)}), ${o.tensors} tensors, ${sizeText(o.checkpoint.totalSize)} in ${files}`,
    `- Bytes per value: ${FLOAT_SIZE[o.dtype]}`,
    '',
    '## Usage',
    '',
    '```python',
    `from transformers import ${auto}, AutoTokenizer`,
    '',
    `model = ${auto}.from_pretrained("path/to/this/folder")`,
    'tok = AutoTokenizer.from_pretrained("path/to/this/folder")  # tokenizer files are copied from the base model when it had them',
    '```',
    '',
    '## The adapter that was merged (adapter_config.json)',
    '',
    '```json',
    formatAdapterConfigJson(cfg),
    '```',
    '',
  ].join('\n');
}
