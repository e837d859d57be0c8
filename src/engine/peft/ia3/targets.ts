/**
 * IA3's target resolution (peft/tuners/ia3/model.py 0.15.2): LoRA's matching rules via inject_adapter
 * (targets.ts), IA3's own architecture defaults for target_modules and feedforward_modules, no rewriting of long
 * target lists, and which matched modules are feed-forward (their input is scaled).
 */
import { EngineError } from '../../errors';
import type { ModuleInfo, TaskType } from '../../models/types';
import { pyFullMatch, resolveLoraTargets, type TargetContext, type TargetResolution } from '../targets';
import type { IA3Config } from './config';

export interface Ia3Resolution extends TargetResolution {
  /** Matched modules that scale their input (sorted). */
  feedforward: string[];
  /** feedforward_modules as adapter_config.json stores it (the architecture default filled in, lists sorted). */
  savedFeedforwardModules: string | string[];
}

/** IA3Model._create_new_module's types; Conv2d / Conv3d work in PEFT but not here. */
function checkIa3Module(m: ModuleInfo): void {
  if (m.type === 'Linear' || m.type === 'Conv1D') return;
  if (m.type === 'Conv2d' || m.type === 'Conv3d') {
    throw new EngineError('BAD_PEFT_CONFIG', `IA3 on ${m.type} modules (${m.name}) works in PEFT but not in PEFT Studio yet; target Linear or Conv1D modules.`);
  }
  throw new EngineError(
    'BAD_PEFT_CONFIG',
    `Target module ${m.name} (${m.type}) is not supported. Currently, only \`torch.nn.Linear\`, \`torch.nn.Conv2d\`, and \`Conv1D\` are supported.`,
  );
}

/** IA3's _check_target_module_feedforward: a str is re.fullmatch on the full name, a list entry a plain endswith. */
export function isFeedforward(name: string, feedforward: string | string[]): boolean {
  return typeof feedforward === 'string' ? pyFullMatch(feedforward, name) : feedforward.some((k) => name.endsWith(k));
}

/**
 * What get_peft_model(IA3Config) adapts, with PEFT's errors: TARGETS_NOT_FOUND for nothing matched or a missing
 * architecture default, BAD_PEFT_CONFIG for a module type IA3 cannot wrap.
 */
export function resolveIa3Targets(
  modules: ModuleInfo[],
  cfg: Pick<IA3Config, 'targetModules' | 'excludeModules' | 'feedforwardModules' | 'modulesToSave'> & { taskType: TaskType | null },
  ctx: Omit<TargetContext, 'task'>,
): Ia3Resolution {
  // _prepare_adapter_config: target_modules first, then feedforward_modules, each from IA3's own table.
  let target = cfg.targetModules;
  if (target === null || target === undefined) {
    const def = ctx.defaults.ia3;
    if (!def) throw new EngineError('TARGETS_NOT_FOUND', 'Please specify `target_modules` in `peft_config`');
    target = [...def];
  }
  let ff = cfg.feedforwardModules;
  if (ff === null || ff === undefined) {
    const def = ctx.defaults.ia3Feedforward;
    if (!def) throw new EngineError('TARGETS_NOT_FOUND', 'Please specify `feedforward_modules` in `peft_config`');
    ff = [...def];
  }
  const res = resolveLoraTargets(
    modules,
    { targetModules: target, excludeModules: cfg.excludeModules, modulesToSave: cfg.modulesToSave },
    { task: cfg.taskType, heads: ctx.heads, defaults: ctx.defaults },
    { minimizeTargets: false, checkModule: checkIa3Module, layerClass: 'peft.tuners.ia3.layer.Linear' },
  );
  const feedforward = ff;
  return {
    ...res,
    feedforward: res.matched.filter((n) => isFeedforward(n, feedforward)),
    savedFeedforwardModules: typeof ff === 'string' ? ff : [...new Set(ff)].sort(),
  };
}
