/**
 * `train` on instruction / chat data: --data-format, --chat-template, --train-on / --train-on-inputs. Rows kept
 * whole by train-data.ts are rendered with the chat template and tokenized into inputIds + labels (loss on the
 * responses only by default), and the run reports how many tokens it trains on.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { EngineError } from '../engine/errors';
import type { Tokenizer } from '../engine/tokenizer';
import { chooseTemplate, encodeChatData, type ChatStats, type ChatTemplateChoice, type TrainOn } from '../engine/train/chat-encode';
import { CHAT_FORMATS, type ChatFormat, type DataFormatSetting } from '../engine/train/chat-format';
import { choice, flag, note, str, usage, type CommandSpec, type Parsed } from './common';
import type { RawExample } from './train-data';

export const CHAT_OPTIONS: CommandSpec['options'] = {
  'data-format': { kind: 'value', arg: 'FORMAT', help: `Row format: ${CHAT_FORMATS.join(', ')}, text or auto (default: from the columns); conll for token_cls files of any extension.` },
  'chat-template': { kind: 'value', arg: 'model|chatml|alpaca|FILE', help: "Chat template for conversations (default: the model's tokenizer_config.json chat_template, else a built-in one); FILE holds Jinja text." },
  'train-on': { kind: 'value', arg: 'responses|last_response|all', help: 'Which tokens of instruction / chat rows the loss uses (default responses: every assistant turn).' },
  'train-on-inputs': { kind: 'flag', help: 'Loss on every token of instruction / chat rows, prompts included (= --train-on all).' },
};

export const FORMAT_SETTINGS = [...CHAT_FORMATS, 'text', 'auto'] as const;

export interface ChatFlags {
  format: DataFormatSetting | undefined;
  template: string | undefined;
  templateFile: string | undefined;
  trainOn: TrainOn;
}

/** Reads and checks the chat flags (a --chat-template that is a file is read now, so a bad path fails fast). */
export function chatFlags(p: Parsed): ChatFlags {
  const format = choice(p, 'data-format', FORMAT_SETTINGS);
  let trainOn = choice(p, 'train-on', ['responses', 'last_response', 'all'] as const);
  if (flag(p, 'train-on-inputs')) {
    if (trainOn && trainOn !== 'all') throw usage('give --train-on-inputs or --train-on, not both');
    trainOn = 'all';
  }
  let template = str(p, 'chat-template');
  let templateFile: string | undefined;
  if (template !== undefined && !['model', 'auto', 'chatml', 'alpaca'].includes(template)) {
    if (!existsSync(template) || !statSync(template).isFile()) {
      throw usage(`--chat-template ${template}: no such file; give model, chatml, alpaca or a file with a Jinja chat template`);
    }
    templateFile = template;
    template = readFileSync(template, 'utf8');
    if (!template.includes('{')) throw usage(`--chat-template ${templateFile}: the file holds no Jinja template (no {% ... %} or {{ ... }})`);
  }
  return { format, template, templateFile, trainOn: trainOn ?? 'responses' };
}

export interface ChatResult {
  format: ChatFormat;
  rows: RawExample[];
  template: ChatTemplateChoice | null;
  stats: ChatStats;
}

/**
 * Renders and tokenizes the chat rows among `rows` (others pass through). A bad row stops the run naming its
 * line, unless `skipBadRows`.
 */
export function encodeChatRows(rows: RawExample[], tok: Tokenizer | null | undefined, f: ChatFlags, maxLength: number, skipBadRows: boolean | undefined): ChatResult | null {
  const chat = rows.filter((r) => r.chat);
  if (!chat.length) return null;
  if (!tok) throw new EngineError('BAD_DATA', `${chat[0].file}: ${chat[0].chat} data needs the model's tokenizer (tokenizer.json); give --tokenizer DIR`);
  const template = chooseTemplate(tok, f.template, { format: chat[0].chat, file: f.templateFile });
  const where = (r: RawExample) => r.where ?? `${r.file} line ${r.line}`;
  const data = encodeChatData(tok, chat.map((r) => ({ row: r.row!, where: where(r) })), {
    format: chat[0].chat!, template, trainOn: f.trainOn, maxLength,
  });
  const bad = data.issues.filter((i) => !/no response token is left/.test(i.message));
  if (bad.length && !skipBadRows) {
    const more = bad.length > 1 ? ` (and ${bad.length - 1} more problem(s); --skip-bad-rows skips bad rows)` : '';
    throw new EngineError('BAD_DATA', `${bad[0].where}: ${bad[0].message}${more}`);
  }
  for (const i of data.issues.slice(0, 20)) note(`warning: skipped ${i.where}: ${i.message}`);
  if (data.issues.length > 20) note(`warning: skipped ${data.issues.length - 20} more row(s)`);
  // Encoded rows in order, with their source line kept for later messages.
  const byWhere = new Map<string, number>();
  const okRows = chat.filter((r) => !data.issues.some((i) => i.where === where(r)));
  okRows.forEach((r, i) => byWhere.set(where(r), i));
  const out = rows.flatMap((r): RawExample[] => {
    if (!r.chat) return [r];
    const i = byWhere.get(where(r));
    if (i === undefined) return [];
    const e = data.examples[i];
    return [{ file: r.file, line: r.line, inputIds: e.inputIds, labels: e.labels }];
  });
  return { format: chat[0].chat!, rows: out, template: data.conversations ? template : null, stats: data.stats };
}

/** One line about what the run trains on. */
export function describeChat(r: ChatResult, trainOn: TrainOn, maxLength: number): string {
  const s = r.stats;
  const pct = s.tokens ? ((100 * s.trainedTokens) / s.tokens).toFixed(1) : '0';
  const what = trainOn === 'all' ? 'every token' : trainOn === 'last_response' ? 'the last response' : 'the responses';
  const tpl = r.template ? `, chat template ${r.template.name}${r.template.source === 'builtin' ? ' (built-in)' : ''}` : '';
  const cuts = [
    s.promptCut ? `${s.promptCut} row(s) lost the start of their prompt` : '',
    s.responseCut ? `${s.responseCut} row(s) lost the end of their response` : '',
    s.dropped ? `${s.dropped} row(s) had no response left and were dropped` : '',
  ].filter(Boolean);
  return `${r.format} data${tpl}: loss on ${what}, ${s.trainedTokens} of ${s.tokens} tokens trained on (${pct}%)` +
    (cuts.length ? `; at max length ${maxLength}: ${cuts.join(', ')}` : '');
}
