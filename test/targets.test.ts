/**
 * PEFT target matching, parameter counts and adapter_config.json against reference data made by
 * transformers 4.43.4 + peft 0.15.2 (test/fixtures).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EngineError } from '../src/engine/errors';
import type { HeadInfo, ModuleInfo, TaskType } from '../src/engine/models/types';
import { formatAdapterConfigJson, parsePeftConfig, peftConfigToJson, pyFloatRepr } from '../src/engine/peft/config';
import * as lora from '../src/engine/peft/lora/config';
import { countBaseParams, countLora, countPromptTuning, formatTrainableLine } from '../src/engine/peft/params';
import * as pt from '../src/engine/peft/prompt-tuning/config';
import { describeLayerIndex, isTargeted, resolveLoraTargets, type MatchOptions } from '../src/engine/peft/targets';
import { peftDefaultsOf } from './helpers';

const FIX = join(__dirname, 'fixtures');
const readJson = (p: string) => JSON.parse(readFileSync(join(FIX, p), 'utf8'));

interface ModelFix {
  modules: ModuleInfo[];
  heads: HeadInfo;
  tied: Record<string, string>;
  modelType: string;
}
const HEADS: Record<string, HeadInfo> = {
  'gpt2-tiny': { outputEmbedding: 'lm_head' },
  'llama-tiny': { outputEmbedding: 'lm_head' },
  'bert-tiny-seqcls': { classifier: 'classifier' },
  'gpt2-tiny-seqcls': { classifier: 'score' },
};
const TIED: Record<string, Record<string, string>> = { 'gpt2-tiny': { 'lm_head.weight': 'transformer.wte.weight' } };
const models = new Map<string, ModelFix>();
function model(name: string): ModelFix {
  if (!models.has(name)) {
    models.set(name, {
      modules: readJson(`models/${name}/named_modules.json`),
      heads: HEADS[name],
      tied: TIED[name] ?? {},
      modelType: readJson(`models/${name}/config.json`).model_type,
    });
  }
  return models.get(name)!;
}

/** PEFT LoraConfig kwargs -> our camelCase config. */
function fromKwargs(k: Record<string, any>): lora.LoraConfig {
  return lora.loraConfig({
    taskType: k.task_type ?? null,
    r: k.r,
    loraAlpha: k.lora_alpha,
    loraDropout: k.lora_dropout,
    targetModules: k.target_modules ?? null,
    excludeModules: k.exclude_modules ?? null,
    layersToTransform: k.layers_to_transform ?? null,
    layersPattern: k.layers_pattern ?? null,
    useRslora: k.use_rslora ?? false,
    modulesToSave: k.modules_to_save ?? null,
  });
}

function resolve(cfg: lora.LoraConfig, m: ModelFix) {
  return resolveLoraTargets(
    m.modules,
    {
      targetModules: cfg.targetModules,
      excludeModules: cfg.excludeModules,
      layersToTransform: cfg.layersToTransform,
      layersPattern: cfg.layersPattern,
      modulesToSave: cfg.modulesToSave,
    },
    { task: cfg.taskType, heads: m.heads, defaults: peftDefaultsOf(m.modelType) },
  );
}

function thrown(f: () => unknown): EngineError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(EngineError);
    return e as EngineError;
  }
  throw new Error('expected an EngineError');
}

describe('base parameter counts', () => {
  it.each([
    ['gpt2-tiny', 172288],
    ['gpt2-tiny-seqcls', 172416],
    ['llama-tiny', 202048],
    ['bert-tiny-seqcls', 143682],
  ])('%s has %i parameters (tied tensors once)', (name, n) => {
    const m = model(name);
    expect(countBaseParams(m.modules, m.tied)).toBe(n);
  });
});

describe('target_modules.json cases (peft 0.15.2)', () => {
  const cases: any[] = readJson('target_modules.json').cases;
  it('has all 20 cases', () => expect(cases.length).toBe(20));

  it.each(cases.map((c) => [c.id, c]))('%s', (_id, c: any) => {
    const m = model(c.model);
    const cfg = fromKwargs(c.lora_config);
    if (c.error) {
      const e = thrown(() => resolve(cfg, m));
      expect(e.code).toBe('TARGETS_NOT_FOUND');
      expect(e.message).toBe(c.error.message);
      return;
    }
    const res = resolve(cfg, m);
    expect(res.matched).toEqual(c.matched_modules);
    expect(res.modulesToSave).toEqual(c.modules_to_save);
    expect(res.savedTargetModules).toEqual(c.saved_target_modules);
    const count = countLora(m.modules, res, { r: cfg.r, bias: cfg.bias, tied: m.tied });
    expect(count).toEqual({ trainable: c.trainable_params, all: c.all_params });
    // isTargeted agrees with the resolution for every module (modules_to_save as PEFT sets it).
    const opts: MatchOptions = {
      targetModules: res.savedTargetModules,
      excludeModules: cfg.excludeModules,
      layersToTransform: cfg.layersToTransform,
      layersPattern: cfg.layersPattern,
      modulesToSave: res.savedModulesToSave,
    };
    const viaPredicate = m.modules.filter((x) => x.name && isTargeted(x.name, opts)).map((x) => x.name).sort();
    expect(viaPredicate).toEqual(c.matched_modules);
  });
});

describe('more matching rules', () => {
  const gpt2 = () => model('gpt2-tiny');
  const opts = (o: Partial<MatchOptions>): MatchOptions => ({ targetModules: null, ...o });
  const ctx = (m: ModelFix, task: TaskType | null = 'CAUSAL_LM') => ({ task, heads: m.heads, defaults: peftDefaultsOf(m.modelType) });

  it('uses the architecture default when target_modules is null', () => {
    const res = resolveLoraTargets(gpt2().modules, opts({}), ctx(gpt2()));
    expect(res.matched).toEqual(['transformer.h.0.attn.c_attn', 'transformer.h.1.attn.c_attn']);
    expect(res.savedTargetModules).toEqual(['c_attn']);
    expect(res.fanInFanOut).toBe(true);
    const llama = model('llama-tiny');
    const r2 = resolveLoraTargets(llama.modules, opts({}), ctx(llama));
    expect(r2.savedTargetModules).toEqual(['q_proj', 'v_proj']);
    expect(r2.fanInFanOut).toBe(false);
  });

  it('refuses an unknown architecture without target_modules, in PEFT words', () => {
    const e = thrown(() => resolveLoraTargets(gpt2().modules, opts({}), { ...ctx(gpt2()), defaults: peftDefaultsOf('nope') }));
    expect(e.code).toBe('TARGETS_NOT_FOUND');
    expect(e.message).toBe('Please specify `target_modules` in `peft_config`');
  });

  it('mentions layers_to_transform / layers_pattern when nothing matches', () => {
    const e = thrown(() =>
      resolveLoraTargets(gpt2().modules, opts({ targetModules: ['c_attn'], layersToTransform: [5], layersPattern: 'h' }), ctx(gpt2())),
    );
    expect(e.message).toBe(
      "Target modules {'c_attn'} not found in the base model. Please check the target modules and try again. " +
        "Note: You specified 'layers_to_transform': [5]. You also specified 'layers_pattern': h.",
    );
  });

  it('says when matches were all excluded', () => {
    const e = thrown(() => resolveLoraTargets(gpt2().modules, opts({ targetModules: ['c_attn'], excludeModules: ['c_attn'] }), ctx(gpt2())));
    expect(e.code).toBe('TARGETS_NOT_FOUND');
    expect(e.message).toMatch(/^No modules were targeted for adaptation\. This might be caused by a combination/);
  });

  it('never adapts a modules_to_save module (SEQ_CLS head)', () => {
    const bert = model('bert-tiny-seqcls');
    // The config's own modules_to_save keeps adapters out; the SEQ_CLS head, which PEFT 0.15.2 adds only after
    // injecting, gets LoRA and then cannot be wrapped (the TypeError of target_modules_more.json's bert-tokcls-all-linear).
    const own = thrown(() => resolveLoraTargets(bert.modules, opts({ targetModules: ['classifier'], modulesToSave: ['classifier'] }), ctx(bert, 'SEQ_CLS')));
    expect(own.message).toMatch(/^No modules were targeted/);
    const e = thrown(() => resolveLoraTargets(bert.modules, opts({ targetModules: ['classifier'] }), ctx(bert, 'SEQ_CLS')));
    expect(e.message).toMatch(/^modules_to_save cannot be applied to modules of type <class 'peft\.tuners\.lora\.layer\.Linear'>/);
    const plain = resolveLoraTargets(bert.modules, opts({ targetModules: ['classifier'] }), ctx(bert, null));
    expect(plain.matched).toEqual(['classifier']);
  });

  it('lets an exact full name bypass layers_to_transform (PEFT quirk)', () => {
    const res = resolveLoraTargets(
      gpt2().modules,
      opts({ targetModules: ['transformer.h.0.attn.c_attn', 'c_fc'], layersToTransform: 1 }),
      ctx(gpt2()),
    );
    expect(res.matched).toEqual(['transformer.h.0.attn.c_attn', 'transformer.h.1.mlp.c_fc']);
  });

  it('raises PEFT\'s "not supported" for a matched module of another type', () => {
    const e = thrown(() => resolveLoraTargets(gpt2().modules, opts({ targetModules: '.*ln_1' }), ctx(gpt2())));
    expect(e.code).toBe('BAD_PEFT_CONFIG');
    expect(e.message).toMatch(/^Target module transformer\.h\.0\.ln_1 \(LayerNorm\) is not supported\. Currently, only/);
    const emb = thrown(() => resolveLoraTargets(gpt2().modules, opts({ targetModules: ['wte'] }), ctx(gpt2())));
    expect(emb.code).toBe('BAD_PEFT_CONFIG');
    expect(emb.message).toMatch(/Embedding.*not in PEFT Studio yet/);
  });

  it('rewrites long lists to minimal suffixes like PEFT (>= 20 targets)', () => {
    // A 12-layer GPT-2 tree: "all-linear" gives 48 names, which PEFT condenses before saving.
    const mods: ModuleInfo[] = [{ name: '', type: 'GPT2LMHeadModel', params: {} }, { name: 'transformer', type: 'GPT2Model', params: {} }];
    for (let i = 0; i < 12; i++) {
      for (const [n, t] of [['attn', 'GPT2Attention'], ['attn.c_attn', 'Conv1D'], ['attn.c_proj', 'Conv1D'], ['mlp', 'GPT2MLP'], ['mlp.c_fc', 'Conv1D'], ['mlp.c_proj', 'Conv1D']]) {
        mods.push({ name: `transformer.h.${i}.${n}`, type: t, params: t === 'Conv1D' ? { weight: [8, 8] } : {} });
      }
    }
    mods.push({ name: 'lm_head', type: 'Linear', params: { weight: [10, 8] } });
    const res = resolveLoraTargets(mods, opts({ targetModules: 'all-linear' }), { task: 'CAUSAL_LM', heads: { outputEmbedding: 'lm_head' }, defaults: peftDefaultsOf('gpt2') });
    expect(res.matched.length).toBe(48);
    expect(res.savedTargetModules).toEqual(['c_attn', 'c_fc', 'c_proj']);
  });

  it('reads layer indices like PEFT', () => {
    expect(describeLayerIndex('model.layers.7.self_attn.q_proj')).toBe(7);
    expect(describeLayerIndex('transformer.h.3.attn.c_attn', 'h')).toBe(3);
    expect(describeLayerIndex('transformer.h.3.attn.c_attn', ['layers', 'h'])).toBe(3);
    expect(describeLayerIndex('transformer.h.3.attn.c_attn', 'layers')).toBeNull();
    expect(describeLayerIndex('lm_head')).toBeNull();
  });
});

describe('print_trainable_parameters line', () => {
  it('formats like PEFT, incl. Python rounding of exact ties', () => {
    expect(formatTrainableLine({ trainable: 5632, all: 177920 })).toBe(
      'trainable params: 5,632 || all params: 177,920 || trainable%: 3.1655',
    );
    expect(formatTrainableLine({ trainable: 1, all: 3200 })).toBe('trainable params: 1 || all params: 3,200 || trainable%: 0.0312');
    expect(formatTrainableLine({ trainable: 2178, all: 145860 })).toMatch(/trainable%: 1\.4932$/);
  });

  it('counts prompt tuning (SEQ_CLS: the head trains as a copy, as in PEFT >= 0.16; 0.15.2 printed 256 / 143,938)', () => {
    const g = model('gpt2-tiny');
    expect(countPromptTuning(g.modules, { numVirtualTokens: 4, tokenDim: 64 }, 'CAUSAL_LM', g.tied)).toEqual({ trainable: 256, all: 172544 });
    const b = model('bert-tiny-seqcls');
    // classifier [2, 64] + [2]: trainable, and counted twice in `all` (the frozen original and the copy).
    expect(countPromptTuning(b.modules, { numVirtualTokens: 4, tokenDim: 64 }, 'SEQ_CLS')).toEqual({ trainable: 256 + 130, all: 143938 + 130 });
    const s = model('gpt2-tiny-seqcls');
    expect(countPromptTuning(s.modules, { numVirtualTokens: 4, tokenDim: 64 }, 'SEQ_CLS', s.tied)).toEqual({ trainable: 256 + 128, all: 172416 + 256 + 128 });
  });

  it('counts trainable biases', () => {
    const g = model('gpt2-tiny');
    const res = resolveLoraTargets(g.modules, { targetModules: ['c_attn'] }, { task: 'CAUSAL_LM', heads: g.heads, defaults: peftDefaultsOf('gpt2') });
    const lo = countLora(g.modules, res, { r: 4, bias: 'lora_only', tied: g.tied });
    expect(lo.trainable).toBe(2048 + 2 * 192);
    const all = countLora(g.modules, res, { r: 4, bias: 'all', tied: g.tied });
    // ln_1, ln_2, c_attn, c_proj, c_fc, c_proj biases per layer + ln_f
    expect(all.trainable).toBe(2048 + 2 * (64 + 64 + 192 + 64 + 256 + 64) + 64);
    expect(all.all).toBe(172288 + 2048);
  });
});

/** The 7 fixture adapters, rebuilt from their parameters. */
const ADAPTERS: { id: string; model: string; trainable: number; cfg: () => lora.LoraConfig | pt.PromptTuningConfig }[] = [
  { id: 'gpt2-lora', model: 'gpt2-tiny', trainable: 5632, cfg: () => lora.loraConfig({ taskType: 'CAUSAL_LM', r: 4, loraAlpha: 8, targetModules: ['c_attn', 'c_proj'] }) },
  {
    id: 'gpt2-lora-rslora-layer1',
    model: 'gpt2-tiny',
    trainable: 1024,
    cfg: () => lora.loraConfig({ taskType: 'CAUSAL_LM', r: 4, loraAlpha: 16, useRslora: true, targetModules: ['attn.c_attn'], layersToTransform: [1] }),
  },
  { id: 'gpt2-seqcls-lora', model: 'gpt2-tiny-seqcls', trainable: 2176, cfg: () => lora.loraConfig({ taskType: 'SEQ_CLS', r: 4, loraAlpha: 8, targetModules: ['c_attn'] }) },
  {
    id: 'llama-lora',
    model: 'llama-tiny',
    trainable: 8192,
    cfg: () => lora.loraConfig({ taskType: 'CAUSAL_LM', r: 4, loraAlpha: 8, targetModules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] }),
  },
  { id: 'bert-seqcls-lora', model: 'bert-tiny-seqcls', trainable: 2178, cfg: () => lora.loraConfig({ taskType: 'SEQ_CLS', r: 4, loraAlpha: 8, targetModules: ['query', 'value'] }) },
  { id: 'gpt2-prompt', model: 'gpt2-tiny', trainable: 256, cfg: () => pt.promptTuningConfig({ taskType: 'CAUSAL_LM', numVirtualTokens: 4 }) },
  // 256 in PEFT 0.15.2, whose classifier stayed frozen; + the trained head copy (130).
  { id: 'bert-seqcls-prompt', model: 'bert-tiny-seqcls', trainable: 256 + 130, cfg: () => pt.promptTuningConfig({ taskType: 'SEQ_CLS', numVirtualTokens: 4 }) },
];

describe('adapter_config.json', () => {
  it.each(ADAPTERS.map((a) => [a.id, a]))('%s is reproduced exactly', (id, a: (typeof ADAPTERS)[number]) => {
    const m = model(a.model);
    const text = readFileSync(join(FIX, 'adapters', id, 'adapter_config.json'), 'utf8');
    const cfg = a.cfg();
    let json: Record<string, unknown>;
    if (cfg.peftType === 'LORA') {
      const res = resolve(cfg, m);
      json = peftConfigToJson(cfg, {
        baseModelNameOrPath: `models/${a.model}`,
        resolvedTargetModules: res.savedTargetModules,
        modulesToSave: res.savedModulesToSave,
        fanInFanOut: res.fanInFanOut,
      });
      expect(countLora(m.modules, res, { r: cfg.r, bias: cfg.bias, tied: m.tied }).trainable).toBe(a.trainable);
    } else {
      json = peftConfigToJson(cfg, { baseModelNameOrPath: `models/${a.model}`, tokenDim: 64, numLayers: 2, numAttentionHeads: 2 });
      expect(countPromptTuning(m.modules, { numVirtualTokens: cfg.numVirtualTokens, tokenDim: 64 }, cfg.taskType, m.tied).trainable).toBe(a.trainable);
    }
    expect(json).toEqual(JSON.parse(text));
    expect(Object.keys(json)).toEqual(Object.keys(JSON.parse(text)));
    expect(formatAdapterConfigJson(json)).toBe(text);

    // parse -> write round trip is exact as well
    const parsed = parsePeftConfig(text);
    expect(parsed.peftType).toBe(cfg.peftType);
    expect(formatAdapterConfigJson(peftConfigToJson(parsed, { baseModelNameOrPath: parsed.baseModelNameOrPath ?? null }))).toBe(text);
  });

  it('writes Python float reprs', () => {
    expect([0, 0.1, 1e-5, 1.5e-7, 1e16, 123.456].map(pyFloatRepr)).toEqual(['0.0', '0.1', '1e-05', '1.5e-07', '1e+16', '123.456']);
    expect(formatAdapterConfigJson({ b: 'é', a: [], lora_dropout: 0.05 })).toBe('{\n  "a": [],\n  "b": "\\u00e9",\n  "lora_dropout": 0.05\n}');
  });
});

describe('config validation', () => {
  const badLora = (p: Partial<lora.LoraConfig>) => thrown(() => lora.loraConfig(p));
  it.each<[Partial<lora.LoraConfig>, RegExp]>([
    [{ r: 0 }, /`r` should be a positive integer value but the value passed is 0/],
    [{ r: 2.5 }, /value passed is 2\.5/],
    [{ loraAlpha: 0 }, /lora_alpha must be > 0; got 0/],
    [{ loraAlpha: NaN }, /lora_alpha .* got NaN/],
    [{ loraDropout: 1 }, /lora_dropout must be >= 0 and < 1; got 1/],
    [{ loraDropout: -0.1 }, /got -0\.1/],
    [{ bias: 'some' as never }, /bias must be one of "none", "all", "lora_only"; got "some"/],
    [{ initLoraWeights: 'pissa' as never }, /init_lora_weights='pissa' is a PEFT option that PEFT Studio does not support yet/],
    [{ initLoraWeights: 'foo' as never }, /init_lora_weights must be one of true, false, "gaussian"; got "foo"/],
    [{ targetModules: ['c_attn'], layersPattern: 'h' }, /When `layers_pattern` is specified, `layers_to_transform` must also be specified/],
    [{ targetModules: '.*c_attn', layersToTransform: [0] }, /`layers_to_transform` cannot be used when `target_modules` is a str/],
    [{ targetModules: '.*c_attn', layersPattern: 'h', layersToTransform: [0] }, /cannot be used when `target_modules` is a str/],
    [{ layersToTransform: [-1] }, /layers_to_transform must be/],
    [{ taskType: 'QUESTION_ANS' as never }, /task_type "QUESTION_ANS" is not supported/],
  ])('LoRA %j', (p, re) => {
    const e = badLora(p);
    expect(e.code).toBe('BAD_PEFT_CONFIG');
    expect(e.message).toMatch(re);
  });

  it('accepts PEFT defaults', () => {
    expect(lora.loraConfig()).toMatchObject({ r: 8, loraAlpha: 8, loraDropout: 0, bias: 'none', initLoraWeights: true, targetModules: null });
    expect(lora.loraConfig({ initLoraWeights: 'gaussian', bias: 'lora_only' }).initLoraWeights).toBe('gaussian');
  });

  it.each<[Partial<pt.PromptTuningConfig>, RegExp]>([
    [{ numVirtualTokens: 0 }, /num_virtual_tokens must be an integer >= 1; got 0/],
    [{ promptTuningInit: 'TEXT', tokenizerNameOrPath: 'gpt2' }, /When prompt_tuning_init='TEXT', prompt_tuning_init_text can't be None\./],
    [{ promptTuningInit: 'TEXT', promptTuningInitText: 'hi' }, /When prompt_tuning_init='TEXT', tokenizer_name_or_path can't be None\./],
    [{ promptTuningInit: 'TEXT', promptTuningInitText: '', tokenizerNameOrPath: 'gpt2' }, /prompt_tuning_init_text is empty/],
    [{ promptTuningInit: 'WORDS' as never }, /prompt_tuning_init must be/],
    [{ tokenizerKwargs: { a: 1 } }, /tokenizer_kwargs only valid when using prompt_tuning_init='TEXT'/],
  ])('prompt tuning %j', (p, re) => {
    const e = thrown(() => pt.promptTuningConfig({ taskType: 'CAUSAL_LM', numVirtualTokens: 4, ...p }));
    expect(e.code).toBe('BAD_PEFT_CONFIG');
    expect(e.message).toMatch(re);
  });

  it('parses what it can and refuses the rest clearly', () => {
    const base = readJson('adapters/gpt2-lora/adapter_config.json');
    const bad = (o: unknown) => thrown(() => parsePeftConfig(o)).message;
    expect(bad({ ...base, peft_type: 'LOHA' })).toMatch(/peft_type 'LOHA' is a PEFT method that PEFT Studio does not support yet/);
    expect(bad({ ...base, peft_type: 'MAGIC' })).toMatch(/Unknown peft_type "MAGIC"/);
    expect(bad({ r: 4 })).toMatch(/no peft_type/);
    expect(bad('{not json')).toMatch(/not valid JSON/);
    expect(parsePeftConfig({ ...base, use_dora: true })).toMatchObject({ peftType: 'LORA', useDora: true });
    expect(bad({ ...base, rank_pattern: { q_proj: 0 } })).toMatch(/rank_pattern\["q_proj"\] must be a positive integer/);
    expect(bad({ ...base, alpha_pattern: { '(': 8 } })).toMatch(/alpha_pattern key "\(" is not a valid regular expression/);
    expect(parsePeftConfig({ ...base, rank_pattern: { c_attn: 2 }, alpha_pattern: { 'h\\.1\\..*': 4 } })).toMatchObject({ rankPattern: { c_attn: 2 }, alphaPattern: { 'h\\.1\\..*': 4 } });
    expect(bad({ ...base, init_lora_weights: 'olora' })).toMatch(/'olora' is a PEFT option/);
    expect(bad({ ...base, r: -1 })).toMatch(/`r` should be a positive integer/);
    const ok = parsePeftConfig(base);
    expect(ok).toMatchObject({ peftType: 'LORA', r: 4, loraAlpha: 8, targetModules: ['c_attn', 'c_proj'], fanInFanOut: true });
    // unknown keys from newer PEFT versions with their "off" values are fine
    expect(parsePeftConfig({ ...base, target_parameters: null, use_qalora: false, some_new_flag: 1 }).peftType).toBe('LORA');
  });
});
