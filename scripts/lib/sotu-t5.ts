/**
 * Shared pieces of the built-in T5's pretraining (scripts/pretrain-t5.ts) and its test (test/builtin-t5.test.ts):
 * the T5 config it is built from, its tokenizer (a byte-level BPE with T5's special tokens), and T5's span
 * corruption objective.
 */
import { countWords, trainBpe, serializeTokenizerJson, type BpeModel } from '../train-tokenizer';
import { TRANSFORMERS_VERSION } from './sotu-lm';
import * as tf from '@tensorflow/tfjs';
import type { Rng } from '../../src/engine/random';
import type { Batch } from '../../src/engine/train/data';

export const PAD_TOKEN = '<pad>';
export const EOS_TOKEN = '</s>';
export const UNK_TOKEN = '<unk>';
/** Sentinels for span corruption: <extra_id_0> ... <extra_id_{N-1}>. */
export const NUM_SENTINELS = 32;
export const sentinel = (i: number) => `<extra_id_${i}>`;
/** ids 0, 1, 2 as in T5's vocabulary (pad = decoder start, eos, unk), then the sentinels at 3 ... 3 + N - 1. */
export const SPECIAL_TOKENS = [PAD_TOKEN, EOS_TOKEN, UNK_TOKEN, ...Array.from({ length: NUM_SENTINELS }, (_, i) => sentinel(i))];
export const PAD_ID = 0;
export const EOS_ID = 1;
export const UNK_ID = 2;
export const SENTINEL_ID0 = 3;
/** tokenizer_config.json model_max_length (relative positions: a hint, not a limit of the weights). */
export const T5_MODEL_MAX_LENGTH = 512;

export interface T5Size {
  dModel: number;
  dKv: number;
  numHeads: number;
  dFf: number;
  numLayers: number;
  numDecoderLayers: number;
  vocabSize: number;
  dropout: number;
}

/**
 * config.json as transformers' T5Config.save_pretrained writes it for a t5-v1_1 / flan-t5 style model
 * (feed_forward_proj "gated-gelu", untied lm_head), with pad 0 = decoder start, eos 1.
 */
export function t5Config(s: T5Size): Record<string, unknown> {
  return {
    architectures: ['T5ForConditionalGeneration'],
    classifier_dropout: 0.0,
    d_ff: s.dFf,
    d_kv: s.dKv,
    d_model: s.dModel,
    decoder_start_token_id: PAD_ID,
    dense_act_fn: 'gelu_new',
    dropout_rate: s.dropout,
    eos_token_id: EOS_ID,
    feed_forward_proj: 'gated-gelu',
    initializer_factor: 1.0,
    is_encoder_decoder: true,
    is_gated_act: true,
    layer_norm_epsilon: 1e-6,
    model_type: 't5',
    num_decoder_layers: s.numDecoderLayers,
    num_heads: s.numHeads,
    num_layers: s.numLayers,
    pad_token_id: PAD_ID,
    relative_attention_max_distance: 128,
    relative_attention_num_buckets: 32,
    tie_word_embeddings: false,
    torch_dtype: 'float32',
    transformers_version: TRANSFORMERS_VERSION,
    use_cache: true,
    vocab_size: s.vocabSize,
  };
}

/** generation_config.json as save_pretrained derives it from the config above. */
export function t5GenerationConfig(): Record<string, unknown> {
  return { _from_model_config: true, decoder_start_token_id: PAD_ID, eos_token_id: EOS_ID, pad_token_id: PAD_ID, transformers_version: TRANSFORMERS_VERSION };
}

// ---------------------------------------------------------------- tokenizer

/** TemplateProcessing that appends </s> to every sequence, as T5's tokenizer does. */
function appendEos(): object {
  const A = { Sequence: { id: 'A', type_id: 0 } };
  const B = { Sequence: { id: 'B', type_id: 0 } };
  const eos = { SpecialToken: { id: EOS_TOKEN, type_id: 0 } };
  return {
    type: 'TemplateProcessing',
    single: [A, eos],
    pair: [A, eos, B, eos],
    special_tokens: { [EOS_TOKEN]: { id: EOS_TOKEN, ids: [EOS_ID], tokens: [EOS_TOKEN] } },
  };
}

function addedTokenDecoder(): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  SPECIAL_TOKENS.forEach((t, i) => {
    out[String(i)] = { content: t, lstrip: false, normalized: false, rstrip: false, single_word: false, special: true };
  });
  return out;
}

export interface T5TokenizerFiles {
  'tokenizer.json': string;
  'tokenizer_config.json': string;
  'special_tokens_map.json': string;
}

/**
 * A byte-level BPE (GPT-2's pre-tokenizer and merges learner, scripts/train-tokenizer.ts) with T5's special
 * tokens at ids 0 ... 34 and a post-processor that appends </s>; deterministic for the same texts.
 */
export function trainT5Tokenizer(texts: Iterable<string>, vocabSize: number): { files: T5TokenizerFiles; model: BpeModel } {
  const model = trainBpe(countWords(texts), { vocabSize, specialTokens: SPECIAL_TOKENS, minFrequency: 2 });
  const extra = SPECIAL_TOKENS.slice(SENTINEL_ID0);
  const config = {
    add_prefix_space: false,
    added_tokens_decoder: addedTokenDecoder(),
    additional_special_tokens: extra,
    clean_up_tokenization_spaces: false,
    eos_token: EOS_TOKEN,
    model_max_length: T5_MODEL_MAX_LENGTH,
    pad_token: PAD_TOKEN,
    padding_side: 'right',
    tokenizer_class: 'PreTrainedTokenizerFast',
    unk_token: UNK_TOKEN,
  };
  const map = { additional_special_tokens: extra, eos_token: EOS_TOKEN, pad_token: PAD_TOKEN, unk_token: UNK_TOKEN };
  return {
    model,
    files: {
      'tokenizer.json': serializeTokenizerJson(model, { postProcessor: appendEos() }),
      'tokenizer_config.json': JSON.stringify(config, null, 2) + '\n',
      'special_tokens_map.json': JSON.stringify(map, null, 2) + '\n',
    },
  };
}

// ---------------------------------------------------------------- span corruption

/**
 * T5's random_segmentation: `items` split into `segments` non-empty runs of random lengths (a uniformly random
 * composition), as lengths in order.
 */
export function randomSegmentation(items: number, segments: number, rng: Rng): number[] {
  // Choose segments - 1 cut points among items - 1 gaps.
  const gaps = Array.from({ length: items - 1 }, (_, i) => i + 1);
  for (let i = 0; i < segments - 1; i++) {
    const j = i + rng.int(gaps.length - i);
    [gaps[i], gaps[j]] = [gaps[j], gaps[i]];
  }
  const cuts = gaps.slice(0, segments - 1).sort((a, b) => a - b);
  const out: number[] = [];
  let prev = 0;
  for (const c of [...cuts, items]) {
    out.push(c - prev);
    prev = c;
  }
  return out;
}

export interface SpanCorruptionOptions {
  noiseDensity: number;
  meanSpanLength: number;
}

export interface Corrupted {
  input: number[];
  target: number[];
  /** How many noise tokens were dropped from the input (the target's non-sentinel, non-EOS tokens). */
  noise: number;
}

/**
 * T5 span corruption (Raffel et al. 2020, §3.1.4; t5.data.preprocessors.random_spans_noise_mask): round(L·density)
 * noise tokens in round(noise / mean span) spans; non-noise and noise runs alternate, starting with non-noise. The
 * input keeps the non-noise tokens with sentinel k in place of noise span k, the target is sentinel k followed by
 * span k for every span; both end in </s>.
 */
export function spanCorrupt(tokens: ArrayLike<number>, rng: Rng, o: SpanCorruptionOptions): Corrupted {
  const L = tokens.length;
  const noise = Math.min(Math.max(Math.round(L * o.noiseDensity), 1), L - 1);
  const spans = Math.min(Math.max(Math.round(noise / o.meanSpanLength), 1), NUM_SENTINELS, L - noise);
  const noiseLens = randomSegmentation(noise, spans, rng);
  const keepLens = randomSegmentation(L - noise, spans, rng);
  const input: number[] = [];
  const target: number[] = [];
  let pos = 0;
  for (let s = 0; s < spans; s++) {
    for (let k = 0; k < keepLens[s]; k++) input.push(tokens[pos++]);
    input.push(SENTINEL_ID0 + s);
    target.push(SENTINEL_ID0 + s);
    for (let k = 0; k < noiseLens[s]; k++) target.push(tokens[pos++]);
  }
  input.push(EOS_ID);
  target.push(EOS_ID);
  return { input, target, noise };
}

export interface PronLine {
  /** Tokens of "word:" (the spelling and a colon). */
  word: ArrayLike<number>;
  /** Tokens of the pronunciation "AA R D V AA R K" (no leading space: as a cmudict-g2p target encodes). */
  phon: ArrayLike<number>;
}

/**
 * Span corruption whose spans are chosen, not random: a run of dictionary lines "word: phonemes" with every
 * pronunciation dropped as one span. The input is "word1:<extra_id_0>\nword2:<extra_id_1>\n...</s>", the target
 * "<extra_id_0> phonemes1 <extra_id_1> phonemes2 ...</s>", the format of random span corruption (T5's "targeted"
 * masking of one field of a structured text).
 */
export function maskPronunciations(lines: PronLine[], newline: ArrayLike<number>): Corrupted {
  const input: number[] = [];
  const target: number[] = [];
  let noise = 0;
  lines.slice(0, NUM_SENTINELS).forEach((l, i) => {
    input.push(...Array.from(l.word), SENTINEL_ID0 + i, ...Array.from(newline));
    target.push(SENTINEL_ID0 + i, ...Array.from(l.phon));
    noise += l.phon.length;
  });
  input.push(EOS_ID);
  target.push(EOS_ID);
  return { input, target, noise };
}

/**
 * The held-out masked pronunciations with each line's word swapped for another word's (the one half the list away),
 * targets unchanged: a decoder that reads the spelling scores them worse than the real words, one that only knows
 * which phonemes are frequent scores both the same.
 */
export function swappedWords(lines: PronLine[]): PronLine[] {
  return lines.map((l, i) => ({ word: lines[(i + Math.floor(lines.length / 2)) % lines.length].word, phon: l.phon }));
}

/** One example of the pretraining objectives: encoder input and decoder labels, both ending in </s>. */
export interface Seq2SeqExample {
  input: number[];
  target: number[];
}

/** Inputs right-padded with <pad> (mask 0), targets with -100 (not scored), as DataCollatorForSeq2Seq pads. */
export function toBatch(examples: Seq2SeqExample[]): Batch {
  const B = examples.length;
  const S = Math.max(...examples.map((e) => e.input.length));
  const T = Math.max(...examples.map((e) => e.target.length));
  const ids = new Int32Array(B * S).fill(PAD_ID);
  const mask = new Int32Array(B * S);
  const lab = new Int32Array(B * T).fill(-100);
  examples.forEach((e, b) => {
    ids.set(e.input, b * S);
    mask.fill(1, b * S, b * S + e.input.length);
    lab.set(e.target, b * T);
  });
  const inputIds = tf.tensor2d(ids, [B, S], 'int32');
  const attentionMask = tf.tensor2d(mask, [B, S], 'int32');
  const labels = tf.tensor2d(lab, [B, T], 'int32');
  return { inputIds, attentionMask, labels, tokens: examples.reduce((n, e) => n + e.input.length + e.target.length, 0) };
}
