/**
 * `targets <model-dir> [PEFT options] [--task] [--out targets.json]`: which modules a PEFT config adapts and
 * PEFT's get_nb_trainable_parameters numbers, from config.json alone; prints print_trainable_parameters' line.
 */
import { moduleTree, resolveArchitecture } from '../engine/models';
import type { TaskType } from '../engine/models/types';
import { formatTrainableLine } from '../engine/peft/params';
import { choice, helpText, note, parseArgv, readModelConfig, str, task, writeJson, type CommandSpec, type Parsed } from './common';
import { PEFT_OPTIONS, peftConfigFromFlags, resolveTargetsOnTree } from './peft-options';

export const TARGETS: CommandSpec = {
  name: 'targets',
  summary: "Resolves PEFT's target modules on a model (config.json is enough) and counts trainable / all parameters like PEFT.",
  usage: 'npm run cli -- targets <model-dir> (--target-modules a,b | --target-regex R) [options] --out targets.json',
  positionals: [{ name: 'model', help: 'Folder with config.json, or a Hub repo id owner/name[@rev].', required: true }],
  options: {
    task: { kind: 'value', arg: 'seq_cls|causal_lm|token_cls|seq_2_seq_lm', help: 'Model head (default: from config.json architectures).' },
    'task-type': { kind: 'value', arg: 'CAUSAL_LM|SEQ_CLS|TOKEN_CLS|SEQ_2_SEQ_LM|none', help: "PEFT task_type (default: the model's task; none = bare PeftModel)." },
    ...PEFT_OPTIONS,
    'base-model-name': { kind: 'value', arg: 'NAME', help: 'base_model_name_or_path (default: the model-dir argument).' },
    out: { kind: 'value', arg: 'FILE', help: 'Where to write the JSON (default: stdout).' },
  },
  notes: [
    'Without --target-modules / --target-regex, LoRA uses PEFT\'s default targets for the architecture.',
    'Without --out, prints the matched modules one per line. Output file: {"matched": [sorted names], "trainable": N, "all": M, "modules_to_save": [...], "saved_target_modules", "line"}',
  ].join('\n'),
};

export interface TargetsResult {
  matched: string[];
  trainable: number;
  all: number;
  modules_to_save: string[];
  saved_target_modules: string | string[] | null;
  line: string;
}

export async function targetsFor(p: Parsed): Promise<TargetsResult> {
  const dir = p.positionals[0];
  const config = await readModelConfig(dir);
  const r = resolveArchitecture(config, task(p));
  const tt = choice(p, 'task-type', ['CAUSAL_LM', 'SEQ_CLS', 'TOKEN_CLS', 'SEQ_2_SEQ_LM', 'none'] as const);
  const peftTask: TaskType | null = tt === undefined ? r.task : tt === 'none' ? null : tt;
  const cfg = peftConfigFromFlags(p, peftTask, str(p, 'base-model-name') ?? dir);
  const rep = resolveTargetsOnTree(config, r.task, moduleTree(config, r.task), cfg);
  return {
    matched: rep.matched,
    trainable: rep.count.trainable,
    all: rep.count.all,
    modules_to_save: rep.modulesToSave,
    saved_target_modules: rep.savedTargetModules ?? null,
    line: formatTrainableLine(rep.count),
  };
}

export async function targetsCommand(argv: string[]): Promise<void> {
  const p = parseArgv(TARGETS, argv);
  if (p.help) return void console.log(helpText(TARGETS));
  const res = await targetsFor(p);
  const out = str(p, 'out');
  if (out) {
    writeJson(out, res);
    note(`${res.matched.length} module(s) matched -> ${out}`);
  } else for (const m of res.matched) console.log(m);
  console.log(res.line);
}
