/**
 * GPT-2's Conv1D in a GGUF adapter: the orientation llama.cpp needs, derived and checked against PEFT's own merge.
 *
 * Hugging Face GPT-2 keeps c_attn / c_proj / c_fc as Conv1D, weight W_hf of torch shape [in, out] (y = x W_hf).
 * convert_hf_to_gguf.py's GPT2Model.modify_tensors transposes those four weights, so the base GGUF holds
 * W_ll = W_hf^T, torch [out, in], i.e. GGUF ne [in, out]; llama.cpp's ggml_mul_mat(W_ll, x) gives
 * y[o] = sum_i W_ll[o, i] x[i].
 * llama.cpp adds a LoRA pair as ggml_mul_mat(lora_b, ggml_mul_mat(lora_a, x)) * alpha / r, and loads a pair only
 * when lora_a.ne[0] == W.ne[0] (= in) and lora_b.ne[1] == W.ne[1] (= out), lora_a.ne[1] == lora_b.ne[0] (= r).
 * So lora_a must be ne [in, r] (torch [r, in]) and lora_b ne [r, out] (torch [out, r]) — exactly PEFT's lora_A
 * [r, in] and lora_B [out, r] for a Conv1D layer (PEFT takes in/out from the Conv1D weight and applies
 * (B A)^T to W_hf, fan_in_fan_out). Passing the pair through the converter's transpose instead (LoraTorchTensor
 * swaps it to A' = B^T, B' = A^T) gives lora_a ne [out, r]: refused for c_attn (64 -> 192) and c_fc, and the
 * transposed update (B A)^T for the square attn.c_proj.
 * The check: llama.cpp's update from the file's bytes, read in ggml's order, equals merged - base of PEFT's
 * merge_and_unload() (the fixture's merged.safetensors) for every adapted weight, and y = W_ll x + update x equals
 * the merged Conv1D's output.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gguf } from '@huggingface/gguf';
import { beforeAll, describe, expect, it } from 'vitest';
import { loraToGguf } from '../src/engine/adapter/gguf';
import { loadAdapter } from '../src/engine/adapter/import';
import { useNodeBackend } from '../src/engine/io/node-backend';
import { FIX, fixtureModel, fixtureTensors } from './helpers';

const dir = join(FIX, 'adapters', 'gpt2-lora');

async function ggufFile() {
  const base = fixtureModel('gpt2-tiny', 'CAUSAL_LM');
  const peft = loadAdapter(base, { config: readFileSync(join(dir, 'adapter_config.json'), 'utf8'), weights: new Uint8Array(readFileSync(join(dir, 'adapter_model.safetensors'))) });
  try {
    const bytes = await loraToGguf(peft);
    const tmp = mkdtempSync(join(tmpdir(), 'gguf-orient-'));
    const path = join(tmp, 'adapter.gguf');
    writeFileSync(path, bytes);
    const r = await gguf(path, { allowLocalFile: true });
    rmSync(tmp, { recursive: true, force: true });
    const tensors = new Map<string, { ne: number[]; data: Float32Array }>();
    for (const t of r.tensorInfos) {
      const ne = t.shape.map(Number);
      const start = Number(r.tensorDataOffset + t.offset);
      tensors.set(t.name, { ne, data: new Float32Array(bytes.slice(start, start + ne[0] * ne[1] * 4).buffer) });
    }
    return { tensors, alpha: Number((r.metadata as Record<string, unknown>)['adapter.lora.alpha']) };
  } finally {
    peft.dispose();
    base.dispose();
  }
}

describe('GGUF adapter for GPT-2: Conv1D orientation as llama.cpp computes it', () => {
  beforeAll(async () => {
    await useNodeBackend('cpu');
  });

  it('lora_a ne [in, r], lora_b ne [r, out] fit the transposed base weights, and alpha / r * B A equals PEFT\'s merge delta', async () => {
    const { tensors, alpha } = await ggufFile();
    const baseW = fixtureTensors('models', 'gpt2-tiny', 'model.safetensors');
    const merged = fixtureTensors('adapters', 'gpt2-lora', 'merged.safetensors');
    // gpt2-tiny: n_embd 64, so c_attn 64 -> 192, attn.c_proj 64 -> 64, mlp.c_proj 256 -> 64; r = 4, alpha = 8.
    const cases: [string, string, number, number][] = [];
    for (const l of [0, 1]) {
      cases.push([`transformer.h.${l}.attn.c_attn`, `blk.${l}.attn_qkv`, 64, 192]);
      cases.push([`transformer.h.${l}.attn.c_proj`, `blk.${l}.attn_output`, 64, 64]);
      cases.push([`transformer.h.${l}.mlp.c_proj`, `blk.${l}.ffn_down`, 256, 64]);
    }
    expect(alpha).toBe(8);
    let checked = 0;
    for (const [module, g, inF, outF] of cases) {
      const a = tensors.get(`${g}.weight.lora_a`)!;
      const b = tensors.get(`${g}.weight.lora_b`)!;
      const r = a.ne[1];
      expect(r).toBe(4);
      // llama.cpp's load check against the converted base weight (ne [in, out]).
      expect([a.ne[0], b.ne[1], b.ne[0]]).toEqual([inF, outF, r]);
      const k = `${module}.weight`;
      const w = baseW.get(k)!;
      const wm = merged.get(k)!;
      expect(w.shape).toEqual([inF, outF]); // Conv1D [in, out] in the Hugging Face file
      const W = w.data as Float32Array;
      const M = wm.data as Float32Array;
      const scale = alpha / r;
      // ggml order: a[j * in + i] is row j (of r), column i; b[o * r + j] is row o, column j.
      let maxErr = 0;
      let maxDelta = 0;
      for (let o = 0; o < outF; o++) {
        for (let i = 0; i < inF; i++) {
          let d = 0;
          for (let j = 0; j < r; j++) d += b.data[o * r + j] * a.data[j * inF + i];
          const peftDelta = M[i * outF + o] - W[i * outF + o]; // merged - base, in Conv1D [in, out]
          maxErr = Math.max(maxErr, Math.abs(scale * d - peftDelta));
          maxDelta = Math.max(maxDelta, Math.abs(peftDelta));
        }
      }
      expect(maxDelta).toBeGreaterThan(1e-3); // the adapter really changes this weight
      expect(maxErr).toBeLessThan(1e-6);
      // y = W_ll x + scale * B (A x) against the merged Conv1D's x W_merged, for a fixed x.
      const x = Float32Array.from({ length: inF }, (_, i) => Math.sin(i + 1));
      const ax = new Float64Array(r);
      for (let j = 0; j < r; j++) for (let i = 0; i < inF; i++) ax[j] += a.data[j * inF + i] * x[i];
      for (let o = 0; o < outF; o++) {
        let y = 0;
        let want = 0;
        for (let i = 0; i < inF; i++) {
          y += W[i * outF + o] * x[i]; // W_ll[o, i] = W_hf[i, o]
          want += M[i * outF + o] * x[i];
        }
        for (let j = 0; j < r; j++) y += scale * b.data[o * r + j] * ax[j];
        expect(Math.abs(y - want)).toBeLessThan(1e-5);
      }
      checked++;
    }
    expect(checked).toBe(6);
  });
});
