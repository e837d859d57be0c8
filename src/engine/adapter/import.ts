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

/**
 * Builds the PEFT model the config describes and loads its tensors. Unlike PEFT, any key or shape that does
 * not fit the model is an error (PEFT would silently run the base model).
 */
export function loadAdapter(model: Model, src: AdapterSource): PeftModel {
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
  const method = methodOf(config.peftType);
  const peft = createPeftModel(model, method.forLoading ? method.forLoading(config) : config, 0);
  try {
    // token_dim as the method derives it from this model: the hidden size, or for prefix tuning the key/value
    // width (PEFT's grouped-query rule), which is what the adapter would record if made here.
    const tokenDim = (config as { tokenDim?: number | null }).tokenDim;
    const own = peft.adapterExtras().tokenDim;
    if (tokenDim != null && own != null && tokenDim !== own) {
      const what = own === model.config.hiddenSize ? 'hidden size' : 'key/value width';
      throw new EngineError('ADAPTER_MISMATCH', `The adapter's token_dim ${tokenDim} differs from the model's ${what} ${own}.`);
    }
    peft.loadStateDict(tensors, weightsName);
  } catch (e) {
    peft.dispose();
    throw e;
  }
  return peft;
}
