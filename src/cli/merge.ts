/**
 * `merge --model DIR --adapter DIR --out DIR [--dtype f32|f16|bf16] [--max-shard-size 2GB]`: the base model with
 * the adapter folded in (PEFT's merge_and_unload), written as transformers' save_pretrained writes a model:
 * config.json (the task's class), model.safetensors or shards + model.safetensors.index.json, the tokenizer files
 * and generation_config.json copied, and a README model card. Tensors are written one at a time.
 */
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { COPIED_MODEL_FILES, writeMergedModel } from '../engine/adapter/merge';
import { parseFloatDType, type FloatDType } from '../engine/io/float-encode';
import { DEFAULT_MAX_SHARD_SIZE, parseShardSize, type OpenFile } from '../engine/io/safetensors-stream';
import { loadModelWithAdapter, readAdapterFolder } from './adapter-dir';
import { BACKEND_OPTION, helpText, note, parseArgv, required, startBackend, str, usage, type CommandSpec } from './common';

export const MERGE: CommandSpec = {
  name: 'merge',
  summary: "Folds a LoRA / DoRA / IA3 / AdaLoRA adapter into the base model's weights (PEFT's merge_and_unload) and writes a plain transformers model folder.",
  usage: 'npm run cli -- merge --model DIR --adapter DIR --out DIR [--dtype f32|f16|bf16] [--max-shard-size 2GB]',
  options: {
    model: { kind: 'value', arg: 'DIR|ID', help: 'Base model folder (config.json + safetensors) or Hub repo id owner/name[@rev].' },
    adapter: { kind: 'value', arg: 'DIR', help: 'PEFT adapter folder (adapter_config.json + adapter_model.safetensors).' },
    dtype: { kind: 'value', arg: 'f32|f16|bf16', help: "Type of the written weights (default: the base checkpoint's)." },
    'max-shard-size': { kind: 'value', arg: 'SIZE', help: 'Largest weight file, e.g. 2GB or 500MB (default 5GB, as transformers); above it: shards + model.safetensors.index.json.' },
    'base-model-name': { kind: 'value', arg: 'NAME', help: 'base_model in the model card (default: the --model argument).' },
    ...BACKEND_OPTION,
    out: { kind: 'value', arg: 'DIR', help: 'Output folder (created).' },
  },
  notes: 'Prompt tuning, P-tuning and prefix tuning add virtual tokens instead of changing weights and cannot be merged.',
};

/** Writes files into a folder, each through one file descriptor. */
export function nodeFolder(dir: string): OpenFile {
  mkdirSync(dir, { recursive: true });
  return (name) => {
    const fd = openSync(join(dir, name), 'w');
    return {
      write: (chunk) => {
        let off = 0;
        while (off < chunk.length) off += writeSync(fd, chunk, off, chunk.length - off);
      },
      close: () => closeSync(fd),
    };
  };
}

/** The tokenizer and generation files of a local model folder, to be copied beside the merged weights. */
export function copiedModelFiles(modelArg: string): Record<string, Uint8Array> {
  const out: Record<string, Uint8Array> = {};
  if (!existsSync(modelArg)) return out;
  for (const f of COPIED_MODEL_FILES) if (existsSync(join(modelArg, f))) out[f] = new Uint8Array(readFileSync(join(modelArg, f)));
  return out;
}

export async function mergeCommand(argv: string[]): Promise<void> {
  const p = parseArgv(MERGE, argv);
  if (p.help) return void console.log(helpText(MERGE));
  const modelArg = required(p, 'model', 'merge');
  const adapterDir = required(p, 'adapter', 'merge');
  const out = required(p, 'out', 'merge');
  const dtypeText = str(p, 'dtype');
  let dtype: FloatDType | undefined;
  try {
    dtype = dtypeText === undefined ? undefined : parseFloatDType(dtypeText);
  } catch {
    throw usage(`--dtype must be f32, f16 or bf16, got "${dtypeText}"`);
  }
  const shardText = str(p, 'max-shard-size');
  let maxShardSize = DEFAULT_MAX_SHARD_SIZE;
  if (shardText !== undefined) {
    try {
      maxShardSize = parseShardSize(shardText);
    } catch (e) {
      throw usage(`--max-shard-size: ${(e as Error).message}`);
    }
  }
  const adapter = readAdapterFolder(adapterDir);
  await startBackend(p);
  const { model, peft, sourceDtype } = await loadModelWithAdapter(modelArg, adapter);
  try {
    const type: FloatDType = dtype ?? (sourceDtype === 'F16' || sourceDtype === 'BF16' ? sourceDtype : 'F32');
    const res = await writeMergedModel(peft, {
      dtype: type, maxShardSize, open: nodeFolder(out), baseModelName: str(p, 'base-model-name') ?? modelArg, adapterName: adapterDir,
      labels: adapter.labels, copy: copiedModelFiles(modelArg),
    });
    note(`${model.className} + ${peft.peftType} merged: ${res.tensors} tensors, ${type}, ${res.files.length} weight file(s) -> ${out} (${res.written.join(', ')})`);
  } finally {
    peft.dispose();
    model.dispose();
  }
}
