/**
 * `logits --model DIR [--adapter DIR] --input-ids "1,2,3;4,5,0" [--attention-mask "1,1,1;1,1,0"] --out F`:
 * the forward pass's logits as an F32 safetensors tensor `logits`, shaped like transformers' output
 * (CAUSAL_LM [B, T, V], with prompt tuning [B, P+T, V]; SEQ_CLS [B, num_labels]; TOKEN_CLS [B, T, num_labels]; SEQ_2_SEQ_LM
 * [B, T', V] over the decoder rows, from --decoder-input-ids or --labels, which also give `loss`). Adapters load strictly.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { loadAdapter } from '../engine/adapter/import';
import { EngineError } from '../engine/errors';
import { writeSafetensors } from '../engine/io/safetensors';
import { buildModel } from '../engine/models';
import type { TaskType } from '../engine/models/types';
import type { PeftModel } from '../engine/peft';
import { peftLoss } from '../engine/peft/model';
import { parsePeftConfig } from '../engine/peft/config';
import {
  BACKEND_OPTION, helpText, note, parseArgv, readModel, required, startBackend, str, task, usage, writeOut, type CommandSpec,
} from './common';

export const LOGITS: CommandSpec = {
  name: 'logits',
  summary: 'Runs the model (optionally with a PEFT adapter) on token ids and writes the logits as safetensors.',
  usage: 'npm run cli -- logits --model DIR [--adapter DIR] --input-ids "1,2,3;4,5,0" [--attention-mask "1,1,1;1,1,0"] --out logits.safetensors',
  options: {
    model: { kind: 'value', arg: 'DIR|ID', help: 'Model folder (config.json + model.safetensors) or Hub repo id owner/name[@rev].' },
    adapter: { kind: 'value', arg: 'DIR', help: 'PEFT adapter folder (adapter_config.json + adapter_model.safetensors).' },
    'input-ids': { kind: 'value', arg: 'IDS', help: 'Token ids: comma-separated, rows separated by ";" (equal lengths).' },
    'attention-mask': { kind: 'value', arg: 'MASK', help: '0/1 mask in the same layout (default: all ones).' },
    'decoder-input-ids': { kind: 'value', arg: 'IDS', help: 'seq_2_seq_lm: the decoder inputs, in the same layout (one row per input row).' },
    labels: { kind: 'value', arg: 'IDS', help: 'seq_2_seq_lm: the targets (-100 = not scored); the decoder reads them shifted right, and the loss is written too.' },
    task: { kind: 'value', arg: 'seq_cls|causal_lm|token_cls|seq_2_seq_lm', help: "Model head (default: the adapter's task_type, else config.json)." },
    ...BACKEND_OPTION,
    out: { kind: 'value', arg: 'FILE', help: 'Output .safetensors (F32 tensor "logits").' },
  },
};

/** "1,2,3;4,5,0" -> rows of integers, all the same length (`allowIgnore`: -100 too, for labels). */
export function parseMatrix(text: string, flagName: string, allowIgnore = false): number[][] {
  const rows = text.split(';').map((r) => r.trim()).filter((r) => r !== '');
  if (!rows.length) throw usage(`--${flagName} is empty`);
  const out = rows.map((r, i) =>
    r.split(',').map((s) => {
      const v = s.trim();
      if (!/^\d+$/.test(v) && !(allowIgnore && v === '-100')) {
        throw usage(`--${flagName}: row ${i + 1} has "${v}", expected non-negative integers${allowIgnore ? ' or -100' : ''}`);
      }
      return parseInt(v, 10);
    }),
  );
  const T = out[0].length;
  const bad = out.findIndex((r) => r.length !== T);
  if (bad >= 0) throw usage(`--${flagName}: row ${bad + 1} has ${out[bad].length} values but row 1 has ${T}; rows must be equally long`);
  return out;
}

export interface LogitsResult {
  shape: number[];
  data: Float32Array;
  /** SEQ_2_SEQ_LM with labels: the model's loss. */
  loss?: number;
}

/** SEQ_2_SEQ_LM decoder side: explicit decoder inputs, or labels (shifted right into them). */
export interface DecoderRows {
  decoderInputIds?: number[][];
  labels?: number[][];
}

/** Loads model (+ adapter), runs the forward pass, returns the logits. Assumes a backend is active. */
export async function computeLogits(
  modelDir: string, adapterDir: string | undefined, ids: number[][], mask: number[][] | undefined, t?: TaskType, dec: DecoderRows = {},
): Promise<LogitsResult> {
  const B = ids.length;
  const T = ids[0].length;
  if (mask && (mask.length !== B || mask[0].length !== T)) {
    throw usage(`--attention-mask is ${mask.length}x${mask[0].length} but --input-ids is ${B}x${T}`);
  }
  if (mask && mask.some((r) => r.some((v) => v !== 0 && v !== 1))) throw usage('--attention-mask values must be 0 or 1');
  let adapter: { config: Uint8Array; weights: Uint8Array; configName: string; weightsName: string } | undefined;
  if (adapterDir) {
    const read = (f: string) => {
      try {
        return readFileSync(join(adapterDir, f));
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        throw new EngineError('ADAPTER_MISMATCH', `${join(adapterDir, f)}: ${code === 'ENOENT' ? 'file not found' : (e as Error).message}`);
      }
    };
    adapter = {
      config: new Uint8Array(read('adapter_config.json')), weights: new Uint8Array(read('adapter_model.safetensors')),
      configName: join(adapterDir, 'adapter_config.json'), weightsName: join(adapterDir, 'adapter_model.safetensors'),
    };
  }
  const { config, tensors } = await readModel(modelDir);
  const modelTask = t ?? (adapter ? (parsePeftConfig(adapter.config, adapter.configName).taskType ?? undefined) : undefined);
  const model = buildModel(config, tensors, { task: modelTask });
  let peft: PeftModel | undefined;
  try {
    const V = model.config.vocabSize;
    const oob = ids.flat().find((v) => v >= V);
    if (oob !== undefined) throw usage(`--input-ids: token id ${oob} is outside the model's vocabulary of ${V}`);
    if (model.report.initialised.length) note(`note: not in the checkpoint, freshly initialised: ${model.report.initialised.join(', ')}`);
    const seq2seq = model.task === 'SEQ_2_SEQ_LM';
    const decRows = dec.decoderInputIds ?? dec.labels;
    if (seq2seq && !decRows) throw usage(`${model.className} is an encoder-decoder model: give --decoder-input-ids or --labels`);
    if (!seq2seq && decRows) throw usage('--decoder-input-ids and --labels are for seq_2_seq_lm models');
    if (decRows && decRows.length !== B) throw usage(`--${dec.decoderInputIds ? 'decoder-input-ids' : 'labels'} has ${decRows.length} rows but --input-ids has ${B}`);
    const decOob = decRows?.flat().find((v) => v >= V);
    if (decOob !== undefined) throw usage(`token id ${decOob} in the decoder rows is outside the model's vocabulary of ${V}`);
    if (adapter) peft = loadAdapter(model, adapter);
    const out = tf.tidy(() => {
      const Td = decRows?.[0].length ?? 0;
      const input = {
        inputIds: tf.tensor2d(ids.flat(), [B, T], 'int32'),
        attentionMask: mask ? tf.tensor2d(mask.flat(), [B, T], 'int32') : undefined,
        decoderInputIds: dec.decoderInputIds ? tf.tensor2d(dec.decoderInputIds.flat(), [B, Td], 'int32') : undefined,
        labels: dec.labels ? tf.tensor2d(dec.labels.flat(), [B, dec.labels[0].length], 'int32') : undefined,
      };
      const logits = peft ? peft.forward(input) : model.forward(input);
      const loss = input.labels ? (peft ? peftLoss(peft, input, input.labels) : model.loss(input, input.labels)) : null;
      return loss ? { logits, loss } : { logits };
    });
    const data = out.logits.dataSync() as Float32Array;
    const shape = out.logits.shape.slice();
    const loss = out.loss ? out.loss.dataSync()[0] : undefined;
    tf.dispose(Object.values(out));
    return { shape, data: Float32Array.from(data), ...(loss !== undefined ? { loss } : {}) };
  } finally {
    peft?.dispose();
    model.dispose();
  }
}

export async function logitsCommand(argv: string[]): Promise<void> {
  const p = parseArgv(LOGITS, argv);
  if (p.help) return void console.log(helpText(LOGITS));
  const modelDir = required(p, 'model', 'logits');
  const out = required(p, 'out', 'logits');
  const ids = parseMatrix(required(p, 'input-ids', 'logits'), 'input-ids');
  const maskText = str(p, 'attention-mask');
  const mask = maskText === undefined ? undefined : parseMatrix(maskText, 'attention-mask');
  const t = task(p);
  const decText = str(p, 'decoder-input-ids');
  const labelText = str(p, 'labels');
  const dec: DecoderRows = {
    decoderInputIds: decText === undefined ? undefined : parseMatrix(decText, 'decoder-input-ids'),
    labels: labelText === undefined ? undefined : parseMatrix(labelText, 'labels', true),
  };
  await startBackend(p);
  const res = await computeLogits(modelDir, str(p, 'adapter'), ids, mask, t, dec);
  const tensors = new Map([['logits', { shape: res.shape, data: res.data }]]);
  if (res.loss !== undefined) tensors.set('loss', { shape: [], data: Float32Array.of(res.loss) });
  writeOut(out, writeSafetensors(tensors, { format: 'pt' }));
  note(`logits [${res.shape.join(', ')}]${res.loss !== undefined ? `, loss ${res.loss}` : ''} -> ${out}`);
}
