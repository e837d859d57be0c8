/**
 * `train --task token_cls` data: CoNLL files (`token label` lines, blank lines between sentences), JSONL rows
 * {"tokens": [...], "ner_tags": [...]} (tags as strings or ids into the label list) or pre-tokenized
 * {"input_ids": [...], "labels": [...]}, read by the engine's tokcls-data (shared with the studio). Words become the
 * model tokenizer's sub-words with labels aligned as transformers' run_ner.py aligns them (first sub-token labelled,
 * or all with --label-all-tokens).
 */
import { readFileSync } from 'node:fs';
import { EngineError } from '../engine/errors';
import { hubTagList } from '../engine/io/hub-tokcls';
import { issueText } from '../engine/train/data-parse';
import { encodeTokenClsRows as encodeRows, isConllPath, parseLabelList, parseTokenClsFile, tagList as engineTagList } from '../engine/train/tokcls-data';
import type { Tokenizer } from '../engine/tokenizer';
import { note, requireFile, type CommandSpec } from './common';
import type { RawExample } from './train-data';

export { isConllPath };

export const TOKEN_CLS_OPTIONS: CommandSpec['options'] = {
  'label-list': { kind: 'value', arg: 'B-PER,I-PER,...', help: 'token_cls: the tags in id order (default: config.json id2label unless LABEL_0.., else the data\'s tags sorted).' },
  'label-all-tokens': { kind: 'flag', help: 'token_cls: label every sub-token of a word (B- becomes I- after the first), not only the first.' },
};

export interface TokenClsReadOptions {
  /** --data-format conll: read the file as CoNLL whatever its extension. */
  conll: boolean;
  tokensColumn?: string;
  tagsColumn?: string;
  skipBadRows?: boolean;
}

/** Reads a token-classification file into raw examples (words + tags, or input_ids + labels). */
export function readTokenClsFile(path: string, o: TokenClsReadOptions): RawExample[] {
  requireFile(path, 'data file');
  const { rows, issues } = parseTokenClsFile(path, readFileSync(path), o);
  if (issues.length && !o.skipBadRows) {
    const more = issues.length > 1 ? ` (and ${issues.length - 1} more problem(s); --skip-bad-rows skips bad rows)` : '';
    throw new EngineError('BAD_DATA', `${issueText(issues[0])}${more}`);
  }
  for (const i of issues.slice(0, 20)) note(`warning: skipped ${issueText(i)}`);
  if (!rows.length) throw new EngineError('BAD_DATA', `${path}: no usable rows`);
  return rows;
}

/**
 * The tag list in id order: --label-list, else config.json's id2label when it names its labels, else the string
 * tags of the data sorted (run_ner.py's get_label_list), else (integer tags) config.json's LABEL_i names. A Hub
 * dataset's rows take the names its features give the tags column before anything but --label-list, and integer
 * tags without names need --label-list.
 */
export function tagList(rows: RawExample[], flagList: string | undefined, configNames: string[] | null, hub?: { tagNames?: string[] | null; dataset?: string } | null): string[] {
  const given = flagList === undefined ? undefined : parseLabelList(flagList, '--label-list');
  if (hub) return hubTagList(rows, given, hub.tagNames ?? null, configNames, hub.dataset ?? 'the dataset', 'give --label-list B-PER,I-PER,... (the tags in id order)');
  return engineTagList(rows, given, configNames);
}

/**
 * Turns word rows into input_ids + aligned labels (ids into `names`), and checks tag ids of pre-tokenized rows;
 * a tag outside the list is an error naming its line. Mutates and returns the rows.
 */
export function encodeTokenClsRows(rows: RawExample[], names: string[], tok: Tokenizer | undefined, labelAllTokens: boolean): RawExample[] {
  return encodeRows(rows, names, tok, labelAllTokens);
}
