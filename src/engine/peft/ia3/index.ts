/** (IA)^3 as a PEFT method: see method.ts. */
import { resolveArchitecture } from '../../models';
import type { PeftMethod } from '../method';
import { countIa3 } from './count';
import { fromAdapterConfigJson, IA3_SCHEMA, ia3Config, toAdapterConfigJson, type IA3Config } from './config';
import { Ia3Model } from './model';
import { resolveIa3Targets } from './targets';

export const ia3: PeftMethod<IA3Config> = {
  peftType: 'IA3',
  label: 'IA3',
  description: 'Learned vectors that rescale chosen Linear / Conv1D outputs (feed-forward ones: inputs); the fewest trainable parameters.',
  // The (IA)^3 paper (T-Few) trains at 3e-3 (PEFT's IA3 seq2seq example uses 8e-3).
  learningRate: 3e-3,
  prompt: false,
  tasks: ['CAUSAL_LM', 'SEQ_CLS', 'TOKEN_CLS', 'SEQ_2_SEQ_LM'],
  schema: IA3_SCHEMA,
  config: (p) => ia3Config(p),
  fromJson: fromAdapterConfigJson,
  toJson: toAdapterConfigJson,
  resolve(ctx, cfg) {
    const r = resolveArchitecture(ctx.rawConfig, ctx.task);
    const res = resolveIa3Targets(ctx.modules, cfg, { heads: r.spec.heads(r.config, r.task), defaults: r.spec.peftDefaults(r.config) });
    const count = countIa3(ctx.modules, res, { feedforward: res.feedforward, tied: r.spec.tied(r.config, r.task) });
    const roles = Object.fromEntries(res.feedforward.map((n) => [n, 'feedforward']));
    return { matched: res.matched, modulesToSave: res.modulesToSave, count, roles, savedTargetModules: res.savedTargetModules };
  },
  create: (model, cfg, o) => new Ia3Model(model, cfg, o.seed),
};
