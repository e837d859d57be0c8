/**
 * Tokenizers for the engine, framework-free (Node, browser main thread or Web Worker): a thin wrapper around
 * @huggingface/transformers' PreTrainedTokenizer built from in-memory JSON (tokenizer.json + tokenizer_config.json),
 * so nothing is fetched and the Hugging Face hub is never contacted.
 *
 * @huggingface/transformers is imported lazily, on the first load, so importing this module (for its types) costs
 * nothing.
 */
import { EngineError } from './errors';
import { describeValue, quoteValue } from './quote';

/** A chat message for tokenizers that carry a chat template. */
export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | (string & {});
  content: string;
}

export interface EncodeOptions {
  /**
   * Add the tokenizer's special tokens (as Python's `tokenizer(text)` does by default). For GPT-2 style byte-level
   * tokenizers, including the built-in one, this adds nothing; for e.g. Llama-style tokenizers it adds BOS.
   * Default true.
   */
  addSpecialTokens?: boolean;
}

export interface DecodeOptions {
  /** Drop special tokens (e.g. `<|endoftext|>`) from the output. Default false. */
  skipSpecialTokens?: boolean;
}

export interface ChatTemplateOptions {
  /** End with the tokens that open the assistant's turn (if the template supports it). Default false. */
  addGenerationPrompt?: boolean;
}

export interface Tokenizer {
  /** Text -> token ids. */
  encode(text: string, options?: EncodeOptions): number[];
  /** Token ids -> text (an empty array gives ""). Never cleans up tokenization spaces unless the config asks to. */
  decode(ids: readonly number[], options?: DecodeOptions): string;
  /** Token string of one id, in the tokenizer's own alphabet (e.g. "Ġthe"), or undefined. */
  idToToken(id: number): string | undefined;
  /** Id of a token string (e.g. "<|endoftext|>"), or undefined. */
  tokenToId(token: string): number | undefined;
  /** Number of ids (highest id + 1), added tokens included: the embedding rows a model needs. */
  readonly vocabSize: number;
  readonly eosTokenId: number | null;
  /** The config's pad_token, else eos (as transformers.js does), else null. */
  readonly padTokenId: number | null;
  readonly bosTokenId: number | null;
  readonly unkTokenId: number | null;
  /** Ids of all special added tokens. */
  readonly specialTokenIds: readonly number[];
  /** tokenizer_config.json model_max_length (Infinity when absent). */
  readonly modelMaxLength: number;
  /**
   * Present only when the config has a chat_template: renders the conversation to text with the template. Encode the
   * result with `{ addSpecialTokens: false }`, as Python's apply_chat_template(tokenize=True) does.
   */
  applyChatTemplate?: (messages: ChatMessage[], options?: ChatTemplateOptions) => string;
  /** tokenizer_config.json's chat_template (a string, or named templates), or null when it has none. */
  readonly chatTemplate?: string | Record<string, string> | null;
  /**
   * Renders messages with `template` (Jinja text; default: the config's chat_template), with the tokenizer's special
   * tokens (bos_token, eos_token, ...) defined, as apply_chat_template(tokenize=False) does.
   */
  renderChat?: (messages: ChatMessage[], options?: ChatTemplateOptions & { template?: string }) => string;
  /** The underlying transformers.js tokenizer, for anything not covered here. */
  readonly hf: unknown;
  /** Where tokenizer.json came from (a path, or a name with its source), for messages. */
  readonly file?: string;
}

export interface TokenizerFilesJson {
  /** Parsed tokenizer.json. */
  tokenizerJson: object;
  /** Parsed tokenizer_config.json (optional; see loadTokenizer). */
  tokenizerConfig?: object;
  /** Where tokenizer.json came from, for messages (default "tokenizer.json"). */
  fileName?: string;
}

/** tokenizer.json model types transformers.js implements (a missing type is inferred from the vocab, as it does). */
export const TOKENIZER_MODEL_TYPES = ['BPE', 'WordPiece', 'Unigram', 'WordLevel'] as const;

/**
 * Checks what transformers.js would otherwise accept silently: a tokenizer.json without a "model" section, or
 * with a model type it does not implement (which it would replace by a guess from the vocabulary).
 */
export function checkTokenizerJson(json: unknown, fileName = 'tokenizer.json'): Record<string, unknown> {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new EngineError('BAD_CONFIG', `${fileName} must be a JSON object, got ${describeValue(json)}.`);
  }
  const model = (json as AnyRecord).model;
  if (!model || typeof model !== 'object' || Array.isArray(model)) {
    throw new EngineError('BAD_CONFIG', `${fileName} has no "model" section: not a Hugging Face tokenizers file. Use the tokenizer.json that came with the model.`);
  }
  const type = (model as AnyRecord).type;
  if (type !== undefined && !(TOKENIZER_MODEL_TYPES as readonly unknown[]).includes(type)) {
    throw new EngineError(
      'BAD_CONFIG',
      `${fileName}: model.type ${quoteValue(type)} is not a tokenizer model PEFT Studio can run (supported: ${TOKENIZER_MODEL_TYPES.join(', ')}). ` +
        'Use the tokenizer.json that came with the model.',
    );
  }
  return json as Record<string, unknown>;
}

/** Number of ids a tokenizer.json defines (highest id + 1, added tokens included), from the JSON alone; null if unknown. */
export function tokenizerJsonVocabSize(json: Record<string, unknown>): number | null {
  let max = -1;
  const model = json.model as AnyRecord | undefined;
  const vocab = model?.vocab;
  if (Array.isArray(vocab)) max = vocab.length - 1; // Unigram: [token, score] pairs, id = position
  else if (vocab && typeof vocab === 'object') {
    for (const id of Object.values(vocab as AnyRecord)) if (typeof id === 'number' && id > max) max = id;
  } else return null;
  if (Array.isArray(json.added_tokens)) {
    for (const t of json.added_tokens as AnyRecord[]) if (t && typeof t.id === 'number' && t.id > max) max = t.id;
  }
  return max + 1;
}

/**
 * A tokenizer whose ids reach past the model's embedding would make training index outside it: an error naming the
 * tokenizer file and the model's vocab_size, with what to do.
 */
export function checkTokenizerFitsModel(tokenizerVocabSize: number, modelVocabSize: number, tokenizerFile: string, modelFile = 'config.json'): void {
  if (tokenizerVocabSize <= modelVocabSize) return;
  throw new EngineError(
    'BAD_CONFIG',
    `${tokenizerFile} has ${tokenizerVocabSize} token ids (0..${tokenizerVocabSize - 1}) but the model's vocab_size is ${modelVocabSize} (${modelFile}): ` +
      `ids ${modelVocabSize} and up have no embedding row. This tokenizer does not belong to this model; use the tokenizer that came with the model.`,
  );
}

type AnyRecord = Record<string, unknown>;

interface HfTokenizer {
  encode(text: string, opts?: { add_special_tokens?: boolean }): number[];
  decode(ids: number[], opts?: { skip_special_tokens?: boolean; clean_up_tokenization_spaces?: boolean | null }): string;
  get_vocab(): Map<string, number>;
  convert_tokens_to_ids(token: string): number | undefined;
  apply_chat_template(conversation: ChatMessage[], options: AnyRecord): unknown;
  _tokenizer: { id_to_token(id: number): string | undefined };
  eos_token_id?: number;
  bos_token_id?: number;
  pad_token_id?: number;
  unk_token_id?: number;
  all_special_ids: number[];
  chat_template: unknown;
  model_max_length: number;
}

function asRecord(v: unknown, what: string): AnyRecord {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) {
    throw new EngineError('BAD_CONFIG', `${what} must be a JSON object.`);
  }
  return v as AnyRecord;
}

/**
 * Without a tokenizer_config.json the special tokens are unknown; when tokenizer.json has exactly one special added
 * token (GPT-2's `<|endoftext|>`), it is used as bos / eos / unk, as GPT-2's own config does.
 */
function defaultConfig(tokenizerJson: AnyRecord): AnyRecord {
  const added = Array.isArray(tokenizerJson.added_tokens) ? (tokenizerJson.added_tokens as AnyRecord[]) : [];
  const special = added.filter((t) => t.special === true && typeof t.content === 'string');
  if (special.length !== 1) return {};
  const tok = special[0]!.content as string;
  return { bos_token: tok, eos_token: tok, unk_token: tok, clean_up_tokenization_spaces: false };
}

function idOrNull(v: unknown): number | null {
  return typeof v === 'number' && Number.isInteger(v) ? v : null;
}

/**
 * Builds a tokenizer from the parsed contents of tokenizer.json and (optionally) tokenizer_config.json.
 * The class is chosen from `tokenizer_class` as AutoTokenizer does (e.g. "GPT2Tokenizer"), falling back to
 * PreTrainedTokenizer. No network access.
 */
export async function loadTokenizer(files: TokenizerFilesJson): Promise<Tokenizer> {
  const fileName = files.fileName ?? 'tokenizer.json';
  const tokenizerJson = checkTokenizerJson(files.tokenizerJson, fileName);
  const config =
    files.tokenizerConfig === undefined ? defaultConfig(tokenizerJson) : asRecord(files.tokenizerConfig, 'tokenizer_config.json');

  const transformers = (await import('@huggingface/transformers')) as unknown as Record<string, unknown>;
  const className = typeof config.tokenizer_class === 'string' ? config.tokenizer_class.replace(/Fast$/, '') : '';
  const Ctor = (
    typeof transformers[className] === 'function' && /Tokenizer$/.test(className)
      ? transformers[className]
      : transformers.PreTrainedTokenizer
  ) as new (json: object, cfg: object) => HfTokenizer;

  let hf: HfTokenizer;
  try {
    hf = new Ctor(tokenizerJson, config);
  } catch (e) {
    const why = e instanceof RangeError ? 'it is nested too deeply' : e instanceof Error ? e.message : String(e);
    throw new EngineError('BAD_CONFIG', `Could not build the tokenizer from ${fileName}: ${why.length > 300 ? `${why.slice(0, 300)}…` : why}`);
  }

  let maxId = -1;
  for (const id of hf.get_vocab().values()) if (id > maxId) maxId = id;
  const vocabSize = maxId + 1;
  const eosTokenId = idOrNull(hf.eos_token_id);
  const padTokenId = idOrNull(hf.pad_token_id) ?? eosTokenId;
  const cleanUp = typeof config.clean_up_tokenization_spaces === 'boolean' ? config.clean_up_tokenization_spaces : false;

  const tokenizer: Tokenizer = {
    encode(text, options = {}) {
      return hf.encode(text, { add_special_tokens: options.addSpecialTokens ?? true });
    },
    decode(ids, options = {}) {
      if (ids.length === 0) return '';
      for (const id of ids) {
        if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
          throw new EngineError('BAD_ARGUMENT', `Token id ${id} is outside the vocabulary (0..${vocabSize - 1}).`);
        }
      }
      return hf.decode(ids.slice(), {
        skip_special_tokens: options.skipSpecialTokens ?? false,
        clean_up_tokenization_spaces: cleanUp,
      });
    },
    idToToken: (id) => hf._tokenizer.id_to_token(id),
    tokenToId: (token) => idOrNull(hf.convert_tokens_to_ids(token)) ?? undefined,
    vocabSize,
    eosTokenId,
    padTokenId,
    bosTokenId: idOrNull(hf.bos_token_id),
    unkTokenId: idOrNull(hf.unk_token_id),
    specialTokenIds: [...hf.all_special_ids],
    modelMaxLength: hf.model_max_length,
    hf,
    file: fileName,
  };
  const own = hf.chat_template;
  (tokenizer as { chatTemplate?: unknown }).chatTemplate =
    typeof own === 'string' || (own && typeof own === 'object') ? (own as string | Record<string, string>) : null;
  tokenizer.renderChat = (messages, options = {}) =>
    hf.apply_chat_template(messages, {
      tokenize: false,
      add_generation_prompt: options.addGenerationPrompt ?? false,
      ...(options.template !== undefined ? { chat_template: options.template } : {}),
    }) as string;
  if (hf.chat_template) {
    tokenizer.applyChatTemplate = (messages, options = {}) =>
      hf.apply_chat_template(messages, {
        tokenize: false,
        add_generation_prompt: options.addGenerationPrompt ?? false,
      }) as string;
  }
  return tokenizer;
}
