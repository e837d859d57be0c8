/** AdaLoRA (adaptive-rank SVD-shaped LoRA) as a PEFT method: see method.ts. */
import { resolveArchitecture } from '../../models';
import type { PeftMethod } from '../method';
import { countAdaLora } from './count';
import { ADALORA_SCHEMA, adaLoraConfig, fromAdapterConfigJson, keptRanks, toAdapterConfigJson, type AdaLoraConfig } from './config';
import { AdaLoraModel, resolveAdaLoraTargets } from './model';

export const adalora: PeftMethod<AdaLoraConfig> = {
  peftType: 'ADALORA',
  label: 'AdaLoRA',
  description: 'LoRA as P·Λ·Q with learned singular values; the rank budget is pruned during training to where it matters most.',
  // PEFT's AdaLoRA examples (examples/conditional_generation) train at 1e-3.
  learningRate: 1e-3,
  prompt: false,
  tasks: ['CAUSAL_LM', 'SEQ_CLS', 'TOKEN_CLS', 'SEQ_2_SEQ_LM'],
  schema: ADALORA_SCHEMA,
  config: (p) => adaLoraConfig(p),
  fromJson: fromAdapterConfigJson,
  toJson: toAdapterConfigJson,
  resolve(ctx, cfg) {
    const r = resolveArchitecture(ctx.rawConfig, ctx.task);
    const res = resolveAdaLoraTargets(ctx.modules, cfg, { task: cfg.taskType ?? ctx.task, heads: r.spec.heads(r.config, r.task), defaults: r.spec.peftDefaults(r.config) });
    // A loaded adapter's rank_pattern is what its tensors hold; a fresh config starts every module at init_r.
    const kept = keptRanks(cfg.rankPattern);
    const count = countAdaLora(ctx.modules, res, { r: (m) => kept.get(m) ?? cfg.initR, bias: cfg.bias, tied: r.spec.tied(r.config, r.task) });
    return { matched: res.matched, modulesToSave: res.modulesToSave, count };
  },
  create: (model, cfg, o) => new AdaLoraModel(model, cfg, o.seed),
};
