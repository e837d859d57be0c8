/**
 * Instruction and chat data as people bring it, turned into one shape: a conversation (role/content messages) or
 * a plain prompt + completion pair. The formats are the ones TRL's SFTTrainer and LLaMA-Factory read:
 *
 *   alpaca             {"instruction", "input"?, "output", "system"?}      -> system?, user, assistant
 *   sharegpt           {"conversations": [{"from": "human"|"gpt"|"system", "value"}]}
 *   messages           {"messages": [{"role": "system"|"user"|"assistant", "content"}]}  (OpenAI / HF chat)
 *   prompt_completion  {"prompt", "completion"} (or "response"): plain text, no template, as TRL's standard
 *                      prompt-completion format; prompt/completion given as message lists are a conversation
 *
 * Rows come from CSV / JSONL tables (cells are strings; lists arrive as their JSON text) or from Parquet (real
 * values); both are accepted. Every problem names the row and says what the row should look like.
 */
import { EngineError } from '../errors';
import { listNames, quoteValue } from '../quote';
import type { ChatMessage } from '../tokenizer';

export const CHAT_FORMATS = ['alpaca', 'sharegpt', 'messages', 'prompt_completion'] as const;
export type ChatFormat = (typeof CHAT_FORMATS)[number];
/** A format setting: one of the chat formats, plain `text` (no format), or `auto` (from the columns). */
export type DataFormatSetting = ChatFormat | 'text' | 'auto';

/** One row turned into training input: a conversation rendered with a chat template, or plain prompt + completion. */
export type FormattedRow =
  | { kind: 'chat'; messages: ChatMessage[] }
  | { kind: 'plain'; prompt: string; completion: string };

const lower = (cols: readonly string[]) => new Map(cols.map((c) => [c.toLowerCase(), c]));

/** Column names each format reads (the first name present wins; matching ignores case). */
export const FORMAT_COLUMNS = {
  alpaca: { instruction: ['instruction'], input: ['input', 'context'], output: ['output', 'response'], system: ['system'] },
  sharegpt: { conversations: ['conversations', 'conversation'] },
  messages: { messages: ['messages', 'conversation', 'chat'] },
  prompt_completion: { prompt: ['prompt'], completion: ['completion', 'response', 'chosen'] },
} as const;

function col(cols: Map<string, string>, names: readonly string[]): string | undefined {
  for (const n of names) if (cols.has(n)) return cols.get(n);
  return undefined;
}

/**
 * The chat format the columns imply, or null when none fits (plain text or classification data). A sample row
 * tells `conversations` / `messages` lists apart (ShareGPT uses from/value, OpenAI role/content).
 */
export function detectChatFormat(columns: readonly string[], sample?: Record<string, unknown>): ChatFormat | null {
  const c = lower(columns);
  const conv = col(c, ['conversations', 'conversation', 'messages', 'chat']);
  if (conv) {
    const list = sample ? asList(sample[conv]) : null;
    const first = list?.find((m) => m && typeof m === 'object') as Record<string, unknown> | undefined;
    if (first && 'from' in first && 'value' in first) return 'sharegpt';
    if (first && 'role' in first) return 'messages';
    return conv.toLowerCase().startsWith('conversation') ? 'sharegpt' : 'messages';
  }
  if (col(c, FORMAT_COLUMNS.alpaca.instruction) && col(c, FORMAT_COLUMNS.alpaca.output)) return 'alpaca';
  // prompt + response stays the plain column mapping (trained on the response too); "completion" is TRL's name.
  if (col(c, FORMAT_COLUMNS.prompt_completion.prompt) && c.has('completion')) return 'prompt_completion';
  return null;
}

/** What a row of each format looks like, for messages. */
export const FORMAT_EXAMPLE: Record<ChatFormat, string> = {
  alpaca: '{"instruction": "...", "input": "", "output": "..."}',
  sharegpt: '{"conversations": [{"from": "human", "value": "..."}, {"from": "gpt", "value": "..."}]}',
  messages: '{"messages": [{"role": "user", "content": "..."}, {"role": "assistant", "content": "..."}]}',
  prompt_completion: '{"prompt": "...", "completion": "..."}',
};

const REQUIRED: Record<ChatFormat, string[]> = {
  alpaca: ['instruction', 'output'], sharegpt: ['conversations'], messages: ['messages'], prompt_completion: ['prompt', 'completion'],
};

/** The columns a format needs that the data lacks (empty when it fits). */
export function missingColumns(format: ChatFormat, columns: readonly string[]): string[] {
  const c = lower(columns);
  const spec = FORMAT_COLUMNS[format] as Record<string, readonly string[]>;
  return REQUIRED[format].filter((k) => !col(c, spec[k])).map((k) => spec[k].join(' or '));
}

/**
 * Resolves a format setting against the columns: `auto` detects (null: plain text), an explicit format must fit
 * (BAD_DATA naming the missing columns and the expected row otherwise).
 */
export function resolveFormat(setting: DataFormatSetting, columns: readonly string[], where: string, sample?: Record<string, unknown>): ChatFormat | null {
  if (setting === 'text') return null;
  if (setting === 'auto') return detectChatFormat(columns, sample);
  const missing = missingColumns(setting, columns);
  if (missing.length) {
    throw new EngineError(
      'BAD_DATA',
      `${where}: the ${setting} format needs column ${missing.map((m) => quoteValue(m)).join(' and ')}, but the columns are ${listNames([...columns])}. ` +
        `A row in that format looks like ${FORMAT_EXAMPLE[setting]}; pick the format that fits, or auto.`,
    );
  }
  return setting;
}

/** A list cell: a real array (Parquet, JSON) or the JSON text of one (CSV / JSONL tables); null otherwise. */
function asList(v: unknown): unknown[] | null {
  if (Array.isArray(v)) return v;
  if (typeof v === 'string' && v.trimStart().startsWith('[')) {
    try {
      const p = JSON.parse(v);
      return Array.isArray(p) ? p : null;
    } catch {
      return null;
    }
  }
  return null;
}

function text(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (v === null || v === undefined) return null;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  // OpenAI content parts: [{"type": "text", "text": "..."}]
  const parts = asList(v);
  if (parts && parts.every((p) => p && typeof p === 'object' && typeof (p as Record<string, unknown>).text === 'string')) {
    return parts.map((p) => (p as { text: string }).text).join('');
  }
  return null;
}

// ShareGPT speakers (LLaMA-Factory's defaults plus the common variants).
const SHAREGPT_ROLES: Record<string, ChatMessage['role']> = {
  human: 'user', user: 'user', gpt: 'assistant', assistant: 'assistant', chatgpt: 'assistant', bard: 'assistant',
  bing: 'assistant', model: 'assistant', system: 'system', function_call: 'assistant', observation: 'tool', tool: 'tool',
};
const ROLES = new Set(['system', 'user', 'assistant', 'tool']);

function messageList(v: unknown, where: string, format: 'sharegpt' | 'messages', column: string): ChatMessage[] {
  const list = asList(v);
  if (!list) throw new EngineError('BAD_DATA', `${where}: column ${quoteValue(column)} is not a list of messages (got ${quoteValue(v, 60)}); a ${format} row looks like ${FORMAT_EXAMPLE[format]}`);
  const out: ChatMessage[] = [];
  list.forEach((m, j) => {
    const at = `${where}, message ${j + 1}`;
    if (!m || typeof m !== 'object' || Array.isArray(m)) throw new EngineError('BAD_DATA', `${at}: expected an object like ${format === 'sharegpt' ? '{"from": "human", "value": "..."}' : '{"role": "user", "content": "..."}'}, got ${quoteValue(m, 60)}`);
    const r = m as Record<string, unknown>;
    // Either key style is read in either format: datasets mix them more often than not.
    const speaker = r.from ?? r.role;
    const content = text(r.value ?? r.content);
    if (typeof speaker !== 'string') throw new EngineError('BAD_DATA', `${at}: no "${format === 'sharegpt' ? 'from' : 'role'}" (who speaks) in ${quoteValue(m, 60)}`);
    const role = format === 'sharegpt' || !ROLES.has(speaker) ? SHAREGPT_ROLES[speaker.toLowerCase()] : speaker;
    if (!role) {
      throw new EngineError('BAD_DATA', `${at}: unknown speaker ${quoteValue(speaker)}; use ${format === 'sharegpt' ? '"human", "gpt" or "system"' : '"system", "user" or "assistant"'}`);
    }
    if (content === null) throw new EngineError('BAD_DATA', `${at}: the message has no text ("${format === 'sharegpt' ? 'value' : 'content'}")`);
    out.push({ role, content });
  });
  return out;
}

/**
 * One row in a chat format -> a conversation (or plain prompt + completion). BAD_DATA names the row when a needed
 * value is missing or there is no assistant turn to train on.
 */
export function formatRow(row: Record<string, unknown>, format: ChatFormat, where: string): FormattedRow {
  const c = lower(Object.keys(row));
  const get = (names: readonly string[]) => {
    const k = col(c, names);
    return k === undefined ? undefined : row[k];
  };
  let messages: ChatMessage[];
  if (format === 'alpaca') {
    const f = FORMAT_COLUMNS.alpaca;
    const instruction = text(get(f.instruction)) ?? '';
    const input = text(get(f.input)) ?? '';
    const output = text(get(f.output));
    const system = text(get(f.system)) ?? '';
    if (!instruction.trim()) throw new EngineError('BAD_DATA', `${where}: "instruction" is empty`);
    if (output === null || !output.trim()) throw new EngineError('BAD_DATA', `${where}: "output" is empty; there is no response to train on`);
    // LLaMA-Factory's and Stanford Alpaca's joining: the input follows the instruction after a blank line.
    messages = [
      ...(system.trim() ? [{ role: 'system', content: system }] : []),
      { role: 'user', content: input.trim() ? `${instruction}\n\n${input}` : instruction },
      { role: 'assistant', content: output },
    ];
  } else if (format === 'prompt_completion') {
    const f = FORMAT_COLUMNS.prompt_completion;
    const p = get(f.prompt);
    const r = get(f.completion);
    // TRL's conversational prompt-completion: both sides are message lists.
    if (asList(p) && asList(r)) {
      messages = [...messageList(p, where, 'messages', 'prompt'), ...messageList(r, where, 'messages', 'completion')];
    } else {
      const prompt = text(p);
      const completion = text(r);
      if (prompt === null) throw new EngineError('BAD_DATA', `${where}: "prompt" is missing`);
      if (completion === null || completion === '') throw new EngineError('BAD_DATA', `${where}: "completion" is empty; there is no response to train on`);
      return { kind: 'plain', prompt, completion };
    }
  } else {
    const names = format === 'sharegpt' ? FORMAT_COLUMNS.sharegpt.conversations : FORMAT_COLUMNS.messages.messages;
    const k = col(c, names) ?? col(c, ['conversations', 'conversation', 'messages', 'chat'])!;
    messages = messageList(row[k], where, format, k);
  }
  if (!messages.some((m) => m.role === 'assistant')) {
    throw new EngineError('BAD_DATA', `${where}: the conversation has no assistant turn, so nothing would be trained on`);
  }
  return { kind: 'chat', messages };
}
