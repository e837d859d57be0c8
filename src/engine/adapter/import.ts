/** Loads a PEFT-saved adapter (adapter_config.json + adapter_model.safetensors) onto a base model, strictly. */
import { EngineError } from '../errors';
import { readSafetensors, type LoadedTensor } from '../io/safetensors';
import type { Model } from '../models/types';
import { createPeftModel, type PeftModel } from '../peft';
import { parsePeftConfig, type PeftConfig } from '../peft/config';
import { methodOf } from '../peft/registry';

export interface AdapterSource {
  /** adapter_config.json as bytes, text or parsed JSON. */
  config: Uint8Array | string | Record<string, unknown>;
  weights: Uint8Array | ArrayBuffer;
  /** Names for messages (default adapter_config.json / adapter_model.safetensors), e.g. the paths read. */
  configName?: string;
  weightsName?: string;
}

/**
 * Refuses tensors holding NaN or ±Infinity: they load without complaint and turn every logit into NaN. The message
 * names the file, the tensor, the first bad value and how many there are.
 */
export function checkFinite(tensors: Map<string, LoadedTensor>, fileName: string): void {
  for (const [name, t] of tensors) {
    if (!(t.data instanceof Float32Array)) continue;
    const d = t.data;
    let first = -1;
    let count = 0;
    for (let i = 0; i < d.length; i++) {
      if (!Number.isFinite(d[i])) {
        if (first < 0) first = i;
        count++;
      }
    }
    if (first >= 0) {
      throw new EngineError(
        'ADAPTER_MISMATCH',
        `${fileName}: tensor '${name.length > 120 ? `${name.slice(0, 120)}…` : name}' holds non-finite weights (${d[first]} at index ${first}; ` +
          `${count} of ${d.length} values are NaN or infinite). The adapter is corrupt, or its training diverged: use an earlier checkpoint or train it again.`,
      );
    }
  }
}

/** The adapter's config and tensors, read and checked against the model's task (no model is built yet). */
export function readAdapter(model: Model, src: AdapterSource): { config: PeftConfig; tensors: Map<string, LoadedTensor>; configName: string; weightsName: string } {
  const configName = src.configName ?? 'adapter_config.json';
  const weightsName = src.weightsName ?? 'adapter_model.safetensors';
  const config: PeftConfig = parsePeftConfig(src.config, configName);
  if (config.taskType && config.taskType !== model.task) {
    throw new EngineError(
      'ADAPTER_MISMATCH',
      `The adapter was trained for ${config.taskType} but the model is loaded as ${model.task} (${model.className}).`,
    );
  }
  const { tensors } = readSafetensors(src.weights, weightsName);
  checkFinite(tensors, weightsName);
  return { config, tensors, configName, weightsName };
}

/** token_dim as the method derives it from this model (hidden size, or prefix tuning's key/value width) must match. */
function checkTokenDim(peft: PeftModel, config: PeftConfig): void {
  const tokenDim = (config as { tokenDim?: number | null }).tokenDim;
  const own = peft.adapterExtras().tokenDim;
  if (tokenDim != null && own != null && tokenDim !== own) {
    const what = own === peft.base.config.hiddenSize ? 'hidden size' : 'key/value width';
    throw new EngineError('ADAPTER_MISMATCH', `The adapter's token_dim ${tokenDim} differs from the model's ${what} ${own}.`);
  }
}

/**
 * Builds the PEFT model the config describes and loads its tensors. Unlike PEFT, any key or shape that does
 * not fit the model is an error (PEFT would silently run the base model).
 */
export function loadAdapter(model: Model, src: AdapterSource): PeftModel {
  const { config, tensors, weightsName } = readAdapter(model, src);
  const method = methodOf(config.peftType);
  const peft = createPeftModel(model, method.forLoading ? method.forLoading(config) : config, 0);
  try {
    checkTokenDim(peft, config);
    peft.loadStateDict(tensors, weightsName);
  } catch (e) {
    peft.dispose();
    throw e;
  }
  return peft;
}

/**
 * Starts a training run's PEFT model from a saved adapter (PEFT's `from_pretrained(..., is_trainable=True)`),
 * strictly: the adapter must be of the run's method, every key and shape must fit, and its tensors must cover
 * exactly the run's trainable tensors (a trainable tensor the file does not hold would silently start from its
 * initialisation). P-tuning and projected prefix tuning continue on the saved table, as PEFT reloads them.
 * On failure the model may hold some of the file's values: the caller disposes it.
 */
export function startFromAdapter(peft: PeftModel, src: AdapterSource): PeftConfig {
  const { config, tensors, weightsName } = readAdapter(peft.base, src);
  if (config.peftType !== peft.peftType) {
    throw new EngineError(
      'ADAPTER_MISMATCH',
      `The adapter is ${config.peftType} but the run is set up for ${peft.peftType}: set the method to the adapter's to continue training it.`,
    );
  }
  checkTokenDim(peft, config);
  peft.loadStateDict(tensors, weightsName);
  const fromFile = new Set<unknown>();
  const names = new Map<unknown, string>();
  for (const [k, t] of peft.stateDict()) {
    names.set(t, k);
    if (tensors.has(k)) fromFile.add(t);
  }
  const missing = peft.trainableVariables().filter((v) => !fromFile.has(v));
  if (missing.length) {
    const what = missing.slice(0, 4).map((v) => names.get(v) ?? `a [${v.shape.join(', ')}] tensor`).join(', ');
    throw new EngineError(
      'ADAPTER_MISMATCH',
      `${weightsName} holds no values for ${missing.length} of the run's trainable tensors (${what}${missing.length > 4 ? ', …' : ''}), ` +
        'so training would not start from the adapter. Save the adapter with every trainable tensor (for SEQ_CLS, the classification head).',
    );
  }
  return config;
}
