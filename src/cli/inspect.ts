/**
 * `inspect <model-dir> [--task seq_cls|causal_lm|token_cls|seq_2_seq_lm] [--out tree.json]`: the model's named_modules() tree with
 * direct parameter shapes, in PyTorch order (root module named ""), and PyTorch's total parameter count.
 * Needs only config.json.
 */
import { countParams, moduleTree, resolveArchitecture } from '../engine/models';
import { jsonRows, note, parseArgv, readModelConfig, str, task, writeOut, helpText, type CommandSpec } from './common';
import type { TaskType } from '../engine/models/types';

export const INSPECT: CommandSpec = {
  name: 'inspect',
  summary: "Writes the model's module tree (named_modules() order, direct parameter shapes) and its total parameter count.",
  usage: 'npm run cli -- inspect <model-dir | owner/name[@rev]> [--task seq_cls|causal_lm|token_cls|seq_2_seq_lm] --out tree.json',
  positionals: [{ name: 'model', help: 'Folder with config.json, or a Hub repo id (HF_ENDPOINT, HF_TOKEN); weights are not read, only safetensors headers.', required: true }],
  options: {
    task: { kind: 'value', arg: 'seq_cls|causal_lm|token_cls|seq_2_seq_lm', help: 'Model head (default: from config.json architectures).' },
    out: { kind: 'value', arg: 'FILE', help: 'Where to write the JSON (default: stdout).' },
  },
  notes: 'Output: {"model_type", "class_name", "task", "modules": [{"name", "type", "params": {name: shape}}], "total_params"}',
};

export interface InspectResult {
  model_type: string;
  class_name: string;
  task: string;
  modules: { name: string; type: string; params: Record<string, number[]> }[];
  total_params: number;
}

/** The tree and total for a config.json object. */
export function inspectConfig(config: Record<string, unknown>, t?: TaskType): InspectResult {
  const r = resolveArchitecture(config, t);
  const modules = moduleTree(config, r.task);
  const total = countParams(modules, r.spec.tied(r.config, r.task));
  return { model_type: r.config.modelType, class_name: r.className, task: r.task, modules, total_params: total };
}

export async function inspectCommand(argv: string[]): Promise<void> {
  const p = parseArgv(INSPECT, argv);
  if (p.help) return void console.log(helpText(INSPECT));
  const res = inspectConfig(await readModelConfig(p.positionals[0]), task(p));
  const { modules, ...head } = res;
  const text = `{\n${Object.entries(head).map(([k, v]) => `  ${JSON.stringify(k)}: ${JSON.stringify(v)},`).join('\n')}\n  "modules": ${jsonRows(modules)}\n}\n`;
  const out = str(p, 'out');
  if (out) {
    writeOut(out, text);
    note(`${res.class_name}: ${res.modules.length} modules, ${res.total_params} parameters -> ${out}`);
  } else process.stdout.write(text);
}
