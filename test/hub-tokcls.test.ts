/**
 * TOKEN_CLS from Hub datasets stored as the canonical NER sets are (test/support/ner-fixtures.ts): `tokens` and
 * `ner_tags` as Parquet list columns, the tag names in the features (the Parquet footer's "huggingface" metadata, or
 * the README's dataset_info); integer tags with no names need a label list; bad rows are reported by row; `cli
 * train --task token_cls --data hub:...` trains the built-in GPT-2 with a token-classification head and evaluates
 * with seqeval's entity metrics; the studio's loader shows the tags, entity counts and a tagged sentence.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { trainCommand } from '../src/cli/train';
import { EngineError } from '../src/engine/errors';
import { HubClient } from '../src/engine/io/hub';
import { HubDataset } from '../src/engine/io/hub-dataset';
import { classLabelsOfFeatures, classLabelsOfReadme, datasetClassLabels, hubTagList, hubTokenClsRows, parseYaml, tokenClsColumns } from '../src/engine/io/hub-tokcls';
import { useNodeBackend } from '../src/engine/io/node-backend';
import { loadTokenizerFromDir } from '../src/engine/io/node-tokenizer';
import type { Tokenizer } from '../src/engine/tokenizer';
import { loadData } from '../src/worker/data-loader';
import type { DataRequest } from '../src/worker/protocol';
import { startHubServer, type HubServer } from './support/hub-server';
import { NER_README, NER_TAGS, nerRepos, nerRow } from './support/ner-fixtures';

const SOTU = join(fileURLToPath(new URL('..', import.meta.url)), 'public/models/sotu-gpt2');
let hub: HubServer;
let tmp: string;
let tok: Tokenizer;
const saved = { endpoint: process.env.HF_ENDPOINT, token: process.env.HF_TOKEN };
beforeAll(async () => {
  await useNodeBackend('wasm');
  hub = await startHubServer({ repos: {}, datasets: nerRepos() });
  tmp = mkdtempSync(join(tmpdir(), 'hub-tokcls-'));
  tok = await loadTokenizerFromDir(SOTU);
  process.env.HF_ENDPOINT = hub.url;
  delete process.env.HF_TOKEN;
});
afterAll(async () => {
  if (saved.endpoint === undefined) delete process.env.HF_ENDPOINT;
  else process.env.HF_ENDPOINT = saved.endpoint;
  if (saved.token !== undefined) process.env.HF_TOKEN = saved.token;
  await hub.close();
  rmSync(tmp, { recursive: true, force: true });
});
const ds = (id: string) => new HubDataset(new HubClient({ endpoint: hub.url }), id);
const jsonl = (path: string) => readFileSync(path, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

describe('tag names from the features', () => {
  it("datasets' features JSON: Sequence / List of ClassLabel, a scalar ClassLabel; other columns have none", () => {
    expect(classLabelsOfFeatures({
      tokens: { feature: { dtype: 'string', _type: 'Value' }, _type: 'Sequence' },
      ner_tags: { feature: { names: ['O', 'B-X'], _type: 'ClassLabel' }, _type: 'Sequence' },
      tags: { _type: 'List', feature: { _type: 'ClassLabel', names: ['O', 'B-Y', 'I-Y'] } },
      old: [{ _type: 'ClassLabel', names: ['a', 'b'] }],
      label: { _type: 'ClassLabel', names: ['neg', 'pos'] },
      id: { dtype: 'string', _type: 'Value' },
    })).toEqual({ ner_tags: ['O', 'B-X'], tags: ['O', 'B-Y', 'I-Y'], old: ['a', 'b'], label: ['neg', 'pos'] });
    expect(classLabelsOfFeatures(null)).toEqual({});
  });

  it("the README's dataset_info: the entry of the config, names in id order, YAML quoting as the Hub writes it", () => {
    expect(classLabelsOfReadme(NER_README, 'people')).toEqual({ ner_tags: NER_TAGS });
    expect(classLabelsOfReadme(NER_README, 'places')).toEqual({ ner_tags: ['O', 'B-LOC', 'I-LOC'] });
    expect(classLabelsOfReadme(NER_README, 'missing')).toEqual({});
    // conll2003's pos_tags: a quote mark and two apostrophes, written as the Hub's YAML writes them.
    const card = ['---', 'dataset_info:', '  features:', '  - name: pos_tags', '    list:', '      class_label:', '        names:',
      `          '0': '"'`, "          '1': ''''''", "          '2': '#'", '          "3": NN # a comment', '---', ''].join('\n');
    expect(classLabelsOfReadme(card, 'default')).toEqual({ pos_tags: ['"', "''", '#', 'NN'] });
    expect(classLabelsOfReadme('# no card\n', 'default')).toEqual({});
    expect(parseYaml('a:\n- x\n- k: 1\n  j: [2, "3"]\nb: \'it\'\'s\'\n')).toEqual({ a: ['x', { k: '1', j: ['2', '3'] }], b: "it's" });
  });
});

describe('rows from the stand-in Hub', () => {
  it('list columns stay lists; names from the Parquet footer, else the README, else none', async () => {
    const d = ds('tests/ner');
    const train = await d.split('train');
    const { columns, rows } = await d.rows(train, { maxRows: 3 });
    expect(rows[0]).toEqual(nerRow(0));
    expect(await datasetClassLabels(d, train, 'default')).toEqual({ labels: { ner_tags: NER_TAGS }, source: 'parquet-metadata' });
    const r = ds('tests/ner-readme:people');
    expect(await datasetClassLabels(r, await r.split('train'), 'people')).toEqual({ labels: { ner_tags: NER_TAGS }, source: 'readme' });
    const ids = ds('tests/ner-ids');
    expect(await datasetClassLabels(ids, await ids.split('train'), 'default')).toBeNull();

    const cols = tokenClsColumns('tests/ner train', columns, {}, '--text-column');
    expect(cols).toEqual({ tokens: 'tokens', tags: 'ner_tags' });
    const read = hubTokenClsRows({ file: 'tests/ner train', rows, where: (i) => `tests/ner train row ${i + 1}` }, cols, NER_TAGS);
    expect(read.issues).toEqual([]);
    expect(read.rows[1]).toMatchObject({ words: ['Mary', 'visited', 'Rome', 'today'], tags: [1, 0, 3, 0], line: 2, where: 'tests/ner train row 2' });
    // JSON lists written as text (CSV / JSON Lines repo files) are read too.
    expect(hubTokenClsRows({ file: 'f', rows: [{ tokens: '["a", "b"]', ner_tags: '["O", "B-X"]' }], where: String }, cols, null).rows[0]).toMatchObject({ words: ['a', 'b'], tags: ['O', 'B-X'] });
    expect(() => tokenClsColumns('tests/ner train', columns, { tagsColumn: 'pos_tags' }, '--label-column')).toThrow(/no column "pos_tags"; its columns are id, tokens, ner_tags.*choose the columns with --label-column/);
    expect(() => tokenClsColumns('x', ['text', 'label'], {}, '--text-column')).toThrow(EngineError);
  });

  it('a row with a tag too few and a class id outside the names are issues by row', async () => {
    const d = ds('tests/ner-bad');
    const { columns, rows } = await d.rows(await d.split('train'));
    const r = hubTokenClsRows({ file: 'tests/ner-bad train', rows, where: String }, tokenClsColumns('f', columns, {}, ''), NER_TAGS);
    expect(r.rows.map((x) => x.line)).toEqual([1, 2, 4, 6, 7, 8]);
    expect(r.issues).toEqual([
      { file: 'tests/ner-bad train', line: 3, message: 'ner_tags must have one tag per word: 5 word(s) but 4 tag(s)' },
      { file: 'tests/ner-bad train', line: 5, message: 'ner_tags id 9 (word 1, "John") is out of range: the dataset\'s features name 5 tags, ids 0..4' },
    ]);
  });

  it("the label list: given, else the features' names (renumbered to a model's own order of the same tags), else the data", () => {
    const rows = () => [{ file: 'f', line: 1, words: ['John', 'Smith', 'in', 'Rome'], tags: [1, 2, 0, 3] }];
    expect(hubTagList(rows(), ['O', 'B-PER', 'I-PER', 'B-LOC', 'I-LOC', 'B-X'], NER_TAGS, null, 'd', '')).toHaveLength(6);
    expect(hubTagList(rows(), undefined, NER_TAGS, ['LABEL_0', 'LABEL_1', 'LABEL_2', 'LABEL_3', 'LABEL_4'], 'd', '')).toEqual(NER_TAGS);
    // A fine-tuned model's id2label with the same tags in another order: its order, the ids mapped by name.
    const model = ['O', 'B-LOC', 'I-LOC', 'B-PER', 'I-PER'];
    const r = rows();
    expect(hubTagList(r, undefined, NER_TAGS, model, 'd', '')).toEqual(model);
    expect(r[0].tags.map((t) => model[t])).toEqual(['B-PER', 'I-PER', 'O', 'B-LOC']);
    expect(hubTagList([{ file: 'f', line: 1, words: ['a'], tags: ['B-X'] }, { file: 'f', line: 2, words: ['b'], tags: ['O'] }], undefined, null, null, 'd', '')).toEqual(['B-X', 'O']);
    expect(() => hubTagList(rows(), undefined, null, null, 'owner/ner', 'give --label-list')).toThrow(/owner\/ner's features .* name no tags for these class ids; give --label-list/);
  });
});

const cli = (data: string, out: string, ...more: string[]) =>
  trainCommand(['--model', SOTU, '--task', 'token_cls', '--data', data, '--target-modules', 'c_attn', '--batch-size', '4', '--out', join(tmp, out), ...more]);

describe('cli train --task token_cls --data hub:...', () => {
  it('tests/ner: tag names from the features, evaluated on its validation split with seqeval metrics; it learns', async () => {
    await cli('hub:tests/ner', 'run', '--validation-split-name', 'validation', '--steps', '40', '--eval-steps', '20', '--lr', '3e-2');
    const out = join(tmp, 'run');
    const run = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8'));
    expect([run.train_examples, run.validation_examples]).toEqual([24, 8]);
    expect(JSON.parse(readFileSync(join(out, 'labels.json'), 'utf8')).id2label).toEqual(Object.fromEntries(NER_TAGS.map((t, i) => [String(i), t])));
    const metrics = jsonl(join(out, 'metrics.jsonl'));
    const losses = metrics.filter((x) => 'loss' in x).map((x) => x.loss);
    expect(mean(losses.slice(-5))).toBeLessThan(mean(losses.slice(0, 5)) - 0.3);
    const evals = metrics.filter((x) => 'eval_loss' in x);
    expect(evals.map((x) => x.step)).toEqual([20, 40]);
    for (const e of evals) for (const k of ['eval_accuracy', 'eval_precision', 'eval_recall', 'eval_f1']) expect(e[k]).toBeGreaterThanOrEqual(0);
    expect(evals[1].eval_f1).toBeGreaterThan(evals[0].eval_f1 - 1e-9);
    expect(evals[1].eval_f1).toBeGreaterThan(0.5);
    const cfg = JSON.parse(readFileSync(join(out, 'adapter_config.json'), 'utf8'));
    expect(cfg.task_type).toBe('TOKEN_CLS');
  }, 180_000);

  it("names from the README's dataset_info; --max-rows; ids without names need --label-list", async () => {
    await cli('hub:tests/ner-readme:people', 'readme', '--validation-split-name', 'test', '--max-rows', '10', '--steps', '2');
    const run = JSON.parse(readFileSync(join(tmp, 'readme', 'run.json'), 'utf8'));
    expect([run.train_examples, run.validation_examples]).toEqual([10, 4]);
    expect(Object.values(JSON.parse(readFileSync(join(tmp, 'readme', 'labels.json'), 'utf8')).id2label)).toEqual(NER_TAGS);

    await expect(cli('hub:tests/ner-ids', 'ids', '--steps', '1')).rejects.toThrow(/tests\/ner-ids:default's features .* name no tags for these class ids; give --label-list B-PER,I-PER/);
    await cli('hub:tests/ner-ids', 'ids', '--steps', '1', '--label-list', NER_TAGS.join(','));
    expect(Object.values(JSON.parse(readFileSync(join(tmp, 'ids', 'labels.json'), 'utf8')).id2label)).toEqual(NER_TAGS);
    // A list too short for the ids: the row is named.
    await expect(cli('hub:tests/ner-ids', 'ids2', '--steps', '1', '--label-list', 'O,B-PER,I-PER')).rejects.toThrow(/tests\/ner-ids train row \d+: tag 3 is not in the label list/);
  }, 120_000);

  it('bad rows stop the run by row, or are skipped with --skip-bad-rows; a missing column names the flags', async () => {
    await expect(cli('hub:tests/ner-bad', 'bad', '--steps', '1')).rejects.toThrow(/tests\/ner-bad train line 3: ner_tags must have one tag per word: 5 word\(s\) but 4 tag\(s\) \(and 1 more problem\(s\); --skip-bad-rows/);
    await cli('hub:tests/ner-bad', 'bad', '--steps', '1', '--skip-bad-rows', '--validation-split', '0');
    expect(JSON.parse(readFileSync(join(tmp, 'bad', 'run.json'), 'utf8')).train_examples).toBe(6);
    await expect(cli('hub:tests/ner', 'col', '--steps', '1', '--label-column', 'pos_tags')).rejects.toThrow(/no column "pos_tags"; its columns are id, tokens, ner_tags.*--text-column \(words\) and --label-column \(tags\)/);
  }, 60_000);
});

const req = (h: Omit<NonNullable<DataRequest['hub']>, 'endpoint'>, tokcls?: DataRequest['tokcls']): DataRequest => ({
  source: { kind: 'builtin', id: 'unused' }, task: 'TOKEN_CLS', validationSplit: 0.25, maxLength: 64, seed: 1, hub: { ...h, endpoint: hub.url }, ...(tokcls ? { tokcls } : {}),
});

describe('the studio data loader', () => {
  it('a TOKEN_CLS Hub dataset: tags from the features, entity counts, a tagged sentence, the Hub line', async () => {
    const d = await loadData(req({ id: 'tests/ner-readme:people', split: 'train', validationSplit: 'test', maxRows: 100 }), 'http://x/', (s) => tok.encode(s), tok);
    expect(d.labels).toEqual(NER_TAGS);
    expect([d.summary.trainRows, d.summary.validationRows]).toEqual([16, 4]);
    expect(d.summary.hub).toMatchObject({ id: 'tests/ner-readme:people', source: 'parquet-conversion', tokcls: { tokensColumn: 'tokens', tagsColumn: 'ner_tags', namesFrom: 'readme' } });
    // 4 copies of the 4 sentences (5 people, 4 places per copy); the test split is one copy.
    expect(d.summary.tokcls!.train.entities).toEqual({ PER: 20, LOC: 16 });
    expect(d.summary.tokcls!.validation.entities).toEqual({ PER: 5, LOC: 4 });
    expect(d.summary.tokcls!.sample).toEqual({ line: 1, words: nerRow(0).tokens, tags: ['B-PER', 'I-PER', 'O', 'O', 'B-LOC'] });
    expect(d.train[0].labels!.filter((l) => l >= 0)).toEqual(nerRow(0).ner_tags);
  });

  it('bad rows are listed and skipped; class ids with no names ask for the label list; a named column that is not there', async () => {
    const bad = await loadData(req({ id: 'tests/ner-bad', split: 'train', maxRows: 100 }), 'http://x/', (s) => tok.encode(s), tok);
    expect(bad.summary.trainRows + bad.summary.validationRows).toBe(6);
    expect(bad.summary.issueCount).toBe(2);
    expect(bad.summary.issues[1]).toMatch(/^tests\/ner-bad train line 5: ner_tags id 9/);
    await expect(loadData(req({ id: 'tests/ner-ids', split: 'train', maxRows: 100 }), 'http://x/', null, tok)).rejects.toThrow(/name no tags for these class ids; enter the label list/);
    const ids = await loadData(req({ id: 'tests/ner-ids', split: 'train', maxRows: 100 }, { labelList: NER_TAGS }), 'http://x/', null, tok);
    expect(ids.labels).toEqual(NER_TAGS);
    await expect(loadData(req({ id: 'tests/ner', split: 'train', maxRows: 5, tagsColumn: 'pos_tags' }), 'http://x/', null, tok)).rejects.toThrow(/no column "pos_tags".*tags column fields of "From the Hub"/);
  });
});
