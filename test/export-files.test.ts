import { strFromU8, unzipSync } from 'fflate';
import { describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { BUILTIN_MODEL_FILES, buildReadme, buildZip, withBaseModel } from '../src/state/export-files';

const config = { base_model_name_or_path: 'sotu-gpt2', peft_type: 'LORA', target_modules: ['c_attn'], task_type: 'CAUSAL_LM' };

describe('export zip', () => {
  it('holds both adapter files byte for byte and a README', () => {
    const weights = new Uint8Array([8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32]);
    const zip = buildZip(
      { 'adapter_model.safetensors': weights.buffer.slice(0), 'adapter_config.json': JSON.stringify(config) },
      buildReadme({ task: 'CAUSAL_LM', step: 3, labels: [], config }),
    );
    const files = unzipSync(zip);
    expect(Object.keys(files).sort()).toEqual(['README.md', 'adapter_config.json', 'adapter_model.safetensors']);
    expect([...files['adapter_model.safetensors']]).toEqual([...weights]);
    expect(JSON.parse(strFromU8(files['adapter_config.json']))).toEqual(config);
  });

  it('README loads the adapter with PeftModel.from_pretrained on the right base class', () => {
    const clm = buildReadme({ task: 'CAUSAL_LM', step: 1, labels: [], config });
    expect(clm).toContain('PeftModel.from_pretrained(base, adapter_dir)');
    expect(clm).toContain('AutoModelForCausalLM.from_pretrained(');
    expect(clm).toContain('base_id = "sotu-gpt2"');
    const cls = buildReadme({ task: 'SEQ_CLS', step: 5, labels: ['ham', 'spam'], config: { ...config, task_type: 'SEQ_CLS' } });
    expect(cls).toContain('AutoModelForSequenceClassification');
    expect(cls).toContain('num_labels=2');
    expect(cls).toContain('{"0":"ham","1":"spam"}');
  });

  it('chat data: the template travels as chat_template.jinja and the README prompts through apply_chat_template', () => {
    const text = "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}";
    const readme = buildReadme({ task: 'CAUSAL_LM', step: 2, labels: [], config, chatTemplate: { name: 'chatml', text } });
    expect(readme).toContain('- chat template: chatml (`chat_template.jinja`');
    expect(readme).toContain('tokenizer.chat_template = open("chat_template.jinja").read()');
    expect(readme).toContain('tokenizer.apply_chat_template(messages, add_generation_prompt=True');
    const files = unzipSync(buildZip({ 'adapter_model.safetensors': new ArrayBuffer(16), 'adapter_config.json': JSON.stringify(config) }, readme, text));
    expect(Object.keys(files).sort()).toEqual(['README.md', 'adapter_config.json', 'adapter_model.safetensors', 'chat_template.jinja']);
    expect(strFromU8(files['chat_template.jinja'])).toBe(text);
    // Without chat data, the plain-text prompt as before and no template file.
    expect(buildReadme({ task: 'CAUSAL_LM', step: 2, labels: [], config })).not.toContain('apply_chat_template');
  });

  it('training_curves.svg travels in the zip and the README shows it with a relative image link', () => {
    const svg = '<svg xmlns="http://www.w3.org/2000/svg"></svg>';
    const readme = buildReadme({ task: 'CAUSAL_LM', step: 2, labels: [], config, curvesFile: 'training_curves.svg' });
    expect(readme).toContain('![Training and evaluation curves](training_curves.svg)');
    const files = unzipSync(buildZip({ 'adapter_model.safetensors': new ArrayBuffer(8), 'adapter_config.json': '{}' }, readme, null, { 'training_curves.svg': svg }));
    expect(strFromU8(files['training_curves.svg'])).toBe(svg);
    expect(buildReadme({ task: 'CAUSAL_LM', step: 2, labels: [], config })).not.toContain('training_curves.svg');
  });
});

describe('base_model_name_or_path in the zip', () => {
  // As PEFT 0.15.2 save_pretrained writes it (json.dumps(indent=2, sort_keys=True)), shortened.
  const peftText = '{\n  "alpha_pattern": {},\n  "base_model_name_or_path": "models/gpt2-tiny",\n  "bias": "none",\n  "peft_type": "LORA",\n  "r": 4\n}';

  it('withBaseModel sets the field (a Hub id, a folder, a null one) and leaves every other byte as PEFT wrote it', () => {
    expect(withBaseModel(peftText, 'openai-community/gpt2')).toBe(peftText.replace('"models/gpt2-tiny"', '"openai-community/gpt2"'));
    expect(withBaseModel(peftText.replace('"models/gpt2-tiny"', 'null'), 'sotu-gpt2')).toBe(peftText.replace('"models/gpt2-tiny"', '"sotu-gpt2"'));
    expect(JSON.parse(withBaseModel(peftText, 'C:\\models\\"odd"')).base_model_name_or_path).toBe('C:\\models\\"odd"');
    expect(JSON.parse(withBaseModel('{"peft_type": "LORA"}', 'me/base'))).toEqual({ peft_type: 'LORA', base_model_name_or_path: 'me/base' });
  });

  it('with the built-in model\'s files in the zip, the README loads the base from their folder', () => {
    const readme = buildReadme({ task: 'CAUSAL_LM', step: 5, labels: [], config: { ...config, base_model_name_or_path: 'sotu-gpt2' }, baseModelDir: 'sotu-gpt2' });
    expect(readme).toContain('base_id = "./sotu-gpt2"  # the base model the adapter was trained on, in this zip');
    expect(readme).toContain('(its files are in `sotu-gpt2/` in this zip)');
    expect(BUILTIN_MODEL_FILES).toEqual(expect.arrayContaining(['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']));
    // Every listed file is one the app serves (public/models/sotu-gpt2).
    for (const f of BUILTIN_MODEL_FILES) expect(existsSync(join('public/models/sotu-gpt2', f))).toBe(true);
    const hub = buildReadme({ task: 'CAUSAL_LM', step: 5, labels: [], config: { ...config, base_model_name_or_path: 'openai-community/gpt2' } });
    expect(hub).toContain('base_id = "openai-community/gpt2"');
  });

  it('the studio\'s chosen name goes into the zipped / pushed config; blank keeps the adapter\'s own', async () => {
    const { adapterConfigText, setBaseModelName } = await import('../src/state/push-actions');
    expect(adapterConfigText(peftText)).toBe(peftText);
    setBaseModelName('me/my-base');
    expect(JSON.parse(adapterConfigText(peftText)).base_model_name_or_path).toBe('me/my-base');
    setBaseModelName('  ');
    expect(adapterConfigText(peftText)).toBe(peftText);
  });
});
