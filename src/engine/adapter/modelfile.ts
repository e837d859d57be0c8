/**
 * An Ollama Modelfile for a GGUF adapter: `FROM <base>`, `ADAPTER ./adapter.gguf`, and the prompt TEMPLATE and
 * stop PARAMETERs mapped from the model's chat template. Ollama templates are Go templates, not Jinja, so a
 * template is recognised by its family (ChatML, Llama 3, Mistral / Llama 2 [INST], Gemma, Phi-3 / Zephyr) and
 * written in Ollama's form; a model without a chat template completes raw text (`{{ .Prompt }}`).
 */

export interface ModelfileOptions {
  /** What FROM names: an Ollama model (e.g. qwen2.5:0.5b) or the base model converted to GGUF (./base.gguf). */
  from: string;
  /** The adapter file, relative to the Modelfile. */
  adapter?: string;
  /** tokenizer_config.json of the base model, when there is one (chat_template, eos_token). */
  tokenizerConfig?: Record<string, unknown> | null;
  /** The end-of-sequence token's text, when known from elsewhere. */
  eosToken?: string | null;
}

interface Family {
  name: string;
  test: RegExp;
  template: string;
  stop: string[];
}

const FAMILIES: Family[] = [
  {
    name: 'ChatML',
    test: /<\|im_start\|>/,
    template: [
      '{{- if .System }}<|im_start|>system',
      '{{ .System }}<|im_end|>',
      '{{ end }}{{- range .Messages }}<|im_start|>{{ .Role }}',
      '{{ .Content }}<|im_end|>',
      '{{ end }}<|im_start|>assistant',
      '',
    ].join('\n'),
    stop: ['<|im_start|>', '<|im_end|>'],
  },
  {
    name: 'Llama 3',
    test: /<\|start_header_id\|>/,
    template: [
      '{{- if .System }}<|start_header_id|>system<|end_header_id|>',
      '',
      '{{ .System }}<|eot_id|>{{ end }}{{- range .Messages }}<|start_header_id|>{{ .Role }}<|end_header_id|>',
      '',
      '{{ .Content }}<|eot_id|>{{ end }}<|start_header_id|>assistant<|end_header_id|>',
      '',
      '',
    ].join('\n'),
    stop: ['<|start_header_id|>', '<|end_header_id|>', '<|eot_id|>'],
  },
  {
    name: 'Gemma',
    test: /<start_of_turn>/,
    template: '{{- range .Messages }}<start_of_turn>{{ if eq .Role "assistant" }}model{{ else }}{{ .Role }}{{ end }}\n{{ .Content }}<end_of_turn>\n{{ end }}<start_of_turn>model\n',
    stop: ['<start_of_turn>', '<end_of_turn>'],
  },
  {
    name: 'Phi-3 / Zephyr',
    test: /<\|(user|assistant)\|>/,
    template: '{{- if .System }}<|system|>\n{{ .System }}<|end|>\n{{ end }}{{- range .Messages }}<|{{ .Role }}|>\n{{ .Content }}<|end|>\n{{ end }}<|assistant|>\n',
    stop: ['<|end|>', '<|user|>', '<|assistant|>'],
  },
  {
    name: 'Mistral / Llama 2',
    test: /\[INST\]/,
    template: '{{- range .Messages }}{{ if eq .Role "user" }}[INST] {{ if and $.System (eq (len $.Messages) 1) }}{{ $.System }}\n\n{{ end }}{{ .Content }} [/INST]{{ else if eq .Role "assistant" }} {{ .Content }}</s>{{ end }}{{ end }}',
    stop: ['[INST]', '[/INST]'],
  },
];

/** The text of a token entry of tokenizer_config.json ("</s>" or {"content": "</s>", ...}). */
function tokenText(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string') return (v as { content: string }).content;
  return null;
}

/** The chat template text of tokenizer_config.json (a string, or the "default" of a list of named templates). */
function chatTemplate(tc: Record<string, unknown> | null | undefined): string | null {
  const t = tc?.chat_template;
  if (typeof t === 'string') return t;
  if (Array.isArray(t)) {
    const d = t.find((x) => x && typeof x === 'object' && (x as { name?: unknown }).name === 'default') as { template?: unknown } | undefined;
    return typeof d?.template === 'string' ? d.template : null;
  }
  return null;
}

/** Which template family was recognised (null: none, or no chat template). */
export function templateFamily(tc: Record<string, unknown> | null | undefined): string | null {
  const t = chatTemplate(tc);
  return t ? FAMILIES.find((f) => f.test.test(t))?.name ?? null : null;
}

const quote = (s: string) => JSON.stringify(s);

/** The Modelfile text. */
export function ollamaModelfile(o: ModelfileOptions): string {
  const tc = o.tokenizerConfig ?? null;
  const tpl = chatTemplate(tc);
  const family = tpl ? FAMILIES.find((f) => f.test.test(tpl)) : undefined;
  const eos = o.eosToken ?? tokenText(tc?.eos_token);
  const lines = [
    '# Ollama Modelfile written by PEFT Studio: `ollama create my-model -f Modelfile`, then `ollama run my-model`.',
    '# FROM must be the base model the adapter was trained on, as an Ollama model or a GGUF file converted with',
    "# llama.cpp's convert_hf_to_gguf.py (same architecture; F16 / F32 keeps the adapter's numbers closest).",
    `FROM ${o.from}`,
    `ADAPTER ${o.adapter ?? './adapter.gguf'}`,
  ];
  if (family) {
    lines.push(`# Chat template: ${family.name}, mapped from tokenizer_config.json's chat_template.`, `TEMPLATE """${family.template}"""`);
    for (const s of new Set([...family.stop, ...(eos ? [eos] : [])])) lines.push(`PARAMETER stop ${quote(s)}`);
  } else {
    lines.push(
      tpl
        ? '# The chat template of tokenizer_config.json is of no family PEFT Studio maps; prompts go to the model as they are.'
        : '# The base model has no chat template: prompts go to the model as they are (text completion).',
      'TEMPLATE """{{ .Prompt }}"""',
    );
    if (eos) lines.push(`PARAMETER stop ${quote(eos)}`);
  }
  return `${lines.join('\n')}\n`;
}
