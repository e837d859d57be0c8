/** adapter_config.json fields every PEFT method writes the same way (PeftConfigMixin / PeftConfig). */
import type { TaskType } from '../models/types';
import type { PeftConfigBase } from './method';
import type { AdapterConfigExtras } from './schema';

export function commonJson(peftType: string, cfg: PeftConfigBase, extras: AdapterConfigExtras): Record<string, unknown> {
  return {
    base_model_name_or_path: extras.baseModelNameOrPath ?? cfg.baseModelNameOrPath ?? null,
    // save_pretrained writes the config with inference_mode set.
    inference_mode: true,
    peft_type: peftType,
    revision: extras.revision !== undefined ? extras.revision : (cfg.revision ?? null),
    task_type: extras.task !== undefined ? extras.task : cfg.taskType,
    ...(extras.fields ?? {}),
  };
}

export function readCommon(json: Record<string, unknown>): { taskType: TaskType | null; baseModelNameOrPath: string | null; revision: string | null } {
  const pick = <T>(k: string, d: T): T => (json[k] === undefined ? d : (json[k] as T));
  return { taskType: pick('task_type', null), baseModelNameOrPath: pick('base_model_name_or_path', null), revision: pick('revision', null) };
}

/** Keys in json.dumps(sort_keys=True) order, so that an object compares like PEFT's file. */
export function sortKeys(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.keys(o).sort().map((k) => [k, o[k]]));
}
