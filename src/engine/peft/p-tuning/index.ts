/** P-tuning (PEFT's PromptEncoder, peft_type P_TUNING) as a PEFT method: see method.ts. */
import { resolveArchitecture } from '../../models';
import type { PeftMethod } from '../method';
import { countPTuning } from './count';
import { promptHeadModules, promptSubmodules } from '../prompt-learning';
import { encoderHiddenSize, fromAdapterConfigJson, P_TUNING_SCHEMA, pTuningConfig, toAdapterConfigJson, type PTuningConfig } from './config';
import { PTuningModel } from './model';

export const pTuning: PeftMethod<PTuningConfig> = {
  peftType: 'P_TUNING',
  label: 'P-tuning',
  description: 'Virtual-token embeddings produced by a small trained encoder (MLP or LSTM), prepended to every input; the model stays frozen.',
  // PEFT's examples/sequence_classification/P_Tuning.ipynb trains at 1e-3.
  learningRate: 1e-3,
  prompt: true,
  unmergeable:
    "P-tuning learns virtual-token embeddings (from its prompt encoder) that are prepended to every input; no weight of the model changes, so there is nothing to fold in (PEFT has no merge_and_unload for prompt-learning adapters either). Use the adapter with PEFT, or train LoRA / IA3 to get a mergeable adapter.",
  tasks: ['CAUSAL_LM', 'SEQ_CLS', 'SEQ_2_SEQ_LM'],
  schema: P_TUNING_SCHEMA,
  config: (p) => pTuningConfig({ taskType: 'CAUSAL_LM', numVirtualTokens: 8, ...p } as PTuningConfig),
  fromJson: fromAdapterConfigJson,
  toJson: toAdapterConfigJson,
  resolve(ctx, cfg) {
    const r = resolveArchitecture(ctx.rawConfig, ctx.task);
    const D = r.config.hiddenSize;
    const count = countPTuning(
      ctx.modules,
      {
        // PEFT's PromptEncoder has a row per virtual token and stack (2P for SEQ_2_SEQ_LM).
        numVirtualTokens: cfg.numVirtualTokens * promptSubmodules(cfg, ctx.task),
        tokenDim: D, encoderHiddenSize: encoderHiddenSize(cfg, D),
        lstm: cfg.encoderReparameterizationType === 'LSTM', encoderNumLayers: cfg.encoderNumLayers,
      },
      ctx.task,
      r.spec.tied(r.config, r.task),
    );
    return { matched: [], modulesToSave: promptHeadModules(ctx.modules, ctx.task), count, virtualTokens: cfg.numVirtualTokens };
  },
  create: (model, cfg, o) => new PTuningModel(model, cfg, o.seed),
};
