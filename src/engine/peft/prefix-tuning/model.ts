/**
 * Prefix tuning as PEFT 0.15.2 runs it (peft/tuners/prefix_tuning/model.py: PrefixEncoder, PeftModel.get_prompt):
 * a table P [V, 2 * L * H * D] whose columns hold, per layer i, the key prefix (block 2i) and the value prefix
 * (block 2i + 1), each [H, V, D] with P[v, ((2i + kv) * H + h) * D + d] (PEFT's view(B, V, 2L, H, D)
 * .permute(2, 0, 3, 1, 4)). Every attention reads its layer's prefix before its own keys / values; the real
 * tokens move to positions V.. (see the models' hidden()). With prefix_projection the table is
 * transform(embedding) = Linear(Tanh(Linear(embedding [V, token_dim]))) and the embedding and transform train.
 *
 * PEFT saves only P, as `prompt_embeddings`, and loads it back as a plain table (inference mode). A model here
 * is in 'encoder' mode (projection trains; resumable with loadEncoderState) or 'table' mode (no projection, or a
 * PEFT file was loaded: P itself trains). Each block builds its layer's prefix from the variables inside its own
 * scope, so a checkpointed block recomputes it and the gradient reaches P (or the projection).
 */
import * as tf from '@tensorflow/tfjs';
import { EngineError } from '../../errors';
import type { LoadedTensor } from '../../io/safetensors';
import type { ForwardHooks, ForwardInput, Model } from '../../models/types';
import { Rng } from '../../random';
import { forwardWith, loadStrict, type PeftModel } from '../model';
import { EncoderState, Handout, linearRows } from '../prompt-tuning/encoder';
import { PromptHead } from '../prompt-tuning/head';
import { PROMPT_KEY } from '../prompt-tuning/model';
import { prefixDims, prefixEncoderHiddenSize, type PrefixDims, type PrefixTuningConfig } from './config';

export class PrefixTuningModel implements PeftModel {
  readonly peftType = 'PREFIX_TUNING' as const;
  readonly base: Model;
  readonly config: PrefixTuningConfig;
  readonly dims: PrefixDims;
  readonly head: PromptHead;
  enabled = true;
  private kind: 'encoder' | 'table';
  /** PEFT's parameter names: embedding.weight (P itself in table mode), transform.0 / transform.2. */
  private state = new EncoderState();
  private embedding!: tf.Variable;
  private transform: { w0: tf.Variable; b0: tf.Variable; w2: tf.Variable; b2: tf.Variable } | null = null;
  private readonly rng: Rng;
  private readonly saved = new Handout();

  /** 'encoder': embedding + transform train (prefix_projection); 'table': P itself trains. */
  get mode(): 'encoder' | 'table' {
    return this.kind;
  }

  get virtualTokens(): number {
    return this.config.numVirtualTokens;
  }

  constructor(base: Model, config: PrefixTuningConfig, seed = 0) {
    this.base = base;
    this.config = config;
    this.dims = prefixDims(base.config, config.numVirtualTokens);
    // A config read from a file must describe this model, or P's columns would land on the wrong layer / head.
    const facts: [string, number | null, number][] = [
      ['num_layers', config.numLayers, this.dims.numLayers],
      ['num_attention_heads', config.numAttentionHeads, this.dims.heads],
      ['token_dim', config.tokenDim, this.dims.tokenDim],
    ];
    for (const [name, got, want] of facts) {
      if (got != null && got !== want) {
        throw new EngineError('ADAPTER_MISMATCH', `The adapter's ${name} ${got} differs from this model's ${want} (prefix tuning on ${base.className}).`);
      }
    }
    this.rng = new Rng(seed);
    this.kind = config.prefixProjection ? 'encoder' : 'table';
    this.build();
    this.head = new PromptHead(base);
  }

  /** The trainable prefix with PyTorch's default init (nn.Embedding N(0, 1), nn.Linear uniform). */
  private build(): void {
    const { numVirtualTokens: V, numLayers: L, tokenDim: D } = this.dims;
    const out = 2 * L * D;
    if (this.kind === 'table') {
      this.embedding = this.state.embedding('embedding.weight', V, out, this.rng);
      return;
    }
    const E = prefixEncoderHiddenSize(this.config, D);
    this.embedding = this.state.embedding('embedding.weight', V, D, this.rng);
    const l0 = this.state.linear('transform.0', D, E, this.rng);
    const l2 = this.state.linear('transform.2', E, out, this.rng);
    this.transform = { w0: l0.w, b0: l0.b, w2: l2.w, b2: l2.b };
  }

  adapterExtras() {
    const d = this.dims;
    return { task: this.base.task, tokenDim: d.tokenDim, numLayers: d.numLayers, numAttentionHeads: d.heads };
  }

  /** Layer i's columns of P, [V, 2 * H * D] (keys then values), computed from the trainable variables. */
  private layerColumns(i: number): tf.Tensor {
    const { numVirtualTokens: V, heads: H, headDim: D } = this.dims;
    const w = 2 * H * D;
    if (!this.transform) return tf.slice(this.embedding, [0, i * w], [V, w]);
    const t = this.transform;
    const h = tf.tanh(linearRows(this.embedding, t.w0, t.b0)); // [V, E]
    // Only this layer's rows of the second Linear: the same columns as the full product, a 1/L of its cost.
    return linearRows(h, tf.slice(t.w2, [i * w, 0], [w, -1]), tf.slice(t.b2, [i * w], [w]));
  }

  /** Layer i's key and value prefixes [1, H, V, D]. */
  private layer(i: number): { k: tf.Tensor; v: tf.Tensor } {
    const { numVirtualTokens: V, heads: H, headDim: D } = this.dims;
    const cols = this.layerColumns(i); // [V, 2HD]
    const part = (j: number) => tf.slice(cols, [0, j * H * D], [V, H * D]).reshape([V, H, D]).transpose([1, 0, 2]).reshape([1, H, V, D]);
    return { k: part(0), v: part(1) };
  }

  hooks(_training: boolean): ForwardHooks {
    const vars = [...this.state.vars.values()];
    return {
      pastKeyValues: { length: this.dims.numVirtualTokens, layer: (i) => this.layer(i) },
      // Every block reads the prefix variables (checkpointing differentiates its recompute with respect to them).
      variablesUnder: () => vars,
      overrides: this.head.overrides,
    };
  }

  forward(input: ForwardInput): tf.Tensor {
    return forwardWith(this, input);
  }

  /** Labels are not extended: the prefix is keys and values only, so the logits cover the real tokens. */
  alignLabels(labels: tf.Tensor): tf.Tensor {
    return labels;
  }

  trainableVariables(): tf.Variable[] {
    return [...this.state.vars.values(), ...this.head.variables()];
  }

  /** The table P [V, 2 * L * H * D]: stored, or transform(embedding) built layer by layer as the forward builds it. */
  private table(): tf.Tensor {
    if (!this.transform) return this.embedding;
    return tf.tidy(() => tf.concat(Array.from({ length: this.dims.numLayers }, (_, i) => this.layerColumns(i)), 1));
  }

  /** PEFT's file: `prompt_embeddings` = P, plus the SEQ_CLS head. A computed P is this model's until the next call. */
  stateDict(): Map<string, tf.Tensor> {
    const p = this.transform ? this.saved.give(this.table()) : this.embedding;
    return new Map<string, tf.Tensor>([[PROMPT_KEY, p], ...this.head.keyed()]);
  }

  /** Loads a PEFT file: P becomes the (trainable) table; a projection is dropped (PEFT inference mode). */
  loadStateDict(tensors: Map<string, LoadedTensor>, source = 'adapter_model.safetensors'): void {
    const rest = this.head.load(tensors, source);
    const { numVirtualTokens: V, numLayers: L, tokenDim: D } = this.dims;
    if (this.transform) {
      // Check before dropping the projection, so that a bad file leaves the model as it was.
      const probe = new Map([[PROMPT_KEY, tf.variable(tf.zeros([V, 2 * L * D]), false)]]);
      try {
        loadStrict(probe, rest, source);
      } finally {
        probe.get(PROMPT_KEY)!.dispose();
      }
      this.state.dispose();
      this.state = new EncoderState();
      this.transform = null;
      this.kind = 'table';
      this.build();
    }
    loadStrict(new Map([[PROMPT_KEY, this.embedding]]), rest, source);
  }

  /** The trainable prefix under PEFT's parameter names (`prompt_encoder.default.*`), to resume training. */
  encoderState(): Map<string, tf.Tensor> {
    return new Map(this.state.vars);
  }

  /** Loads encoderState() tensors; with prefix_projection this rebuilds the projection after a PEFT file was loaded. */
  loadEncoderState(tensors: Map<string, LoadedTensor>, source = 'encoder state'): void {
    if (this.config.prefixProjection && !this.transform) {
      this.state.dispose();
      this.state = new EncoderState();
      this.kind = 'encoder';
      this.build();
    }
    this.state.load(tensors, source);
  }

  dispose(): void {
    this.saved.dispose();
    this.state.dispose();
    this.head.dispose();
  }
}
