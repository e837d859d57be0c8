/**
 * `train`'s data flags under the names people know from TRL / LLaMA-Factory style tools, as aliases of the
 * existing ones: --dataset ID (= --data hub:ID), --format (= --data-format; prompt_response reads prompt +
 * response / completion columns as prompt_completion does), --train-on-prompt (= --train-on-inputs),
 * --validation-split NAME (a split name of a Hub dataset, = --validation-split-name), and --packing.
 */
import { flag, str, usage, type CommandSpec, type Parsed } from './common';

export const DATA_ALIAS_OPTIONS: CommandSpec['options'] = {
  dataset: { kind: 'value', arg: 'ID', help: 'A Hub dataset owner/name[:config][@revision] (= --data hub:ID).' },
  format: { kind: 'value', arg: 'FORMAT', help: '= --data-format; prompt_response is prompt_completion (prompt + response or completion columns).' },
  'train-on-prompt': { kind: 'flag', help: '= --train-on-inputs: the loss on the prompts too.' },
  packing: {
    kind: 'flag',
    help: 'Pack short causal_lm examples into --max-length blocks (EOS between examples, label masks kept, as TRL packing); attention crosses the examples in a block.',
  },
};

/** Rewrites the aliases into the flags they stand for (in place), refusing an alias given with its original. */
export function applyDataAliases(p: Parsed): void {
  const o = p.opts;
  const dataset = str(p, 'dataset');
  if (dataset !== undefined) {
    if (o.has('data')) throw usage('give --dataset or --data, not both');
    if (!dataset.replace(/^hub:/, '')) throw usage('--dataset needs a dataset id such as owner/name');
    o.set('data', `hub:${dataset.replace(/^hub:/, '')}`);
    o.delete('dataset');
  }
  const format = str(p, 'format');
  if (format !== undefined) {
    if (o.has('data-format')) throw usage('give --format or --data-format, not both');
    o.set('data-format', format === 'prompt_response' ? 'prompt_completion' : format);
    o.delete('format');
  }
  if (flag(p, 'train-on-prompt')) o.set('train-on-inputs', 'true');
  o.delete('train-on-prompt');
  const vs = str(p, 'validation-split');
  // A number is the fraction to hold out; anything else is a split name, which only a Hub dataset has.
  if (vs !== undefined && vs.trim() !== '' && !Number.isFinite(Number(vs))) {
    if (!(o.get('data') ?? '').startsWith('hub:')) {
      throw usage(`--validation-split ${vs}: a split name is for Hub datasets (--dataset owner/name); for a file give a fraction such as 0.1, or --validation FILE`);
    }
    if (o.has('validation-split-name')) throw usage('give --validation-split NAME or --validation-split-name, not both');
    o.set('validation-split-name', vs);
    o.delete('validation-split');
  }
}
