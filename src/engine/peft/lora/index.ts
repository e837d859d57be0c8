/** LoRA (and rsLoRA, DoRA, rank / alpha patterns) as a PEFT method: see method.ts. */
import { resolveArchitecture } from '../../models';
import type { PeftMethod } from '../method';
import { countLora, loraFeatures } from '../params';
import { resolveLoraTargets } from '../targets';
import { fromAdapterConfigJson, LORA_SCHEMA, loraConfig, rankAndAlpha, toAdapterConfigJson, type LoraConfig } from './config';
import { LoraModel } from './model';

export const lora: PeftMethod<LoraConfig> = {
  peftType: 'LORA',
  label: 'LoRA',
  description: 'Low-rank update B·A added to chosen Linear / Conv1D weights; the base model stays frozen.',
  // PEFT's LoRA examples (e.g. examples/causal_language_modeling) train at 2e-4 to 3e-4.
  learningRate: 2e-4,
  prompt: false,
  tasks: ['CAUSAL_LM', 'SEQ_CLS', 'TOKEN_CLS', 'SEQ_2_SEQ_LM'],
  schema: LORA_SCHEMA,
  config: (p) => loraConfig(p),
  fromJson: fromAdapterConfigJson,
  toJson: toAdapterConfigJson,
  resolve(ctx, cfg) {
    const r = resolveArchitecture(ctx.rawConfig, ctx.task);
    const tied = r.spec.tied(r.config, r.task);
    const res = resolveLoraTargets(
      ctx.modules,
      {
        targetModules: cfg.targetModules, excludeModules: cfg.excludeModules, layersToTransform: cfg.layersToTransform,
        layersPattern: cfg.layersPattern, modulesToSave: cfg.modulesToSave,
      },
      { task: cfg.taskType, heads: r.spec.heads(r.config, r.task), defaults: r.spec.peftDefaults(r.config) },
    );
    const count = countLora(ctx.modules, res, { r: (m) => rankAndAlpha(cfg, m).r, bias: cfg.bias, tied });
    if (cfg.useDora) {
      // DoRA adds lora_magnitude_vector [out] per adapted module, trainable and counted in `all` (PEFT's numbers).
      const byName = new Map(ctx.modules.map((m) => [m.name, m]));
      const n = res.matched.reduce((a, name) => a + loraFeatures(byName.get(name)!).outFeatures, 0);
      count.trainable += n;
      count.all += n;
    }
    return { matched: res.matched, modulesToSave: res.modulesToSave, count, savedTargetModules: res.savedTargetModules };
  },
  create: (model, cfg, o) => new LoraModel(model, cfg, o.seed),
};
