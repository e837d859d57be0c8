/**
 * `export-gguf --model DIR --adapter DIR --out adapter.gguf [--outtype f32|f16] [--ollama-from NAME]`: the LoRA
 * adapter as a GGUF adapter for llama.cpp (`llama-cli -m base.gguf --lora adapter.gguf`) and Ollama, plus a
 * Modelfile beside it (FROM the base, ADAPTER the file, the chat template mapped from tokenizer_config.json).
 */
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { loraToGguf } from '../engine/adapter/gguf';
import { ollamaModelfile, templateFamily } from '../engine/adapter/modelfile';
import { loadModelWithAdapter, readAdapterFolder } from './adapter-dir';
import { BACKEND_OPTION, choice, helpText, note, parseArgv, required, startBackend, str, writeOut, type CommandSpec } from './common';

export const EXPORT_GGUF: CommandSpec = {
  name: 'export-gguf',
  summary: 'Writes a LoRA adapter as a GGUF adapter file for llama.cpp / Ollama (LLaMA, Mistral, Qwen2, GPT-2), with an Ollama Modelfile.',
  usage: 'npm run cli -- export-gguf --model DIR --adapter DIR --out adapter.gguf [--outtype f32|f16] [--ollama-from NAME]',
  options: {
    model: { kind: 'value', arg: 'DIR|ID', help: 'Base model folder (config.json [+ tokenizer_config.json]) or Hub repo id owner/name[@rev].' },
    adapter: { kind: 'value', arg: 'DIR', help: 'PEFT LoRA adapter folder (adapter_config.json + adapter_model.safetensors).' },
    outtype: { kind: 'value', arg: 'f32|f16', help: 'Tensor type in the file (default f32, as llama.cpp\'s converter).' },
    'ollama-from': { kind: 'value', arg: 'NAME', help: 'FROM line of the Modelfile: an Ollama model or a base GGUF path (default ./<model name>.gguf).' },
    ...BACKEND_OPTION,
    out: { kind: 'value', arg: 'FILE', help: 'The .gguf file to write; Modelfile goes beside it.' },
  },
  notes: 'Only LoRA (incl. rsLoRA and rank / alpha patterns) has a GGUF adapter form; for DoRA, IA3 and AdaLoRA use `merge`, then llama.cpp\'s convert_hf_to_gguf.py.',
};

export async function exportGgufCommand(argv: string[]): Promise<void> {
  const p = parseArgv(EXPORT_GGUF, argv);
  if (p.help) return void console.log(helpText(EXPORT_GGUF));
  const modelArg = required(p, 'model', 'export-gguf');
  const adapterDir = required(p, 'adapter', 'export-gguf');
  const out = required(p, 'out', 'export-gguf');
  const outtype = (choice(p, 'outtype', ['f32', 'f16'] as const) ?? 'f32').toUpperCase() as 'F32' | 'F16';
  const adapter = readAdapterFolder(adapterDir);
  await startBackend(p);
  const { model, peft } = await loadModelWithAdapter(modelArg, adapter);
  try {
    const bytes = await loraToGguf(peft, { outtype, name: basename(resolve(adapterDir)) });
    writeOut(out, bytes);
    const tcPath = join(modelArg, 'tokenizer_config.json');
    const tokenizerConfig = existsSync(tcPath) ? (JSON.parse(readFileSync(tcPath, 'utf8')) as Record<string, unknown>) : null;
    const modelfile = join(dirname(out), 'Modelfile');
    const from = str(p, 'ollama-from') ?? `./${basename(resolve(modelArg)).replace(/@.*$/, '')}.gguf`;
    writeOut(modelfile, ollamaModelfile({ from, adapter: `./${relative(dirname(out), out)}`, tokenizerConfig }));
    const family = templateFamily(tokenizerConfig);
    note(`${model.className} LoRA -> ${out} (${outtype}, ${bytes.length} bytes) and ${modelfile} (${family ? `${family} template` : 'plain prompt template'})`);
  } finally {
    peft.dispose();
    model.dispose();
  }
}
