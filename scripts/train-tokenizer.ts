/**
 * Trains the built-in model's tokenizer: a GPT-2 style byte-level BPE, written in the Hugging Face `tokenizers`
 * format so that transformers.js, Python `tokenizers` and Python `transformers` (AutoTokenizer / GPT2TokenizerFast)
 * all load it.
 *
 *  - pre-tokenizer: ByteLevel (GPT-2 regex, add_prefix_space false), every UTF-8 byte mapped to a printable
 *    character with GPT-2's bytes_to_unicode table, so no input is ever unknown;
 *  - vocabulary (4096): id 0 = "<|endoftext|>" (the one special token, used as BOS / EOS / UNK / PAD), ids 1-256 = the
 *    256 byte characters in code-point order (the order GPT-2 and the HF BPE trainer use), then one token per merge in
 *    the order learned;
 *  - merges: learned on the whole of scripts/data/sotu-train.txt (about 9.7 MB, every State of the Union address except
 *    the held-out ones); a pair needs a count of at least 2; ties between equally frequent pairs go to the pair whose
 *    (left id, right id) is smaller, so training is deterministic.
 *
 *   npx tsx scripts/train-tokenizer.ts        (npm run data:tokenizer; needs scripts/data/sotu-train.txt from data:build)
 *
 * Writes public/models/sotu-gpt2/{tokenizer.json, tokenizer_config.json, special_tokens_map.json}.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

export const EOS_TOKEN = '<|endoftext|>';
export const DEFAULT_VOCAB_SIZE = 4096;
/** The context length of the built-in model (tokenizer_config.json model_max_length). */
export const MODEL_MAX_LENGTH = 256;

/** GPT-2's pre-tokenization regex (the one `tokenizers`' ByteLevel pre-tokenizer uses with use_regex: true). */
export const GPT2_PATTERN = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

/**
 * GPT-2's bytes_to_unicode: byte -> printable character. Printable Latin-1 bytes map to themselves, the other 68
 * (controls, space, 0x7F-0xA0, 0xAD) to U+0100 onwards in byte order (space -> "Ġ", "\n" -> "Ċ").
 */
export function bytesToUnicode(): string[] {
  const bs: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) bs.push(b);
  for (let b = 0xa1; b <= 0xac; b++) bs.push(b);
  for (let b = 0xae; b <= 0xff; b++) bs.push(b);
  const table = new Array<string>(256);
  for (const b of bs) table[b] = String.fromCharCode(b);
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (table[b] === undefined) table[b] = String.fromCharCode(256 + n++);
  }
  return table;
}

const BYTE_CHARS = bytesToUnicode();
const encoder = new TextEncoder();

/** A pre-token's UTF-8 bytes as byte-level characters. */
export function toByteLevel(piece: string): string {
  let out = '';
  for (const b of encoder.encode(piece)) out += BYTE_CHARS[b];
  return out;
}

/** Pre-tokenizes and counts words (as byte-level strings), in first-seen order. */
export function countWords(texts: Iterable<string>): Map<string, number> {
  const raw = new Map<string, number>();
  for (const text of texts) {
    for (const m of text.matchAll(GPT2_PATTERN)) raw.set(m[0], (raw.get(m[0]) ?? 0) + 1);
  }
  const counts = new Map<string, number>();
  for (const [w, c] of raw) {
    const bl = toByteLevel(w);
    counts.set(bl, (counts.get(bl) ?? 0) + c);
  }
  return counts;
}

export interface BpeTrainOptions {
  vocabSize?: number;
  specialTokens?: string[];
  /** A pair must occur at least this often to be merged (default 2). */
  minFrequency?: number;
}

export interface BpeModel {
  /** Token strings by id: special tokens, the 256 byte characters, then merged tokens. */
  vocab: string[];
  /** Learned merges, in rank order. */
  merges: [string, string][];
  specialTokens: string[];
}

/** Max-heap of pair keys ordered by count (higher first), then by key (smaller first). */
class PairHeap {
  private counts: number[] = [];
  private keys: number[] = [];

  get size(): number {
    return this.keys.length;
  }

  private before(i: number, j: number): boolean {
    const ci = this.counts[i]!;
    const cj = this.counts[j]!;
    return ci > cj || (ci === cj && this.keys[i]! < this.keys[j]!);
  }

  private swap(i: number, j: number): void {
    const c = this.counts[i]!;
    this.counts[i] = this.counts[j]!;
    this.counts[j] = c;
    const k = this.keys[i]!;
    this.keys[i] = this.keys[j]!;
    this.keys[j] = k;
  }

  push(count: number, key: number): void {
    this.counts.push(count);
    this.keys.push(key);
    let i = this.keys.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.before(i, p)) break;
      this.swap(i, p);
      i = p;
    }
  }

  pop(): { count: number; key: number } | undefined {
    const n = this.keys.length;
    if (n === 0) return undefined;
    const top = { count: this.counts[0]!, key: this.keys[0]! };
    const lastC = this.counts.pop()!;
    const lastK = this.keys.pop()!;
    if (n > 1) {
      this.counts[0] = lastC;
      this.keys[0] = lastK;
      let i = 0;
      const m = n - 1;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let best = i;
        if (l < m && this.before(l, best)) best = l;
        if (r < m && this.before(r, best)) best = r;
        if (best === i) break;
        this.swap(i, best);
        i = best;
      }
    }
    return top;
  }
}

/**
 * Learns byte-level BPE merges from word counts. Pair counts are kept up to date incrementally: a merge only
 * revisits the words that contain the merged pair (tracked per pair), and the most frequent pair is found with a
 * lazily-invalidated max-heap (a stale entry is re-queued with its current count when it surfaces).
 */
export function trainBpe(wordCounts: Map<string, number>, options: BpeTrainOptions = {}): BpeModel {
  const vocabSize = options.vocabSize ?? DEFAULT_VOCAB_SIZE;
  const specialTokens = options.specialTokens ?? [EOS_TOKEN];
  const minFrequency = options.minFrequency ?? 2;

  const vocab: string[] = [...specialTokens];
  const ids = new Map<string, number>();
  specialTokens.forEach((t, i) => ids.set(t, i));
  for (const ch of [...BYTE_CHARS].sort((a, b) => a.charCodeAt(0) - b.charCodeAt(0))) {
    ids.set(ch, vocab.length);
    vocab.push(ch);
  }
  if (vocab.length > vocabSize) throw new Error(`vocabSize ${vocabSize} is smaller than the ${vocab.length} base tokens`);

  // Pair keys a * K + b stay exact doubles for any vocabulary below 2^26.
  const K = Math.max(vocabSize, vocab.length) + 1;
  const words: number[][] = [];
  const freqs: number[] = [];
  for (const [w, c] of wordCounts) {
    words.push(Array.from(w, (ch) => ids.get(ch)!));
    freqs.push(c);
  }

  const pairCounts = new Map<number, number>();
  const where = new Map<number, Set<number>>();
  words.forEach((w, wi) => {
    const c = freqs[wi]!;
    for (let i = 0; i + 1 < w.length; i++) {
      const key = w[i]! * K + w[i + 1]!;
      pairCounts.set(key, (pairCounts.get(key) ?? 0) + c);
      let s = where.get(key);
      if (!s) where.set(key, (s = new Set()));
      s.add(wi);
    }
  });
  const heap = new PairHeap();
  for (const [key, c] of pairCounts) heap.push(c, key);

  const merges: [string, string][] = [];
  while (vocab.length < vocabSize) {
    const top = heap.pop();
    if (!top) break;
    const current = pairCounts.get(top.key) ?? 0;
    if (current !== top.count) {
      if (current > 0) heap.push(current, top.key);
      continue;
    }
    if (current < minFrequency) break;

    const a = Math.floor(top.key / K);
    const b = top.key - a * K;
    const merged = vocab[a]! + vocab[b]!;
    let newId = ids.get(merged);
    if (newId === undefined) {
      newId = vocab.length;
      ids.set(merged, newId);
      vocab.push(merged);
    }
    merges.push([vocab[a]!, vocab[b]!]);

    const grown = new Set<number>();
    for (const wi of where.get(top.key) ?? []) {
      const w = words[wi]!;
      let found = false;
      for (let i = 0; i + 1 < w.length; i++) {
        if (w[i] === a && w[i + 1] === b) {
          found = true;
          break;
        }
      }
      if (!found) continue; // stale entry: an earlier merge already consumed the pair in this word
      const c = freqs[wi]!;
      for (let i = 0; i + 1 < w.length; i++) {
        const key = w[i]! * K + w[i + 1]!;
        pairCounts.set(key, pairCounts.get(key)! - c);
      }
      const next: number[] = [];
      for (let i = 0; i < w.length; i++) {
        if (i + 1 < w.length && w[i] === a && w[i + 1] === b) {
          next.push(newId);
          i++;
        } else {
          next.push(w[i]!);
        }
      }
      words[wi] = next;
      for (let i = 0; i + 1 < next.length; i++) {
        const key = next[i]! * K + next[i + 1]!;
        pairCounts.set(key, (pairCounts.get(key) ?? 0) + c);
        if (next[i] === newId || next[i + 1] === newId) {
          grown.add(key);
          let s = where.get(key);
          if (!s) where.set(key, (s = new Set()));
          s.add(wi);
        }
      }
    }
    pairCounts.delete(top.key);
    where.delete(top.key);
    // Only pairs that contain the new token can have grown; every other count only ever shrinks, which the lazy
    // check above handles. Push in key order so the heap's content does not depend on Set iteration details.
    for (const key of [...grown].sort((x, y) => x - y)) {
      const c = pairCounts.get(key) ?? 0;
      if (c > 0) heap.push(c, key);
    }
  }
  return { vocab, merges, specialTokens };
}

// ---------------------------------------------------------------------------------------------------------------
// Hugging Face files
// ---------------------------------------------------------------------------------------------------------------

function addedToken(id: number, content: string) {
  return { id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true };
}

/**
 * tokenizer.json in the `tokenizers` format of GPT-2 (version 1.0; merges as "left right" strings, which every
 * `tokenizers` release and transformers.js accept; byte-level tokens never contain a plain space).
 * The vocabulary is written in id order (JSON.stringify would move integer-like keys such as "1" first).
 * `postProcessor` replaces GPT-2's ByteLevel post-processor (e.g. a TemplateProcessing that appends an EOS).
 */
export function serializeTokenizerJson(model: BpeModel, o: { postProcessor?: object } = {}): string {
  const doc = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: model.specialTokens.map((t, i) => addedToken(i, t)),
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: o.postProcessor ?? { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: '',
      end_of_word_suffix: '',
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab: '__VOCAB__',
      merges: model.merges.map(([l, r]) => `${l} ${r}`),
    },
  };
  const ind = '      ';
  const vocab = `{\n${model.vocab.map((t, i) => `${ind}${JSON.stringify(t)}: ${i}`).join(',\n')}\n    }`;
  return JSON.stringify(doc, null, 2).replace('"__VOCAB__"', () => vocab) + '\n';
}

/** tokenizer_config.json as transformers writes it for GPT2TokenizerFast (with pad = eos for batching). */
export function tokenizerConfig(model: BpeModel, modelMaxLength = MODEL_MAX_LENGTH): Record<string, unknown> {
  const eos = model.specialTokens[0]!;
  const decoder: Record<string, unknown> = {};
  model.specialTokens.forEach((t, i) => {
    const { id: _id, ...rest } = addedToken(i, t);
    decoder[String(i)] = rest;
  });
  return {
    add_bos_token: false,
    add_prefix_space: false,
    added_tokens_decoder: decoder,
    bos_token: eos,
    clean_up_tokenization_spaces: false,
    eos_token: eos,
    errors: 'replace',
    model_max_length: modelMaxLength,
    pad_token: eos,
    padding_side: 'right',
    tokenizer_class: 'GPT2Tokenizer',
    unk_token: eos,
  };
}

export function specialTokensMap(model: BpeModel): Record<string, string> {
  const eos = model.specialTokens[0]!;
  return { bos_token: eos, eos_token: eos, pad_token: eos, unk_token: eos };
}

export interface TokenizerFiles {
  'tokenizer.json': string;
  'tokenizer_config.json': string;
  'special_tokens_map.json': string;
}

/** Trains on `texts` and returns the three files' contents (deterministic for the same input and options). */
export function trainTokenizerFiles(texts: Iterable<string>, options: BpeTrainOptions & { modelMaxLength?: number } = {}): {
  files: TokenizerFiles;
  model: BpeModel;
  words: number;
} {
  const counts = countWords(texts);
  const model = trainBpe(counts, options);
  return {
    model,
    words: counts.size,
    files: {
      'tokenizer.json': serializeTokenizerJson(model),
      'tokenizer_config.json': JSON.stringify(tokenizerConfig(model, options.modelMaxLength), null, 2) + '\n',
      'special_tokens_map.json': JSON.stringify(specialTokensMap(model), null, 2) + '\n',
    },
  };
}

/** Splits the corpus into its documents (speeches), so no pre-token spans two of them. */
export function corpusDocuments(corpus: string): string[] {
  return corpus.split(/\n\n/).filter((d) => d.length > 0);
}

export const OUT_DIR = 'public/models/sotu-gpt2';

function main(): void {
  const corpusPath = join(ROOT, 'scripts/data/sotu-train.txt');
  let corpus: string;
  try {
    corpus = readFileSync(corpusPath, 'utf8');
  } catch {
    console.error(`${corpusPath} is missing: run \`npm run data:build\` first.`);
    process.exit(1);
  }
  const t0 = performance.now();
  const { files, model, words } = trainTokenizerFiles(corpusDocuments(corpus));
  const secs = ((performance.now() - t0) / 1000).toFixed(1);
  console.log(
    `trained on ${Buffer.byteLength(corpus).toLocaleString('en-US')} bytes (${words.toLocaleString('en-US')} distinct words): ` +
      `${model.vocab.length} tokens, ${model.merges.length} merges in ${secs} s`,
  );
  mkdirSync(join(ROOT, OUT_DIR), { recursive: true });
  for (const [name, content] of Object.entries(files)) {
    writeFileSync(join(ROOT, OUT_DIR, name), content);
    console.log(`${`${OUT_DIR}/${name}`.padEnd(48)} ${Buffer.byteLength(content).toLocaleString('en-US').padStart(10)} bytes`);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) main();
