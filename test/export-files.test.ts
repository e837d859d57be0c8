import { strFromU8, unzipSync } from 'fflate';
import { describe, expect, it } from 'vitest';
import { buildReadme, buildZip } from '../src/state/export-files';

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
