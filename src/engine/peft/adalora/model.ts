/**
 * AdaLoRA over a base model (PEFT 0.15.2's AdaLoraModel, a LoraModel subclass): LoRA's target matching,
 * modules_to_save and bias handling, an SvdLayer per target, the orthogonal regulariser added to every loss,
 * and the rank allocation run after every optimizer step. Saving keeps only the triplets rank_pattern kept
 * (resize_state_dict_by_rank_pattern); loading a pruned adapter re-creates each module at its kept rank.
 */
import * as tf from '@tensorflow/tfjs';
import { EngineError } from '../../errors';
import type { LoadedTensor } from '../../io/safetensors';
import type { ForwardHooks, ForwardInput, Model, ModuleInfo } from '../../models/types';
import { Rng } from '../../random';
import { ownedVariable } from '../../variable';
import { paramsUnder } from '../params';
import { forwardWith, loadStrict, PEFT_PREFIX, type MethodTrainingState, type PeftModel } from '../model';
import { pyRepr, resolveLoraTargets, type TargetContext, type TargetResolution } from '../targets';
import { RankAllocator, type AllocationStep } from './allocator';
import { keptRanks, rankPatternModule, type AdaLoraConfig } from './config';
import { SvdLayer } from './layer';

/** AdaLoraModel._create_new_module: only nn.Linear and transformers' Conv1D can become SVDLinear. */
export function checkAdaLoraModule(m: ModuleInfo): void {
  if (m.type !== 'Linear' && m.type !== 'Conv1D') {
    throw new EngineError(
      'BAD_PEFT_CONFIG',
      `Target module ${m.name} (${m.type}) is not supported. Currently, only \`torch.nn.Linear\` and \`Conv1D\` are supported.`,
    );
  }
}

/**
 * AdaLoRA's target resolution: LoRA's rules, with AdaLoRA's own default targets per model type (and their
 * list saved as PEFT saves it: the mapping's list, not a sorted set).
 */
export function resolveAdaLoraTargets(
  modules: ModuleInfo[], cfg: AdaLoraConfig, ctx: TargetContext,
): TargetResolution {
  let target = cfg.targetModules;
  let fromDefaults = false;
  if (target === null || target === undefined) {
    const def = ctx.defaults.adalora;
    if (!def) throw new EngineError('TARGETS_NOT_FOUND', 'Please specify `target_modules` in `peft_config`');
    target = [...def];
    fromDefaults = true;
  }
  const res = resolveLoraTargets(
    modules,
    {
      targetModules: target, excludeModules: cfg.excludeModules, layersToTransform: cfg.layersToTransform,
      layersPattern: cfg.layersPattern, modulesToSave: cfg.modulesToSave,
    },
    ctx,
    { checkModule: checkAdaLoraModule, layerClass: 'peft.tuners.adalora.layer.SVDLinear' },
  );
  return fromDefaults ? { ...res, savedTargetModules: target } : res;
}

/** tfjs variable names must be unique per process. */
let copyCounter = 0;

/** A base model with AdaLoRA applied: the PeftModel contract plus the regulariser and afterStep hooks. */
export class AdaLoraModel implements PeftModel {
  readonly peftType = 'ADALORA' as const;
  readonly virtualTokens = 0;
  readonly base: Model;
  readonly config: AdaLoraConfig;
  readonly resolution: TargetResolution;
  readonly layers = new Map<string, SvdLayer>();
  /** Trainable copies of base parameters (modules_to_save heads, biases), by full parameter name. */
  readonly copies = new Map<string, tf.Variable>();
  private readonly copyKeys = new Map<string, string>();
  /** `<module>.lora_E` -> kept triplets: the config's (a loaded adapter's), then what training allocates. */
  rankPattern: Record<string, boolean[]> | null;
  /** What the last update_and_allocate did (null before the first optimizer step). */
  lastAllocation: AllocationStep | null = null;
  private readonly allocator: RankAllocator;
  /** Rank-pruned tensors handed out by the last stateDict(), released on the next call. */
  private exported: tf.Tensor[] = [];
  private readonly rng: Rng;
  enabled = true;

  constructor(base: Model, config: AdaLoraConfig, seed = 0) {
    this.base = base;
    this.config = config;
    this.rankPattern = config.rankPattern ? structuredClone(config.rankPattern) : null;
    this.resolution = resolveAdaLoraTargets(base.modules, config, { task: config.taskType ?? null, heads: base.heads, defaults: base.spec.peftDefaults(base.config) });
    this.rng = new Rng(seed);
    const byName = new Map(base.modules.map((m) => [m.name, m]));
    try {
      // As get_peft_model: every target starts at init_r, whatever rank_pattern says (only loading resizes).
      for (const name of this.resolution.matched) this.layers.set(name, this.makeLayer(byName.get(name)!, config.initR));
      for (const mod of this.resolution.modulesToSave) {
        for (const p of paramsUnder(base.modules, mod)) this.copy(p, `${PEFT_PREFIX}${p}`);
      }
      // bias as LoraModel: "all" trains every bias, "lora_only" those of adapted modules (saved under base_layer).
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
    const c = config;
    this.allocator = new RankAllocator(this.layers, {
      targetR: c.targetR, tinit: c.tinit, tfinal: c.tfinal, deltaT: c.deltaT, totalStep: c.totalStep!, beta1: c.beta1, beta2: c.beta2,
    });
  }

  private makeLayer(m: ModuleInfo, r: number): SvdLayer {
    const w = m.params.weight;
    const conv = m.type === 'Conv1D';
    return new SvdLayer(
      {
        module: m.name, inFeatures: conv ? w[0] : w[1], outFeatures: conv ? w[1] : w[0], fanInFanOut: conv,
        r, ranknum: this.config.initR, loraAlpha: this.config.loraAlpha, dropout: this.config.loraDropout,
      },
      this.config.initLoraWeights,
      this.rng,
    );
  }

  private copy(param: string, key: string): void {
    const src = this.base.params.get(param);
    if (!src) return;
    this.copies.set(param, ownedVariable(src.clone(), true, `adalora_copy_${param.replace(/[^A-Za-z0-9_]/g, '_')}_${++copyCounter}`));
    this.copyKeys.set(param, key);
  }

  hooks(training: boolean): ForwardHooks {
    return {
      linear: (name, x, base, seed) => {
        const d = this.layers.get(name)?.delta(x, training, seed);
        return d ? tf.add(base(x), d) : base(x);
      },
      wraps: (name) => (this.layers.get(name)?.rank ?? 0) > 0,
      variablesUnder: (prefix) =>
        [...this.layers].filter(([name, l]) => name.startsWith(prefix) && l.rank > 0).flatMap(([, l]) => [l.A, l.E, l.B]),
      overrides: this.copies.size ? (this.copies as Map<string, tf.Tensor>) : undefined,
    };
  }

  /**
   * AdaLoraModel.forward's addition to any loss: orth_reg_weight * mean over every lora_A and lora_B of
   * ||P - I||_F (P = A A^T, B^T B). Rank-0 tensors add 0 but still count in the mean, as in PEFT.
   */
  regularizer(): tf.Scalar {
    return tf.tidy(() => {
      const terms = [...this.layers.values()].flatMap((l) => l.orthTerms());
      if (!terms.length) return tf.scalar(0);
      return tf.mul(tf.div(tf.addN(terms), terms.length), this.config.orthRegWeight) as tf.Scalar;
    });
  }

  /** update_and_allocate(global_step), after the optimizer applied this step's gradients. */
  async afterStep(o: { step: number; grads: Map<tf.Variable, tf.Tensor> }): Promise<void> {
    const { info, pattern } = await this.allocator.step(o.step, o.grads, this.rankPattern);
    if (pattern) this.rankPattern = pattern;
    this.lastAllocation = info;
  }

  /** The importance EMAs and the rank pattern so far (a checkpoint resumes update_and_allocate exactly). */
  trainingState(): MethodTrainingState {
    return { tensors: this.allocator.exportState(), json: { rank_pattern: this.rankPattern ? structuredClone(this.rankPattern) : null } };
  }

  loadTrainingState(s: { tensors: Map<string, LoadedTensor>; json: Record<string, unknown> }): void {
    const floats = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const [k, t] of s.tensors) {
      if (!(t.data instanceof Float32Array)) throw new EngineError('BAD_CHECKPOINT', `The checkpoint's AdaLoRA state ${k} is not a float tensor.`);
      floats.set(k, { shape: t.shape, data: t.data });
    }
    this.allocator.importState(floats);
    const rp = s.json.rank_pattern;
    this.rankPattern = rp && typeof rp === 'object' ? (structuredClone(rp) as Record<string, boolean[]>) : null;
  }

  /** Kept rank per module now: the rank pattern's, else the tensors' own. */
  ranks(): Map<string, number> {
    const kept = keptRanks(this.rankPattern);
    return new Map([...this.layers].map(([n, l]) => [n, kept.get(n) ?? l.rank]));
  }

  adapterExtras() {
    const r = this.resolution;
    return {
      task: this.base.task, resolvedTargetModules: r.savedTargetModules, modulesToSave: r.savedModulesToSave, fanInFanOut: r.fanInFanOut,
      fields: { rank_pattern: this.rankPattern ? structuredClone(this.rankPattern) : null },
    };
  }

  forward(input: ForwardInput): tf.Tensor {
    return forwardWith(this, input);
  }

  alignLabels(labels: tf.Tensor): tf.Tensor {
    return labels;
  }

  trainableVariables(): tf.Variable[] {
    const vars: tf.Variable[] = [];
    for (const l of this.layers.values()) vars.push(l.A, l.E, l.B);
    vars.push(...this.copies.values());
    return vars;
  }

  /** Variables by PEFT file key: base_model.model.<module>.lora_A / lora_E / lora_B (no ".weight"), copies. */
  keyed(): Map<string, tf.Variable> {
    const out = new Map<string, tf.Variable>();
    for (const [name, l] of this.layers) {
      out.set(`${PEFT_PREFIX}${name}.lora_A`, l.A);
      out.set(`${PEFT_PREFIX}${name}.lora_E`, l.E);
      out.set(`${PEFT_PREFIX}${name}.lora_B`, l.B);
    }
    for (const [param, v] of this.copies) out.set(this.copyKeys.get(param)!, v);
    return out;
  }

  /**
   * The tensors save_pretrained writes: resize_state_dict_by_rank_pattern keeps the rank pattern's triplets
   * (rows of A and E, columns of B) of every module whose tensors are not already that size. Pruned tensors are
   * new and stay valid until the next stateDict() call.
   */
  stateDict(): Map<string, tf.Tensor> {
    tf.dispose(this.exported);
    this.exported = [];
    const out = this.keyed() as Map<string, tf.Tensor>;
    for (const [key, keep] of Object.entries(this.rankPattern ?? {})) {
      const module = rankPatternModule(key);
      const l = this.layers.get(module);
      if (!l) throw new EngineError('BAD_PEFT_CONFIG', `rank_pattern names ${pyRepr(key)}, which is not an AdaLoRA module of this model.`);
      const rank = keep.filter(Boolean).length;
      if (rank === l.rank) continue;
      if (keep.length !== l.rank) {
        throw new EngineError('BAD_PEFT_CONFIG', `rank_pattern[${pyRepr(key)}] has ${keep.length} entries but ${module} has rank ${l.rank}.`);
      }
      const idx = keep.flatMap((k, i) => (k ? [i] : []));
      const pruned = tf.tidy(() => {
        const rows = tf.tensor1d(idx, 'int32');
        return [tf.gather(l.A, rows, 0), tf.gather(l.E, rows, 0), tf.gather(l.B, rows, 1)];
      });
      // Gathering zero rows gives [0, in] / [0, 1] / [out, 0]: PEFT's empty tensors of a rank-0 module.
      this.exported.push(...pruned);
      out.set(`${PEFT_PREFIX}${module}.lora_A`, pruned[0]);
      out.set(`${PEFT_PREFIX}${module}.lora_E`, pruned[1]);
      out.set(`${PEFT_PREFIX}${module}.lora_B`, pruned[2]);
    }
    return out;
  }

  /**
   * set_peft_model_state_dict for AdaLoRA: a config with rank_pattern first re-creates each module it names at
   * rank sum(pattern) (resize_modules_by_rank_pattern; ranknum stays init_r), then the tensors load strictly.
   */
  loadStateDict(tensors: Map<string, LoadedTensor>, source = 'adapter_model.safetensors'): void {
    const byName = new Map(this.base.modules.map((m) => [m.name, m]));
    for (const [module, rank] of keptRanks(this.config.rankPattern)) {
      const old = this.layers.get(module);
      if (!old) {
        throw new EngineError('ADAPTER_MISMATCH', `${source}: rank_pattern names ${module}, which is not an AdaLoRA module of this model.`);
      }
      if (old.rank === rank) continue;
      this.layers.set(module, this.makeLayer(byName.get(module)!, rank));
      old.dispose();
    }
    loadStrict(this.keyed(), tensors, source);
  }

  /** One base parameter with its AdaLoRA delta folded in, a head copy or trained bias, or null when unchanged. */
  mergedParam(param: string): tf.Tensor | null {
    const copy = this.copies.get(param);
    if (copy) return copy.clone();
    const layer = param.endsWith('.weight') ? this.layers.get(param.slice(0, -'.weight'.length)) : undefined;
    if (!layer) return null;
    const w = this.base.params.get(param)!;
    return tf.tidy(() => tf.add(w, layer.mergedDelta()));
  }

  /** Base weights with every AdaLoRA delta folded in (merge_and_unload), as new tensors. */
  mergedParams(): Map<string, tf.Tensor> {
    const out = new Map<string, tf.Tensor>();
    for (const [name, l] of this.layers) {
      const w = this.base.params.get(`${name}.weight`)!;
      out.set(`${name}.weight`, tf.tidy(() => tf.add(w, l.mergedDelta())));
    }
    for (const [param, v] of this.copies) out.set(param, v.clone());
    return out;
  }

  dispose(): void {
    this.allocator?.dispose();
    tf.dispose(this.exported);
    this.exported = [];
    for (const l of this.layers.values()) l.dispose();
    for (const v of this.copies.values()) v.dispose();
    this.layers.clear();
    this.copies.clear();
  }
}
