/**
 * `logits --model DIR [--adapter DIR] --input-ids "1,2,3;4,5,0" [--attention-mask "1,1,1;1,1,0"] --out F`:
 * the forward pass's logits as an F32 safetensors tensor `logits`, shaped like transformers' output
 * (CAUSAL_LM [B, T, V], with prompt tuning [B, P+T, V]; SEQ_CLS [B, num_labels]; TOKEN_CLS [B, T, num_labels]). Adapters load strictly.
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
    task: { kind: 'value', arg: 'seq_cls|causal_lm|token_cls', help: "Model head (default: the adapter's task_type, else config.json)." },
    ...BACKEND_OPTION,
    out: { kind: 'value', arg: 'FILE', help: 'Output .safetensors (F32 tensor "logits").' },
  },
};

/** "1,2,3;4,5,0" -> rows of integers, all the same length. */
export function parseMatrix(text: string, flagName: string): number[][] {
  const rows = text.split(';').map((r) => r.trim()).filter((r) => r !== '');
  if (!rows.length) throw usage(`--${flagName} is empty`);
  const out = rows.map((r, i) =>
    r.split(',').map((s) => {
      const v = s.trim();
      if (!/^\d+$/.test(v)) throw usage(`--${flagName}: row ${i + 1} has "${v}", expected non-negative integers`);
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
}

/** Loads model (+ adapter), runs the forward pass, returns the logits. Assumes a backend is active. */
export async function computeLogits(modelDir: string, adapterDir: string | undefined, ids: number[][], mask: number[][] | undefined, t?: TaskType): Promise<LogitsResult> {
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
    if (adapter) peft = loadAdapter(model, adapter);
    const out = tf.tidy(() => {
      const input = {
        inputIds: tf.tensor2d(ids.flat(), [B, T], 'int32'),
        attentionMask: mask ? tf.tensor2d(mask.flat(), [B, T], 'int32') : undefined,
      };
      return peft ? peft.forward(input) : model.forward(input);
    });
    const data = out.dataSync() as Float32Array;
    const shape = out.shape.slice();
    out.dispose();
    return { shape, data: Float32Array.from(data) };
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
  await startBackend(p);
  const res = await computeLogits(modelDir, str(p, 'adapter'), ids, mask, t);
  writeOut(out, writeSafetensors(new Map([['logits', { shape: res.shape, data: res.data }]]), { format: 'pt' }));
  note(`logits [${res.shape.join(', ')}] -> ${out}`);
}
