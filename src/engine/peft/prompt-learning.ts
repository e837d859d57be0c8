/**
 * What PEFT's PromptLearningConfig gives every prompt method (prompt tuning, P-tuning, prefix tuning): the
 * virtual-token count, and the model facts get_peft_model fills in (token_dim, num_layers,
 * num_attention_heads, num_transformer_submodules), which adapter_config.json records.
 */
import type { AdapterConfigExtras, Field } from './schema';

export const PROMPT_LEARNING_SCHEMA: readonly Field[] = [
  { key: 'numVirtualTokens', name: 'num_virtual_tokens', kind: 'int', default: 8, min: 1, ui: 'basic', help: 'Virtual tokens prepended to every input.' },
  // None in a fresh PEFT config; get_peft_model fills them from the model (here: from AdapterConfigExtras).
  { key: 'tokenDim', name: 'token_dim', kind: 'int', default: null, min: 1, nullable: true, ui: 'none', fromModel: true, help: 'Hidden size of the base model.' },
  { key: 'numTransformerSubmodules', name: 'num_transformer_submodules', kind: 'int', default: null, min: 1, max: 1, nullable: true, ui: 'none', fromModel: true, help: '1 for decoder-only and encoder-only models.' },
  { key: 'numAttentionHeads', name: 'num_attention_heads', kind: 'int', default: null, min: 1, nullable: true, ui: 'none', fromModel: true, help: 'Attention heads of the base model.' },
  { key: 'numLayers', name: 'num_layers', kind: 'int', default: null, min: 1, nullable: true, ui: 'none', fromModel: true, help: 'Layers of the base model.' },
  { key: 'autoMapping', name: 'auto_mapping', kind: 'fixed', default: null, help: '' },
];

export interface PromptLearningFields {
  numVirtualTokens: number;
  tokenDim: number | null;
  numTransformerSubmodules: number | null;
  numAttentionHeads: number | null;
  numLayers: number | null;
}

/** The model facts as written: the model's own where known, else what the config holds. */
export function promptLearningJson(cfg: PromptLearningFields, extras: AdapterConfigExtras): Record<string, unknown> {
  return {
    num_attention_heads: extras.numAttentionHeads ?? cfg.numAttentionHeads,
    num_layers: extras.numLayers ?? cfg.numLayers,
    // get_peft_model fills None with 1 for every task but SEQ_2_SEQ_LM.
    num_transformer_submodules: cfg.numTransformerSubmodules ?? 1,
    token_dim: extras.tokenDim ?? cfg.tokenDim,
  };
}
