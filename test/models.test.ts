/**
 * Architecture parity against transformers 4.43.4 fixtures (test/fixtures/README.md), on the cpu and wasm
 * backends: module trees, parameter counts, logits and losses, loading errors, real-size parameter counts.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EngineError } from '../src/engine/errors';
import { useNodeBackend } from '../src/engine/io/node-backend';
import { loadModelDir, readSafetensorsFile } from '../src/engine/io/node-files';
import type { LoadedTensor } from '../src/engine/io/safetensors';
import { buildModel, countParams, moduleTree, resolveArchitecture } from '../src/engine/models/index';
import type { ForwardHooks, Model } from '../src/engine/models/types';
import { causalLmLoss, seqClsLoss } from '../src/engine/train/loss';

const FIX = fileURLToPath(new URL('./fixtures', import.meta.url));
const TOL = 1e-4;

interface Case {
  name: string;
  className: string;
  params: number;
  task: 'CAUSAL_LM' | 'SEQ_CLS';
}

// Parameter counts from test/fixtures/README.md.
const CASES: Case[] = [
  { name: 'gpt2-tiny', className: 'GPT2LMHeadModel', params: 172288, task: 'CAUSAL_LM' },
  { name: 'gpt2-tiny-seqcls', className: 'GPT2ForSequenceClassification', params: 172416, task: 'SEQ_CLS' },
  { name: 'llama-tiny', className: 'LlamaForCausalLM', params: 202048, task: 'CAUSAL_LM' },
  { name: 'bert-tiny-seqcls', className: 'BertForSequenceClassification', params: 143682, task: 'SEQ_CLS' },
];

function load(name: string) {
  return loadModelDir(join(FIX, 'models', name));
}

function reference(path: string): Map<string, LoadedTensor> {
  return readSafetensorsFile(path).tensors;
}

function toTensor(t: LoadedTensor): tf.Tensor {
  return tf.tensor(t.data as Float32Array | Int32Array, t.shape, t.data instanceof Float32Array ? 'float32' : 'int32');
}

function namedModules(name: string) {
  return JSON.parse(readFileSync(join(FIX, 'models', name, 'named_modules.json'), 'utf8'));
}

function maxAbsDiff(a: tf.Tensor, b: Float32Array): number {
  const x = a.dataSync();
  expect(x.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i] - b[i]));
  return m;
}

/** Runs forward + loss on the reference inputs; returns max |logits diff| and |loss diff|. */
function parity(model: Model, ref: Map<string, LoadedTensor>, hooks?: ForwardHooks, expected = ref) {
  return tf.tidy(() => {
    const inputIds = toTensor(ref.get('input_ids')!);
    const attentionMask = toTensor(ref.get('attention_mask')!);
    let labels = toTensor(ref.get('labels')!);
    const logits = model.forward({ inputIds, attentionMask }, hooks);
    const want = expected.get('logits')!;
    expect(logits.shape).toEqual(want.shape);
    const logitDiff = maxAbsDiff(logits, want.data as Float32Array);
    if (model.task === 'CAUSAL_LM' && hooks?.prefixEmbeds) {
      // PEFT prepends -100 labels for the virtual tokens.
      const P = hooks.prefixEmbeds.shape[0];
      labels = tf.concat([tf.fill([labels.shape[0], P], -100, 'int32'), labels], 1);
    }
    const loss = model.task === 'CAUSAL_LM' ? causalLmLoss(logits, labels) : seqClsLoss(logits, labels);
    const lossDiff = Math.abs(loss.dataSync()[0] - (expected.get('loss')!.data as Float32Array)[0]);
    return { logitDiff, lossDiff };
  });
}

/** Copy of a tensor map (the LoadedTensor objects are shared, data is not modified by the tests). */
function copyMap(m: Map<string, LoadedTensor>): Map<string, LoadedTensor> {
  return new Map(m);
}

function expectEngineError(fn: () => unknown, code: string, ...fragments: string[]) {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(EngineError);
  expect((err as EngineError).code).toBe(code);
  for (const f of fragments) expect((err as EngineError).message).toContain(f);
}

/** Written to the console at the end: max abs diffs per backend / model. */
const report: string[] = [];
afterAll(() => {
  if (report.length) console.log(`parity (max abs diff):\n${report.join('\n')}`);
});

describe.each(['cpu', 'wasm'] as const)('models on the %s backend', (backend) => {
  beforeAll(async () => {
    await useNodeBackend(backend);
  });

  describe.each(CASES)('$name', (c) => {
    it('module tree equals named_modules.json', () => {
      const { config } = load(c.name);
      expect(moduleTree(config)).toEqual(namedModules(c.name));
    });

    it('parameter count matches the README', () => {
      const { config } = load(c.name);
      const r = resolveArchitecture(config);
      expect(r.className).toBe(c.className);
      expect(r.task).toBe(c.task);
      expect(countParams(r.spec.modules(r.config, r.task), r.spec.tied(r.config, r.task))).toBe(c.params);
    });

    it('logits and loss match transformers', () => {
      const { config, tensors } = load(c.name);
      const model = buildModel(config, tensors);
      try {
        expect(model.className).toBe(c.className);
        expect(model.report.initialised).toEqual([]);
        expect(model.report.unused).toEqual([]);
        const { logitDiff, lossDiff } = parity(model, reference(join(FIX, 'models', c.name, 'reference.safetensors')));
        report.push(`${backend} ${c.name}: logits ${logitDiff.toExponential(2)}, loss ${lossDiff.toExponential(2)}`);
        expect(logitDiff).toBeLessThan(TOL);
        expect(lossDiff).toBeLessThan(TOL);
      } finally {
        model.dispose();
      }
    });

    it('repeated forward calls inside tf.tidy do not leak tensors', () => {
      const { config, tensors } = load(c.name);
      const model = buildModel(config, tensors);
      const ref = reference(join(FIX, 'models', c.name, 'reference.safetensors'));
      const inputIds = toTensor(ref.get('input_ids')!);
      const attentionMask = toTensor(ref.get('attention_mask')!);
      try {
        const run = () => tf.tidy(() => model.forward({ inputIds, attentionMask }).sum().dataSync());
        run();
        const before = tf.memory().numTensors;
        for (let i = 0; i < 3; i++) run();
        expect(tf.memory().numTensors).toBe(before);
      } finally {
        inputIds.dispose();
        attentionMask.dispose();
        model.dispose();
      }
    });
  });

  describe('PEFT hooks', () => {
    it('prompt tuning (bert-seqcls-prompt, gpt2-prompt): prefix before position embeddings', () => {
      for (const [adapter, base] of [['bert-seqcls-prompt', 'bert-tiny-seqcls'], ['gpt2-prompt', 'gpt2-tiny']]) {
        const { config, tensors } = load(base);
        const model = buildModel(config, tensors);
        const prompt = toTensor(reference(join(FIX, 'adapters', adapter, 'adapter_model.safetensors')).get('prompt_embeddings')!);
        try {
          const ref = reference(join(FIX, 'models', base, 'reference.safetensors'));
          const expected = reference(join(FIX, 'adapters', adapter, 'expected.safetensors'));
          const { logitDiff, lossDiff } = parity(model, ref, { prefixEmbeds: prompt }, expected);
          report.push(`${backend} ${adapter}: logits ${logitDiff.toExponential(2)}, loss ${lossDiff.toExponential(2)}`);
          expect(logitDiff).toBeLessThan(TOL);
          expect(lossDiff).toBeLessThan(TOL);
        } finally {
          prompt.dispose();
          model.dispose();
        }
      }
    });

    it('LoRA hook sees every llama Linear by its full name (llama-lora)', () => {
      const { config, tensors } = load('llama-tiny');
      const model = buildModel(config, tensors);
      const file = reference(join(FIX, 'adapters', 'llama-lora', 'adapter_model.safetensors'));
      const lora = new Map<string, tf.Tensor>();
      for (const [k, t] of file) lora.set(k.replace(/^base_model\.model\./, ''), toTensor(t));
      const scaling = 8 / 4; // lora_alpha / r
      const seen = new Set<string>();
      const hooks: ForwardHooks = {
        linear(name, x, base) {
          seen.add(name);
          const a = lora.get(`${name}.lora_A.weight`);
          const b = lora.get(`${name}.lora_B.weight`);
          if (!a || !b) return base(x);
          const d = tf.matMul(tf.matMul(x.reshape([-1, x.shape[x.shape.length - 1]]), a, false, true), b, false, true);
          return tf.add(base(x), tf.mul(d.reshape([...x.shape.slice(0, -1), b.shape[0]]), scaling));
        },
      };
      try {
        const ref = reference(join(FIX, 'models', 'llama-tiny', 'reference.safetensors'));
        const expected = reference(join(FIX, 'adapters', 'llama-lora', 'expected.safetensors'));
        const { logitDiff, lossDiff } = parity(model, ref, hooks, expected);
        report.push(`${backend} llama-lora: logits ${logitDiff.toExponential(2)}, loss ${lossDiff.toExponential(2)}`);
        expect(logitDiff).toBeLessThan(TOL);
        expect(lossDiff).toBeLessThan(TOL);
        const linears = model.modules.filter((m) => m.type === 'Linear').map((m) => m.name);
        expect([...seen].sort()).toEqual(linears.sort());
      } finally {
        for (const t of lora.values()) t.dispose();
        model.dispose();
      }
    });
  });

  describe('LLaMA family variants', () => {
    it('qwen2 (q/k/v bias, zero here) and mistral reproduce llama-tiny with the same weights', () => {
      const { config, tensors } = load('llama-tiny');
      const ref = reference(join(FIX, 'models', 'llama-tiny', 'reference.safetensors'));
      for (const modelType of ['qwen2', 'mistral']) {
        const w = copyMap(tensors);
        if (modelType === 'qwen2') {
          for (let i = 0; i < 2; i++) {
            for (const [proj, n] of [['q_proj', 64], ['k_proj', 32], ['v_proj', 32]] as const) {
              w.set(`model.layers.${i}.self_attn.${proj}.bias`, { dtype: 'F32', shape: [n], data: new Float32Array(n) });
            }
          }
        }
        const cfg = { ...config, model_type: modelType, architectures: undefined, sliding_window: 4096 };
        const model = buildModel(cfg, w);
        try {
          expect(model.className).toBe(modelType === 'qwen2' ? 'Qwen2ForCausalLM' : 'MistralForCausalLM');
          const tree = model.modules;
          const prefix = modelType === 'qwen2' ? 'Qwen2' : 'Mistral';
          expect(tree.find((m) => m.name === 'model.layers.0')!.type).toBe(`${prefix}DecoderLayer`);
          expect(tree.find((m) => m.name === 'model.layers.0.self_attn.rotary_emb')!.type).toBe(`${prefix}RotaryEmbedding`);
          // transformers 4.43 has a model-level rotary_emb only in LlamaModel.
          expect(tree.some((m) => m.name === 'model.rotary_emb')).toBe(false);
          const q = tree.find((m) => m.name === 'model.layers.0.self_attn.q_proj')!;
          const o = tree.find((m) => m.name === 'model.layers.0.self_attn.o_proj')!;
          expect('bias' in q.params).toBe(modelType === 'qwen2');
          expect('bias' in o.params).toBe(false);
          const { logitDiff } = parity(model, ref);
          expect(logitDiff).toBeLessThan(TOL);
        } finally {
          model.dispose();
        }
      }
    });

    it('tied embeddings: lm_head.weight absent from the checkpoint, shared with embed_tokens', () => {
      const { config, tensors } = load('llama-tiny');
      const w = copyMap(tensors);
      w.set('lm_head.weight', w.get('model.embed_tokens.weight')!);
      const untied = buildModel(config, w);
      w.delete('lm_head.weight');
      const tied = buildModel({ ...config, tie_word_embeddings: true }, w);
      try {
        expect(tied.tied).toEqual({ 'lm_head.weight': 'model.embed_tokens.weight' });
        expect(tied.params.get('lm_head.weight')).toBe(tied.params.get('model.embed_tokens.weight'));
        tf.tidy(() => {
          const ids = tf.tensor2d([[1, 2, 3, 4]], [1, 4], 'int32');
          const diff = tf.max(tf.abs(tf.sub(tied.forward({ inputIds: ids }), untied.forward({ inputIds: ids }))));
          expect(diff.dataSync()[0]).toBe(0);
        });
      } finally {
        tied.dispose();
        untied.dispose();
      }
    });

    it('rope_scaling: linear changes the logits, unknown types fail clearly', () => {
      const { config, tensors } = load('llama-tiny');
      const base = buildModel(config, tensors);
      const scaled = buildModel({ ...config, rope_scaling: { type: 'linear', factor: 2 } }, tensors);
      try {
        tf.tidy(() => {
          const ids = tf.tensor2d([[5, 6, 7, 8, 9]], [1, 5], 'int32');
          const d = tf.max(tf.abs(tf.sub(base.forward({ inputIds: ids }), scaled.forward({ inputIds: ids })))).dataSync()[0];
          expect(d).toBeGreaterThan(1e-4);
        });
      } finally {
        base.dispose();
        scaled.dispose();
      }
      expectEngineError(() => moduleTree({ ...config, rope_scaling: { type: 'su', factor: 2 } }), 'BAD_CONFIG', 'rope_scaling', 'su');
    });
  });

  describe('loading', () => {
    it('a SEQ_CLS checkpoint without its head gets a fresh one', () => {
      // gpt2-tiny-seqcls without score.weight
      const g = load('gpt2-tiny-seqcls');
      const gw = copyMap(g.tensors);
      gw.delete('score.weight');
      const gm = buildModel(g.config, gw);
      try {
        expect(gm.report.initialised).toEqual(['score.weight']);
        expect(gm.params.get('score.weight')!.shape).toEqual([2, 64]);
      } finally {
        gm.dispose();
      }
      // a llama causal-LM checkpoint built as LlamaForSequenceClassification: fresh score, lm_head unused
      const l = load('llama-tiny');
      const lm = buildModel({ ...l.config, pad_token_id: 0 }, l.tensors, { task: 'SEQ_CLS' });
      try {
        expect(lm.className).toBe('LlamaForSequenceClassification');
        expect(lm.report.initialised).toEqual(['score.weight']);
        expect(lm.report.unused).toEqual(['lm_head.weight']);
        const std = tf.tidy(() => tf.moments(lm.params.get('score.weight')!).variance.sqrt().dataSync()[0]);
        expect(std).toBeGreaterThan(0.01);
        expect(std).toBeLessThan(0.03); // N(0, initializer_range = 0.02)
        tf.tidy(() => {
          const ref = reference(join(FIX, 'models', 'llama-tiny', 'reference.safetensors'));
          const out = lm.forward({ inputIds: toTensor(ref.get('input_ids')!), attentionMask: toTensor(ref.get('attention_mask')!) });
          expect(out.shape).toEqual([2, 2]);
        });
      } finally {
        lm.dispose();
      }
      // bert without classifier.{weight,bias}
      const b = load('bert-tiny-seqcls');
      const bw = copyMap(b.tensors);
      bw.delete('classifier.weight');
      bw.delete('classifier.bias');
      const bm = buildModel(b.config, bw);
      try {
        expect(bm.report.initialised).toEqual(['classifier.weight', 'classifier.bias']);
        expect([...bm.params.get('classifier.bias')!.dataSync()]).toEqual([0, 0]);
      } finally {
        bm.dispose();
      }
    });

    it('a missing non-head weight fails with MISSING_WEIGHT naming it', () => {
      for (const [name, key] of [
        ['gpt2-tiny', 'transformer.h.1.attn.c_attn.weight'],
        ['llama-tiny', 'model.layers.0.mlp.up_proj.weight'],
        ['bert-tiny-seqcls', 'bert.encoder.layer.1.output.LayerNorm.bias'],
      ]) {
        const { config, tensors } = load(name);
        const w = copyMap(tensors);
        w.delete(key);
        expectEngineError(() => buildModel(config, w), 'MISSING_WEIGHT', key);
      }
    });

    it('a wrong shape fails with SHAPE_MISMATCH', () => {
      const { config, tensors } = load('llama-tiny');
      const w = copyMap(tensors);
      w.set('model.layers.1.self_attn.k_proj.weight', { dtype: 'F32', shape: [64, 64], data: new Float32Array(64 * 64) });
      expectEngineError(() => buildModel(config, w), 'SHAPE_MISMATCH', 'model.layers.1.self_attn.k_proj.weight', '32,64');
    });

    it('an unknown model_type fails with UNSUPPORTED_ARCHITECTURE listing the supported ones', () => {
      expectEngineError(
        () => buildModel({ model_type: 'mamba' }, new Map()),
        'UNSUPPORTED_ARCHITECTURE',
        'mamba', 't5', 'gpt2', 'llama', 'qwen2', 'mistral', 'bert',
      );
      // BERT has no causal-LM head here.
      const { config } = load('bert-tiny-seqcls');
      expectEngineError(() => moduleTree(config, 'CAUSAL_LM'), 'UNSUPPORTED_ARCHITECTURE');
    });

    it('a gpt2 checkpoint without the "transformer." prefix loads', () => {
      const { config, tensors } = load('gpt2-tiny');
      const bare = new Map([...tensors].map(([k, t]) => [k.replace(/^transformer\./, ''), t]));
      expect([...bare.keys()].some((k) => k.startsWith('transformer.'))).toBe(false);
      const model = buildModel(config, bare);
      try {
        expect(model.report.initialised).toEqual([]);
        const { logitDiff } = parity(model, reference(join(FIX, 'models', 'gpt2-tiny', 'reference.safetensors')));
        expect(logitDiff).toBeLessThan(TOL);
      } finally {
        model.dispose();
      }
    });
  });
});

/**
 * Real-size configs (the fields that matter, as in each repo's config.json). Expected totals are the
 * well-known `sum(p.numel() for p in model.parameters())` numbers, derived here from first principles:
 *
 * gpt2 (V=50257, P=1024, C=768, L=12): wte V*C = 38,597,376; wpe P*C = 786,432; per block
 *   ln_1 + ln_2 4C = 3,072, c_attn C*3C+3C = 1,771,776, attn c_proj C*C+C = 590,592, c_fc C*4C+4C = 2,362,368,
 *   mlp c_proj 4C*C+C = 2,360,064 -> 7,087,872; ln_f 2C = 1,536; lm_head tied.
 *   12 blocks: 38,597,376 + 786,432 + 85,054,464 + 1,536 = 124,439,808. distilgpt2 (6 blocks): 81,912,576.
 * SmolLM2-135M (C=576, L=30, 9 heads / 3 kv heads of 64, I=1536, V=49152, tied): embed 28,311,552; per layer
 *   q,o 2*576*576 = 663,552, k,v 2*576*192 = 221,184, gate/up/down 3*576*1536 = 2,654,208, 2 norms 1,152
 *   -> 3,540,096; 30 layers 106,202,880; final norm 576 -> 134,515,008.
 * Qwen2.5-0.5B (C=896, L=24, 14 heads / 2 kv heads of 64, I=4864, V=151936, tied, q/k/v bias): embed
 *   136,134,656; per layer q 896*896+896 = 803,712, k,v 2*(896*128+128) = 229,632, o 802,816,
 *   MLP 3*896*4864 = 13,074,432, norms 1,792 -> 14,912,384; 24 layers 357,897,216; norm 896 -> 494,032,768.
 * bert-base-uncased (V=30522, C=768, L=12, I=3072, P=512, 2 token types) BertModel = 109,482,240
 *   (embeddings 23,837,184 incl. LayerNorm; per layer 7,087,872; pooler 590,592) + classifier 768*2+2 = 1,538
 *   -> 109,483,778.
 */
describe('real-size module trees', () => {
  const gpt2 = {
    model_type: 'gpt2', architectures: ['GPT2LMHeadModel'], vocab_size: 50257, n_positions: 1024, n_embd: 768,
    n_layer: 12, n_head: 12, n_inner: null, activation_function: 'gelu_new', layer_norm_epsilon: 1e-5,
  };
  const cases: [string, Record<string, unknown>, number, string][] = [
    ['openai-community/gpt2', gpt2, 124439808, 'GPT2LMHeadModel'],
    ['distilbert/distilgpt2', { ...gpt2, n_layer: 6 }, 81912576, 'GPT2LMHeadModel'],
    [
      'HuggingFaceTB/SmolLM2-135M',
      {
        model_type: 'llama', architectures: ['LlamaForCausalLM'], hidden_size: 576, num_hidden_layers: 30,
        num_attention_heads: 9, num_key_value_heads: 3, intermediate_size: 1536, vocab_size: 49152,
        max_position_embeddings: 8192, rms_norm_eps: 1e-5, rope_theta: 100000, rope_scaling: null,
        tie_word_embeddings: true, attention_bias: false, mlp_bias: false, hidden_act: 'silu',
      },
      134515008,
      'LlamaForCausalLM',
    ],
    [
      'Qwen/Qwen2.5-0.5B',
      {
        model_type: 'qwen2', architectures: ['Qwen2ForCausalLM'], hidden_size: 896, num_hidden_layers: 24,
        num_attention_heads: 14, num_key_value_heads: 2, intermediate_size: 4864, vocab_size: 151936,
        max_position_embeddings: 32768, rms_norm_eps: 1e-6, rope_theta: 1000000, tie_word_embeddings: true,
        use_sliding_window: false, sliding_window: 32768, max_window_layers: 24, hidden_act: 'silu',
      },
      494032768,
      'Qwen2ForCausalLM',
    ],
    [
      'google-bert/bert-base-uncased',
      {
        model_type: 'bert', architectures: ['BertForMaskedLM'], vocab_size: 30522, hidden_size: 768,
        num_hidden_layers: 12, num_attention_heads: 12, intermediate_size: 3072, max_position_embeddings: 512,
        type_vocab_size: 2, hidden_act: 'gelu', layer_norm_eps: 1e-12, pad_token_id: 0,
      },
      109483778,
      'BertForSequenceClassification',
    ],
  ];

  it.each(cases)('%s has the known parameter count', (_id, config, expected, cls) => {
    const r = resolveArchitecture(config);
    expect(r.className).toBe(cls);
    const tree = moduleTree(config);
    expect(tree[0]).toEqual({ name: '', type: cls, params: {} });
    expect(countParams(tree, r.spec.tied(r.config, r.task))).toBe(expected);
  });

  it('SmolLM2-135M / Qwen2.5-0.5B shapes: GQA projections and tied lm_head', () => {
    const smol = moduleTree(cases[2][1]);
    expect(smol.find((m) => m.name === 'model.layers.29.self_attn.k_proj')!.params).toEqual({ weight: [192, 576] });
    expect(smol.find((m) => m.name === 'lm_head')!.params).toEqual({ weight: [49152, 576] });
    const qwen = moduleTree(cases[3][1]);
    expect(qwen.find((m) => m.name === 'model.layers.0.self_attn.v_proj')!.params).toEqual({ weight: [128, 896], bias: [128] });
    expect(qwen.find((m) => m.name === 'model.layers.0.self_attn.o_proj')!.params).toEqual({ weight: [896, 896] });
    expect(resolveArchitecture(cases[3][1]).spec.tied(resolveArchitecture(cases[3][1]).config, 'CAUSAL_LM')).toEqual({
      'lm_head.weight': 'model.embed_tokens.weight',
    });
  });
});
