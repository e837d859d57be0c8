/**
 * NER dataset repos for the stand-in Hub, stored as the Hub stores conll2003 / wnut_17 / wikiann: Parquet with
 * `tokens` as list<string> and `ner_tags` as list<int64> of class ids, the tag names in the features:
 *   tests/ner          repo files (train 24 rows, validation 8), names in the Parquet footer's "huggingface"
 *                      metadata as `datasets` writes it
 *   tests/ner-readme   the Hub's Parquet conversion, config "people" (train, test); no footer metadata, names in
 *                      the README's YAML dataset_info (a list with a config_name per entry)
 *   tests/ner-ids      repo files, class ids and no names anywhere (needs a label list)
 *   tests/ner-bad      repo files: row 3 has one tag too few, row 5 a class id outside the names
 */
import { parquetWriteBuffer } from 'hyparquet-writer';
import type { DatasetSpec } from './hub-datasets';

export const NER_TAGS = ['O', 'B-PER', 'I-PER', 'B-LOC', 'I-LOC'];

const SENTENCES: [string, string][][] = [
  [['John', 'B-PER'], ['Smith', 'I-PER'], ['lives', 'O'], ['in', 'O'], ['Paris', 'B-LOC']],
  [['Mary', 'B-PER'], ['visited', 'O'], ['Rome', 'B-LOC'], ['today', 'O']],
  [['Anna', 'B-PER'], ['and', 'O'], ['Johnson', 'B-PER'], ['visited', 'O'], ['Paris', 'B-LOC']],
  [['Johnson', 'B-PER'], ['lives', 'O'], ['in', 'O'], ['New', 'B-LOC'], ['York', 'I-LOC']],
];

/** Row i: one of four sentences, its tags as class ids into NER_TAGS. */
export function nerRow(i: number): { id: string; tokens: string[]; ner_tags: number[] } {
  const s = SENTENCES[i % SENTENCES.length];
  return { id: String(i), tokens: s.map(([w]) => w), ner_tags: s.map(([, t]) => NER_TAGS.indexOf(t)) };
}

const SCHEMA = [
  { name: 'root', num_children: 3 },
  { name: 'id', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL' },
  { name: 'tokens', repetition_type: 'OPTIONAL', num_children: 1, converted_type: 'LIST' },
  { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
  { name: 'element', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL' },
  { name: 'ner_tags', repetition_type: 'OPTIONAL', num_children: 1, converted_type: 'LIST' },
  { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
  { name: 'element', type: 'INT64', repetition_type: 'OPTIONAL' },
];

/** `datasets`' features JSON for these columns (what it stores under the "huggingface" key). */
export const NER_FEATURES = {
  id: { dtype: 'string', _type: 'Value' },
  tokens: { feature: { dtype: 'string', _type: 'Value' }, _type: 'Sequence' },
  ner_tags: { feature: { names: NER_TAGS, _type: 'ClassLabel' }, _type: 'Sequence' },
};

/** Rows as Parquet (list columns), with `datasets`' features in the footer when `features` is given. */
export function nerParquet(rows: { id: string; tokens: string[]; ner_tags: number[] }[], features?: unknown): Uint8Array {
  return new Uint8Array(parquetWriteBuffer({
    columnData: [
      { name: 'id', data: rows.map((r) => r.id) },
      { name: 'tokens', data: rows.map((r) => r.tokens) },
      { name: 'ner_tags', data: rows.map((r) => r.ner_tags.map(BigInt)) },
    ],
    schema: SCHEMA as never,
    rowGroupSize: 8,
    ...(features ? { kvMetadata: [{ key: 'huggingface', value: JSON.stringify({ info: { features } }) }] } : {}),
  }));
}

const rowsOf = (from: number, n: number) => Array.from({ length: n }, (_, j) => nerRow(from + j));

/** A dataset card as the Hub writes it: dataset_info per config, ClassLabel names as {'0': name}. */
export const NER_README = [
  '---',
  'language:',
  '- en',
  'task_categories:',
  '- token-classification',
  'dataset_info:',
  '- config_name: places',
  '  features:',
  '  - name: tokens',
  '    sequence: string',
  '  - name: ner_tags',
  '    sequence:',
  '      class_label:',
  '        names:',
  "          '0': O",
  "          '1': B-LOC",
  "          '2': I-LOC",
  '- config_name: people',
  '  features:',
  '  - name: id',
  '    dtype: string',
  '  - name: tokens',
  '    sequence: string',
  '  - name: ner_tags',
  '    sequence:',
  '      class_label:',
  '        names:',
  ...NER_TAGS.map((t, i) => `          '${i}': ${t}`),
  '  splits:',
  '  - name: train',
  '    num_bytes: 1234',
  '    num_examples: 16',
  'configs:',
  '- config_name: people',
  '  data_files:',
  '  - split: train',
  '    path: people/train-*',
  '---',
  '# ner-readme',
  '',
].join('\n');

export function nerRepos(): Record<string, DatasetSpec> {
  const bad = rowsOf(0, 8);
  bad[2] = { ...bad[2], ner_tags: bad[2].ner_tags.slice(1) };
  bad[4] = { ...bad[4], ner_tags: [9, ...bad[4].ner_tags.slice(1)] };
  return {
    'tests/ner': {
      files: {
        'README.md': '---\nlicense: mit\n---\n# ner\n',
        'data/train-00000-of-00001.parquet': nerParquet(rowsOf(0, 24), NER_FEATURES),
        'data/validation-00000-of-00001.parquet': nerParquet(rowsOf(100, 8), NER_FEATURES),
      },
    },
    'tests/ner-readme': {
      files: { 'README.md': NER_README, 'ner-readme.py': '# a loading script\n' },
      converted: { people: { train: [nerParquet(rowsOf(0, 16))], test: [nerParquet(rowsOf(200, 4))] } },
    },
    'tests/ner-ids': { files: { 'README.md': '# ner-ids\n', 'data/train.parquet': nerParquet(rowsOf(0, 12)) } },
    'tests/ner-bad': { files: { 'data/train.parquet': nerParquet(bad, NER_FEATURES) } },
  };
}
