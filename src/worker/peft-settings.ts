/**
 * From the form's PeftSettings to the engine's validated configs, and what a target spec matches over the
 * loaded model's module tree (PEFT's resolveLoraTargets), with PEFT's trainable-parameter line.
 */
import { describeError, EngineError } from '../engine/errors';
import { resolveArchitecture } from '../engine/models';
import type { ModuleInfo, TaskType } from '../engine/models/types';
import { countBaseParams, countLora, countPromptTuning, formatTrainableLine } from '../engine/peft/params';
import { loraConfig, type LoraConfig } from '../engine/peft/lora/config';
import { promptTuningConfig, type PromptTuningConfig } from '../engine/peft/prompt-tuning/config';
import { resolveLoraTargets } from '../engine/peft/targets';
import type { PeftSettings, TargetResult } from './protocol';

/** The engine config for the form's settings; throws BAD_PEFT_CONFIG naming a bad value. */
export function toEngineConfig(p: PeftSettings, task: TaskType, baseName: string | null): LoraConfig | PromptTuningConfig {
  if (p.method === 'LORA') {
    return loraConfig({
      taskType: task,
      r: p.r,
      loraAlpha: p.loraAlpha,
      loraDropout: p.loraDropout,
      bias: p.bias,
      useRslora: p.useRslora,
      initLoraWeights: p.initLoraWeights,
      targetModules: p.targetModules,
      excludeModules: p.excludeModules,
      layersToTransform: p.layersToTransform,
      layersPattern: p.layersPattern,
      baseModelNameOrPath: baseName,
    });
  }
  return promptTuningConfig({
    taskType: task,
    numVirtualTokens: p.numVirtualTokens,
    promptTuningInit: p.promptTuningInit,
    promptTuningInitText: p.promptTuningInit === 'TEXT' ? p.promptTuningInitText : null,
    tokenizerNameOrPath: p.promptTuningInit === 'TEXT' ? baseName : null,
    baseModelNameOrPath: baseName,
  });
}

export interface TreeContext {
  config: Record<string, unknown>;
  task: TaskType;
  modules: ModuleInfo[];
}

/** What the settings select and PEFT's trainable line; a config error comes back inline, never thrown. */
export function resolveTargets(ctx: TreeContext, p: PeftSettings, baseName: string | null): TargetResult {
  const r = resolveArchitecture(ctx.config, ctx.task);
  const tied = r.spec.tied(r.config, r.task);
  const empty = (code: string, message: string): TargetResult => {
    const count = { trainable: 0, all: countBaseParams(ctx.modules, tied) };
    return { matched: [], modulesToSave: [], ...count, line: formatTrainableLine(count), error: { code, message } };
  };
  try {
    const cfg = toEngineConfig(p, ctx.task, baseName);
    if (cfg.peftType === 'PROMPT_TUNING') {
      const count = countPromptTuning(ctx.modules, { numVirtualTokens: cfg.numVirtualTokens, tokenDim: r.config.hiddenSize }, ctx.task, tied);
      return { matched: [], modulesToSave: [], ...count, line: formatTrainableLine(count) };
    }
    const res = resolveLoraTargets(
      ctx.modules,
      {
        targetModules: cfg.targetModules,
        excludeModules: cfg.excludeModules,
        layersToTransform: cfg.layersToTransform,
        layersPattern: cfg.layersPattern,
        modulesToSave: cfg.modulesToSave,
      },
      { task: ctx.task, heads: r.spec.heads(r.config, r.task), modelType: r.config.modelType },
    );
    const count = countLora(ctx.modules, res, { r: cfg.r, bias: cfg.bias, tied });
    return { matched: res.matched, modulesToSave: res.modulesToSave, ...count, line: formatTrainableLine(count) };
  } catch (e) {
    if (e instanceof EngineError) return empty(e.code, e.message);
    return empty('BAD_PEFT_CONFIG', describeError(e));
  }
}
