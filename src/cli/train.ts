/**
 * `train --model DIR --data FILE --task causal_lm|seq_cls --method lora|ia3|adalora|prompt_tuning|p_tuning|prefix_tuning [...] --out DIR`:
 * fine-tunes with a TrainingSession and writes adapter_model.safetensors + adapter_config.json (PEFT's files),
 * metrics.jsonl (one row per step, plus eval rows), labels.json (seq_cls) and run.json (what was run).
 */
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { EngineError } from '../engine/errors';
import { resolveArchitecture } from '../engine/models';
import { formatTrainableLine } from '../engine/peft/params';
import { DEFAULT_ARGS, TrainingSession, type TrainingArgs } from '../engine/session';
import { plannedSteps, type SchedulerType } from '../engine/train/schedule';
import { splitValidation } from '../engine/train/data-parse';
import {
  BACKEND_OPTION, choice, flag, helpText, int, note, num, parseArgv, readModel, readTokenizer, required, startBackend, str, task,
  usage, writeJson, type CommandSpec, type Parsed,
} from './common';
import { PEFT_OPTIONS, method, peftConfigFromFlags, resolveTargetsOnTree } from './peft-options';
import { checkAgainstModel, labelIds, locateTokenizedProblem, readDataFile, toEngineExamples, type DataOptions, type RawExample } from './train-data';

export const TRAIN: CommandSpec = {
  name: 'train',
  summary: 'Fine-tunes a model with a PEFT method (LoRA, DoRA, IA3, AdaLoRA, prompt tuning, P-tuning, prefix tuning) and writes a PEFT adapter plus metrics.jsonl.',
  usage: 'npm run cli -- train --model DIR --data FILE --task causal_lm|seq_cls --method lora|ia3|adalora|prompt_tuning|p_tuning|prefix_tuning [options] --out DIR',
  options: {
    model: { kind: 'value', arg: 'DIR|ID', help: 'Model folder (config.json + model.safetensors [+ tokenizer.json]) or Hub repo id owner/name[@rev] (HF_ENDPOINT, HF_TOKEN; cached in $PEFT_STUDIO_CACHE).' },
    tokenizer: { kind: 'value', arg: 'DIR', help: 'Folder with tokenizer.json (default: the model folder, if it has one).' },
    data: { kind: 'value', arg: 'FILE', help: 'Training data: .txt, .jsonl or .csv.' },
    task: { kind: 'value', arg: 'causal_lm|seq_cls', help: 'Task (default: from config.json architectures).' },
    ...PEFT_OPTIONS,
    steps: { kind: 'value', arg: 'N', help: 'Optimizer steps (overrides --epochs).' },
    epochs: { kind: 'value', arg: 'N', help: 'Epochs when --steps is not given (default 1).' },
    lr: { kind: 'value', arg: 'X', help: `Peak learning rate (default ${DEFAULT_ARGS.learningRate}).` },
    'batch-size': { kind: 'value', arg: 'N', help: `Examples per micro-batch (default ${DEFAULT_ARGS.batchSize}).` },
    'grad-accum': { kind: 'value', arg: 'N', help: 'Gradient accumulation steps (default 1).' },
    'warmup-steps': { kind: 'value', arg: 'N', help: 'Linear warm-up steps (default 0).' },
    scheduler: { kind: 'value', arg: 'linear|cosine|constant', help: 'Learning-rate schedule (default linear).' },
    'weight-decay': { kind: 'value', arg: 'X', help: 'AdamW weight decay (default 0).' },
    'max-grad-norm': { kind: 'value', arg: 'X', help: 'Gradient clipping norm (default 1; 0 = off).' },
    'loraplus-lr-ratio': { kind: 'value', arg: 'X', help: 'LoRA+: lora_B (and 1-D) tensors train at lr x this ratio (off by default; the paper uses 16).' },
    'gradient-checkpointing': { kind: 'flag', help: 'Recompute each block in the backward pass: much less memory, about 35% slower.' },
    'eval-steps': { kind: 'value', arg: 'N', help: 'Evaluate every N steps (default 0: only at the end).' },
    'max-length': { kind: 'value', arg: 'N', help: `Truncate examples to N tokens (default ${DEFAULT_ARGS.maxLength}).` },
    seed: { kind: 'value', arg: 'N', help: `Seed for init, shuffling, dropout and the split (default ${DEFAULT_ARGS.seed}).` },
    validation: { kind: 'value', arg: 'FILE', help: 'Validation data file (same format rules).' },
    'validation-split': { kind: 'value', arg: 'F', help: 'Hold out this fraction of --data for validation (e.g. 0.1).' },
    'num-labels': { kind: 'value', arg: 'N', help: 'seq_cls classes when the checkpoint has no head yet (default: from the labels).' },
    'pad-token-id': { kind: 'value', arg: 'N', help: "Sets config.json's pad_token_id (GPT-2 seq_cls without a tokenizer needs one)." },
    'text-column': { kind: 'value', arg: 'NAME', help: 'Column with the text (default "text").' },
    'label-column': { kind: 'value', arg: 'NAME', help: 'Column with the class label (default "label").' },
    'prompt-column': { kind: 'value', arg: 'NAME', help: 'Column with the prompt (default "prompt").' },
    'response-column': { kind: 'value', arg: 'NAME', help: 'Column with the response (default "response").' },
    'txt-lines': { kind: 'flag', help: 'TXT: one example per non-empty line (default: per blank-line-separated paragraph).' },
    'skip-bad-rows': { kind: 'flag', help: 'Skip malformed rows with a warning instead of stopping.' },
    'base-model-name': { kind: 'value', arg: 'NAME', help: 'base_model_name_or_path (default: the --model argument).' },
    ...BACKEND_OPTION,
    out: { kind: 'value', arg: 'DIR', help: 'Output folder.' },
  },
  notes: [
    'Data: JSONL rows {"text"} | {"text","label"} | {"prompt","response"} | {"input_ids":[...]} (+ "label" for seq_cls);',
    'CSV with a header (text,label or prompt,response); TXT paragraphs (or lines with --txt-lines).',
    'Label strings map to class ids in sorted order (integer labels are used as ids); see labels.json.',
  ].join('\n'),
};

function trainingArgs(p: Parsed): Partial<TrainingArgs> {
  const a: Partial<TrainingArgs> = {};
  const set = <K extends keyof TrainingArgs>(k: K, v: TrainingArgs[K] | undefined) => {
    if (v !== undefined) a[k] = v;
  };
  const steps = int(p, 'steps');
  const epochs = num(p, 'epochs');
  if (steps !== undefined && epochs !== undefined) throw usage('give --steps or --epochs, not both');
  set('maxSteps', steps);
  set('epochs', epochs);
  set('learningRate', num(p, 'lr'));
  set('batchSize', int(p, 'batch-size'));
  set('gradientAccumulationSteps', int(p, 'grad-accum'));
  set('warmupSteps', int(p, 'warmup-steps'));
  set('scheduler', choice(p, 'scheduler', ['linear', 'cosine', 'constant'] as const) as SchedulerType | undefined);
  set('weightDecay', num(p, 'weight-decay'));
  set('maxGradNorm', num(p, 'max-grad-norm'));
  set('loraplusLrRatio', num(p, 'loraplus-lr-ratio'));
  set('gradientCheckpointing', flag(p, 'gradient-checkpointing'));
  const ev = int(p, 'eval-steps');
  if (ev !== undefined && ev < 0) throw usage('--eval-steps must be >= 0');
  set('evalSteps', ev);
  set('maxLength', int(p, 'max-length'));
  set('seed', int(p, 'seed'));
  return a;
}

const round = (x: number, d = 6) => (Number.isFinite(x) ? Number(x.toPrecision(d)) : x);

export async function trainCommand(argv: string[]): Promise<void> {
  const p = parseArgv(TRAIN, argv);
  if (p.help) return void console.log(helpText(TRAIN));
  const modelDir = required(p, 'model', 'train');
  const dataPath = required(p, 'data', 'train');
  const outDir = required(p, 'out', 'train');
  const args = trainingArgs(p);
  const split = num(p, 'validation-split');
  if (split !== undefined && !(split > 0 && split < 1)) throw usage('--validation-split must be between 0 and 1');
  if (split !== undefined && str(p, 'validation') !== undefined) throw usage('give --validation or --validation-split, not both');
  const numLabels = int(p, 'num-labels');
  if (numLabels !== undefined && numLabels < 2) throw usage('--num-labels must be >= 2');

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
  };
  let trainRows: RawExample[] = readDataFile(dataPath, dataOpts);
  let validRows: RawExample[] = [];
  const validPath = str(p, 'validation');
  if (validPath !== undefined) validRows = readDataFile(validPath, dataOpts);
  else if (split !== undefined) {
    ({ train: trainRows, validation: validRows } = splitValidation(trainRows, split, args.seed ?? DEFAULT_ARGS.seed));
  }
  const tokenizer = await readTokenizer(modelDir, str(p, 'tokenizer'), tokenizerFiles);
  checkAgainstModel([...trainRows, ...validRows], arch.config.vocabSize, !!tokenizer, modelDir);

  let labels: string[] | null = null;
  let sessionLabels: number | undefined = numLabels;
  if (t === 'SEQ_CLS') {
    labels = labelIds(trainRows);
    const configured = config.num_labels !== undefined || config.id2label !== undefined ? arch.config.numLabels : undefined;
    const classes = numLabels ?? configured ?? Math.max(2, labels.length);
    if (labels.length > classes) {
      const ids = toEngineExamples(trainRows, labels);
      const row = trainRows[ids.findIndex((e) => e.label! >= classes)];
      throw usage(`${row.file} line ${row.line}: label "${row.label}" needs ${labels.length} classes but the model has ${classes} (set --num-labels for a new head)`);
    }
    if (!configured && numLabels === undefined) sessionLabels = classes;
  }
  const train = toEngineExamples(trainRows, labels);
  const validation = toEngineExamples(validRows, labels);
  const peftCfg = peftConfigFromFlags(p, t, baseName, plannedSteps({ ...DEFAULT_ARGS, ...args }, train.length));

  const padId = int(p, 'pad-token-id');
  if (padId !== undefined) {
    if (padId < 0 || padId >= arch.config.vocabSize) throw usage(`--pad-token-id must be a token id in 0..${arch.config.vocabSize - 1}`);
    config.pad_token_id = padId;
  }
  if (tokenizer && tokenizer.vocabSize > arch.config.vocabSize) {
    note(`warning: the tokenizer has ${tokenizer.vocabSize} ids but the model's vocabulary is ${arch.config.vocabSize}`);
  }

  const backend = await startBackend(p);
  let session: TrainingSession;
  try {
    session = await TrainingSession.create({
      config, weights: tensors, tokenizer: tokenizer ?? undefined, task: t, peft: peftCfg,
      data: { train, validation }, args, baseModelName: baseName, numLabels: sessionLabels,
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
    const fresh = (m as { report?: { initialised: string[] } }).report?.initialised ?? [];
    if (fresh.length) note(`note: not in the checkpoint, freshly initialised: ${fresh.join(', ')}`);

    mkdirSync(outDir, { recursive: true });
    const metricsPath = join(outDir, 'metrics.jsonl');
    writeFileSync(metricsPath, '');
    const log = (row: Record<string, unknown>) => appendFileSync(metricsPath, `${JSON.stringify(row)}\n`);
    if (labels) {
      writeJson(join(outDir, 'labels.json'), {
        id2label: Object.fromEntries(labels.map((l, i) => [String(i), l])),
        label2id: Object.fromEntries(labels.map((l, i) => [l, i])),
      });
    }
    let last: Record<string, unknown> = {};
    const evaluate = async (step: number) => {
      const e = await session.evaluate();
      const row: Record<string, unknown> = { step, eval_loss: round(e.evalLoss), eval_accuracy: round(e.accuracy) };
      if (e.f1 !== undefined) row.eval_f1 = round(e.f1);
      log(row);
      console.log(`eval @ ${step}: loss ${round(e.evalLoss, 5)} accuracy ${round(e.accuracy, 4)}${e.f1 !== undefined ? ` f1 ${round(e.f1, 4)}` : ''}`);
      last = { ...last, ...row };
    };
    const every = Math.max(1, Math.ceil(session.totalSteps / 100));
    // Epochs as HF's Trainer counts them (StepMetrics.epoch drops back to 0 at each epoch's last step).
    const batchesPerEpoch = Math.ceil(train.length / session.args.batchSize);
    const evalSteps = session.args.evalSteps;
    while (!session.done) {
      const s = await session.step();
      const row = {
        step: s.step, epoch: round((s.step * session.args.gradientAccumulationSteps) / batchesPerEpoch, 4), loss: round(s.loss), lr: round(s.lr), tokens_per_sec: round(s.tokensPerSec, 4), grad_norm: round(s.gradNorm),
      };
      log(row);
      last = { ...last, ...row };
      if (s.step % every === 0 || s.step === s.totalSteps) {
        console.log(`step ${s.step}/${s.totalSteps} loss ${round(s.loss, 5)} lr ${round(s.lr, 3)} grad_norm ${round(s.gradNorm, 4)} ${Math.round(s.tokensPerSec)} tok/s`);
      }
      if (session.hasValidation && evalSteps > 0 && s.step % evalSteps === 0) await evaluate(s.step);
    }
    if (session.hasValidation && (evalSteps === 0 || session.completedSteps % evalSteps !== 0)) await evaluate(session.completedSteps);

    const files = await session.exportAdapter();
    for (const [name, data] of Object.entries(files)) writeFileSync(join(outDir, name), data);
    writeJson(join(outDir, 'run.json'), {
      model: modelDir, task: t, method: method(p), backend, trainable: line,
      train_examples: train.length, validation_examples: validation.length, total_steps: session.totalSteps,
      args: session.args, final: last,
    });
    note(`adapter -> ${outDir}`);
  } finally {
    session.dispose();
  }
}
