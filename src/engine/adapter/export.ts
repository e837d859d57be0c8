/** Writes a PEFT model as the two files PEFT's save_pretrained produces. */
import { formatAdapterConfigJson } from '../peft/config';
import type { PeftModel } from '../peft/model';
import { methodOf } from '../peft/registry';
import { writeSafetensors, type TensorToWrite } from '../io/safetensors';

export const ADAPTER_WEIGHTS = 'adapter_model.safetensors';
export const ADAPTER_CONFIG = 'adapter_config.json';

export interface AdapterFiles {
  'adapter_model.safetensors': Uint8Array;
  'adapter_config.json': string;
}

export interface AdapterMeta {
  baseModelNameOrPath: string | null;
  revision?: string | null;
}

/** The adapter_config.json object for a PEFT model, with what target resolution produced. */
export function adapterConfigObject(peft: PeftModel, meta: AdapterMeta): Record<string, unknown> {
  return methodOf(peft.peftType).toJson(peft.config, {
    baseModelNameOrPath: meta.baseModelNameOrPath, revision: meta.revision ?? null, ...peft.adapterExtras(),
  });
}

/** adapter_model.safetensors (F32, metadata {"format":"pt"}) + adapter_config.json, as PEFT 0.15.2 writes them. */
export async function exportAdapter(peft: PeftModel, meta: AdapterMeta): Promise<AdapterFiles> {
  const tensors = new Map<string, TensorToWrite>();
  for (const [key, t] of peft.stateDict()) tensors.set(key, { shape: t.shape.slice(), data: (await t.data()) as Float32Array });
  return {
    [ADAPTER_WEIGHTS]: writeSafetensors(tensors, { format: 'pt' }),
    [ADAPTER_CONFIG]: formatAdapterConfigJson(adapterConfigObject(peft, meta)),
  };
}
