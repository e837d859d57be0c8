/**
 * From the form's settings to the engine's validated config of the chosen method, and what it adapts on the
 * loaded model's module tree, with PEFT's trainable-parameter line. Everything method-specific is the method's
 * own (engine/peft/registry.ts).
 */
import { describeError, EngineError } from '../engine/errors';
import { resolveArchitecture } from '../engine/models';
import type { ModuleInfo, TaskType } from '../engine/models/types';
import { countBaseParams, formatTrainableLine } from '../engine/peft/params';
import { methodOf, RUN_STEPS_UNKNOWN, withRunSteps, type PeftConfig } from '../engine/peft/registry';
import type { PeftSettings, TargetResult } from './protocol';

/** The engine config for the form's settings; throws BAD_PEFT_CONFIG naming a bad value. */
export function toEngineConfig(p: PeftSettings, task: TaskType, baseName: string | null): PeftConfig {
  return methodOf(p.peftType).config({ ...p, taskType: task, baseModelNameOrPath: baseName }) as PeftConfig;
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
    const cfg = toEngineConfig(withRunSteps(p, RUN_STEPS_UNKNOWN), ctx.task, baseName); // the run fills its own step count
    const rep = methodOf(cfg.peftType).resolve({ modules: ctx.modules, rawConfig: ctx.config, task: ctx.task }, cfg);
    return {
      matched: rep.matched, modulesToSave: rep.modulesToSave, ...rep.count, line: formatTrainableLine(rep.count),
      ...(rep.roles ? { roles: rep.roles } : {}), ...(rep.virtualTokens ? { virtualTokens: rep.virtualTokens } : {}),
    };
  } catch (e) {
    if (e instanceof EngineError) return empty(e.code, e.message);
    return empty('BAD_PEFT_CONFIG', describeError(e));
  }
}
