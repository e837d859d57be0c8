/**
 * `train --model DIR --data FILE --task causal_lm|seq_cls|token_cls|seq_2_seq_lm --method lora|ia3|adalora|prompt_tuning|p_tuning|prefix_tuning [...] --out DIR`:
 * fine-tunes with a TrainingSession and writes adapter_model.safetensors + adapter_config.json (PEFT's files),
 * metrics.jsonl (one row per step, plus eval rows), labels.json (seq_cls) and run.json (what was run).
 * With --save-steps / --eval-steps it keeps Trainer-style <out>/checkpoint-<step>/ folders, and --resume-from
 * continues one of them exactly (the same final adapter and metrics.jsonl rows as a run left uninterrupted).
 */
import { appendFileSync, copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { EngineError } from '../engine/errors';
import { moduleRoles, moduleTree, resolveArchitecture } from '../engine/models';
import { formatTrainableLine } from '../engine/peft/params';
import { findMinimalTargetModules } from '../engine/peft/targets';
import { BEST_METRICS, DEFAULT_ARGS, TrainingSession, type TrainingArgs } from '../engine/session';
import { metricsRow, type CheckpointFiles } from '../engine/train/checkpoint';
import { checkpointName, readCheckpointDir, rotateCheckpoints, writeCheckpointDir } from './checkpoints';
import { plannedSteps, type SchedulerType } from '../engine/train/schedule';
import { splitValidation } from '../engine/train/data-parse';
import { classBaselines } from '../engine/train/baselines';
import { RUN_DEFAULTS } from '../engine/train/defaults';
import {
  BACKEND_OPTION, choice, flag, helpText, int, note, num, parseArgv, readModel, readTokenizer, required, startBackend, str, task,
  usage, writeJson, type CommandSpec, type Parsed,
} from './common';
import { PEFT_OPTIONS, method, peftConfigFromFlags, resolveTargetsOnTree } from './peft-options';
import { METHODS } from '../engine/peft/registry';
import { PRESET_IDS, PRESET_LABELS, presetFor, presetRoleSelection } from '../engine/train/presets';
import { checkAgainstModel, labelIds, locateTokenizedProblem, readDataFile, toEngineExamples, type DataOptions, type RawExample } from './train-data';
import { CHAT_OPTIONS, chatFlags, describeChat, encodeChatRows } from './train-chat';
import { HUB_DATA_OPTIONS, isHubData, readHubData } from './train-hub';
import { applyDataAliases, DATA_ALIAS_OPTIONS } from './train-aliases';
import { describePacking, packForTraining, type PackStats } from '../engine/train/packing';
import { TOKEN_CLS_OPTIONS, encodeTokenClsRows, readTokenClsFile, tagList } from './train-tokcls';
import { SEQ2SEQ_OPTIONS, readSeq2SeqFile } from './train-seq2seq';

export const TRAIN: CommandSpec = {
  name: 'train',
  summary: 'Fine-tunes a model with a PEFT method (LoRA, DoRA, IA3, AdaLoRA, prompt tuning, P-tuning, prefix tuning) and writes a PEFT adapter plus metrics.jsonl.',
  usage: 'npm run cli -- train --model DIR --data FILE --task causal_lm|seq_cls|token_cls|seq_2_seq_lm --method lora|ia3|adalora|prompt_tuning|p_tuning|prefix_tuning [options] --out DIR',
  options: {
    model: { kind: 'value', arg: 'DIR|ID', help: 'Model folder (config.json + model.safetensors [+ tokenizer.json]) or Hub repo id owner/name[@rev] (HF_ENDPOINT, HF_TOKEN; cached in $PEFT_STUDIO_CACHE).' },
    tokenizer: { kind: 'value', arg: 'DIR', help: 'Folder with tokenizer.json (default: the model folder, if it has one).' },
    data: { kind: 'value', arg: 'FILE|hub:ID', help: 'Training data: .txt, .jsonl or .csv, or a Hub dataset hub:owner/name[:config][@revision] (HF_ENDPOINT, HF_TOKEN).' },
    task: { kind: 'value', arg: 'causal_lm|seq_cls|token_cls|seq_2_seq_lm', help: 'Task (default: from config.json architectures).' },
    preset: { kind: 'value', arg: 'quick|thorough', help: 'Start from the studio\'s measured preset for the task and method (lr, steps, batch, length, warmup, eval steps, schedule, all-linear targets; docs/presets.md); flags given override it.' },
    ...PEFT_OPTIONS,
    steps: { kind: 'value', arg: 'N', help: `Optimizer steps (default ${RUN_DEFAULTS.maxSteps} unless --epochs is given).` },
    epochs: { kind: 'value', arg: 'N', help: 'Train for this many epochs instead of a step count.' },
    lr: { kind: 'value', arg: 'X', help: `Peak learning rate (default ${RUN_DEFAULTS.learningRate}).` },
    'batch-size': { kind: 'value', arg: 'N', help: `Examples per micro-batch (default ${RUN_DEFAULTS.batchSize}).` },
    'grad-accum': { kind: 'value', arg: 'N', help: `Gradient accumulation steps (default ${RUN_DEFAULTS.gradientAccumulationSteps}).` },
    'warmup-steps': { kind: 'value', arg: 'N', help: `Linear warm-up steps (default ${RUN_DEFAULTS.warmupSteps}).` },
    scheduler: { kind: 'value', arg: 'linear|cosine|constant', help: `Learning-rate schedule (default ${RUN_DEFAULTS.scheduler}).` },
    'weight-decay': { kind: 'value', arg: 'X', help: `AdamW weight decay (default ${RUN_DEFAULTS.weightDecay}).` },
    'max-grad-norm': { kind: 'value', arg: 'X', help: `Gradient clipping norm (default ${RUN_DEFAULTS.maxGradNorm}; 0 = off).` },
    'loraplus-lr-ratio': { kind: 'value', arg: 'X', help: 'LoRA+: lora_B (and 1-D) tensors train at lr x this ratio (off by default; the paper uses 16).' },
    'gradient-checkpointing': { kind: 'flag', help: 'Recompute each block in the backward pass: much less memory, about 35% slower.' },
    'eval-steps': { kind: 'value', arg: 'N', help: `Evaluate every N steps when there is validation data (default ${RUN_DEFAULTS.evalSteps}; 0: only at the end).` },
    'save-steps': { kind: 'value', arg: 'N', help: 'Write <out>/checkpoint-<step>/ every N steps (default: at each evaluation; Ctrl-C also writes one).' },
    'save-total-limit': { kind: 'value', arg: 'K', help: `Keep at most K checkpoints (default ${RUN_DEFAULTS.saveTotalLimit}), deleting the oldest (never the best).` },
    'resume-from': { kind: 'value', arg: 'DIR', help: 'Continue the run of this checkpoint folder (give the run\'s own flags: same data, --steps/--epochs, method).' },
    'metric-for-best-model': { kind: 'value', arg: 'NAME', help: `Eval metric that picks the best checkpoint: ${BEST_METRICS.join(', ')} (default eval_loss).` },
    'greater-is-better': { kind: 'value', arg: 'true|false', help: 'Whether a larger metric is better (default: false for a loss, true otherwise).' },
    'load-best-model-at-end': { kind: 'flag', help: 'The final adapter in --out is the best checkpoint\'s (needs --eval-steps and validation data).' },
    'early-stopping-patience': { kind: 'value', arg: 'N', help: 'Stop after N evaluations in a row without improvement (needs --eval-steps and validation data).' },
    'max-length': { kind: 'value', arg: 'N', help: `Truncate examples to N tokens (default ${RUN_DEFAULTS.maxLength}).` },
    seed: { kind: 'value', arg: 'N', help: `Seed for init, shuffling, dropout and the split (default ${RUN_DEFAULTS.seed}).` },
    validation: { kind: 'value', arg: 'FILE', help: 'Validation data file (same format rules).' },
    'validation-split': { kind: 'value', arg: 'F|NAME', help: `Hold out this fraction of --data for validation (default ${RUN_DEFAULTS.validationSplit} when no validation file or split is given; 0: none), or a Hub dataset's split to evaluate on (e.g. validation).` },
    'num-labels': { kind: 'value', arg: 'N', help: 'seq_cls classes when the checkpoint has no head yet (default: from the labels).' },
    'pad-token-id': { kind: 'value', arg: 'N', help: "Sets config.json's pad_token_id (GPT-2 seq_cls without a tokenizer needs one)." },
    'text-column': { kind: 'value', arg: 'NAME', help: 'Column with the text (default "text").' },
    'label-column': { kind: 'value', arg: 'NAME', help: 'Column with the class label (default "label").' },
    'prompt-column': { kind: 'value', arg: 'NAME', help: 'Column with the prompt (default "prompt").' },
    'response-column': { kind: 'value', arg: 'NAME', help: 'Column with the response (default "response").' },
    'txt-lines': { kind: 'flag', help: 'TXT: one example per non-empty line (default: per blank-line-separated paragraph).' },
    'skip-bad-rows': { kind: 'flag', help: 'Skip malformed rows with a warning instead of stopping.' },
    ...CHAT_OPTIONS,
    ...TOKEN_CLS_OPTIONS,
    ...SEQ2SEQ_OPTIONS,
    ...HUB_DATA_OPTIONS,
    ...DATA_ALIAS_OPTIONS,
    'base-model-name': { kind: 'value', arg: 'NAME', help: 'base_model_name_or_path (default: the --model argument).' },
    ...BACKEND_OPTION,
    out: { kind: 'value', arg: 'DIR', help: 'Output folder.' },
  },
  notes: [
    'Data: JSONL rows {"text"} | {"text","label"} | {"prompt","response"} | {"input_ids":[...]} (+ "label" for seq_cls);',
    'CSV with a header (text,label or prompt,response); TXT paragraphs (or lines with --txt-lines).',
    'Instruction / chat rows (causal_lm, detected from the columns): alpaca {"instruction","input","output"},',
    'sharegpt {"conversations":[{"from","value"}]}, messages {"messages":[{"role","content"}]}, prompt_completion',
    '{"prompt","completion"}; loss on the responses only unless --train-on-inputs.',
    'Label strings map to class ids in sorted order (integer labels are used as ids); see labels.json.',
    'token_cls: CoNLL ("token label" lines, a blank line between sentences; .conll / .txt or --data-format conll),',
    'JSONL {"tokens":[...],"ner_tags":[...]} (tag names, or ids into --label-list) or {"input_ids":[...],"labels":[...]};',
    'or a Hub dataset (hub:ID) with tokens / ner_tags list columns, the tag names from its features (--text-column and',
    '--label-column choose other columns);',
    'words are tokenized with the model\'s tokenizer, the first sub-token labelled; eval adds seqeval entity P / R / F1.',
  ].join('\n'),
};

/**
 * The training flags as TrainingArgs fields, with their checks; a flag left out takes the shared run default
 * (src/engine/train/defaults.ts, the studio's too). The steps default applies unless --epochs is given.
 */
export function trainingArgs(p: Parsed): Partial<TrainingArgs> {
  const a: Partial<TrainingArgs> = {};
  const set = <K extends keyof TrainingArgs>(k: K, v: TrainingArgs[K] | undefined) => {
    if (v !== undefined) a[k] = v;
  };
  const steps = int(p, 'steps');
  const epochs = num(p, 'epochs');
  if (steps !== undefined && epochs !== undefined) throw usage('give --steps or --epochs, not both');
  const D = RUN_DEFAULTS;
  set('maxSteps', steps ?? (epochs === undefined ? D.maxSteps : undefined));
  set('epochs', epochs);
  set('learningRate', num(p, 'lr') ?? D.learningRate);
  set('batchSize', int(p, 'batch-size') ?? D.batchSize);
  set('gradientAccumulationSteps', int(p, 'grad-accum') ?? D.gradientAccumulationSteps);
  set('warmupSteps', int(p, 'warmup-steps') ?? D.warmupSteps);
  set('scheduler', (choice(p, 'scheduler', ['linear', 'cosine', 'constant'] as const) as SchedulerType | undefined) ?? D.scheduler);
  set('weightDecay', num(p, 'weight-decay') ?? D.weightDecay);
  set('maxGradNorm', num(p, 'max-grad-norm') ?? D.maxGradNorm);
  set('loraplusLrRatio', num(p, 'loraplus-lr-ratio'));
  set('gradientCheckpointing', flag(p, 'gradient-checkpointing'));
  const ev = int(p, 'eval-steps');
  if (ev !== undefined && ev < 0) throw usage('--eval-steps must be >= 0');
  set('evalSteps', ev ?? D.evalSteps);
  set('maxLength', int(p, 'max-length') ?? D.maxLength);
  set('seed', int(p, 'seed') ?? D.seed);
  const save = int(p, 'save-steps');
  if (save !== undefined && save < 1) throw usage('--save-steps must be >= 1');
  set('saveSteps', save);
  const limit = int(p, 'save-total-limit');
  if (limit !== undefined && limit < 1) throw usage('--save-total-limit must be >= 1');
  // Trainer keeps every checkpoint; with one at each evaluation by default, a long run would fill the disk.
  set('saveTotalLimit', limit ?? D.saveTotalLimit);
  set('metricForBestModel', choice(p, 'metric-for-best-model', [...BEST_METRICS, 'loss', 'accuracy', 'f1'] as const));
  const gib = choice(p, 'greater-is-better', ['true', 'false'] as const);
  if (gib !== undefined) set('greaterIsBetter', gib === 'true');
  set('loadBestModelAtEnd', flag(p, 'load-best-model-at-end'));
  const patience = int(p, 'early-stopping-patience');
  if (patience !== undefined && patience < 1) throw usage('--early-stopping-patience must be >= 1');
  set('earlyStoppingPatience', patience);
  const genRows = int(p, 'generation-eval-rows');
  if (genRows !== undefined && genRows < 1) throw usage('--generation-eval-rows must be >= 1');
  set('generationEvalRows', genRows);
  return a;
}

/**
 * The fraction of --data to hold out: --validation-split when given (0: none), else the shared default when no
 * validation data is given (--validation FILE, or a Hub dataset's split), else 0.
 */
export function validationFraction(p: Parsed): number {
  const split = num(p, 'validation-split');
  const other = str(p, 'validation') !== undefined || str(p, 'validation-split-name') !== undefined;
  if (split !== undefined) {
    if (!(split >= 0 && split < 1)) throw usage('--validation-split must be at least 0 (0: no validation split) and below 1');
    if (split > 0 && other) throw usage(str(p, 'validation') !== undefined ? 'give --validation or --validation-split, not both' : 'give --validation-split-name, --validation or --validation-split, not two of them');
    return split;
  }
  return other ? 0 : RUN_DEFAULTS.validationSplit;
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
const round = (x: number, d = 6) => (Number.isFinite(x) ? Number(x.toPrecision(d)) : x);

/**
 * --preset: the preset's values as flags, for each flag not given. The task comes from --task or the model
 * folder's config.json (a Hub id needs --task).
 */
function applyPreset(p: Parsed): void {
  const id = choice(p, 'preset', PRESET_IDS);
  if (id === undefined) return;
  let t = task(p);
  const dir = str(p, 'model');
  const config = dir && existsSync(join(dir, 'config.json')) ? (JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>) : null;
  if (!t && config) t = resolveArchitecture(config, undefined).task;
  if (!t) throw usage('--preset needs --task (causal_lm or seq_cls) when --model is not a local folder');
  const m = method(p).toUpperCase();
  const info = METHODS.find((x) => x.peftType === m);
  const preset = presetFor(id, t, m, info?.learningRate ?? DEFAULT_ARGS.learningRate);
  const a = preset.args;
  const flags: Record<string, string> = {
    lr: String(a.learningRate), 'batch-size': String(a.batchSize), 'max-length': String(a.maxLength),
    'warmup-steps': String(a.warmupSteps), 'eval-steps': String(a.evalSteps), scheduler: a.scheduler,
  };
  if (!p.opts.has('epochs')) flags.steps = String(a.maxSteps);
  if (preset.targets && !info?.prompt) {
    if (preset.targets === 'all-linear') flags['target-modules'] = 'all-linear';
    else if (config) {
      // The attention and MLP modules of this architecture, as the shortest PEFT list that selects them.
      const modules = moduleTree(config, t);
      const chosen = presetRoleSelection(preset.targets, moduleRoles(config, t, modules));
      const others = modules.map((m) => m.name).filter((n) => n && !chosen.includes(n));
      if (chosen.length) flags['target-modules'] = findMinimalTargetModules(chosen, others).sort().join(',');
    } else if (!p.opts.has('target-modules')) {
      note(`preset ${PRESET_LABELS[id]}: its targets (the ${preset.targets.roles.join(' and ')} modules) need the model's config.json; a Hub id keeps the architecture's default target_modules (give --target-modules to choose)`);
    }
  }
  for (const [k, v] of Object.entries(flags)) if (!p.opts.has(k)) p.opts.set(k, v);
  note(`preset ${PRESET_LABELS[id]}: ${Object.entries(flags).map(([k, v]) => `--${k} ${p.opts.get(k)}`).join(' ')}`);
}

export async function trainCommand(argv: string[]): Promise<void> {
  const p = parseArgv(TRAIN, argv);
  if (p.help) return void console.log(helpText(TRAIN));
  applyDataAliases(p);
  applyPreset(p);
  const modelDir = required(p, 'model', 'train');
  const dataPath = required(p, 'data', 'train');
  const outDir = required(p, 'out', 'train');
  const args = trainingArgs(p);
  const split = validationFraction(p);
  const numLabels = int(p, 'num-labels');
  if (numLabels !== undefined && numLabels < 2) throw usage('--num-labels must be >= 2');
  const evaluates = (args.evalSteps ?? 0) > 0 && (split > 0 || str(p, 'validation') !== undefined || str(p, 'validation-split-name') !== undefined);
  if (args.loadBestModelAtEnd && !evaluates) throw usage('--load-best-model-at-end needs --eval-steps > 0 and validation data (--validation, or --validation-split above 0)');
  if (args.earlyStoppingPatience !== undefined && !evaluates) throw usage('--early-stopping-patience needs --eval-steps > 0 and validation data (--validation, or --validation-split above 0)');
  if (args.loadBestModelAtEnd && args.saveSteps !== undefined && args.saveSteps % args.evalSteps! !== 0) {
    throw usage(`--load-best-model-at-end needs --save-steps to be a multiple of --eval-steps (${args.evalSteps}), so every best evaluation has a checkpoint`);
  }
  // --data-format conll is token classification's; the chat formats' parser never sees it.
  const conll = p.opts.get('data-format') === 'conll';
  if (conll) p.opts.delete('data-format');
  const chat = chatFlags(p);
  const resumeDir = str(p, 'resume-from');
  // Read and checked before the model is, so a wrong path fails fast.
  const resumeFrom: CheckpointFiles | undefined = resumeDir !== undefined ? readCheckpointDir(resumeDir) : undefined;

  // Everything that can be checked without tfjs first, so bad input fails fast.
  const { config, tensors, tokenizerFiles } = await readModel(modelDir);
  const arch = resolveArchitecture(config, task(p));
  const t = arch.task;
  const baseName = str(p, 'base-model-name') ?? modelDir;
  // The flags are checked now (before the data is read); the config the run uses also knows its step count.
  peftConfigFromFlags(p, t, baseName);
  const dataOpts: DataOptions = {
    task: t,
    textColumn: str(p, 'text-column'),
    labelColumn: str(p, 'label-column'),
    promptColumn: str(p, 'prompt-column'),
    responseColumn: str(p, 'response-column'),
    txtLines: flag(p, 'txt-lines'),
    skipBadRows: flag(p, 'skip-bad-rows'),
    format: chat.format,
  };
  const s2sOpts = { sourceColumn: str(p, 'source-column'), targetColumn: str(p, 'target-column'), skipBadRows: dataOpts.skipBadRows };
  const hubData = isHubData(dataPath) ? await readHubData(dataPath, p, dataOpts, s2sOpts) : null;
  if (!hubData && ['split', 'validation-split-name', 'max-rows'].some((f) => str(p, f) !== undefined)) {
    throw usage('--split, --validation-split-name and --max-rows are for Hub datasets (--data hub:owner/name)');
  }
  if (t !== 'TOKEN_CLS' && (conll || p.opts.has('label-list') || flag(p, 'label-all-tokens'))) throw usage('--data-format conll, --label-list and --label-all-tokens are for --task token_cls');
  const tokOpts = { conll, tokensColumn: str(p, 'text-column'), tagsColumn: str(p, 'label-column'), skipBadRows: dataOpts.skipBadRows };
  if (t !== 'SEQ_2_SEQ_LM' && ['source-column', 'target-column', 'max-target-length', 'generation-eval-rows'].some((f) => p.opts.has(f))) {
    throw usage('--source-column, --target-column, --max-target-length and --generation-eval-rows are for --task seq_2_seq_lm');
  }
  if (t === 'SEQ_2_SEQ_LM' && (chat.format !== undefined || flag(p, 'packing'))) {
    throw usage('seq_2_seq_lm reads a source and a target column (or input_ids + labels) from CSV / JSONL files or a Hub dataset; --data-format and --packing are not for it');
  }
  const readData = (path: string) =>
    t === 'TOKEN_CLS' ? readTokenClsFile(path, tokOpts) : t === 'SEQ_2_SEQ_LM' ? readSeq2SeqFile(path, s2sOpts) : readDataFile(path, dataOpts);
  let trainRows: RawExample[] = hubData ? hubData.train : readData(dataPath);
  let validRows: RawExample[] = hubData?.validation ?? [];
  const validPath = str(p, 'validation');
  if (hubData?.validation && validPath !== undefined) throw usage('give --validation-split-name, --validation or --validation-split, not two of them');
  if (validPath !== undefined) validRows = readData(validPath);
  const heldOut = validPath === undefined && !hubData?.validation && split > 0;
  if (heldOut) {
    ({ train: trainRows, validation: validRows } = splitValidation(trainRows, split, args.seed ?? DEFAULT_ARGS.seed));
    if (num(p, 'validation-split') === undefined && validRows.length) note(`holding out ${validRows.length} of ${trainRows.length + validRows.length} rows for validation (--validation-split ${split} by default; 0 keeps them all for training)`);
  }
  const tokenizer = await readTokenizer(modelDir, str(p, 'tokenizer'), tokenizerFiles, arch.config.vocabSize);
  checkAgainstModel([...trainRows, ...validRows], arch.config.vocabSize, !!tokenizer, modelDir);
  // Conversations are rendered and tokenized now, cut to the length the session will use (prompt methods' virtual
  // tokens take positions too), so truncation keeps the responses.
  const virtual = (peftConfigFromFlags(p, t, baseName) as { numVirtualTokens?: number }).numVirtualTokens ?? 0;
  const maxLength = Math.min(args.maxLength ?? DEFAULT_ARGS.maxLength, arch.config.maxPositions - virtual);
  const chatTrain = encodeChatRows(trainRows, tokenizer, chat, maxLength, dataOpts.skipBadRows);
  const chatValid = encodeChatRows(validRows, tokenizer, chat, maxLength, dataOpts.skipBadRows);
  if (chatTrain) {
    trainRows = chatTrain.rows;
    if (chatTrain.template?.note) note(`note: ${chatTrain.template.note}`);
    note(describeChat(chatTrain, chat.trainOn, maxLength));
  }
  if (chatValid) validRows = chatValid.rows;

  let labels: string[] | null = null;
  let sessionLabels: number | undefined = numLabels;
  if (t === 'SEQ_CLS') {
    // Rows held out of --data are still its rows: a class only they have is one of its labels.
    const rowsOfData = heldOut ? [...trainRows, ...validRows] : trainRows;
    labels = labelIds(rowsOfData);
    const configured = config.num_labels !== undefined || config.id2label !== undefined ? arch.config.numLabels : undefined;
    const classes = numLabels ?? configured ?? Math.max(2, labels.length);
    if (labels.length > classes) {
      const ids = toEngineExamples(rowsOfData, labels);
      const row = rowsOfData[ids.findIndex((e) => e.label! >= classes)];
      throw usage(`${row.file} line ${row.line}: label "${row.label}" needs ${labels.length} classes but the model has ${classes} (set --num-labels for a new head)`);
    }
    if (!configured && numLabels === undefined) sessionLabels = classes;
  } else if (t === 'TOKEN_CLS') {
    const configured = config.num_labels !== undefined || config.id2label !== undefined;
    const id2label = config.id2label as Record<string, string> | undefined;
    const configNames = configured ? Array.from({ length: arch.config.numLabels }, (_, i) => id2label?.[String(i)] ?? `LABEL_${i}`) : null;
    labels = tagList([...trainRows, ...validRows], str(p, 'label-list'), configNames, hubData);
    if (configured && numLabels === undefined && labels.length !== arch.config.numLabels) {
      throw usage(`the label list has ${labels.length} tags (${labels.join(', ')}) but ${modelDir} has ${arch.config.numLabels} labels; give --label-list with ${arch.config.numLabels} tags in id order`);
    }
    if (numLabels !== undefined && numLabels !== labels.length) throw usage(`--num-labels ${numLabels} but the label list has ${labels.length} tags`);
    encodeTokenClsRows(trainRows, labels, tokenizer, !!flag(p, 'label-all-tokens'));
    encodeTokenClsRows(validRows, labels, tokenizer, !!flag(p, 'label-all-tokens'));
    // The session scores entities by these names, and a new head gets this many outputs.
    config.id2label = Object.fromEntries(labels.map((l, i) => [String(i), l]));
    config.label2id = Object.fromEntries(labels.map((l, i) => [l, i]));
    sessionLabels = labels.length;
  }
  let train = toEngineExamples(trainRows, t === 'SEQ_CLS' ? labels : null);
  let validation = toEngineExamples(validRows, t === 'SEQ_CLS' ? labels : null);
  let packStats: PackStats | null = null;
  if (flag(p, 'packing')) {
    if (t !== 'CAUSAL_LM') throw usage('--packing is for causal_lm training');
    const o = { maxLength, encode: tokenizer ? (s: string) => tokenizer.encode(s) : undefined, eosTokenId: tokenizer?.eosTokenId ?? arch.config.eosTokenId };
    ({ examples: train, stats: packStats } = packForTraining(train, o));
    if (validation.length) validation = packForTraining(validation, o).examples;
    note(describePacking(packStats, maxLength));
  }
  const peftCfg = peftConfigFromFlags(p, t, baseName, plannedSteps({ ...DEFAULT_ARGS, ...args }, train.length));

  const padId = int(p, 'pad-token-id');
  if (padId !== undefined) {
    if (padId < 0 || padId >= arch.config.vocabSize) throw usage(`--pad-token-id must be a token id in 0..${arch.config.vocabSize - 1}`);
    config.pad_token_id = padId;
  }

  const backend = await startBackend(p);
  let session: TrainingSession;
  try {
    session = await TrainingSession.create({
      config, weights: tensors, tokenizer: tokenizer ?? undefined, task: t, peft: peftCfg,
      data: { train, validation }, args, baseModelName: baseName, numLabels: sessionLabels, resumeFrom,
      maxTargetLength: int(p, 'max-target-length'),
    });
  } catch (e) {
    // The engine numbers rows per list; point at the file line when the tokenizer is the cause.
    if (e instanceof EngineError && e.code === 'BAD_DATA' && tokenizer) {
      locateTokenizedProblem([...trainRows, ...validRows], tokenizer, arch.config.vocabSize);
    }
    throw e;
  }
  try {
    const m = session.model;
    const line = formatTrainableLine(resolveTargetsOnTree(m.rawConfig, m.task, m.modules, peftCfg).count);
    console.log(line);
    note(`${m.className} + ${peftCfg.peftType} on ${backend}: ${train.length} training / ${validation.length} validation examples, ${session.totalSteps} steps`);
    const base = t === 'SEQ_CLS' ? classBaselines(train, validation, m.config.numLabels) : null;
    if (base) note(`baselines on this split: majority class ${pct(base.majority)}, bag-of-words logistic regression ${pct(base.bagOfWords)} validation accuracy`);
    const fresh = (m as { report?: { initialised: string[] } }).report?.initialised ?? [];
    if (fresh.length) note(`note: not in the checkpoint, freshly initialised: ${fresh.join(', ')}`);

    mkdirSync(outDir, { recursive: true });
    const metricsPath = join(outDir, 'metrics.jsonl');
    const log = (row: Record<string, unknown>) => appendFileSync(metricsPath, `${JSON.stringify(row)}\n`);
    // A resumed run rewrites the rows up to its checkpoint from the checkpoint's log_history (timings excepted).
    writeFileSync(metricsPath, '');
    for (const e of session.logHistory) log(metricsRow(e));
    if (resumeDir !== undefined) note(`resuming from ${resumeDir} at step ${session.completedSteps}/${session.totalSteps}`);
    if (labels) {
      writeJson(join(outDir, 'labels.json'), {
        id2label: Object.fromEntries(labels.map((l, i) => [String(i), l])),
        label2id: Object.fromEntries(labels.map((l, i) => [l, i])),
      });
    }
    let last: Record<string, unknown> = {};
    for (const e of session.logHistory) last = { ...last, ...metricsRow(e) };
    const evaluate = async () => {
      const e = await session.evaluate();
      const row = metricsRow(session.logHistory[session.logHistory.length - 1]);
      log(row);
      const pr = e.precision !== undefined ? ` precision ${round(e.precision, 4)} recall ${round(e.recall ?? NaN, 4)}` : '';
      const gen = e.exactMatch !== undefined ? ` exact_match ${round(e.exactMatch, 4)} chrf ${round(e.chrf ?? NaN, 4)} rougeL ${round(e.rougeL ?? NaN, 4)}` : '';
      console.log(`eval @ ${session.completedSteps}: loss ${round(e.evalLoss, 5)} accuracy ${round(e.accuracy, 4)}${pr}${e.f1 !== undefined ? ` f1 ${round(e.f1, 4)}` : ''}${gen}`);
      if (e.entities) note(`  entities: ${Object.entries(e.entities).map(([k, v]) => `${k} f1 ${round(v.f1, 4)} (${v.support})`).join(', ') || 'none in the validation data'}`);
      last = { ...last, ...row };
    };
    // The best checkpoint so far: the resumed run's, if it recorded one under this folder.
    let bestDir: string | null = resumeFrom ? bestCheckpointOf(resumeFrom, outDir) : null;
    const save = async (why: string) => {
      const step = session.completedSteps;
      const rel = checkpointName(step);
      if (session.latestIsBest) bestDir = join(outDir, rel);
      const files = await session.checkpoint({ outputDir: outDir, bestModelCheckpoint: bestDir });
      const dir = writeCheckpointDir(outDir, step, files);
      const removed = rotateCheckpoints(outDir, session.args.saveTotalLimit, bestDir);
      note(`${why}checkpoint -> ${dir}${removed.length ? ` (removed ${removed.map((d) => relative(outDir, d)).join(', ')})` : ''}`);
    };
    // Ctrl-C: finish the step under way, write a checkpoint, and stop (resume with --resume-from).
    // A terminal's Ctrl-C reaches every process of the group, so `npm run cli` delivers it twice at once: only a
    // second press at least half a second after the first quits without the checkpoint.
    let interrupted = 0;
    const onSigint = () => {
      if (interrupted) {
        if (Date.now() - interrupted > 500) process.exit(130);
        return;
      }
      interrupted = Date.now();
      note('stopping after this step (Ctrl-C again to quit at once)');
    };
    process.on('SIGINT', onSigint);
    const every = Math.max(1, Math.ceil(session.totalSteps / 100));
    const evalSteps = session.args.evalSteps;
    try {
      while (!session.done) {
        const s = await session.step();
        // A step awaits only settled promises; without a turn of the event loop Ctrl-C would never be seen.
        await new Promise((r) => setImmediate(r));
        const row = metricsRow(session.logHistory[session.logHistory.length - 1], s.tokensPerSec);
        log(row);
        last = { ...last, ...row };
        if (s.step % every === 0 || s.step === s.totalSteps) {
          console.log(`step ${s.step}/${s.totalSteps} loss ${round(s.loss, 5)} lr ${round(s.lr, 3)} grad_norm ${round(s.gradNorm, 4)} ${Math.round(s.tokensPerSec)} tok/s`);
        }
        if (session.hasValidation && evalSteps > 0 && s.step % evalSteps === 0) await evaluate();
        if (session.saveDue(s.step)) await save('');
        if (interrupted && !session.done) {
          if (!session.saveDue(s.step)) await save('interrupted: ');
          throw new EngineError('CANCELLED', `Stopped at step ${s.step}/${s.totalSteps}; continue with --resume-from ${join(outDir, checkpointName(s.step))} and the same flags.`);
        }
      }
    } finally {
      process.off('SIGINT', onSigint);
    }
    if (session.stoppedEarly) note(`early stopping: ${session.args.metricForBestModel} did not improve for ${session.args.earlyStoppingPatience} evaluations (best ${round(session.bestMetric ?? NaN, 5)} at step ${session.bestStep})`);
    if (session.hasValidation && (evalSteps === 0 || session.completedSteps % evalSteps !== 0)) await evaluate();

    const files = await session.exportAdapter();
    for (const [name, data] of Object.entries(files)) writeFileSync(join(outDir, name), data);
    let final = 'the last step';
    if (session.args.loadBestModelAtEnd && bestDir) {
      for (const name of Object.keys(files)) copyFileSync(join(bestDir, name), join(outDir, name));
      final = `the best checkpoint (${relative(outDir, bestDir)}, ${session.args.metricForBestModel} ${round(session.bestMetric ?? NaN, 5)})`;
    }
    // As transformers saves it with a tokenizer, so inference can render prompts the way the run trained on them.
    if (chatTrain?.template) writeFileSync(join(outDir, 'chat_template.jinja'), chatTrain.template.template);
    writeJson(join(outDir, 'run.json'), {
      model: modelDir, task: t, method: method(p), backend, trainable: line,
      ...(chatTrain ? { data_format: chatTrain.format, chat_template: chatTrain.template?.name ?? null, train_on: chat.trainOn, trained_tokens: chatTrain.stats.trainedTokens, tokens: chatTrain.stats.tokens } : {}),
      ...(packStats ? { packing: { examples: packStats.examples, blocks: packStats.blocks, tokens: packStats.tokens, separators: packStats.separators, dropped_blocks: packStats.dropped } } : {}),
      train_examples: train.length, validation_examples: validation.length, total_steps: session.totalSteps,
      completed_steps: session.completedSteps, stopped_early: session.stoppedEarly,
      best_metric: session.bestMetric, best_step: session.bestStep, best_model_checkpoint: bestDir ? relative(outDir, bestDir) : null,
      adapter_from: session.args.loadBestModelAtEnd && bestDir ? relative(outDir, bestDir) : 'last_step',
      args: session.args, final: last,
    });
    note(`adapter (${final}) -> ${outDir}`);
  } finally {
    session.dispose();
  }
}

/** The best checkpoint a resumed run had recorded, when it is a folder of this --out. */
function bestCheckpointOf(files: CheckpointFiles, outDir: string): string | null {
  const st = JSON.parse(files['trainer_state.json'] as string) as { resume: { bestStep: number | null } };
  const step = st.resume.bestStep;
  const dir = step != null ? join(outDir, checkpointName(step)) : null;
  return dir && existsSync(dir) ? dir : null;
}
