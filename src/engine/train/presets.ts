/**
 * Training presets: "Quick demo" (learning visible in about two minutes on a 2-core laptop, WASM) and "Thorough"
 * (more steps and context for a better adapter), per task and method. Plain data, no tfjs: the studio's Training
 * panel and `cli train --preset` read the same table. Every number was measured on the built-in model
 * (public/models/sotu-gpt2; public/models/sotu-t5 for SEQ_2_SEQ_LM) and data (public/datasets) with the command in
 * the comment; docs/presets.md has the whole table. A preset only fills fields: every one stays editable.
 */
import type { ModuleRole, TaskType } from '../models/types';

export type PresetId = 'quick' | 'thorough';
export const PRESET_IDS: readonly PresetId[] = ['quick', 'thorough'];
export const PRESET_LABELS: Record<PresetId, string> = { quick: 'Quick demo', thorough: 'Thorough' };

/** The training arguments a preset sets (the studio's and the CLI's names for the same Trainer fields). */
export interface PresetArgs {
  learningRate: number;
  maxSteps: number;
  batchSize: number;
  maxLength: number;
  warmupSteps: number;
  evalSteps: number;
  scheduler: 'linear' | 'cosine' | 'constant';
}

/**
 * target_modules a preset sets: "all-linear" (PEFT's every Linear / Conv1D but the output layer), or every Linear /
 * Conv1D module the architecture file gives one of these roles (models/spec.ts `roles`, the studio's "attention" and
 * "MLP" quick picks), written as the shortest PEFT list that selects them: for GPT-2 c_attn, c_proj, c_fc; for
 * BERT query, key, value, dense.
 */
export type PresetTargets = 'all-linear' | { roles: readonly ModuleRole[] };

export interface TrainPreset {
  id: PresetId;
  args: PresetArgs;
  /** target_modules for methods that adapt modules; null for prompt methods. */
  targets: PresetTargets | null;
  /** What the preset was measured to reach, for the studio to say (null: not measured for this method). */
  measured: string | null;
}

const ATTENTION_AND_MLP: PresetTargets = { roles: ['attention', 'mlp'] };

/** The modules a role-based preset selects, from a tree's Linear / Conv1D roles (TreeInfo.roles, models moduleRoles). */
export function presetRoleSelection(t: { roles: readonly ModuleRole[] }, roles: Readonly<Record<string, ModuleRole>>): string[] {
  return Object.keys(roles).filter((n) => t.roles.includes(roles[n])).sort();
}

/** Methods that put virtual tokens in front of the input instead of adapting modules. */
const PROMPT_METHODS = new Set(['PROMPT_TUNING', 'P_TUNING', 'PREFIX_TUNING']);

type Row = Omit<TrainPreset, 'id'>;

/*
 * LoRA rows (DoRA is LoRA with use_dora). Measured with
 *   npm run cli -- train --model public/models/sotu-gpt2 --data public/datasets/<d>/train.jsonl \
 *     --validation public/datasets/<d>/validation.jsonl --task <task> --method lora --r 8 --lora-alpha 16 \
 *     --target-modules all-linear --lr <lr> --steps <steps> --batch-size <b> --max-length <len> \
 *     --warmup-steps <w> --eval-steps <e> --scheduler <s> --out out/preset
 * (Node 20, wasm, 1 thread, 2-core VM shared with other jobs; the studio's WASM backend uses 2 threads).
 */
const LORA: Record<'SEQ_CLS' | 'CAUSAL_LM' | 'TOKEN_CLS' | 'SEQ_2_SEQ_LM', Record<PresetId, Row>> = {
  TOKEN_CLS: {
    // sotu-ner (--label-list O,B-PER,I-PER,B-LOC,I-LOC,B-DATE,I-DATE,B-NUM,I-NUM), lr 5e-3, batch 8, length 64,
    // warmup 5, eval 20, target_modules c_attn,c_proj,c_fc = the attention and MLP modules (all-linear would also
    // adapt the classifier, which PEFT trains in full; roles name the same modules on every architecture): entity F1 0.478 @20, 0.529 @40, 0.728 @60, 0.689 @80 (token accuracy 97.7% -> 98.4%; the
    // all-O tagger 96.5%, F1 0); about 60 s for 80 steps (docs/presets.md).
    quick: {
      args: { learningRate: 5e-3, maxSteps: 60, batchSize: 8, maxLength: 64, warmupSteps: 5, evalSteps: 20, scheduler: 'linear' },
      targets: ATTENTION_AND_MLP,
      measured: 'entity F1 0 -> 0.73 on the built-in sotu-ner tags after 60 steps (token accuracy 98%)',
    },
    // sotu-ner, one epoch (250 steps), lr 3e-3, eval 50: not measured yet.
    thorough: { args: { learningRate: 3e-3, maxSteps: 250, batchSize: 8, maxLength: 64, warmupSteps: 10, evalSteps: 50, scheduler: 'linear' }, targets: ATTENTION_AND_MLP, measured: null },
  },
  SEQ_CLS: {
    // spam, lr 3e-3, 500 steps, batch 8, length 64, warmup 10, cosine, eval 100, lora_dropout 0.05: validation
    // accuracy 75.5% @100, 84% @200, 89.5% @300, 89.5% @400, 91% @500 (majority class 50%, bag-of-words 96%, 92% on
    // the first 64 tokens); 407 s on a loaded machine. At 300 steps every setting tried stays at 88-89.5%: linear
    // (88%), cosine (88.5%), batch 16 x 150 (89%), length 96 x 200 (89%); lower / higher rates, LoRA+ 16,
    // r 16 / alpha 64 and batch 4 did worse (docs/presets.md).
    quick: {
      args: { learningRate: 3e-3, maxSteps: 500, batchSize: 8, maxLength: 64, warmupSteps: 10, evalSteps: 100, scheduler: 'cosine' },
      targets: 'all-linear',
      measured: '91% validation accuracy on the built-in spam data after 500 steps (majority class 50%, bag-of-words 96%)',
    },
    // spam, lr 2e-3, 450 steps (2 epochs), batch 8, length 128, warmup 20, eval 75: not measured to the end yet.
    thorough: { args: { learningRate: 2e-3, maxSteps: 450, batchSize: 8, maxLength: 128, warmupSteps: 20, evalSteps: 75, scheduler: 'linear' }, targets: 'all-linear', measured: null },
  },
  SEQ_2_SEQ_LM: {
    // cmudict-g2p (spelled-out words) on the built-in T5 public/models/sotu-t5 (--task seq_2_seq_lm, targets
    // all-linear = q,k,v,o,wi_0,wi_1,wo of both stacks), lr 5e-3, 150 steps, batch 16, length 32, warmup 10, eval 50:
    // eval loss 5.471 (base) -> 2.333 @50, 2.264 @100, 2.251 @150; token accuracy 29.5% -> 33.7%; ROUGE-L 0.25 ->
    // 0.31; chrF 9.6 -> 9.8 / 12.2 / 10.4; exact match 0-1 word in 200; about 90 s. The answers depend on the word
    // but are mostly wrong; a constant answer ("AH N") scores chrF 12.7, ROUGE-L at most 0.25 (docs/presets.md).
    quick: {
      args: { learningRate: 5e-3, maxSteps: 150, batchSize: 16, maxLength: 32, warmupSteps: 10, evalSteps: 50, scheduler: 'linear' },
      targets: 'all-linear',
      measured: 'eval loss 5.47 -> 2.25 and token accuracy 30% -> 34% on the built-in cmudict-g2p after 150 steps (few exact answers yet)',
    },
    // cmudict-g2p, lr 3e-3, 600 steps (2.4 epochs), batch 16, length 32, warmup 20, eval 150: eval loss 2.268 @150,
    // 2.236 @300, 2.186 @450, 2.164 @600; token accuracy 38.0%; ROUGE-L 0.34; chrF 10.9 -> 12.7; exact match 0.5%;
    // 230 s.
    thorough: {
      args: { learningRate: 3e-3, maxSteps: 600, batchSize: 16, maxLength: 32, warmupSteps: 20, evalSteps: 150, scheduler: 'linear' },
      targets: 'all-linear',
      measured: 'eval loss 5.47 -> 2.16 and token accuracy 30% -> 38% on the built-in cmudict-g2p after 600 steps (few exact answers yet)',
    },
  },
  CAUSAL_LM: {
    // sotu-fdr, lr 5e-3, 60 steps, batch 8, length 128, warmup 5, eval 20: eval loss 5.1845 (base) -> 5.1464 @20,
    // 5.1277 @40, 5.1200 @60 (next-token accuracy 15.4% -> 16.0%); 78 s. lr 2e-3: 5.1274 @60; the studio's old
    // defaults (lr 2e-4, c_attn only): 5.1778 @40.
    quick: {
      args: { learningRate: 5e-3, maxSteps: 60, batchSize: 8, maxLength: 128, warmupSteps: 5, evalSteps: 20, scheduler: 'linear' },
      targets: 'all-linear',
      measured: 'eval loss 5.18 -> 5.12 on the built-in State of the Union data after 60 steps',
    },
    // sotu-fdr, lr 3e-3, 170 steps (3 epochs), batch 8, length 128, warmup 10, eval 34: eval loss 5.1845 (base)
    // -> 5.1316 @34, 5.1188 @68, 5.1141 @102, 5.1120 @136, 5.1068 @170 (next-token accuracy 16.2%); 221 s.
    thorough: {
      args: { learningRate: 3e-3, maxSteps: 170, batchSize: 8, maxLength: 128, warmupSteps: 10, evalSteps: 34, scheduler: 'linear' },
      targets: 'all-linear',
      measured: 'eval loss 5.18 -> 5.11 on the built-in State of the Union data after 170 steps',
    },
  },
};

/**
 * The preset for a task and method. Methods other than LoRA keep the preset's steps, batch, length and
 * schedule with their own PEFT example learning rate (`methodLr`); those combinations are not measured.
 */
export function presetFor(id: PresetId, task: TaskType, method: string, methodLr: number): TrainPreset {
  // Other tasks start from the sequence-classification row (not measured for them).
  const measuredTask = task === 'CAUSAL_LM' || task === 'SEQ_CLS' || task === 'TOKEN_CLS' || task === 'SEQ_2_SEQ_LM';
  const row = LORA[measuredTask ? task : 'SEQ_CLS'][id];
  const lora = method === 'LORA';
  const prompt = PROMPT_METHODS.has(method);
  return {
    id,
    args: { ...row.args, learningRate: lora ? row.args.learningRate : methodLr },
    targets: prompt ? null : row.targets,
    measured: lora && measuredTask ? row.measured : null,
  };
}

/** Fields a preset sets, in the order the studio lists them. */
export const PRESET_FIELDS: readonly (keyof PresetArgs)[] = ['learningRate', 'maxSteps', 'batchSize', 'maxLength', 'warmupSteps', 'evalSteps', 'scheduler'];
