/**
 * Dataset repos for the stand-in Hub, with Parquet files written by hyparquet-writer the way the Hub stores chat
 * data (`messages` as list<struct<role, content>>, several row groups per file so reading the first rows is a
 * range request for the first row groups only):
 *   tests/chat-qa        repo files: data/train-0000{0,1}-of-00002.parquet (12 rows each: a multi-file split) and
 *                        data/test-00000-of-00001.parquet (6 rows); revision v1 holds one CSV
 *   tests/glue-like      a loading script only, plus the Hub's Parquet conversion: sst2 (train, validation), cola (train)
 *   tests/csv-json       train.csv, validation.json (a JSON list), test.jsonl
 *   tests/gated-chat     chat-qa's files, gated (token hf_test_token)
 *   tests/zipped         data/train.zip only
 */
import { parquetWriteBuffer } from 'hyparquet-writer';
import type { DatasetSpec } from './hub-datasets';

export interface ChatRow {
  messages: { role: string; content: string }[];
}

const QUESTIONS = ['capital of France', 'colour of the sky', 'days in a week', 'what bees make', 'frozen water', 'our planet'];
const ANSWERS = ['Paris.', 'Blue.', 'Seven.', 'Honey.', 'Ice.', 'Earth.'];

/** Row i of the chat set: a question about one of six facts, always answered the same way. */
export function chatRow(i: number): ChatRow {
  const k = i % QUESTIONS.length;
  return { messages: [{ role: 'system', content: 'Answer in one word.' }, { role: 'user', content: `Tell me the ${QUESTIONS[k]}. (${i})` }, { role: 'assistant', content: ANSWERS[k] }] };
}

const MESSAGES_SCHEMA = [
  { name: 'root', num_children: 2 },
  { name: 'messages', repetition_type: 'OPTIONAL', num_children: 1, converted_type: 'LIST' },
  { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
  { name: 'element', repetition_type: 'OPTIONAL', num_children: 2 },
  { name: 'role', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL' },
  { name: 'content', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL' },
  { name: 'id', type: 'INT32', repetition_type: 'REQUIRED' },
];

/** Chat rows [from, to) as Parquet, `rowGroupSize` rows per row group. */
export function chatParquet(from: number, to: number, rowGroupSize = 4): Uint8Array {
  const rows = Array.from({ length: to - from }, (_, j) => chatRow(from + j));
  return new Uint8Array(parquetWriteBuffer({
    columnData: [{ name: 'messages', data: rows.map((r) => r.messages) }, { name: 'id', data: Int32Array.from(rows.map((_, j) => from + j)) }],
    schema: MESSAGES_SCHEMA as never, rowGroupSize,
  }));
}

/** A text + label Parquet file (sentence, label) of n rows starting at `from`. */
export function sentenceParquet(from: number, n: number): Uint8Array {
  const ids = Array.from({ length: n }, (_, j) => from + j);
  return new Uint8Array(parquetWriteBuffer({
    columnData: [
      { name: 'sentence', data: ids.map((i) => `sentence number ${i}`), type: 'STRING' },
      { name: 'label', data: BigInt64Array.from(ids.map((i) => BigInt(i % 2))), type: 'INT64' },
    ],
  }));
}

export function datasetRepos(): Record<string, DatasetSpec> {
  const chatFiles = {
    'README.md': '---\nlicense: mit\n---\n# chat-qa\n',
    'data/train-00000-of-00002.parquet': chatParquet(0, 12),
    'data/train-00001-of-00002.parquet': chatParquet(12, 24),
    'data/test-00000-of-00001.parquet': chatParquet(100, 106),
  };
  return {
    'tests/chat-qa': { files: chatFiles, revisions: { v1: { 'train.csv': 'prompt,completion\nHi,Hello.\nBye,Goodbye.\nYes,No.\n' } } },
    'tests/glue-like': {
      files: { 'glue-like.py': '# a loading script\n', 'README.md': '# glue-like\n' },
      converted: { sst2: { train: [sentenceParquet(0, 10), sentenceParquet(10, 5)], validation: [sentenceParquet(1000, 4)] }, cola: { train: [sentenceParquet(500, 3)] } },
    },
    'tests/csv-json': {
      files: {
        'train.csv': 'instruction,input,output\nName a colour,,Red\nAdd 2 and 2,,4\nSay hi,politely,Hello there\n',
        'validation.json': JSON.stringify([{ instruction: 'Name a fruit', input: '', output: 'Apple' }]),
        'test.jsonl': '{"instruction": "Count to two", "input": "", "output": "1 2"}\n',
      },
    },
    'tests/gated-chat': { files: chatFiles, gated: 'hf_test_token' },
    'tests/zipped': { files: { 'data/train.zip': new Uint8Array([0x50, 0x4b, 3, 4, 0, 0]), 'README.md': '# zipped\n' } },
  };
}
