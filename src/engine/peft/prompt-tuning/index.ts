/** Prompt tuning as a PEFT method: see method.ts. */
import { resolveArchitecture } from '../../models';
import type { PeftMethod } from '../method';
import { countPromptTuning } from '../params';
import { promptHeadModules, promptSubmodules } from '../prompt-learning';
import { fromAdapterConfigJson, PROMPT_TUNING_SCHEMA, promptTuningConfig, toAdapterConfigJson, type PromptTuningConfig } from './config';
import { PromptTuningModel } from './model';

export const promptTuning: PeftMethod<PromptTuningConfig> = {
  peftType: 'PROMPT_TUNING',
  label: 'Prompt tuning',
  description: 'Trains only a few virtual-token embeddings prepended to every input (and a classification head); the model stays frozen.',
  // PEFT's prompt-tuning guide trains at 3e-2.
  learningRate: 3e-2,
  prompt: true,
  unmergeable:
    "Prompt tuning learns virtual-token embeddings that are prepended to every input; no weight of the model changes, so there is nothing to fold in (PEFT has no merge_and_unload for prompt-learning adapters either). Use the adapter with PEFT, or train LoRA / IA3 to get a mergeable adapter.",
  tasks: ['CAUSAL_LM', 'SEQ_CLS', 'SEQ_2_SEQ_LM'],
  schema: PROMPT_TUNING_SCHEMA,
  config(p) {
    // A form sends its TEXT field whatever the init; it only counts for TEXT, whose tokenizer is the base model's.
    const text = p.promptTuningInit === 'TEXT';
    return promptTuningConfig({
      taskType: 'CAUSAL_LM', numVirtualTokens: 8, ...p,
      promptTuningInitText: text ? (p.promptTuningInitText ?? null) : null,
      tokenizerNameOrPath: text ? (p.tokenizerNameOrPath ?? p.baseModelNameOrPath ?? null) : (p.tokenizerNameOrPath ?? null),
    } as PromptTuningConfig);
  },
  fromJson: fromAdapterConfigJson,
  toJson: toAdapterConfigJson,
  resolve(ctx, cfg) {
    const r = resolveArchitecture(ctx.rawConfig, ctx.task);
    const count = countPromptTuning(ctx.modules, {
      numVirtualTokens: cfg.numVirtualTokens, tokenDim: r.config.hiddenSize,
      numTransformerSubmodules: promptSubmodules(cfg, ctx.task),
    }, ctx.task, r.spec.tied(r.config, r.task));
    return { matched: [], modulesToSave: promptHeadModules(ctx.modules, ctx.task), count, virtualTokens: cfg.numVirtualTokens };
  },
  // The stored tensors replace the initial values (and TEXT would need a tokenizer).
  forLoading: (cfg) => ({ ...cfg, promptTuningInit: 'RANDOM' }),
  create: (model, cfg, o) => new PromptTuningModel(model, cfg, o.seed, o.encode),
};
