/**
 * LoRA (and DoRA) over a base model: resolves target_modules with PEFT's rules, creates a LoraLayer per target,
 * makes modules_to_save copies and trainable biases, and maps everything to PEFT's adapter file keys.
 */
import * as tf from '@tensorflow/tfjs';
import { EngineError } from '../../errors';
import type { LoadedTensor } from '../../io/safetensors';
import type { ForwardHooks, ForwardInput, Model } from '../../models/types';
import { Rng } from '../../random';
import { paramsUnder } from '../params';
import { forwardWith, loadStrict, PEFT_PREFIX, type PeftModel } from '../model';
import { resolveLoraTargets, type TargetResolution } from '../targets';
import { rankAndAlpha, type LoraConfig } from './config';
import { LoraLayer, uid } from './layer';
import { ownedVariable } from '../../variable';

export class LoraModel implements PeftModel {
  readonly peftType = 'LORA' as const;
  readonly virtualTokens = 0;
  readonly base: Model;
  readonly config: LoraConfig;
  readonly resolution: TargetResolution;
  readonly layers = new Map<string, LoraLayer>();
  /** Trainable copies of base parameters (modules_to_save heads, biases), by full parameter name. */
  readonly copies = new Map<string, tf.Variable>();
  /** Full parameter name -> PEFT file key for each copy. */
  private readonly copyKeys = new Map<string, string>();
  enabled = true;

  constructor(base: Model, config: LoraConfig, seed = 0) {
    this.base = base;
    this.config = config;
    this.resolution = resolveLoraTargets(
      base.modules,
      {
        targetModules: config.targetModules,
        excludeModules: config.excludeModules,
        layersToTransform: config.layersToTransform,
        layersPattern: config.layersPattern,
        modulesToSave: config.modulesToSave,
      },
      { task: config.taskType ?? null, heads: base.heads, defaults: base.spec.peftDefaults(base.config) },
    );
    const rng = new Rng(seed);
    const byName = new Map(base.modules.map((m) => [m.name, m]));
    try {
      for (const name of this.resolution.matched) {
        const m = byName.get(name)!;
        const w = m.params.weight;
        if (m.type !== 'Linear' && m.type !== 'Conv1D') {
          throw new EngineError('BAD_PEFT_CONFIG', `LoRA on ${m.type} modules (${name}) is not supported; pick Linear or Conv1D modules.`);
        }
        const conv = m.type === 'Conv1D';
        const layer = new LoraLayer(
          {
            module: name,
            inFeatures: conv ? w[0] : w[1],
            outFeatures: conv ? w[1] : w[0],
            fanInFanOut: conv,
            ...(({ r, alpha }) => ({ r, loraAlpha: alpha }))(rankAndAlpha(config, name)),
            useRslora: config.useRslora,
            dropout: config.loraDropout,
            useDora: config.useDora,
          },
          config.initLoraWeights,
          rng,
          config.useDora ? base.params.get(`${name}.weight`) : undefined,
        );
        this.layers.set(name, layer);
      }
      // modules_to_save: a trainable copy of the whole module replaces it (PEFT's ModulesToSaveWrapper).
      for (const mod of this.resolution.modulesToSave) {
        for (const p of paramsUnder(base.modules, mod)) this.copy(p, `${PEFT_PREFIX}${p}`);
      }
      // bias "all" trains every bias, "lora_only" those of LoRA-wrapped modules. Inside a wrapped module the
      // parameter lives at <module>.base_layer.bias in PEFT's state dict, which is the key PEFT loads.
      if (config.bias !== 'none') {
        for (const m of base.modules) {
          if (!m.params.bias || this.resolution.modulesToSave.some((w) => m.name === w || m.name.startsWith(`${w}.`))) continue;
          const wrapped = this.layers.has(m.name);
          if (config.bias === 'lora_only' && !wrapped) continue;
          this.copy(`${m.name}.bias`, `${PEFT_PREFIX}${m.name}${wrapped ? '.base_layer' : ''}.bias`);
        }
      }
    } catch (e) {
      this.dispose();
      throw e;
    }
  }

  private copy(param: string, key: string): void {
    const src = this.base.params.get(param);
    if (!src) return;
    this.copies.set(param, ownedVariable(src.clone(), true, `copy_${uid()}`));
    this.copyKeys.set(param, key);
  }

  hooks(training: boolean): ForwardHooks {
    return {
      linear: (name, x, base, seed, mod) => {
        const layer = this.layers.get(name);
        if (!layer) return base(x);
        return layer.magnitude ? layer.dora(x, base, mod, training, seed) : tf.add(base(x), layer.delta(x, training, seed));
      },
      wraps: (name) => this.layers.has(name),
      variablesUnder: (prefix) => [...this.layers].filter(([name]) => name.startsWith(prefix)).flatMap(([, l]) => l.variables()),
      overrides: this.copies.size ? (this.copies as Map<string, tf.Tensor>) : undefined,
    };
  }

  adapterExtras() {
    const r = this.resolution;
    return { task: this.base.task, resolvedTargetModules: r.savedTargetModules, modulesToSave: r.savedModulesToSave, fanInFanOut: r.fanInFanOut };
  }

  forward(input: ForwardInput): tf.Tensor {
    return forwardWith(this, input);
  }

  alignLabels(labels: tf.Tensor): tf.Tensor {
    return labels;
  }

  trainableVariables(): tf.Variable[] {
    const vars: tf.Variable[] = [];
    for (const l of this.layers.values()) vars.push(...l.variables());
    vars.push(...this.copies.values());
    return vars;
  }

  /**
   * Variables by PEFT file key: base_model.model.<module>.lora_A.weight, ...lora_B.weight, DoRA's
   * ...lora_magnitude_vector (PEFT saves it without the ".weight" of its parameter), head copies, biases.
   */
  keyed(): Map<string, tf.Variable> {
    const out = new Map<string, tf.Variable>();
    for (const [name, l] of this.layers) {
      out.set(`${PEFT_PREFIX}${name}.lora_A.weight`, l.A);
      out.set(`${PEFT_PREFIX}${name}.lora_B.weight`, l.B);
      if (l.magnitude) out.set(`${PEFT_PREFIX}${name}.lora_magnitude_vector`, l.magnitude);
    }
    for (const [param, v] of this.copies) out.set(this.copyKeys.get(param)!, v);
    return out;
  }

  stateDict(): Map<string, tf.Tensor> {
    return this.keyed();
  }

  loadStateDict(tensors: Map<string, LoadedTensor>, source = 'adapter_model.safetensors'): void {
    loadStrict(this.keyed(), tensors, source);
  }

  /** One base parameter with LoRA (DoRA) folded in, a head copy or trained bias, or null when unchanged. */
  mergedParam(param: string): tf.Tensor | null {
    const copy = this.copies.get(param);
    if (copy) return copy.clone();
    const layer = param.endsWith('.weight') ? this.layers.get(param.slice(0, -'.weight'.length)) : undefined;
    return layer ? layer.mergedWeight(this.base.params.get(param)!) : null;
  }

  /** Base weights with every LoRA (DoRA) layer folded in (PEFT's merge_and_unload), as new tensors. */
  mergedParams(): Map<string, tf.Tensor> {
    const out = new Map<string, tf.Tensor>();
    for (const [name, l] of this.layers) out.set(`${name}.weight`, l.mergedWeight(this.base.params.get(`${name}.weight`)!));
    for (const [param, v] of this.copies) out.set(param, v.clone());
    return out;
  }

  dispose(): void {
    for (const l of this.layers.values()) l.dispose();
    for (const v of this.copies.values()) v.dispose();
    this.layers.clear();
    this.copies.clear();
  }
}
