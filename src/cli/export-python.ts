/**
 * `export-python` takes exactly `train`'s arguments and, instead of training, writes a Python project to --out
 * that runs the same job with transformers' Trainer + PEFT (accelerate, DeepSpeed ZeRO-2, FSDP): train.py,
 * requirements.txt, accelerate/*.yaml, data/ and README.md.
 */
import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { resolveArchitecture } from '../engine/models';
import { pythonProject } from '../engine/export/python-project';
import { DEFAULT_ARGS, type TrainingArgs } from '../engine/session';
import { splitValidation } from '../engine/train/data-parse';
import { plannedSteps } from '../engine/train/schedule';
import { flag, helpText, int, note, num, parseArgv, readModelConfig, required, str, task, usage, writeOut, type CommandSpec } from './common';
import { peftConfigFromFlags } from './peft-options';
import { TRAIN, trainingArgs, validationFraction } from './train';
import { applyDataAliases } from './train-aliases';
import { labelIds, readDataFile, type DataOptions } from './train-data';

export const EXPORT_PYTHON: CommandSpec = {
  ...TRAIN,
  name: 'export-python',
  summary: "Writes a Python project (transformers Trainer + PEFT, accelerate / DeepSpeed / FSDP configs, the data) that runs `train`'s job on bigger machines.",
  usage: 'npm run cli -- export-python <the same options as train> --out DIR',
  options: { ...TRAIN.options, out: { kind: 'value', arg: 'DIR', help: 'Folder for the project (train.py, requirements.txt, accelerate/, data/, README.md).' } },
  notes: `${TRAIN.notes}\nThe project's MODEL is --base-model-name when given, else --model as written (use a Hub repo id to run it elsewhere).`,
};

export async function exportPythonCommand(argv: string[]): Promise<void> {
  const p = parseArgv(EXPORT_PYTHON, argv);
  if (p.help) return void console.log(helpText(EXPORT_PYTHON));
  applyDataAliases(p);
  if (flag(p, 'packing')) throw usage("export-python writes a Trainer project that pads each example; it does not pack yet, so drop --packing");
  const modelArg = required(p, 'model', 'export-python');
  const dataPath = required(p, 'data', 'export-python');
  const outDir = required(p, 'out', 'export-python');
  const args: TrainingArgs = { ...DEFAULT_ARGS, ...trainingArgs(p) };
  const split = validationFraction(p) || undefined;
  const validPath = str(p, 'validation');
  if (str(p, 'resume-from') !== undefined) throw usage('export-python: --resume-from is for `train`; train.py takes --resume-from-checkpoint (its own checkpoints) or --resume-adapter DIR');

  const config = await readModelConfig(modelArg);
  const arch = resolveArchitecture(config, task(p));
  const baseName = str(p, 'base-model-name') ?? modelArg;
  const dataOpts: DataOptions = {
    task: arch.task, textColumn: str(p, 'text-column'), labelColumn: str(p, 'label-column'), promptColumn: str(p, 'prompt-column'),
    responseColumn: str(p, 'response-column'), txtLines: flag(p, 'txt-lines'), skipBadRows: flag(p, 'skip-bad-rows'),
  };
  // Read as train reads it: a file train would refuse is refused here, and the labels and step count match.
  const rows = readDataFile(dataPath, dataOpts);
  if (validPath !== undefined) readDataFile(validPath, dataOpts);
  const trainCount = split !== undefined ? splitValidation(rows, split, args.seed).train.length : rows.length;
  const peft = peftConfigFromFlags(p, arch.task, baseName, plannedSteps(args, trainCount));
  let labels: string[] | null = null;
  let numLabels: number | null = null;
  if (arch.task === 'SEQ_CLS') {
    labels = labelIds(rows);
    const configured = config.num_labels !== undefined || config.id2label !== undefined ? arch.config.numLabels : undefined;
    numLabels = int(p, 'num-labels') ?? configured ?? Math.max(2, labels.length);
  }
  const files = pythonProject({
    model: baseName, modelType: arch.config.modelType, task: arch.task, peft, args,
    data: {
      train: { name: basename(dataPath), bytes: new Uint8Array(readFileSync(dataPath)) },
      validation: validPath !== undefined ? { name: basename(validPath), bytes: new Uint8Array(readFileSync(validPath)) } : null,
      validationSplit: split ?? null,
      textColumn: dataOpts.textColumn, labelColumn: dataOpts.labelColumn, promptColumn: dataOpts.promptColumn,
      responseColumn: dataOpts.responseColumn, txtLines: dataOpts.txtLines,
    },
    labels, numLabels, padTokenId: int(p, 'pad-token-id') ?? null,
  });
  for (const [name, data] of Object.entries(files)) writeOut(join(outDir, name), data);
  note(`${arch.className} + ${peft.peftType}: Python project -> ${outDir} (${Object.keys(files).join(', ')}); run: accelerate launch train.py`);
}
