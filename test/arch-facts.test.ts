/**
 * What each architecture file says about itself: the head class a config's `architectures` asks for (and the
 * error for one the engine does not build), PEFT 0.15.2's default targets, module roles, the FFN width the memory
 * estimate uses, and the pooling rule the session checks.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EngineError } from '../src/engine/errors';
import { estimateForConfig } from '../src/engine/memory';
import { ARCHITECTURES, resolveArchitecture } from '../src/engine/models';
import type { GPTNeoXConfig } from '../src/engine/models/gptneox';
import { moduleRole } from '../src/engine/models/spec';
import { FIX } from './helpers';

const config = (name: string) => JSON.parse(readFileSync(join(FIX, 'models', name, 'config.json'), 'utf8')) as Record<string, unknown>;

function unsupported(raw: Record<string, unknown>): EngineError {
  try {
    resolveArchitecture(raw);
  } catch (e) {
    expect(e).toBeInstanceOf(EngineError);
    return e as EngineError;
  }
  throw new Error('expected an error');
}

describe('the head class named by architectures', () => {
  it('builds the class the config names', () => {
    expect(resolveArchitecture(config('gpt2-tiny-seqcls')).className).toBe('GPT2ForSequenceClassification');
    expect(resolveArchitecture(config('gpt2-tiny')).className).toBe('GPT2LMHeadModel');
    // A base or pretraining class names no task: decoders get their LM, BERT a fresh classification head.
    expect(resolveArchitecture({ ...config('gpt2-tiny'), architectures: ['GPT2Model'] }).task).toBe('CAUSAL_LM');
    expect(resolveArchitecture({ ...config('bert-tiny-seqcls'), architectures: ['BertForMaskedLM'] }).className).toBe('BertForSequenceClassification');
    // The same head under another family's prefix.
    expect(resolveArchitecture({ ...config('llama-tiny'), model_type: 'qwen2', architectures: ['LlamaForSequenceClassification'] }).className)
      .toBe('Qwen2ForSequenceClassification');
  });

  it('a head class the engine does not build is an error naming the ones it does, never another class', () => {
    const e = unsupported({ ...config('gpt2-tiny'), architectures: ['GPT2ForQuestionAnswering'] });
    expect(e.code).toBe('UNSUPPORTED_ARCHITECTURE');
    expect(e.message).toContain('GPT2ForQuestionAnswering');
    expect(e.message).toContain('GPT2LMHeadModel (CAUSAL_LM), GPT2ForSequenceClassification (SEQ_CLS)');
    const b = unsupported({ ...config('bert-tiny-seqcls'), architectures: ['BertForMultipleChoice'] });
    expect(b.message).toContain('BertForSequenceClassification (SEQ_CLS)');
    // An explicit task builds that task's class from any checkpoint.
    expect(resolveArchitecture({ ...config('gpt2-tiny'), architectures: ['GPT2ForQuestionAnswering'] }, 'SEQ_CLS').className)
      .toBe('GPT2ForSequenceClassification');
  });
});

describe('architecture facts', () => {
  it('PEFT 0.15.2 defaults come from the architecture file', () => {
    const d = (name: string, over: Record<string, unknown> = {}) => {
      const r = resolveArchitecture({ ...config(name), ...over });
      return r.spec.peftDefaults(r.config);
    };
    expect(d('gpt2-tiny')).toEqual({ lora: ['c_attn'], adalora: ['c_attn'], ia3: ['c_attn', 'mlp.c_proj'], ia3Feedforward: ['mlp.c_proj'] });
    expect(d('llama-tiny')).toEqual({ lora: ['q_proj', 'v_proj'], adalora: ['q_proj', 'v_proj'], ia3: ['k_proj', 'v_proj', 'down_proj'], ia3Feedforward: ['down_proj'] });
    expect(d('llama-tiny', { model_type: 'qwen2', architectures: null }).ia3).toEqual(['q_proj', 'v_proj', 'down_proj']);
    expect(d('llama-tiny', { model_type: 'mistral', architectures: null }).adalora).toBeNull();
    expect(d('bert-tiny-seqcls').lora).toEqual(['query', 'value']);
    expect(d('opt-tiny')).toEqual({
      lora: ['q_proj', 'v_proj'], adalora: ['q_proj', 'k_proj', 'v_proj', 'out_proj', 'fc1', 'fc2'], ia3: ['q_proj', 'k_proj', 'fc2'], ia3Feedforward: ['fc2'],
    });
    expect(d('gptneox-tiny')).toEqual({
      lora: ['query_key_value'], adalora: ['query_key_value'], ia3: ['query_key_value', 'dense_4h_to_h'], ia3Feedforward: ['dense_4h_to_h'],
    });
    expect(d('bloom-tiny')).toEqual({
      lora: ['query_key_value'], adalora: ['query_key_value'], ia3: ['query_key_value', 'mlp.dense_4h_to_h'], ia3Feedforward: ['mlp.dense_4h_to_h'],
    });
  });

  it('"MLP only" and "attention only" find OPT\'s fc1 / fc2 and self_attn projections, and each decoder\'s', () => {
    const linear = (name: string, role: string) => {
      const r = resolveArchitecture(config(name));
      return r.spec.modules(r.config, r.task).filter((m) => m.type === 'Linear' && moduleRole(r.spec, m.name) === role).map((m) => m.name);
    };
    expect(linear('opt-tiny', 'mlp')).toEqual([0, 1].flatMap((i) => [`model.decoder.layers.${i}.fc1`, `model.decoder.layers.${i}.fc2`]));
    expect(linear('opt-tiny', 'attention')).toHaveLength(8);
    expect(linear('opt-tiny', 'head')).toEqual(['lm_head']);
    expect(linear('gptneox-tiny', 'mlp')).toHaveLength(4);
    expect(linear('gptneox-tiny', 'attention')).toEqual([0, 1].flatMap((i) => [`gpt_neox.layers.${i}.attention.query_key_value`, `gpt_neox.layers.${i}.attention.dense`]));
    expect(linear('gptneox-tiny', 'head')).toEqual(['embed_out']);
    expect(linear('bloom-tiny', 'mlp')).toHaveLength(4);
    expect(linear('bloom-tiny', 'attention')).toHaveLength(4);
  });

  it('every architecture gives its roles to real modules of its tree', () => {
    for (const spec of ARCHITECTURES) expect(Object.keys(spec.roles).length).toBeGreaterThan(0);
    expect(moduleRole(resolveArchitecture(config('llama-tiny')).spec, 'model.layers.0.mlp.down_proj')).toBe('mlp');
    expect(moduleRole(resolveArchitecture(config('llama-tiny')).spec, 'model.layers.0.self_attn.o_proj')).toBe('attention');
    expect(moduleRole(resolveArchitecture(config('llama-tiny')).spec, 'model.norm')).toBeNull();
  });

  it('the memory estimate takes the FFN width from the architecture (n_inner null is 4 x n_embd)', () => {
    const opts = { totalParams: 1e5, trainableParams: 1e3, batch: 2, seqLen: 16 };
    const g = config('gpt2-tiny');
    expect(estimateForConfig({ ...g, n_inner: null }, opts).totalBytes).toBe(estimateForConfig({ ...g, n_inner: 4 * (g.n_embd as number) }, opts).totalBytes);
    expect(estimateForConfig({ ...g, n_inner: 8 * (g.n_embd as number) }, opts).totalBytes).toBeGreaterThan(estimateForConfig(g, opts).totalBytes);
  });

  it('GPT-NeoX reads the rotary base under either name transformers has saved it', () => {
    const { rotary_emb_base: _base, ...rest } = config('gptneox-tiny');
    expect((resolveArchitecture({ ...rest, rope_theta: 500 }).config as GPTNeoXConfig).rotaryBase).toBe(500);
    expect((resolveArchitecture(config('gptneox-tiny')).config as GPTNeoXConfig).rotaryBase).toBe(10000);
  });

  it('decoders pool the last token, BERT the first', () => {
    expect(resolveArchitecture(config('gpt2-tiny-seqcls')).spec.seqClsPooling).toBe('last');
    expect(resolveArchitecture(config('bert-tiny-seqcls')).spec.seqClsPooling).toBe('first');
  });
});
