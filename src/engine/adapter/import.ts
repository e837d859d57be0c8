/** Loads a PEFT-saved adapter (adapter_config.json + adapter_model.safetensors) onto a base model, strictly. */
import { EngineError } from '../errors';
import { readSafetensors } from '../io/safetensors';
import type { Model } from '../models/types';
import { createPeftModel, type PeftModel } from '../peft';
import { parsePeftConfig, type PeftConfig } from '../peft/config';
import { methodOf } from '../peft/registry';

export interface AdapterSource {
  /** adapter_config.json as text or parsed JSON. */
  config: string | Record<string, unknown>;
  weights: Uint8Array | ArrayBuffer;
}

/**
 * Builds the PEFT model the config describes and loads its tensors. Unlike PEFT, any key or shape that does
 * not fit the model is an error (PEFT would silently run the base model).
 */
export function loadAdapter(model: Model, src: AdapterSource): PeftModel {
  const config: PeftConfig = parsePeftConfig(src.config);
  if (config.taskType && config.taskType !== model.task) {
    throw new EngineError(
      'ADAPTER_MISMATCH',
      `The adapter was trained for ${config.taskType} but the model is loaded as ${model.task} (${model.className}).`,
    );
  }
  const { tensors } = readSafetensors(src.weights, 'adapter_model.safetensors');
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
    peft.loadStateDict(tensors, 'adapter_model.safetensors');
  } catch (e) {
    peft.dispose();
    throw e;
  }
  return peft;
}
