/**
 * Instruction / chat data in the studio: the format (detected or chosen), the chat template, what the loss is
 * computed on, and a preview of one rendered example with the trained-on text marked. The engine's chat-format /
 * chat-encode do the work; this file turns a parsed table into training examples and the summary the page shows.
 */
import { EngineError } from '../engine/errors';
import type { ChatMessage, Tokenizer } from '../engine/tokenizer';
import {
  chooseTemplate, encodeChatData, modelTemplate, type ChatStats, type TrainOn,
} from '../engine/train/chat-encode';
import { detectChatFormat, resolveFormat, type ChatFormat, type DataFormatSetting } from '../engine/train/chat-format';
import { splitValidation, type Example, type TokenStats } from '../engine/train/data-parse';
import { describePacking, packForTraining } from '../engine/train/packing';

/** The person's choices (DataPanel); the defaults read the format from the columns and train on the responses. */
export interface ChatSettings {
  format: DataFormatSetting;
  /** 'auto' (the model's, else a built-in), 'model', or a built-in name (chatml, alpaca). */
  template: string;
  trainOn: TrainOn;
  /** Pack the rendered examples into max-length blocks (TRL's packing; see engine/train/packing). Off when absent. */
  packing?: boolean;
}

export const DEFAULT_CHAT: ChatSettings = { format: 'auto', template: 'auto', trainOn: 'responses' };

/** What the page shows about chat data. */
export interface ChatSummary {
  format: ChatFormat;
  /** The format the columns imply (null: none), whatever was chosen. */
  detected: ChatFormat | null;
  trainOn: TrainOn;
  /** Null for plain prompt/completion rows, which use no template. */
  template: { name: string; source: 'model' | 'builtin' | 'file'; note?: string; text: string } | null;
  /** Null until a model with a tokenizer is loaded. */
  stats: ChatStats | null;
  /** The first training example as rendered, piece by piece, and how many tokens each piece has. */
  preview: { text: string; trained: boolean; tokens: number }[] | null;
  /** What packing did to the training examples (absent when packing is off). */
  packing?: PackingSummary;
}

/** Training examples before and after packing, and the padding each way would cost at the max length. */
export interface PackingSummary {
  examples: number;
  blocks: number;
  maxLength: number;
  /** Pad tokens if every sequence is padded to the max length: one example per sequence, and packed. */
  wastedBefore: number;
  wastedAfter: number;
  text: string;
}

interface Table {
  file: string;
  columns: string[];
  rows: Record<string, unknown>[];
  /** How row i is named in messages ("train.jsonl line 3", "owner/name train row 3"). */
  where: (i: number) => string;
}

export interface ChatLoaded {
  train: Example[];
  validation: Example[];
  summary: ChatSummary;
  issues: string[];
  warnings: string[];
}

/**
 * The chat format a table is read in: null when it is plain text data (auto found none, or `text` was chosen),
 * or when the person mapped columns by hand with auto on.
 */
export function chatFormatFor(table: Pick<Table, 'file' | 'columns' | 'rows'>, settings: ChatSettings | undefined, handMapped: boolean): ChatFormat | null {
  const s = settings ?? DEFAULT_CHAT;
  if (s.format === 'auto' && handMapped) return null;
  return resolveFormat(s.format, table.columns, table.file, table.rows[0]);
}

/** Token-length statistics of rendered rows (before truncation), in the shape the plain-text path reports. */
function lengthStats(lengths: number[], maxLength: number, truncated: number): TokenStats {
  const l = [...lengths].sort((a, b) => a - b);
  const n = l.length;
  const q = (p: number) => (n ? l[Math.min(n - 1, Math.floor(p * (n - 1) + 0.5))] : 0);
  return { count: n, min: n ? l[0] : 0, max: n ? l[n - 1] : 0, mean: n ? l.reduce((a, b) => a + b, 0) / n : 0, p50: q(0.5), p95: q(0.95), truncated, maxLength };
}

/**
 * Renders, masks and tokenizes the rows of `train` (and `validation`, or a split of train) in `format`. Without a
 * tokenizer nothing can be rendered yet: no examples, and a warning saying so.
 */
export function loadChatData(
  format: ChatFormat, train: Table, validation: Table | null, o: { settings?: ChatSettings; tokenizer: Tokenizer | null; maxLength: number; validationSplit: number; seed: number },
): ChatLoaded & { tokenStats: TokenStats | null } {
  const s = o.settings ?? DEFAULT_CHAT;
  const detected = detectChatFormat(train.columns, train.rows[0]);
  const base: ChatSummary = { format, detected, trainOn: s.trainOn, template: null, stats: null, preview: null };
  if (!o.tokenizer) {
    return {
      train: [], validation: [], summary: base, issues: [], tokenStats: null,
      warnings: [`These are ${format} rows: load a model with a tokenizer to render them with its chat template and train.`],
    };
  }
  const template = chooseTemplate(o.tokenizer, s.template, { format });
  const opts = { format, template, trainOn: s.trainOn, maxLength: o.maxLength };
  const rowsOf = (t: Table) => t.rows.map((row, i) => ({ row, where: t.where(i) }));
  let trainRows = rowsOf(train);
  let validRows = validation ? rowsOf(validation) : [];
  if (!validation) ({ train: trainRows, validation: validRows } = splitValidation(trainRows, o.validationSplit, o.seed));
  if (!trainRows.length) throw new EngineError('BAD_DATA', `${train.file}: no training rows are left after the validation split.`);
  const tr = encodeChatData(o.tokenizer, trainRows, opts);
  const va = validRows.length ? encodeChatData(o.tokenizer, validRows, opts) : null;
  const first = tr.first!;
  const lengths = [...tr.examples, ...(va?.examples ?? [])].map((e) => e.inputIds!.length);
  const st = tr.stats;
  let trainEx = tr.examples;
  let validEx = va?.examples ?? [];
  let packing: PackingSummary | undefined;
  if (s.packing) {
    const po = { maxLength: o.maxLength, eosTokenId: o.tokenizer.eosTokenId };
    const before = trainEx.reduce((n, e) => n + (o.maxLength - e.inputIds!.length), 0);
    const p = packForTraining(trainEx, po);
    trainEx = p.examples;
    if (validEx.length) validEx = packForTraining(validEx, po).examples;
    packing = {
      examples: p.stats.examples, blocks: p.stats.blocks, maxLength: o.maxLength,
      wastedBefore: before, wastedAfter: p.stats.blocks * o.maxLength - p.stats.tokens, text: describePacking(p.stats, o.maxLength),
    };
  }
  return {
    train: trainEx,
    validation: validEx,
    summary: {
      ...base,
      ...(packing ? { packing } : {}),
      template: tr.conversations ? { name: template.name, source: template.source, text: template.template, ...(template.note ? { note: template.note } : {}) } : null,
      stats: st,
      preview: first.segments.map((g) => ({ text: g.text || (g.ids.length ? '⟨eos⟩' : ''), trained: g.trained, tokens: g.ids.length })),
    },
    issues: [...tr.issues, ...(va?.issues ?? [])].map((i) => `${i.where}: ${i.message}`),
    warnings: [],
    // Lengths after truncation; the rows it cut are counted from the encoder's report.
    tokenStats: lengthStats(lengths, o.maxLength, st.promptCut + st.responseCut + st.dropped + (va ? va.stats.promptCut + va.stats.responseCut + va.stats.dropped : 0)),
  };
}

/** Texts that end an assistant turn in common templates; those a template contains stop the playground's reply. */
const END_OF_TURN = ['<|im_end|>', '<|eot_id|>', '<|end|>', '<end_of_turn>', '<|endoftext|>', '</s>', '### Instruction:'];

/**
 * The playground's chat prompt: the conversation rendered with the template the run trained with (else the model's
 * chat_template) and the assistant's turn opened (add_generation_prompt), and the texts that end the reply. The
 * prompt is encoded without the tokenizer's special tokens (addSpecialTokens false), as the training rows are and
 * as transformers' apply_chat_template(tokenize=True) does: a template that starts with BOS gets it once.
 */
export function chatPrompt(
  tok: Pick<Tokenizer, 'renderChat' | 'chatTemplate'> | null, messages: ChatMessage[], trained: { name: string; text: string } | null,
): { prompt: string; template: string; stops: string[]; addSpecialTokens: false } {
  if (!tok?.renderChat) throw new EngineError('BAD_ARGUMENT', 'This model has no tokenizer, so it cannot chat; load a model with a tokenizer.json.');
  const own = modelTemplate(tok);
  const t = trained ?? (own ? { name: 'model', text: own } : null);
  if (!t) {
    throw new EngineError('BAD_CONFIG', "This model's tokenizer_config.json has no chat_template and the run did not train on chat data: train on instruction / chat data (it chooses a template), or use the plain prompt.");
  }
  if (!messages.length || messages[messages.length - 1].role !== 'user') throw new EngineError('BAD_ARGUMENT', 'Write a user message to reply to.');
  const prompt = tok.renderChat(messages, { addGenerationPrompt: true, template: t.text });
  return { prompt, template: t.name, stops: END_OF_TURN.filter((m) => t.text.includes(m)), addSpecialTokens: false };
}

/** The reply up to the first end-of-turn text (and whether one was met). */
export function cutAtStop(text: string, stops: readonly string[]): { text: string; ended: boolean } {
  let at = -1;
  for (const s of stops) {
    const i = text.indexOf(s);
    if (i >= 0 && (at < 0 || i < at)) at = i;
  }
  return at < 0 ? { text, ended: false } : { text: text.slice(0, at), ended: true };
}
