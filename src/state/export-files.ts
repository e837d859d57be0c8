/**
 * What the Export panel downloads: the two adapter files as PEFT saves them, or a zip holding both plus a
 * README with the Python that loads the adapter with PeftModel.from_pretrained.
 */
import { strToU8, zipSync } from 'fflate';
import type { AdapterFiles, TaskType } from '../worker/protocol';

export interface ReadmeInfo {
  task: TaskType;
  step: number;
  labels: string[];
  /** The parsed adapter_config.json. */
  config: Record<string, unknown>;
  /** The chat template the data was rendered with (chat / instruction data), saved as chat_template.jinja. */
  chatTemplate?: { name: string; text: string } | null;
  /** The run's curves are in the zip as this file (training_curves.svg). */
  curvesFile?: string | null;
  /** The base model's files are in the zip under this folder (the built-in model); the snippet loads them from it. */
  baseModelDir?: string | null;
}

/** README.md for the zip: what the adapter is and how to load it in Python. */
export function buildReadme(r: ReadmeInfo): string {
  const base = String(r.config.base_model_name_or_path ?? 'path/to/base-model');
  const method = String(r.config.peft_type ?? 'LORA');
  const tagging = r.task === 'TOKEN_CLS';
  const cls = r.task === 'SEQ_CLS' || tagging;
  const seq2seq = r.task === 'SEQ_2_SEQ_LM';
  const auto = tagging ? 'AutoModelForTokenClassification' : cls ? 'AutoModelForSequenceClassification' : seq2seq ? 'AutoModelForSeq2SeqLM' : 'AutoModelForCausalLM';
  const labels = cls && r.labels.length
    ? `,\n    num_labels=${r.labels.length},\n    id2label=${JSON.stringify(Object.fromEntries(r.labels.map((l, i) => [i, l])))},`
    : '';
  const usage = tagging
    ? [
        'words = "In March 1933 Franklin Roosevelt spoke to New York".split()',
        'inputs = tokenizer(words, is_split_into_words=True, return_tensors="pt")',
        'with torch.no_grad():',
        '    ids = model(**inputs).logits.argmax(-1)[0].tolist()',
        '# Each word\'s tag is its first sub-token\'s, as the adapter was trained and scored (seqeval).',
        'seen = set()',
        'for t, w in enumerate(inputs.word_ids()):',
        '    if w is not None and w not in seen:',
        '        seen.add(w)',
        '        print(words[w], model.config.id2label[ids[t]])',
      ]
    : cls
    ? [
        'inputs = tokenizer("Your text here", return_tensors="pt")',
        'with torch.no_grad():',
        '    probs = model(**inputs).logits.softmax(-1)[0]',
        'print(model.config.id2label[int(probs.argmax())], probs.tolist())',
      ]
    : seq2seq
    ? [
        '# The source in, the generated target out (greedy, as the studio evaluates and plays).',
        'inputs = tokenizer("Your source text here", return_tensors="pt")',
        'out = model.generate(**inputs, max_new_tokens=40, do_sample=False)',
        'print(tokenizer.decode(out[0], skip_special_tokens=True))',
      ]
    : r.chatTemplate
      ? [
          '# The chat template the adapter was trained with (chat_template.jinja in this folder), so prompts match.',
          'tokenizer.chat_template = open("chat_template.jinja").read()',
          'messages = [{"role": "user", "content": "Your question here"}]',
          'inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)',
          'out = model.generate(**inputs, max_new_tokens=80, do_sample=False)',
          'print(tokenizer.decode(out[0][inputs["input_ids"].shape[1]:], skip_special_tokens=True))',
        ]
      : [
        'inputs = tokenizer("My fellow citizens,", return_tensors="pt")',
        'out = model.generate(**inputs, max_new_tokens=40, do_sample=False)',
        'print(tokenizer.decode(out[0], skip_special_tokens=True))',
      ];
  return [
    `# ${method} adapter from PEFT Studio`,
    '',
    `- base model: \`${base}\`${r.baseModelDir ? ` (its files are in \`${r.baseModelDir}/\` in this zip)` : ''}`,
    `- task: ${r.task}`,
    `- trained for ${r.step} optimizer step${r.step === 1 ? '' : 's'}`,
    r.config.target_modules !== undefined ? `- target_modules: \`${JSON.stringify(r.config.target_modules)}\`` : '',
    r.chatTemplate ? `- chat template: ${r.chatTemplate.name} (\`chat_template.jinja\`; the responses were rendered with it)` : '',
    '',
    'Files: `adapter_model.safetensors` (weights) and `adapter_config.json`, exactly as PEFT `save_pretrained` writes them.',
    '',
    ...(r.curvesFile ? ['## Training curves', '', `![Training and evaluation curves](${r.curvesFile})`, ''] : []),
    '## Load with PEFT',
    '',
    '```python',
    'import torch',
    `from transformers import ${auto}, AutoTokenizer`,
    'from peft import PeftModel',
    '',
    r.baseModelDir
      ? `base_id = "./${r.baseModelDir}"  # the base model the adapter was trained on, in this zip`
      : `base_id = "${base}"  # the same base model the adapter was trained on (a Hub id or a local folder)`,
    'adapter_dir = "."  # this folder',
    '',
    // Byte-level BPE tokenizers (GPT-2, RoBERTa) take pre-split words only with add_prefix_space.
    `tokenizer = AutoTokenizer.from_pretrained(base_id${tagging ? ', add_prefix_space=True' : ''})`,
    `base = ${auto}.from_pretrained(`,
    `    base_id${labels}${cls ? '\n    pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id,' : ''}`,
    ')',
    'model = PeftModel.from_pretrained(base, adapter_dir)',
    'model.eval()',
    '',
    ...usage,
    '```',
    '',
    'To fold the adapter into the base weights: `model = model.merge_and_unload()` (LoRA, DoRA, IA3 and AdaLoRA; prompt',
    "methods have nothing to fold in), or the studio's Merge and download, which writes the merged model folder.",
    '',
  ]
    .filter((l, i, a) => !(l === '' && a[i - 1] === ''))
    .join('\n');
}

/** A zip of text and binary files (binary ones stored, text compressed). */
export function zipFiles(files: Record<string, string | ArrayBuffer>): Uint8Array {
  return zipSync(
    Object.fromEntries(Object.entries(files).map(([k, v]) => [k, typeof v === 'string' ? strToU8(v) : ([new Uint8Array(v), { level: 0 }] as [Uint8Array, { level: 0 }])])),
    { level: 6 },
  );
}

/**
 * A zip with adapter_model.safetensors, adapter_config.json and README.md (and chat_template.jinja for chat data,
 * and any extra files such as training_curves.svg).
 */
export function buildZip(files: AdapterFiles, readme: string, chatTemplate?: string | null, extra: Record<string, string | ArrayBuffer> = {}): Uint8Array {
  return zipFiles({
    'adapter_model.safetensors': files['adapter_model.safetensors'],
    'adapter_config.json': files['adapter_config.json'],
    'README.md': readme,
    ...(chatTemplate ? { 'chat_template.jinja': chatTemplate } : {}),
    ...extra,
  });
}

/** Starts a browser download of bytes, text or a Blob (such as a File read from OPFS, not copied into memory). */
export function download(name: string, data: Uint8Array | ArrayBuffer | string | Blob, type = 'application/octet-stream'): void {
  const blob = data instanceof Blob ? data : new Blob([data as BlobPart], { type });
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  // Long enough for the browser to start reading a large file (a merged model's shard) before the URL goes.
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

/**
 * adapter_config.json with base_model_name_or_path set to `name` and every other byte as PEFT wrote it (the field
 * is what PeftModel / AutoPeftModel load the base from when none is given).
 */
export function withBaseModel(configJson: string, name: string): string {
  const re = /("base_model_name_or_path":\s*)(null|"(?:[^"\\]|\\.)*")/;
  if (re.test(configJson)) return configJson.replace(re, (_m, key: string) => `${key}${JSON.stringify(name)}`);
  return `${JSON.stringify({ ...(JSON.parse(configJson) as object), base_model_name_or_path: name }, null, 2)}\n`;
}

/** The built-in model's files, which the zip can carry in a folder of their own so the README's snippet loads them. */
export const BUILTIN_MODEL_FILES = ['config.json', 'generation_config.json', 'model.safetensors', 'special_tokens_map.json', 'tokenizer.json', 'tokenizer_config.json', 'README.md'];
