/** Prefix tuning (PEFT's PrefixEncoder, peft_type PREFIX_TUNING) as a PEFT method: see method.ts. */
import { resolveArchitecture } from '../../models';
import type { PeftMethod } from '../method';
import { countPrefixTuning } from './count';
import { promptHeadModules } from '../prompt-learning';
import {
  fromAdapterConfigJson, prefixDims, prefixEncoderHiddenSize, PREFIX_TUNING_SCHEMA, prefixTuningConfig, toAdapterConfigJson,
  type PrefixTuningConfig,
} from './config';
import { PrefixTuningModel } from './model';

export const prefixTuning: PeftMethod<PrefixTuningConfig> = {
  peftType: 'PREFIX_TUNING',
  label: 'Prefix tuning',
  description: 'Trained key/value prefixes that every attention layer reads before the input; the model stays frozen.',
  // PEFT's examples/causal_language_modeling/peft_prefix_tuning_clm.ipynb trains at 3e-2.
  learningRate: 3e-2,
  prompt: true,
  unmergeable:
    "Prefix tuning adds learned key / value prefixes that every attention layer reads; they are extra positions, not a change to any weight, so there is nothing to fold in (PEFT has no merge_and_unload for prompt-learning adapters either). Use the adapter with PEFT, or train LoRA / IA3 to get a mergeable adapter.",
  tasks: ['CAUSAL_LM', 'SEQ_CLS', 'TOKEN_CLS'],
  schema: PREFIX_TUNING_SCHEMA,
  config: (p) => prefixTuningConfig({ taskType: 'CAUSAL_LM', numVirtualTokens: 8, ...p } as PrefixTuningConfig),
  fromJson: fromAdapterConfigJson,
  toJson: toAdapterConfigJson,
  resolve(ctx, cfg) {
    const r = resolveArchitecture(ctx.rawConfig, ctx.task);
    const d = prefixDims(r.config, cfg.numVirtualTokens);
    const count = countPrefixTuning(
      ctx.modules,
      {
        numVirtualTokens: cfg.numVirtualTokens, tokenDim: d.tokenDim, numLayers: d.numLayers, prefixProjection: cfg.prefixProjection,
        encoderHiddenSize: prefixEncoderHiddenSize(cfg, d.tokenDim),
      },
      ctx.task,
      r.spec.tied(r.config, r.task),
    );
    return { matched: [], modulesToSave: promptHeadModules(ctx.modules, ctx.task), count, virtualTokens: cfg.numVirtualTokens };
  },
  create: (model, cfg, o) => new PrefixTuningModel(model, cfg, o.seed),
};
