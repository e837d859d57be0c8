/**
 * A model folder plus a PEFT adapter folder, loaded for the commands that turn the pair into something else
 * (merge, export-gguf): the adapter's task picks the model class, and a classification head the adapter carries
 * sets num_labels when config.json has none (as the run that trained it did).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadAdapter } from '../engine/adapter/import';
import { EngineError } from '../engine/errors';
import { readSafetensors } from '../engine/io/safetensors';
import { buildModel, resolveArchitecture } from '../engine/models';
import type { Model } from '../engine/models/types';
import type { PeftModel } from '../engine/peft';
import { parsePeftConfig, type PeftConfig } from '../engine/peft/config';
import { PEFT_PREFIX } from '../engine/peft/model';
import { readModel } from './common';

export interface AdapterFolder {
  dir: string;
  config: PeftConfig;
  configBytes: Uint8Array;
  weights: Uint8Array;
  /** SEQ_CLS label names by id, from the labels.json a CLI run writes beside the adapter. */
  labels: string[] | null;
}

/** Reads adapter_config.json + adapter_model.safetensors (and labels.json when present); names missing files. */
export function readAdapterFolder(dir: string): AdapterFolder {
  const read = (f: string) => {
    try {
      return new Uint8Array(readFileSync(join(dir, f)));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new EngineError('ADAPTER_MISMATCH', `${join(dir, f)}: ${code === 'ENOENT' ? 'file not found (an adapter folder holds adapter_config.json and adapter_model.safetensors)' : (e as Error).message}`);
    }
  };
  const configBytes = read('adapter_config.json');
  const config = parsePeftConfig(configBytes, join(dir, 'adapter_config.json'));
  const weights = read('adapter_model.safetensors');
  let labels: string[] | null = null;
  const lp = join(dir, 'labels.json');
  if (existsSync(lp)) {
    try {
      const j = JSON.parse(readFileSync(lp, 'utf8')) as { id2label?: Record<string, string> };
      const ids = Object.keys(j.id2label ?? {}).map(Number).sort((a, b) => a - b);
      if (ids.every((id, i) => id === i)) labels = ids.map((id) => String(j.id2label![String(id)]));
    } catch {
      labels = null; // labels only name the classes in config.json; a broken file does not stop the command
    }
  }
  return { dir, config, configBytes, weights, labels };
}

/** Builds the model the adapter was trained on (its task; its head's size) and loads the adapter strictly. */
export async function loadModelWithAdapter(modelArg: string, adapter: AdapterFolder): Promise<{ model: Model; peft: PeftModel; sourceDtype: string | null }> {
  const { config, tensors } = await readModel(modelArg);
  const task = adapter.config.taskType ?? undefined;
  const arch = resolveArchitecture(config, task);
  const heads = arch.spec.heads(arch.config, arch.task);
  const head = heads.labelsLinear ?? heads.classifier;
  if (arch.task === 'SEQ_CLS' && head && config.num_labels === undefined && config.id2label === undefined) {
    const w = readSafetensors(adapter.weights, join(adapter.dir, 'adapter_model.safetensors')).tensors.get(`${PEFT_PREFIX}${head}.weight`);
    if (w) config.num_labels = w.shape[0];
  }
  const sourceDtype = [...tensors.values()].find((t) => t.dtype === 'F32' || t.dtype === 'F16' || t.dtype === 'BF16')?.dtype ?? null;
  const model = buildModel(config, tensors, { task: arch.task });
  try {
    const peft = loadAdapter(model, {
      config: adapter.configBytes, weights: adapter.weights,
      configName: join(adapter.dir, 'adapter_config.json'), weightsName: join(adapter.dir, 'adapter_model.safetensors'),
    });
    tensors.clear(); // the model holds the weights now; the file copies can go
    return { model, peft, sourceDtype };
  } catch (e) {
    model.dispose();
    throw e;
  }
}
