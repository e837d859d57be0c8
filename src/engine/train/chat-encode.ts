/**
 * Conversations -> token ids + labels, with the loss on the responses only.
 *
 * A conversation is rendered with the model's chat template (tokenizer_config.json `chat_template`, through
 * transformers.js' apply_chat_template, i.e. @huggingface/jinja with Python's trim_blocks / lstrip_blocks), or a
 * built-in template for base models that have none. To know which characters are the assistant's, the
 * conversation is rendered turn by turn, as TRL's assistant-only masking and LLaMA-Factory do: the text a turn
 * adds to the rendering is that turn's segment, and for an assistant turn the part up to what
 * `add_generation_prompt` renders (the `<|im_start|>assistant\n` header) is prompt, the rest (content and the
 * end-of-turn tokens) is trained on. Segments are tokenized one by one (no special tokens added, as
 * apply_chat_template(tokenize=True) does) and concatenated, so every id knows its segment; labels are -100 on
 * everything that is not trained on.
 *
 * Truncation keeps the response: a row longer than maxLength loses the start of its prompt (earlier turns
 * first); only a final response longer than maxLength itself is cut at its end.
 */
import { EngineError } from '../errors';
import { quoteValue } from '../quote';
import type { ChatMessage } from '../tokenizer';
import { formatRow, type ChatFormat, type FormattedRow } from './chat-format';
import type { Example } from './data';
import { IGNORE_INDEX } from './loss';

/**
 * Templates for models without one. ChatML is what TRL's setup_chat_format gives a base model; alpaca is Stanford
 * Alpaca's prompt (its preamble unless the conversation has a system message), multi-turn. Both end an assistant
 * turn with something the model learns to stop at.
 */
export const BUILTIN_TEMPLATES: Record<string, string> = {
  chatml:
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}" +
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}",
  alpaca:
    "{% if messages[0]['role'] != 'system' %}{{ 'Below is an instruction that describes a task. Write a response that appropriately completes the request.\\n\\n' }}{% endif %}" +
    "{% for message in messages %}{% if message['role'] == 'system' %}{{ message['content'] + '\\n\\n' }}" +
    "{% elif message['role'] == 'user' %}{{ '### Instruction:\\n' + message['content'] + '\\n\\n' }}" +
    "{% else %}{{ '### Response:\\n' + message['content'] + (eos_token or '') + '\\n\\n' }}{% endif %}{% endfor %}" +
    "{% if add_generation_prompt %}{{ '### Response:\\n' }}{% endif %}",
};

export type TrainOn = 'responses' | 'last_response' | 'all';

/** The template a run renders with, and where it came from (saved next to the adapter so inference matches). */
export interface ChatTemplateChoice {
  /** 'model', a built-in name, or the file it was read from. */
  name: string;
  template: string;
  source: 'model' | 'builtin' | 'file';
  /** Why this one, when it was not asked for (e.g. the model has none). */
  note?: string;
}

/** The part of a tokenizer chat encoding needs. */
export interface ChatTokenizer {
  encode(text: string, options?: { addSpecialTokens?: boolean }): number[];
  readonly eosTokenId: number | null;
  /** The model's chat template (string, or named templates), if its tokenizer_config.json has one. */
  readonly chatTemplate?: string | Record<string, string> | null;
  renderChat?(messages: ChatMessage[], options?: { template?: string; addGenerationPrompt?: boolean }): string;
  readonly file?: string;
}

/** The model's own template string (a named set gives its "default"), or null. */
export function modelTemplate(tok: Pick<ChatTokenizer, 'chatTemplate'>): string | null {
  const t = tok.chatTemplate;
  if (typeof t === 'string' && t) return t;
  if (t && typeof t === 'object' && typeof t.default === 'string') return t.default;
  return null;
}

/**
 * Picks the template: `setting` is 'model', a built-in name, template text (`file` names where it came from), or
 * undefined / 'auto' = the model's, else the built-in that suits the format (alpaca for Alpaca data, ChatML
 * otherwise) with a note saying so.
 */
export function chooseTemplate(tok: Pick<ChatTokenizer, 'chatTemplate' | 'file'>, setting?: string, o: { format?: string; file?: string } = {}): ChatTemplateChoice {
  const own = modelTemplate(tok);
  const builtins = Object.keys(BUILTIN_TEMPLATES).join(', ');
  if (setting === undefined || setting === '' || setting === 'auto') {
    if (own) return { name: 'model', template: own, source: 'model' };
    const name = o.format === 'alpaca' ? 'alpaca' : 'chatml';
    return { name, template: BUILTIN_TEMPLATES[name], source: 'builtin', note: `the model's tokenizer has no chat_template; using the built-in ${name} template (choose another: ${builtins}, or a Jinja file)` };
  }
  if (setting === 'model') {
    if (own) return { name: 'model', template: own, source: 'model' };
    throw new EngineError('BAD_CONFIG', `${tok.file ?? 'The tokenizer'} has no chat_template (tokenizer_config.json); choose a built-in template (${builtins}) or give a Jinja template file.`);
  }
  if (BUILTIN_TEMPLATES[setting]) return { name: setting, template: BUILTIN_TEMPLATES[setting], source: 'builtin' };
  if (!setting.includes('{')) {
    throw new EngineError('BAD_ARGUMENT', `Chat template ${quoteValue(setting)} is neither a built-in (${builtins}, or model) nor Jinja template text.`);
  }
  return { name: o.file ?? 'custom', template: setting, source: 'file' };
}

/** A piece of the rendered text and whether the loss is computed on its tokens. */
export interface Segment {
  text: string;
  trained: boolean;
  ids: number[];
}

/** How truncation treated a row: untouched, start of the prompt dropped, response cut, or nothing left to train on. */
export type Cut = 'none' | 'prompt' | 'response' | 'lost';

export interface EncodedRow {
  ids: number[];
  /** The token id where trained on, IGNORE_INDEX (-100) elsewhere. */
  labels: number[];
  segments: Segment[];
  cut: Cut;
}

const commonPrefix = (a: string, b: string) => {
  let i = 0;
  while (i < a.length && i < b.length && a.charCodeAt(i) === b.charCodeAt(i)) i++;
  return i;
};

/** Renders a conversation into text segments, each trained on or not (see the file comment). */
export function chatSegments(
  messages: ChatMessage[], render: (m: ChatMessage[], addGenerationPrompt: boolean) => string, trainOn: TrainOn, where: string,
): { text: string; trained: boolean }[] {
  const lastAssistant = messages.map((m) => m.role).lastIndexOf('assistant');
  const out: { text: string; trained: boolean }[] = [];
  let prev = '';
  for (let i = 0; i < messages.length; i++) {
    const full = render(messages.slice(0, i + 1), false);
    if (!full.startsWith(prev)) {
      throw new EngineError(
        'BAD_CONFIG',
        `${where}: the chat template renders the first ${i} message(s) differently once message ${i + 1} follows, so the response tokens cannot be located; ` +
          'choose a built-in template (chatml, alpaca) or train on the whole text.',
      );
    }
    const trained = trainOn === 'all' || (messages[i].role === 'assistant' && (trainOn === 'responses' || i === lastAssistant));
    if (messages[i].role === 'assistant') {
      // The header add_generation_prompt would render is prompt. It is split off whatever is trained on, so the
      // ids are the same with every trainOn setting.
      const head = render(messages.slice(0, i), true);
      const split = Math.max(prev.length, commonPrefix(full, head));
      if (split > prev.length) out.push({ text: full.slice(prev.length, split), trained: trainOn === 'all' });
      out.push({ text: full.slice(split), trained });
    } else {
      out.push({ text: full.slice(prev.length), trained });
    }
    prev = full;
  }
  return out.filter((s) => s.text !== '');
}

/** The renderer for a template, with template failures (syntax, raise_exception) reported against the row. */
export function templateRenderer(tok: ChatTokenizer, choice: ChatTemplateChoice, where: () => string) {
  if (!tok.renderChat) throw new EngineError('BAD_CONFIG', 'This tokenizer cannot render chat templates.');
  return (m: ChatMessage[], addGenerationPrompt: boolean): string => {
    try {
      return tok.renderChat!(m, { template: choice.template, addGenerationPrompt });
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      throw new EngineError('BAD_CONFIG', `${where()}: the ${choice.name === 'model' ? "model's" : choice.name} chat template failed: ${why.length > 200 ? `${why.slice(0, 200)}…` : why}`);
    }
  };
}

/**
 * Keeps a row within maxLength while keeping its (last) response: drops tokens from the start (earlier turns and
 * the start of the prompt first); a final response longer than maxLength is kept from its start instead.
 */
export function truncateKeepingResponse(ids: number[], labels: number[], maxLength: number): { ids: number[]; labels: number[]; cut: Cut } {
  const n = ids.length;
  if (n <= maxLength) return { ids, labels, cut: 'none' };
  let lastTrained = -1;
  for (let j = n - 1; j >= 0; j--) if (labels[j] !== IGNORE_INDEX) ((lastTrained = j), (j = -1));
  // Start of the last run of trained tokens: the final response.
  let start = lastTrained;
  while (start > 0 && labels[start - 1] !== IGNORE_INDEX) start--;
  if (lastTrained >= 0 && n - start <= maxLength) return { ids: ids.slice(n - maxLength), labels: labels.slice(n - maxLength), cut: 'prompt' };
  const l = labels.slice(0, maxLength);
  return { ids: ids.slice(0, maxLength), labels: l, cut: l.slice(1).some((x) => x !== IGNORE_INDEX) ? 'response' : 'lost' };
}

export interface ChatEncodeOptions {
  /** Needed for conversations; plain prompt/completion rows need none. */
  template: ChatTemplateChoice | null;
  trainOn: TrainOn;
  maxLength: number;
}

/** One formatted row -> ids, labels and the segments they came from (for the preview). */
export function encodeRow(tok: ChatTokenizer, row: FormattedRow, o: ChatEncodeOptions, where: string): EncodedRow {
  let pieces: { text: string; trained: boolean; special?: boolean }[];
  if (row.kind === 'plain') {
    // TRL's standard prompt-completion: prompt + completion + EOS, the loss on the completion (and EOS).
    pieces = [{ text: row.prompt, trained: o.trainOn === 'all', special: true }, { text: row.completion, trained: true }];
  } else {
    if (!o.template) throw new EngineError('BAD_CONFIG', `${where}: a conversation needs a chat template.`);
    pieces = chatSegments(row.messages, templateRenderer(tok, o.template, () => where), o.trainOn, where);
  }
  const segments: Segment[] = pieces.map((p) => ({ text: p.text, trained: p.trained, ids: tok.encode(p.text, { addSpecialTokens: !!p.special }) }));
  if (row.kind === 'plain' && tok.eosTokenId != null) segments.push({ text: '', trained: true, ids: [tok.eosTokenId] });
  const ids = segments.flatMap((s) => s.ids);
  const labels = segments.flatMap((s) => (s.trained ? s.ids : s.ids.map(() => IGNORE_INDEX)));
  if (!ids.length) throw new EngineError('BAD_DATA', `${where}: empty after tokenization.`);
  const t = truncateKeepingResponse(ids, labels, o.maxLength);
  return { ids: t.ids, labels: t.labels, segments, cut: t.cut };
}

/** Tokens the loss is computed on: labels other than -100, past position 0 (a causal LM never predicts its first token). */
export function trainedTokens(labels: readonly number[]): number {
  let n = 0;
  for (let j = 1; j < labels.length; j++) if (labels[j] !== IGNORE_INDEX) n++;
  return n;
}

export interface ChatStats {
  rows: number;
  /** Input tokens after truncation, and how many of them the loss is computed on. */
  tokens: number;
  trainedTokens: number;
  /** Rows that lost the start of their prompt, lost part of their response, or had nothing left to train on (dropped). */
  promptCut: number;
  responseCut: number;
  dropped: number;
}

/** Adds a row to the statistics. */
export function addToStats(s: ChatStats, r: EncodedRow): void {
  s.rows += 1;
  if (r.cut === 'lost') return void (s.dropped += 1);
  s.tokens += r.ids.length;
  s.trainedTokens += trainedTokens(r.labels);
  if (r.cut === 'prompt') s.promptCut += 1;
  if (r.cut === 'response') s.responseCut += 1;
}

export const emptyStats = (): ChatStats => ({ rows: 0, tokens: 0, trainedTokens: 0, promptCut: 0, responseCut: 0, dropped: 0 });

/** A source row and where it is, for messages ("train.jsonl line 4", "owner/name train row 12"). */
export interface SourceRow {
  row: Record<string, unknown>;
  where: string;
}

export interface ChatDataOptions extends ChatEncodeOptions {
  format: ChatFormat;
}

export interface ChatData {
  /** Pre-tokenized CLM examples: inputIds + labels. */
  examples: Example[];
  stats: ChatStats;
  /** Rows that could not be used (bad shape, template failure), with where they are. */
  issues: { where: string; message: string }[];
  /** The first usable row, for the preview. */
  first: EncodedRow | null;
  /** Rows that were conversations (rendered with the template) rather than plain prompt + completion. */
  conversations: number;
}

/**
 * Formats, renders and tokenizes rows of a chat format. A bad row becomes an issue (the caller decides whether
 * that stops the run); a template that cannot render at all, or no usable row, is an EngineError.
 */
export function encodeChatData(tok: ChatTokenizer, rows: SourceRow[], o: ChatDataOptions): ChatData {
  const out: ChatData = { examples: [], stats: emptyStats(), issues: [], first: null, conversations: 0 };
  for (const { row, where } of rows) {
    let r: EncodedRow;
    try {
      const f = formatRow(row, o.format, where);
      if (f.kind === 'chat') out.conversations += 1;
      r = encodeRow(tok, f, o, where);
    } catch (e) {
      if (!(e instanceof EngineError)) throw e;
      out.issues.push({ where, message: e.message.startsWith(`${where}: `) ? e.message.slice(where.length + 2) : e.message });
      continue;
    }
    addToStats(out.stats, r);
    if (r.cut === 'lost') {
      out.issues.push({ where, message: `the prompt alone is longer than the max length (${o.maxLength} tokens), so no response token is left to train on; raise the max length` });
      continue;
    }
    out.first ??= r;
    out.examples.push({ inputIds: r.ids, labels: r.labels });
  }
  if (!out.examples.length) {
    const i = out.issues[0];
    throw new EngineError('BAD_DATA', i ? `${i.where}: ${i.message} (no usable ${o.format} rows)` : `No ${o.format} rows to train on.`);
  }
  return out;
}
