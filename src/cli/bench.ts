/**
 * `npm run bench -- [--layers 4 --d 256 --heads 4 --batch 8 --seq 64 --r 8 --steps 5 --vocab 4096
 * --backends cpu,wasm --out file.json]`: per tfjs backend available in Node, the median time of a LoRA training
 * step (forward + backward + AdamW, after a warm-up step) on a randomly initialised GPT-2-shaped model, the
 * tokens/s that gives, and the backend's 1024^3 matmul GFLOP/s. Prints one JSON object on stdout.
 */
import { cpus } from 'node:os';
import { pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { describeError } from '../engine/errors';
import { useNodeBackend } from '../engine/io/node-backend';
import { buildModel, countParams } from '../engine/models';
import { createPeftModel } from '../engine/peft';
import { loraConfig } from '../engine/peft/lora/config';
import { collate, disposeBatch, type Encoded } from '../engine/train/data';
import { AdamW } from '../engine/train/optimizer';
import { optimizerStep } from '../engine/train/step';
import { Rng } from '../engine/random';
import { helpText, int, list, note, parseArgv, runCli, str, usage, writeJson, type CommandSpec } from './common';

export const BENCH: CommandSpec = {
  name: 'bench',
  summary: 'Measures LoRA training-step time, tokens/s and 1024^3 matmul GFLOP/s per tfjs backend; prints one JSON object.',
  usage: 'npm run bench -- [--layers 4 --d 256 --heads 4 --batch 8 --seq 64 --r 8 --steps 5 --vocab 4096 --backends cpu,wasm] [--out file.json]',
  options: {
    layers: { kind: 'value', arg: 'N', help: 'Transformer blocks (default 4).' },
    d: { kind: 'value', arg: 'N', help: 'Hidden size (default 256).' },
    heads: { kind: 'value', arg: 'N', help: 'Attention heads (default 4).' },
    batch: { kind: 'value', arg: 'N', help: 'Batch size (default 8).' },
    seq: { kind: 'value', arg: 'N', help: 'Sequence length (default 64).' },
    r: { kind: 'value', arg: 'N', help: 'LoRA rank on c_attn (default 8).' },
    steps: { kind: 'value', arg: 'N', help: 'Timed training steps after one warm-up step (default 5).' },
    vocab: { kind: 'value', arg: 'N', help: 'Vocabulary size (default 4096).' },
    'matmul-runs': { kind: 'value', arg: 'N', help: 'Timed 1024^3 matmuls after a warm-up (default 5).' },
    backends: { kind: 'value', arg: 'cpu,wasm', help: 'Backends to measure (default cpu,wasm).' },
    out: { kind: 'value', arg: 'FILE', help: 'Also write the JSON here.' },
  },
};

export interface BenchShape {
  layers: number;
  d: number;
  heads: number;
  batch: number;
  seq: number;
  r: number;
  steps: number;
  vocab: number;
  matmulRuns: number;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const r2 = (x: number) => Math.round(x * 100) / 100;

/** ms per LoRA training step (each step = one optimizer step on one batch of batch x seq real tokens). */
async function benchTraining(s: BenchShape) {
  const config = {
    model_type: 'gpt2', architectures: ['GPT2LMHeadModel'], vocab_size: s.vocab, n_embd: s.d, n_layer: s.layers, n_head: s.heads,
    n_positions: Math.max(s.seq, 128), attn_pdrop: 0, embd_pdrop: 0, resid_pdrop: 0,
  };
  const model = buildModel(config, new Map(), { initMissing: 'all', task: 'CAUSAL_LM', seed: 0 });
  const peft = createPeftModel(model, loraConfig({ taskType: 'CAUSAL_LM', r: s.r, loraAlpha: 2 * s.r, targetModules: ['c_attn'] }), 0);
  const opt = new AdamW({ weightDecay: 0 });
  const rng = new Rng(1);
  const rows: Encoded[] = Array.from({ length: s.batch }, () => {
    const ids = Array.from({ length: s.seq }, () => Math.floor(rng.next() * s.vocab));
    return { ids, labels: ids.slice() };
  });
  const batch = collate(rows, 'CAUSAL_LM', 0);
  const trainable = {
    task: model.task,
    logits: (b: typeof batch, training: boolean) => peft.forward({ inputIds: b.inputIds, attentionMask: b.attentionMask, training }),
    alignLabels: (l: tf.Tensor) => peft.alignLabels(l),
    variables: () => peft.trainableVariables(),
  };
  const times: number[] = [];
  const losses: number[] = [];
  try {
    for (let i = 0; i <= s.steps; i++) {
      const t0 = performance.now();
      const res = await optimizerStep(trainable, opt, [batch], 1e-3, 1); // reads the loss back, so the step has completed
      const ms = performance.now() - t0;
      losses.push(res.loss);
      if (i > 0) times.push(ms); // step 0 is the warm-up
    }
    const ms = median(times);
    return {
      params: countParams(model.modules, model.tied),
      trainable_params: peft.trainableVariables().reduce((n, v) => n + v.size, 0),
      ms_per_step: r2(ms),
      step_ms: times.map(r2),
      tokens_per_sec: r2(((s.batch * s.seq) / ms) * 1000),
      loss_first: r2(losses[0]),
      loss_last: r2(losses[losses.length - 1]),
    };
  } finally {
    disposeBatch(batch);
    opt.dispose();
    peft.dispose();
    model.dispose();
  }
}

/** 1024 x 1024 x 1024 matmul throughput (2 n^3 FLOPs), dataSync forcing completion. */
function benchMatmul(runs: number) {
  const n = 1024;
  const a = tf.randomUniform([n, n], -1, 1, 'float32', 1);
  const b = tf.randomUniform([n, n], -1, 1, 'float32', 2);
  const times: number[] = [];
  try {
    for (let i = 0; i <= runs; i++) {
      const t0 = performance.now();
      const c = tf.matMul(a, b);
      c.dataSync();
      const ms = performance.now() - t0;
      c.dispose();
      if (i > 0) times.push(ms);
    }
  } finally {
    a.dispose();
    b.dispose();
  }
  const ms = median(times);
  return { matmul_ms: r2(ms), matmul_gflops: r2((2 * n ** 3) / (ms * 1e6)) };
}

export async function runBench(s: BenchShape, backends: ('cpu' | 'wasm')[]) {
  const results: Record<string, unknown> = {};
  for (const b of backends) {
    try {
      await useNodeBackend(b);
    } catch (e) {
      results[b] = { available: false, error: describeError(e) };
      continue;
    }
    note(`bench: ${b} ...`);
    const flags = b === 'wasm' ? { simd: tf.env().getBool('WASM_HAS_SIMD_SUPPORT'), threads: tf.env().getBool('WASM_HAS_MULTITHREAD_SUPPORT') } : {};
    results[b] = { available: true, ...flags, ...(await benchTraining(s)), ...benchMatmul(s.matmulRuns) };
  }
  return {
    model: { arch: 'gpt2', layers: s.layers, d: s.d, heads: s.heads, vocab: s.vocab, lora: { r: s.r, target_modules: ['c_attn'] } },
    batch: s.batch,
    seq: s.seq,
    timed_steps: s.steps,
    matmul_runs: s.matmulRuns,
    node: process.version,
    cpu: `${cpus()[0]?.model ?? 'unknown'} x${cpus().length}`,
    backends: results,
  };
}

export async function benchCommand(argv: string[]): Promise<void> {
  const p = parseArgv(BENCH, argv);
  if (p.help) return void console.log(helpText(BENCH));
  const pos = (name: string, d: number) => {
    const v = int(p, name) ?? d;
    if (v < 1) throw usage(`--${name} must be a positive integer`);
    return v;
  };
  const s: BenchShape = {
    layers: pos('layers', 4), d: pos('d', 256), heads: pos('heads', 4), batch: pos('batch', 8), seq: pos('seq', 64),
    r: pos('r', 8), steps: pos('steps', 5), vocab: pos('vocab', 4096), matmulRuns: pos('matmul-runs', 5),
  };
  if (s.d % s.heads) throw usage(`--d ${s.d} is not divisible by --heads ${s.heads}`);
  const backends = (list(p, 'backends') ?? ['cpu', 'wasm']).map((b) => {
    if (b !== 'cpu' && b !== 'wasm') throw usage(`--backends: "${b}" is not a Node backend (cpu, wasm)`);
    return b;
  });
  const res = await runBench(s, backends);
  const out = str(p, 'out');
  if (out) writeJson(out, res);
  process.stdout.write(`${JSON.stringify(res)}\n`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  runCli(() => benchCommand(process.argv.slice(2))).then((code) => {
    process.exitCode = code;
  });
}
