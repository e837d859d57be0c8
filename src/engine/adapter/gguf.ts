/**
 * A LoRA adapter as a GGUF adapter file for llama.cpp (`--lora`) and Ollama (`ADAPTER`), laid out as llama.cpp's
 * convert_lora_to_gguf.py writes one: metadata general.architecture (llama.cpp's name for the base), general.type
 * = "adapter", adapter.type = "lora", adapter.lora.alpha (f32); per adapted module `<gguf name>.weight.lora_a`
 * (A, torch [r, in], ne [in, r]) and `.weight.lora_b` (B, torch [out, r], ne [r, out]), F32 or F16, 32-byte
 * alignment. llama.cpp then adds `alpha / r * B A x`, with r read from each lora_a.
 *
 * What the converter's model classes do to base weights is done to the pair too:
 * - LLaMA / Mistral (llama.cpp arch "llama"): q_proj and k_proj rows are permuted from Hugging Face's rotate-half
 *   RoPE layout to llama.cpp's interleaved one (LlamaModel.permute), which for a LoRA pair permutes B's rows;
 * - Qwen2 (arch "qwen2", NeoX RoPE) is written as is;
 * - GPT-2 (arch "gpt2"): llama.cpp stores Conv1D weights transposed to [out, in] and keeps c_attn fused
 *   (`attn_qkv`, q|k|v rows as in the checkpoint). PEFT's A [r, in] / B [out, r] already describe the update in
 *   that [out, in] layout, so they are written unchanged. (The converter also transposes the pair for Conv1D
 *   names, which yields lora_a of ne [out, r] that llama.cpp's shape check refuses for c_attn / c_fc / mlp
 *   c_proj.)
 * llama.cpp has one alpha per file: a module whose PEFT scaling differs from alpha / r (rsLoRA's alpha / sqrt(r),
 * alpha_pattern) has its B multiplied by the ratio, so the file gives PEFT's update exactly.
 */
import { EngineError } from '../errors';
import { writeGguf, type GgmlType, type GgufTensor, type GgufValue } from '../io/gguf-write';
import type { PeftModel } from '../peft/model';
import { LoraModel } from '../peft/lora/model';
import { methodOf } from '../peft/registry';
import type { LlamaConfig } from '../models/llama';

/** llama.cpp's general.architecture for a config.json model_type (the base must be converted the same way). */
const GGUF_ARCH: Record<string, string> = { llama: 'llama', mistral: 'llama', qwen2: 'qwen2', gpt2: 'gpt2' };

/** Hugging Face module name -> llama.cpp tensor name (without ".weight"), per architecture family. */
function ggufName(arch: string, module: string): string | null {
  if (arch === 'gpt2') {
    const m = /^transformer\.h\.(\d+)\.(attn\.c_attn|attn\.c_proj|mlp\.c_fc|mlp\.c_proj)$/.exec(module);
    if (!m) return null;
    const to: Record<string, string> = { 'attn.c_attn': 'attn_qkv', 'attn.c_proj': 'attn_output', 'mlp.c_fc': 'ffn_up', 'mlp.c_proj': 'ffn_down' };
    return `blk.${m[1]}.${to[m[2]]}`;
  }
  const m = /^model\.layers\.(\d+)\.(self_attn\.[qkvo]_proj|mlp\.(?:gate|up|down)_proj)$/.exec(module);
  if (!m) return null;
  const to: Record<string, string> = {
    'self_attn.q_proj': 'attn_q', 'self_attn.k_proj': 'attn_k', 'self_attn.v_proj': 'attn_v', 'self_attn.o_proj': 'attn_output',
    'mlp.gate_proj': 'ffn_gate', 'mlp.up_proj': 'ffn_up', 'mlp.down_proj': 'ffn_down',
  };
  return `blk.${m[1]}.${to[m[2]]}`;
}

/**
 * LlamaModel.permute on the rows of an [out, cols] matrix: per head, row j * (hd / 2) + i moves to i * 2 + j, i.e.
 * reshape(heads, 2, hd / 2, cols).swapaxes(1, 2).
 */
export function permuteRows(data: Float32Array, rows: number, cols: number, heads: number): Float32Array {
  const hd = rows / heads;
  const half = hd / 2;
  const out = new Float32Array(data.length);
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < half; i++) {
      for (let j = 0; j < 2; j++) {
        const src = (h * hd + j * half + i) * cols;
        out.set(data.subarray(src, src + cols), (h * hd + i * 2 + j) * cols);
      }
    }
  }
  return out;
}

export interface GgufAdapterOptions {
  outtype?: GgmlType;
  /** general.name (e.g. the adapter folder's name). */
  name?: string;
}

function refuse(message: string): never {
  throw new EngineError('NOT_EXPORTABLE', message);
}

/** The GGUF adapter file of a LoRA PeftModel; other methods and unsupported architectures are refused with the reason. */
export async function loraToGguf(peft: PeftModel, o: GgufAdapterOptions = {}): Promise<Uint8Array> {
  const base = peft.base;
  const label = methodOf(peft.peftType).label;
  const alt = 'merge it instead (`npm run cli -- merge`) and convert the merged model with llama.cpp\'s convert_hf_to_gguf.py';
  if (!(peft instanceof LoraModel)) refuse(`llama.cpp's GGUF adapters hold LoRA pairs (lora_a, lora_b) only; a ${label} adapter has no such form: ${alt}.`);
  const cfg = peft.config;
  if (cfg.useDora) refuse(`llama.cpp runs plain LoRA only; DoRA's magnitude vector has no place in a GGUF adapter: ${alt}.`);
  const arch = GGUF_ARCH[base.config.modelType];
  if (!arch) refuse(`llama.cpp adapters are exported for LLaMA, Mistral, Qwen2 and GPT-2 models; this model is ${base.config.modelType}: ${alt}.`);
  if (base.task !== 'CAUSAL_LM') refuse(`A GGUF adapter is for text generation with llama.cpp; this adapter is for ${base.task} (its classification head cannot go into a GGUF adapter).`);
  if (peft.copies.size) {
    refuse(`The adapter trains ${[...peft.copies.keys()].slice(0, 3).join(', ')} besides its LoRA pairs (bias / modules_to_save), which a GGUF adapter cannot hold: ${alt}.`);
  }
  const alpha = cfg.loraAlpha;
  const tensors: GgufTensor[] = [];
  const type = o.outtype ?? 'F32';
  for (const [module, layer] of peft.layers) {
    const name = ggufName(arch, module);
    if (!name) refuse(`llama.cpp has no tensor for ${module} in a ${arch} model; leave it out of target_modules (attention and MLP projections export).`);
    const { r, inFeatures, outFeatures } = layer.spec;
    const A = (await layer.A.data()) as Float32Array; // [r, in]
    let B: Float32Array = Float32Array.from((await layer.B.data()) as Float32Array); // [out, r]
    // llama.cpp scales by alpha / r; carry PEFT's own scaling (rsLoRA, alpha_pattern) in B.
    const factor = layer.scaling / (alpha / r);
    if (factor !== 1) for (let i = 0; i < B.length; i++) B[i] *= factor;
    if (arch === 'llama' && /self_attn\.[qk]_proj$/.test(module)) {
      const c = base.config as LlamaConfig;
      B = permuteRows(B, outFeatures, r, module.endsWith('q_proj') ? c.numHeads : c.numKvHeads);
    }
    tensors.push({ name: `${name}.weight.lora_a`, shape: [r, inFeatures], type, data: A });
    tensors.push({ name: `${name}.weight.lora_b`, shape: [outFeatures, r], type, data: B });
  }
  const meta: [string, GgufValue][] = [
    ['general.architecture', { type: 'string', value: arch }],
    ['general.type', { type: 'string', value: 'adapter' }],
    ['adapter.type', { type: 'string', value: 'lora' }],
    ...(o.name ? [['general.name', { type: 'string', value: o.name }] as [string, GgufValue]] : []),
    ['adapter.lora.alpha', { type: 'f32', value: alpha }],
    ['general.quantization_version', { type: 'u32', value: 2 }],
  ];
  return writeGguf(meta, tensors);
}
