/**
 * (IA)^3 over a base model: resolves target_modules / feedforward_modules with PEFT's rules, creates an Ia3Layer
 * per target, makes modules_to_save copies, and maps everything to PEFT's adapter file keys
 * (base_model.model.<module>.ia3_l).
 */
import * as tf from '@tensorflow/tfjs';
import type { LoadedTensor } from '../../io/safetensors';
import type { ForwardHooks, ForwardInput, Model } from '../../models/types';
import { Rng } from '../../random';
import { ownedVariable } from '../../variable';
import { uid } from '../lora/layer';
import { paramsUnder } from '../params';
import { forwardWith, loadStrict, PEFT_PREFIX, type PeftModel } from '../model';
import type { IA3Config } from './config';
import { Ia3Layer } from './layer';
import { resolveIa3Targets, type Ia3Resolution } from './targets';

export class Ia3Model implements PeftModel {
  readonly peftType = 'IA3' as const;
  readonly virtualTokens = 0;
  readonly base: Model;
  readonly config: IA3Config;
  readonly resolution: Ia3Resolution;
  readonly layers = new Map<string, Ia3Layer>();
  /** Trainable copies of modules_to_save parameters, by full parameter name. */
  readonly copies = new Map<string, tf.Variable>();
  enabled = true;

  constructor(base: Model, config: IA3Config, seed = 0) {
    this.base = base;
    this.config = config;
    this.resolution = resolveIa3Targets(base.modules, config, { heads: base.heads, defaults: base.spec.peftDefaults(base.config) });
    const rng = new Rng(seed);
    const byName = new Map(base.modules.map((m) => [m.name, m]));
    const ff = new Set(this.resolution.feedforward);
    try {
      for (const name of this.resolution.matched) {
        const w = byName.get(name)!.params.weight;
        const conv = byName.get(name)!.type === 'Conv1D';
        const spec = { module: name, inFeatures: conv ? w[0] : w[1], outFeatures: conv ? w[1] : w[0], feedforward: ff.has(name), fanInFanOut: conv };
        this.layers.set(name, new Ia3Layer(spec, config.initIa3Weights, rng));
      }
      // modules_to_save: a trainable copy of the whole module replaces it (PEFT's ModulesToSaveWrapper).
      for (const mod of this.resolution.modulesToSave) {
        for (const p of paramsUnder(base.modules, mod)) {
          const src = base.params.get(p);
          if (src) this.copies.set(p, ownedVariable(src.clone(), true, `copy_${uid()}`));
        }
      }
    } catch (e) {
      this.dispose();
      throw e;
    }
  }

  hooks(_training: boolean): ForwardHooks {
    return {
      linear: (name, x, base) => {
        const layer = this.layers.get(name);
        return layer ? layer.apply(x, base) : base(x);
      },
      wraps: (name) => this.layers.has(name),
      variablesUnder: (prefix) => [...this.layers].filter(([name]) => name.startsWith(prefix)).map(([, l]) => l.l),
      overrides: this.copies.size ? (this.copies as Map<string, tf.Tensor>) : undefined,
    };
  }

  adapterExtras() {
    const r = this.resolution;
    return {
      task: this.base.task, resolvedTargetModules: r.savedTargetModules, modulesToSave: r.savedModulesToSave, fanInFanOut: r.fanInFanOut,
      fields: { feedforward_modules: r.savedFeedforwardModules },
    };
  }

  forward(input: ForwardInput): tf.Tensor {
    return forwardWith(this, input);
  }

  alignLabels(labels: tf.Tensor): tf.Tensor {
    return labels;
  }

  trainableVariables(): tf.Variable[] {
    return [...[...this.layers.values()].map((l) => l.l), ...this.copies.values()];
  }

  /** Variables by PEFT file key: base_model.model.<module>.ia3_l and the modules_to_save copies. */
  keyed(): Map<string, tf.Variable> {
    const out = new Map<string, tf.Variable>();
    for (const [name, l] of this.layers) out.set(`${PEFT_PREFIX}${name}.ia3_l`, l.l);
    for (const [param, v] of this.copies) out.set(`${PEFT_PREFIX}${param}`, v);
    return out;
  }

  stateDict(): Map<string, tf.Tensor> {
    return this.keyed();
  }

  loadStateDict(tensors: Map<string, LoadedTensor>, source = 'adapter_model.safetensors'): void {
    loadStrict(this.keyed(), tensors, source);
  }

  /** One base parameter with its vector folded in (weight, and the bias of an output-scaling module), a head copy, or null. */
  mergedParam(param: string): tf.Tensor | null {
    const copy = this.copies.get(param);
    if (copy) return copy.clone();
    const dot = param.lastIndexOf('.');
    const l = this.layers.get(param.slice(0, dot));
    if (!l) return null;
    const base = this.base.params.get(param);
    if (!base) return null;
    if (param.endsWith('.weight')) return l.mergedWeight(base);
    return param.endsWith('.bias') && !l.spec.feedforward ? l.mergedBias(base) : null;
  }

  /**
   * Base weights with every vector folded in (PEFT's merge_and_unload), as new tensors: a target's weight
   * scaled along out (and its bias) or, for a feed-forward target, along in (bias unchanged).
   */
  mergedParams(): Map<string, tf.Tensor> {
    const out = new Map<string, tf.Tensor>();
    for (const [name, l] of this.layers) {
      out.set(`${name}.weight`, l.mergedWeight(this.base.params.get(`${name}.weight`)!));
      const bias = this.base.params.get(`${name}.bias`);
      if (bias) out.set(`${name}.bias`, l.mergedBias(bias));
    }
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
