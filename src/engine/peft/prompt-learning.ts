/**
 * What PEFT's PromptLearningConfig gives every prompt method (prompt tuning, P-tuning, prefix tuning): the
 * virtual-token count, and the model facts get_peft_model fills in (token_dim, num_layers,
 * num_attention_heads, num_transformer_submodules), which adapter_config.json records. Also the SEQ_CLS head
 * every prompt method trains beside its prompt (PEFT >= 0.16's PeftModelForSequenceClassification, see
 * promptHeadModules). Pure data and functions (no tfjs): the schema travels to the page.
 */
import { quoteValue } from '../quote';
import type { ModuleInfo, TaskType } from '../models/types';
import { bad, type AdapterConfigExtras, type Field } from './schema';

/** PeftModelForSequenceClassification adds these to modules_to_save (a module whose name ends with one is the head). */
export const PROMPT_HEAD_NAMES = ['classifier', 'score'] as const;

export const PROMPT_LEARNING_SCHEMA: readonly Field[] = [
  { key: 'numVirtualTokens', name: 'num_virtual_tokens', kind: 'int', default: 8, min: 1, ui: 'basic', help: 'Virtual tokens prepended to every input.' },
  // None in a fresh PEFT config; get_peft_model fills them from the model (here: from AdapterConfigExtras).
  { key: 'tokenDim', name: 'token_dim', kind: 'int', default: null, min: 1, nullable: true, ui: 'none', fromModel: true, help: 'Hidden size of the base model.' },
  { key: 'numTransformerSubmodules', name: 'num_transformer_submodules', kind: 'int', default: null, min: 1, max: 2, nullable: true, ui: 'none', fromModel: true, help: '1 for decoder-only and encoder-only models, 2 for encoder-decoder (SEQ_2_SEQ_LM).' },
  { key: 'numAttentionHeads', name: 'num_attention_heads', kind: 'int', default: null, min: 1, nullable: true, ui: 'none', fromModel: true, help: 'Attention heads of the base model.' },
  { key: 'numLayers', name: 'num_layers', kind: 'int', default: null, min: 1, nullable: true, ui: 'none', fromModel: true, help: 'Layers of the base model.' },
  { key: 'autoMapping', name: 'auto_mapping', kind: 'fixed', default: null, help: '' },
  // PEFT >= 0.16 has modules_to_save on prompt configs and saves ["classifier", "score"] for SEQ_CLS; 0.15.2 has no
  // such field, so it is read (and checked) but never written.
  { key: 'modulesToSave', name: 'modules_to_save', kind: 'names', default: null, ui: 'none', write: false, help: 'Modules trained in full beside the prompt (the SEQ_CLS head, always).' },
];

export interface PromptLearningFields {
  numVirtualTokens: number;
  tokenDim: number | null;
  numTransformerSubmodules: number | null;
  numAttentionHeads: number | null;
  numLayers: number | null;
  /** Read from PEFT >= 0.16 files only; the SEQ_CLS head trains whatever it says. */
  modulesToSave?: string[] | null;
}

/**
 * num_transformer_submodules as PEFT resolves it: the config's value, else what get_peft_model fills in, 2 for
 * SEQ_2_SEQ_LM (a prompt per stack, encoder and decoder) and 1 for every other task.
 */
export function promptSubmodules(cfg: { numTransformerSubmodules: number | null }, task: TaskType | null | undefined): number {
  return cfg.numTransformerSubmodules ?? (task === 'SEQ_2_SEQ_LM' ? 2 : 1);
}

/** The model facts as written: the model's own where known, else what the config holds. */
export function promptLearningJson(cfg: PromptLearningFields, extras: AdapterConfigExtras): Record<string, unknown> {
  return {
    num_attention_heads: extras.numAttentionHeads ?? cfg.numAttentionHeads,
    num_layers: extras.numLayers ?? cfg.numLayers,
    // get_peft_model fills None with 1 for every task but SEQ_2_SEQ_LM (2: encoder and decoder).
    num_transformer_submodules: promptSubmodules(cfg, extras.task ?? (cfg as { taskType?: TaskType | null }).taskType),
    token_dim: extras.tokenDim ?? cfg.tokenDim,
  };
}

/**
 * Checks the fields every prompt method shares (PEFT's wording where PEFT raises); `method` names it in messages.
 * `tasks` are the method's tasks beyond CAUSAL_LM and SEQ_CLS.
 */
export function checkPromptLearning(
  cfg: PromptLearningFields & { taskType: TaskType | null }, method: string, tasks: { seq2seq?: boolean; tokenCls?: boolean } = {},
): void {
  if (cfg.taskType === 'TOKEN_CLS' && !tasks.tokenCls) bad(tokenClsRefusal(method));
  const ok: TaskType[] = ['CAUSAL_LM', 'SEQ_CLS', ...(tasks.tokenCls ? ['TOKEN_CLS' as const] : []), ...(tasks.seq2seq ? ['SEQ_2_SEQ_LM' as const] : [])];
  if (!ok.includes(cfg.taskType as TaskType)) {
    bad(`task_type ${quoteValue(cfg.taskType)} is not supported for ${method}; use ${ok.slice(0, -1).join(', ')} or ${ok[ok.length - 1]}.`);
  }
  const n = cfg.numVirtualTokens as unknown;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1) {
    bad(`num_virtual_tokens must be an integer >= 1; got ${quoteValue(n ?? null)}.`);
  }
  const submodules = cfg.taskType === 'SEQ_2_SEQ_LM' ? 2 : 1;
  if ((cfg.numTransformerSubmodules ?? submodules) !== submodules) {
    bad(`num_transformer_submodules must be ${submodules} for ${cfg.taskType} (got ${cfg.numTransformerSubmodules}).`);
  }
  // Only the head PEFT adds itself can be trained beside a prompt here; other modules would need full copies.
  const extra = (cfg.modulesToSave ?? []).filter((m) => !(PROMPT_HEAD_NAMES as readonly string[]).includes(m));
  if (extra.length) {
    bad(`modules_to_save ${quoteValue(extra)} with ${method} is not supported yet (only the SEQ_CLS head, which always trains).`);
  }
}

/**
 * Why prompt tuning and P-tuning do not train TOKEN_CLS. PeftModelForTokenClassification (0.15.2) puts their
 * virtual tokens in front of the input and passes the labels on unchanged, so the token classifier returns
 * num_virtual_tokens more positions than there are labels and the model's loss fails on the shapes. Prefix tuning
 * keeps the length (its prefix is past keys / values) and trains TOKEN_CLS.
 */
export function tokenClsRefusal(method: string): string {
  return `PEFT's ${method} cannot train TOKEN_CLS: it prepends the virtual tokens, so the token classifier returns more positions than there are labels and the loss fails on the shapes; tag tokens with LoRA, DoRA, IA3, AdaLoRA or prefix tuning (task_type "TOKEN_CLS").`;
}

/**
 * The SEQ_CLS / TOKEN_CLS head a prompt method trains (PEFT >= 0.16 wraps it in a ModulesToSaveWrapper; 0.15.2
 * left it frozen, see docs/engine.md): every module whose name ends with "classifier" or "score" (_set_trainable's
 * plain endswith), outermost first. Empty for CAUSAL_LM and SEQ_2_SEQ_LM.
 */
export function promptHeadModules(modules: ModuleInfo[], task: TaskType | null): string[] {
  if (task !== 'SEQ_CLS' && task !== 'TOKEN_CLS') return [];
  const out: string[] = [];
  for (const m of modules) {
    if (!m.name || !PROMPT_HEAD_NAMES.some((h) => m.name.endsWith(h))) continue;
    if (out.some((w) => m.name.startsWith(`${w}.`))) continue;
    out.push(m.name);
  }
  return out;
}
