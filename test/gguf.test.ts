/**
 * GGUF adapters for llama.cpp / Ollama: the written file parses with @huggingface/gguf, carries
 * convert_lora_to_gguf.py's metadata and llama.cpp's tensor names and shapes, and holds PEFT's LoRA numbers (the
 * fixtures' A and B; LLaMA q/k rows in llama.cpp's RoPE order; rsLoRA's scaling carried in B). Other methods and
 * heads are refused with the reason; the CLI writes the file and an Ollama Modelfile.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gguf, GGMLQuantizationType, GGUFValueType } from '@huggingface/gguf';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loraToGguf } from '../src/engine/adapter/gguf';
import { loadAdapter } from '../src/engine/adapter/import';
import { ollamaModelfile, templateFamily } from '../src/engine/adapter/modelfile';
import { useNodeBackend } from '../src/engine/io/node-backend';
import { f16ToF32 } from '../src/engine/io/safetensors';
import { main } from '../src/cli/main';
import { FIX, fixtureModel, fixtureTensors, rejection } from './helpers';

const tmp = mkdtempSync(join(tmpdir(), 'gguf-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

async function exportCase(id: string, model: string, outtype: 'F32' | 'F16' = 'F32'): Promise<string> {
  const dir = join(FIX, 'adapters', id);
  const cfg = readFileSync(join(dir, 'adapter_config.json'), 'utf8');
  const base = fixtureModel(model, JSON.parse(cfg).task_type);
  const peft = loadAdapter(base, { config: cfg, weights: new Uint8Array(readFileSync(join(dir, 'adapter_model.safetensors'))) });
  try {
    const path = join(tmp, `${id}-${outtype}.gguf`);
    writeFileSync(path, await loraToGguf(peft, { outtype, name: id }));
    return path;
  } finally {
    peft.dispose();
    base.dispose();
  }
}

/** Parses with @huggingface/gguf and reads each tensor's values from the data section. */
async function parse(path: string) {
  const r = await gguf(path, { allowLocalFile: true, typedMetadata: true });
  const bytes = readFileSync(path);
  const values = new Map<string, Float32Array>();
  for (const t of r.tensorInfos) {
    const n = t.shape.reduce((a, d) => a * Number(d), 1);
    const start = Number(r.tensorDataOffset + t.offset);
    const raw = new Uint8Array(bytes.buffer.slice(bytes.byteOffset + start, bytes.byteOffset + start + n * (t.dtype === GGMLQuantizationType.F16 ? 2 : 4)));
    values.set(t.name, t.dtype === GGMLQuantizationType.F16 ? f16ToF32(new Uint16Array(raw.buffer)) : new Float32Array(raw.buffer));
  }
  return { ...r, metadata: r.metadata as unknown as Record<string, unknown>, typed: r.typedMetadata as unknown as Record<string, { type: GGUFValueType; value: unknown }>, values };
}

const A = (module: string) => `base_model.model.${module}.lora_A.weight`;
const B = (module: string) => `base_model.model.${module}.lora_B.weight`;

/** convert_hf_to_gguf.py LlamaModel.permute: reshape(heads, 2, hd/2, cols).swapaxes(1, 2), on B's rows. */
function llamaPermute(b: Float32Array, rows: number, cols: number, heads: number): Float32Array {
  const hd = rows / heads;
  const order: number[] = [];
  for (let h = 0; h < heads; h++) for (let i = 0; i < hd / 2; i++) for (let j = 0; j < 2; j++) order.push(h * hd + j * (hd / 2) + i);
  const out = new Float32Array(b.length);
  order.forEach((src, dst) => out.set(b.subarray(src * cols, (src + 1) * cols), dst * cols));
  return out;
}

describe('GGUF adapter', () => {
  beforeAll(async () => {
    await useNodeBackend('cpu');
  });

  it('gpt2-lora: gpt2 metadata, fused attn_qkv names, ne [in, r] / [r, out], F32, and PEFT\'s A and B as they are', async () => {
    const f = await parse(await exportCase('gpt2-lora', 'gpt2-tiny'));
    expect(f.metadata.version).toBe(3);
    expect(f.metadata['general.architecture']).toBe('gpt2');
    expect(f.metadata['general.type']).toBe('adapter');
    expect(f.metadata['adapter.type']).toBe('lora');
    expect(f.metadata['adapter.lora.alpha']).toBe(8);
    expect(f.metadata['general.name']).toBe('gpt2-lora');
    // The converter's value types: strings, and alpha as f32 (gguf_writer.add_float32).
    expect(f.typed['general.type'].type).toBe(GGUFValueType.STRING);
    expect(f.typed['adapter.type'].type).toBe(GGUFValueType.STRING);
    expect(f.typed['adapter.lora.alpha'].type).toBe(GGUFValueType.FLOAT32);
    const names = f.tensorInfos.map((t) => t.name).sort();
    const want = [0, 1].flatMap((l) => ['attn_qkv', 'attn_output', 'ffn_down'].flatMap((n) => [`blk.${l}.${n}.weight.lora_a`, `blk.${l}.${n}.weight.lora_b`])).sort();
    expect(names).toEqual(want);
    const shape = (n: string) => f.tensorInfos.find((t) => t.name === n)!.shape.map(Number);
    expect(shape('blk.0.attn_qkv.weight.lora_a')).toEqual([64, 4]);
    expect(shape('blk.0.attn_qkv.weight.lora_b')).toEqual([4, 192]);
    expect(shape('blk.1.ffn_down.weight.lora_a')).toEqual([256, 4]);
    expect(shape('blk.1.ffn_down.weight.lora_b')).toEqual([4, 64]);
    expect(new Set(f.tensorInfos.map((t) => t.dtype))).toEqual(new Set([GGMLQuantizationType.F32]));
    // Data section and every tensor 32-byte aligned (GGUF's default general.alignment).
    expect(Number(f.tensorDataOffset) % 32).toBe(0);
    for (const t of f.tensorInfos) expect(Number(t.offset) % 32).toBe(0);
    const file = fixtureTensors('adapters', 'gpt2-lora', 'adapter_model.safetensors');
    const map: Record<string, string> = { attn_qkv: 'attn.c_attn', attn_output: 'attn.c_proj', ffn_down: 'mlp.c_proj' };
    for (const l of [0, 1]) {
      for (const [g, hf] of Object.entries(map)) {
        const m = `transformer.h.${l}.${hf}`;
        expect(f.values.get(`blk.${l}.${g}.weight.lora_a`)).toEqual(file.get(A(m))!.data);
        expect(f.values.get(`blk.${l}.${g}.weight.lora_b`)).toEqual(file.get(B(m))!.data);
      }
    }
  });

  it('llama-lora: llama names for all seven projections, q / k rows permuted to llama.cpp\'s RoPE order (GQA k with its kv heads)', async () => {
    const f = await parse(await exportCase('llama-lora', 'llama-tiny'));
    expect(f.metadata['general.architecture']).toBe('llama');
    expect(f.metadata['adapter.lora.alpha']).toBe(JSON.parse(readFileSync(join(FIX, 'adapters', 'llama-lora', 'adapter_config.json'), 'utf8')).lora_alpha);
    const map: Record<string, string> = {
      attn_q: 'self_attn.q_proj', attn_k: 'self_attn.k_proj', attn_v: 'self_attn.v_proj', attn_output: 'self_attn.o_proj',
      ffn_gate: 'mlp.gate_proj', ffn_up: 'mlp.up_proj', ffn_down: 'mlp.down_proj',
    };
    expect(f.tensorInfos.length).toBe(28);
    const file = fixtureTensors('adapters', 'llama-lora', 'adapter_model.safetensors');
    for (const l of [0, 1]) {
      for (const [g, hf] of Object.entries(map)) {
        const m = `model.layers.${l}.${hf}`;
        const a = file.get(A(m))!;
        const b = file.get(B(m))!;
        const info = (s: string) => f.tensorInfos.find((t) => t.name === `blk.${l}.${g}.weight.${s}`)!;
        expect(info('lora_a').shape.map(Number)).toEqual([a.shape[1], a.shape[0]]);
        expect(info('lora_b').shape.map(Number)).toEqual([b.shape[1], b.shape[0]]);
        expect(f.values.get(`blk.${l}.${g}.weight.lora_a`)).toEqual(a.data);
        const heads = g === 'attn_q' ? 4 : g === 'attn_k' ? 2 : 0;
        const wantB = heads ? llamaPermute(b.data as Float32Array, b.shape[0], b.shape[1], heads) : b.data;
        expect(f.values.get(`blk.${l}.${g}.weight.lora_b`)).toEqual(wantB);
      }
    }
  });

  it('rsLoRA: llama.cpp scales by alpha / r, so B carries PEFT\'s alpha / sqrt(r) (16/2 = 8 vs 16/4 = 4)', async () => {
    const f = await parse(await exportCase('gpt2-lora-rslora-layer1', 'gpt2-tiny'));
    expect(f.metadata['adapter.lora.alpha']).toBe(16);
    const b = fixtureTensors('adapters', 'gpt2-lora-rslora-layer1', 'adapter_model.safetensors').get(B('transformer.h.1.attn.c_attn'))!.data as Float32Array;
    expect(f.values.get('blk.1.attn_qkv.weight.lora_b')).toEqual(b.map((x) => x * 2));
  });

  it('--outtype f16: F16 tensors holding the fixture\'s numbers within half precision', async () => {
    const f = await parse(await exportCase('llama-lora', 'llama-tiny', 'F16'));
    expect(new Set(f.tensorInfos.map((t) => t.dtype))).toEqual(new Set([GGMLQuantizationType.F16]));
    const a = fixtureTensors('adapters', 'llama-lora', 'adapter_model.safetensors').get(A('model.layers.1.mlp.up_proj'))!.data as Float32Array;
    const got = f.values.get('blk.1.ffn_up.weight.lora_a')!;
    let worst = 0;
    for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(got[i] - a[i]) - Math.abs(a[i]) * 2 ** -11 - 1e-7);
    expect(worst).toBeLessThanOrEqual(0);
  });

  it.each([
    { id: 'gpt2-dora', model: 'gpt2-tiny', why: /DoRA's magnitude vector/ },
    { id: 'gpt2-ia3', model: 'gpt2-tiny', why: /IA3 adapter has no such form/ },
    { id: 'gpt2-adalora', model: 'gpt2-tiny', why: /AdaLoRA adapter has no such form/ },
    { id: 'gpt2-prompt', model: 'gpt2-tiny', why: /Prompt tuning adapter/ },
    { id: 'gpt2-seqcls-lora', model: 'gpt2-tiny-seqcls', why: /SEQ_CLS/ },
    { id: 'bert-seqcls-lora', model: 'bert-tiny-seqcls', why: /LLaMA, Mistral, Qwen2 and GPT-2.*bert/ },
  ])('$id is refused (NOT_EXPORTABLE) with the reason', async ({ id, model, why }) => {
    const e = await rejection(exportCase(id, model));
    expect(e.code).toBe('NOT_EXPORTABLE');
    expect(e.message).toMatch(why);
  });

  it('Modelfile: FROM, ADAPTER, and the chat template mapped by family, or a plain prompt with the eos stop', () => {
    const chatml = ollamaModelfile({
      from: 'qwen2.5:0.5b',
      tokenizerConfig: { chat_template: "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}", eos_token: '<|im_end|>' },
    });
    expect(chatml).toMatch(/^FROM qwen2\.5:0\.5b$/m);
    expect(chatml).toMatch(/^ADAPTER \.\/adapter\.gguf$/m);
    expect(chatml).toContain('TEMPLATE """{{- if .System }}<|im_start|>system');
    expect(chatml).toMatch(/^PARAMETER stop "<\|im_end\|>"$/m);
    expect(chatml.match(/PARAMETER stop "<\|im_end\|>"/g)!.length).toBe(1);
    expect(templateFamily({ chat_template: '<|start_header_id|>{{ role }}<|end_header_id|>' })).toBe('Llama 3');
    expect(templateFamily({ chat_template: [{ name: 'default', template: '[INST] {{ x }} [/INST]' }] })).toBe('Mistral / Llama 2');
    const plain = ollamaModelfile({ from: './sotu-gpt2.gguf', tokenizerConfig: { eos_token: { content: '<|endoftext|>' } } });
    expect(plain).toContain('TEMPLATE """{{ .Prompt }}"""');
    expect(plain).toMatch(/^PARAMETER stop "<\|endoftext\|>"$/m);
  });

  it('CLI: export-gguf writes adapter.gguf and a Modelfile beside it; DoRA is an error with the reason', async () => {
    const model = join(tmp, 'llama-model');
    cpSync(join(FIX, 'models', 'llama-tiny'), model, { recursive: true });
    writeFileSync(join(model, 'tokenizer_config.json'), JSON.stringify({ chat_template: '<|im_start|>{{ m }}<|im_end|>', eos_token: '<|im_end|>' }));
    const out = join(tmp, 'cli', 'adapter.gguf');
    expect(await main(['export-gguf', '--model', model, '--adapter', join(FIX, 'adapters', 'llama-lora'), '--out', out, '--outtype', 'f16', '--ollama-from', 'smollm2:135m', '--backend', 'cpu'])).toBe(0);
    const f = await parse(out);
    expect(f.metadata['general.type']).toBe('adapter');
    expect(f.tensorInfos.every((t) => t.dtype === GGMLQuantizationType.F16)).toBe(true);
    const mf = readFileSync(join(tmp, 'cli', 'Modelfile'), 'utf8');
    expect(mf).toMatch(/^FROM smollm2:135m$/m);
    expect(mf).toMatch(/^ADAPTER \.\/adapter\.gguf$/m);
    expect(mf).toContain('<|im_start|>assistant');
    expect(await main(['export-gguf', '--model', join(FIX, 'models', 'gpt2-tiny'), '--adapter', join(FIX, 'adapters', 'gpt2-dora'), '--out', join(tmp, 'x.gguf'), '--backend', 'cpu'])).toBe(1);
  });
});
