/**
 * P-tuning as PEFT 0.15.2 runs it (peft/tuners/p_tuning/model.py: PromptEncoder). A trainable embedding over the
 * virtual-token indices 0..V-1 ([V, D], so the lookup is the table itself) goes through a head:
 *   MLP:  Linear(D, E), ReLU, Linear(E, E), ReLU, Linear(E, D)                     (mlp_head.0 / .2 / .4)
 *   LSTM: bidirectional nn.LSTM(D, E, encoder_num_layers) then Linear(2E, 2E), ReLU, Linear(2E, D)
 * and its output [V, D] is used exactly like prompt tuning's embeddings (prepended, mask ones, CLM labels -100).
 * V = num_virtual_tokens * num_transformer_submodules: for SEQ_2_SEQ_LM PEFT encodes 2P rows (the LSTM reads all
 * of them, so the second P shape the first P through it) and prepends only the first P to the encoder input, as
 * for prompt tuning.
 *
 * PEFT saves only that output, as `prompt_embeddings`, and loads it back as a plain table (inference mode: the
 * encoder is gone). Here a model runs in one of two modes: 'encoder' (fresh, or resumed with loadEncoderState:
 * the encoder trains) or 'table' (a PEFT file was loaded: the table itself trains, which is the gradient a
 * reloaded PEFT adapter's embedding gets). encoderState() exposes the encoder for resuming; it is not part of
 * PEFT's file.
 */
import * as tf from '@tensorflow/tfjs';
import type { LoadedTensor } from '../../io/safetensors';
import type { ForwardHooks, ForwardInput, Model } from '../../models/types';
import { Rng } from '../../random';
import { IGNORE_INDEX } from '../../train/loss';
import { forwardWith, loadStrict, type PeftModel } from '../model';
import { promptSubmodules } from '../prompt-learning';
import { ENCODER_PREFIX, EncoderState, Handout, linearRows } from '../prompt-tuning/encoder';
import { PromptHead } from '../prompt-tuning/head';
import { PROMPT_KEY } from '../prompt-tuning/model';
import { encoderHiddenSize, type PTuningConfig } from './config';
import { BiLstm } from './lstm';

interface Linear {
  w: tf.Variable;
  b: tf.Variable;
}

export class PTuningModel implements PeftModel {
  readonly peftType = 'P_TUNING' as const;
  readonly base: Model;
  readonly config: PTuningConfig;
  readonly head: PromptHead;
  enabled = true;
  private kind: 'encoder' | 'table' = 'encoder';
  /** Encoder tensors by PEFT parameter name (embedding, mlp_head, lstm_head); in table mode only the embedding. */
  private state = new EncoderState();
  private embedding!: tf.Variable; // [V, D]
  private mlp: Linear[] = [];
  private lstm: BiLstm | null = null;
  private readonly rng: Rng;
  /** Encoder outputs handed to a forward / to the file, freed when replaced (see Handout). */
  private readonly prompts = new Handout();
  private readonly saved = new Handout();

  /** 'encoder': the PromptEncoder trains; 'table': a PEFT-saved output was loaded and the table trains. */
  get mode(): 'encoder' | 'table' {
    return this.kind;
  }

  get virtualTokens(): number {
    return this.config.numVirtualTokens;
  }

  constructor(base: Model, config: PTuningConfig, seed = 0) {
    this.base = base;
    this.config = config;
    this.rng = new Rng(seed);
    this.buildEncoder();
    this.head = new PromptHead(base);
  }

  /** A fresh PromptEncoder with PyTorch's default init (nn.Embedding N(0, 1), nn.Linear / nn.LSTM uniform). */
  private buildEncoder(): void {
    const V = this.config.numVirtualTokens * this.submodules;
    const D = this.base.config.hiddenSize;
    const E = encoderHiddenSize(this.config, D);
    const st = this.state;
    this.embedding = st.embedding('embedding.weight', V, D, this.rng);
    if (this.config.encoderReparameterizationType === 'LSTM') {
      this.lstm = new BiLstm(st, 'lstm_head', { input: D, hidden: E, numLayers: this.config.encoderNumLayers, dropout: this.config.encoderDropout }, this.rng);
      this.mlp = [st.linear('mlp_head.0', 2 * E, 2 * E, this.rng), st.linear('mlp_head.2', 2 * E, D, this.rng)];
    } else {
      this.mlp = [st.linear('mlp_head.0', D, E, this.rng), st.linear('mlp_head.2', E, E, this.rng), st.linear('mlp_head.4', E, D, this.rng)];
    }
    this.kind = 'encoder';
  }

  /** Prompt stacks PEFT encodes rows for: 2 for SEQ_2_SEQ_LM (encoder and decoder), else 1. */
  get submodules(): number {
    return promptSubmodules(this.config, this.base.task);
  }

  adapterExtras() {
    const c = this.base.config;
    return { task: this.base.task, tokenDim: c.hiddenSize, numLayers: c.numLayers, numAttentionHeads: c.numHeads };
  }

  /** The virtual-token embeddings [V, D]: the encoder's output, or the table. */
  private prompt(training: boolean): tf.Tensor {
    if (this.mode === 'table') return this.embedding;
    let h: tf.Tensor = this.embedding; // embedding(arange(V)) is the table itself
    if (this.lstm) h = this.lstm.forward(h, training, () => this.rng.int(2 ** 30));
    this.mlp.forEach((l, i) => {
      h = linearRows(h, l.w, l.b);
      if (i < this.mlp.length - 1) h = tf.relu(h);
    });
    return h;
  }

  /**
   * The virtual tokens prepended to the input: all V rows, or with two submodules the first num_virtual_tokens of
   * them (PeftModelForSeq2SeqLM.forward: the decoder's rows are encoded, saved and never prepended).
   */
  hooks(training: boolean): ForwardHooks {
    const P = this.config.numVirtualTokens;
    const first = (all: tf.Tensor) => (this.submodules === 1 ? all : tf.slice(all, [0, 0], [P, -1]));
    // In a tidy: generation calls this outside one, and the encoder's intermediates (an LSTM's per-step tensors)
    // must not outlive it. The gradient tape keeps what backprop needs on its own.
    const prompt = this.mode === 'table' ? first(this.embedding) : tf.tidy(() => first(this.prompt(training)));
    if (prompt !== this.embedding) this.prompts.give(prompt);
    return { prefixEmbeds: prompt, overrides: this.head.overrides };
  }

  forward(input: ForwardInput): tf.Tensor {
    return forwardWith(this, input);
  }

  /** CLM labels get -100 for each virtual token (only while the prompt is on); SEQ_CLS labels are unchanged. */
  alignLabels(labels: tf.Tensor): tf.Tensor {
    if (this.base.task !== 'CAUSAL_LM' || !this.enabled) return labels;
    const [B] = labels.shape;
    return tf.concat([tf.fill([B, this.config.numVirtualTokens], IGNORE_INDEX, 'int32'), labels.toInt()], 1);
  }

  trainableVariables(): tf.Variable[] {
    return [...this.state.vars.values(), ...this.head.variables()];
  }

  /**
   * PEFT's file: `prompt_embeddings` = the encoder's output (get_prompt_embedding_to_save, no dropout), plus the
   * SEQ_CLS head. The computed table is this model's until the next call or dispose().
   */
  stateDict(): Map<string, tf.Tensor> {
    const table = this.mode === 'table' ? this.embedding : this.saved.give(tf.tidy(() => this.prompt(false)));
    return new Map<string, tf.Tensor>([[PROMPT_KEY, table], ...this.head.keyed()]);
  }

  /** Loads a PEFT file: the encoder is dropped and its saved output becomes the (trainable) table. */
  loadStateDict(tensors: Map<string, LoadedTensor>, source = 'adapter_model.safetensors'): void {
    const rest = this.head.load(tensors, source);
    loadStrict(new Map([[PROMPT_KEY, this.embedding]]), rest, source);
    // The embedding variable now holds the table; the heads are no longer part of the model (PEFT inference mode).
    const keep = this.embedding;
    for (const v of this.state.vars.values()) if (v !== keep) v.dispose();
    this.state.vars.clear();
    this.state.vars.set(`${ENCODER_PREFIX}embedding.weight`, keep);
    this.mlp = [];
    this.lstm = null;
    this.kind = 'table';
  }

  /** The encoder's tensors under PEFT's parameter names (`prompt_encoder.default.*`), to resume training. */
  encoderState(): Map<string, tf.Tensor> {
    return new Map(this.state.vars);
  }

  /** Loads encoderState() tensors (rebuilding the encoder after a PEFT file was loaded); strict like loadStateDict. */
  loadEncoderState(tensors: Map<string, LoadedTensor>, source = 'encoder state'): void {
    if (this.mode === 'table') {
      this.state.dispose();
      this.state = new EncoderState();
      this.buildEncoder();
    }
    this.state.load(tensors, source);
  }

  dispose(): void {
    this.prompts.dispose();
    this.saved.dispose();
    this.state.dispose();
    this.head.dispose();
  }
}
