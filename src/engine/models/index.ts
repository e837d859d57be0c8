/**
 * Architecture registry and model construction: config.json (+ optional weights) -> Model.
 * A module tree is available from the config alone, so the UI can show it before any download.
 */
import * as tf from '@tensorflow/tfjs';
import { EngineError } from '../errors';
import { describeValue, quoteValue } from '../quote';
import type { LoadedTensor } from '../io/safetensors';
import { Rng } from '../random';
import { cachedDecoding, LinearProducts, makeCtx, type LayerCache } from './layers';
import { markFrozen } from '../ops/fused';
import { lmHeadEval, lmHeadLoss } from '../ops/cross-entropy';
import { causalLmLoss, maskedCrossEntropy, seqClsLoss, tokenClsLoss } from '../train/loss';
import { moduleRole, type ArchitectureSpec } from './spec';
import { TASK_TYPES } from './types';
import type {
  ArchConfig, DecodeOptions, Decoding, EvalOutput, ForwardHooks, ForwardInput, HeadInfo, Model, ModuleInfo, ModuleRole, ParamMap, TaskType,
} from './types';
import { gpt2 } from './gpt2';
import { llama } from './llama';
import { bert } from './bert';
import { opt } from './opt';
import { gptneox } from './gptneox';
import { bloom } from './bloom';
import { distilbert } from './distilbert';
import { roberta } from './roberta';
import { t5 } from './t5';

export const ARCHITECTURES: ArchitectureSpec<any>[] = [gpt2, llama, bert, opt, gptneox, bloom, distilbert, roberta, t5];

/** Every supported config.json model_type, for error messages and docs. */
export const SUPPORTED_MODEL_TYPES = ARCHITECTURES.flatMap((a) => a.modelTypes);

export interface Resolved {
  spec: ArchitectureSpec<any>;
  config: ArchConfig;
  task: TaskType;
  className: string;
}

/**
 * Finds the architecture for a config.json and the task to build (explicit, else from `architectures`). `where`
 * names the file in messages (e.g. its path; default "config.json").
 */
export function resolveArchitecture(raw: Record<string, unknown>, task?: TaskType, where = 'config.json'): Resolved {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new EngineError('BAD_CONFIG', `${where} is not a JSON object`);
  const modelType = raw.model_type;
  if (modelType === undefined || modelType === null || modelType === '') {
    throw new EngineError(
      'BAD_CONFIG',
      `${where} has no model_type: it must name the architecture (one of ${SUPPORTED_MODEL_TYPES.join(', ')}), as every config.json saved by transformers does.`,
    );
  }
  if (typeof modelType !== 'string') {
    throw new EngineError('BAD_CONFIG', `${where}: model_type must be a string such as "gpt2", got ${describeValue(modelType)}.`);
  }
  const spec = ARCHITECTURES.find((a) => a.modelTypes.includes(modelType));
  if (!spec) {
    throw new EngineError(
      'UNSUPPORTED_ARCHITECTURE',
      `Unsupported architecture: model_type ${quoteValue(modelType)}${where === 'config.json' ? '' : ` in ${where}`}. Supported: ${SUPPORTED_MODEL_TYPES.join(', ')}.`,
    );
  }
  let config: ArchConfig;
  try {
    config = spec.parseConfig(raw);
  } catch (e) {
    // The architectures' messages start with "config.json"; name the file as the caller knows it.
    const msg = e instanceof RangeError ? `config.json: a value is nested too deeply to read (${e.message})` : (e as Error).message;
    throw new EngineError('BAD_CONFIG', where === 'config.json' ? msg : msg.replace(/^config\.json/, where));
  }
  const t: TaskType = task ?? taskFromArchitectures(spec, config, raw.architectures, where);
  const className = spec.className(config, t);
  // The class must be the task's own (never an LM built for token classification).
  if (!className || !TASK_CLASS[t].test(className)) {
    const tasks = TASK_TYPES.filter((k) => TASK_CLASS[k].test(spec.className(config, k) ?? ''));
    throw new EngineError('UNSUPPORTED_ARCHITECTURE', `${spec.id} models do not support the ${t} task here; choose ${tasks.join(' or ')}.`);
  }
  return { spec, config, task: t, className };
}

/** What a task's transformers class is called. */
const TASK_CLASS: Record<TaskType, RegExp> = {
  CAUSAL_LM: /(LMHeadModel|ForCausalLM)$/,
  SEQ_CLS: /ForSequenceClassification$/,
  TOKEN_CLS: /ForTokenClassification$/,
  SEQ_2_SEQ_LM: /ForConditionalGeneration$/,
};

/**
 * Base and pretraining classes name no fine-tuning task: the architecture's first task is built (an LM for
 * decoders, SEQ_CLS with a fresh head for BERT), as fine-tuning bert-base-uncased (BertForMaskedLM) expects.
 */
const NO_TASK_CLASS = /(Model|ForMaskedLM|ForPreTraining|WithLMHead|LMHeadModel|ForCausalLM)$/;

/**
 * The task a config's `architectures` names: the task whose class this architecture builds under that name.
 * A head class the engine does not build (e.g. BertForTokenClassification, GPT2ForQuestionAnswering) is an error
 * naming the classes it does build, never silently another class.
 */
function taskFromArchitectures(spec: ArchitectureSpec<any>, config: ArchConfig, archs: unknown, where: string): TaskType {
  const built = TASK_TYPES.flatMap((t) => {
    const name = spec.className(config, t);
    return name && TASK_CLASS[t].test(name) ? [{ task: t, name }] : [];
  });
  const names = Array.isArray(archs) ? archs.filter((a): a is string => typeof a === 'string') : [];
  // The exact class, else the same head under another family's prefix (a Qwen2 config saved by a LLaMA class).
  const head = (n: string) => /For[A-Za-z]+$/.exec(n)?.[0] ?? n;
  for (const a of names) {
    const hit = built.find((b) => b.name === a) ?? built.find((b) => head(b.name) === head(a));
    if (hit) return hit.task;
  }
  const other = names.find((a) => !NO_TASK_CLASS.test(a));
  if (other) {
    throw new EngineError(
      'UNSUPPORTED_ARCHITECTURE',
      `${where} names ${other}, which PEFT Studio does not build. For ${spec.id} models it builds ${built.map((b) => `${b.name} (${b.task})`).join(', ')}: choose one of those tasks to fine-tune this checkpoint with a fresh head.`,
    );
  }
  return built[0].task;
}

/** named_modules() of the model a config describes, without weights. */
export function moduleTree(raw: Record<string, unknown>, task?: TaskType): ModuleInfo[] {
  const r = resolveArchitecture(raw, task);
  return r.spec.modules(r.config, r.task);
}

/**
 * The role (attention / MLP / head) the architecture file gives each Linear / Conv1D module of `modules`, for the
 * studio's quick picks and the role-based presets; modules in no role are left out.
 */
export function moduleRoles(raw: Record<string, unknown>, task: TaskType | undefined, modules: ModuleInfo[]): Record<string, ModuleRole> {
  const r = resolveArchitecture(raw, task);
  const roles: Record<string, ModuleRole> = {};
  for (const m of modules) {
    const role = m.type === 'Linear' || m.type === 'Conv1D' ? moduleRole(r.spec, m.name) : null;
    if (role) roles[m.name] = role;
  }
  return roles;
}

/** Total parameter count as PyTorch's model.parameters() counts it (tied tensors once). */
export function countParams(modules: ModuleInfo[], tied: Record<string, string>): number {
  let n = 0;
  for (const m of modules) {
    for (const [p, shape] of Object.entries(m.params)) {
      const full = m.name ? `${m.name}.${p}` : p;
      if (!(full in tied)) n += shape.reduce((a, b) => a * b, 1);
    }
  }
  return n;
}

export interface BuildOptions {
  task?: TaskType;
  /** 'heads': create a missing SEQ_CLS head (transformers does so with a warning); 'all': random-init every
   *  missing parameter (training from scratch). Default 'heads'. */
  initMissing?: 'heads' | 'all';
  seed?: number;
}

export interface BuildReport {
  /** Parameters not in the checkpoint that were freshly initialised. */
  initialised: string[];
  /** Checkpoint tensors the model does not use (buffers such as attn.bias are skipped silently). */
  unused: string[];
}

/** Buffers some checkpoints carry that are not parameters. */
const IGNORED_KEYS = /(\.attn\.bias|\.attn\.masked_bias|\.attention\.bias|\.attention\.masked_bias|rotary_emb\.inv_freq|\.position_ids)$/;

/**
 * Builds a model from config.json and checkpoint tensors, checking every shape. Weights may be file tensors
 * (copied to the backend) or tensors already on it (shared, not copied: a worker uploads a checkpoint once
 * and builds a model per run or task from it).
 */
export function buildModel(
  raw: Record<string, unknown>,
  weights: Map<string, LoadedTensor | tf.Tensor>,
  opts: BuildOptions = {},
): Model & { report: BuildReport } {
  const { spec, config, task, className } = resolveArchitecture(raw, opts.task);
  const modules = spec.modules(config, task);
  const tied = spec.tied(config, task);
  const heads = spec.heads(config, task);
  const rng = new Rng(opts.seed ?? 0);
  const lookup = checkpointIndex(weights, spec.basePrefix);
  const used = new Set<string>();
  const params: ParamMap = new Map();
  const report: BuildReport = { initialised: [], unused: [] };
  try {
    for (const m of modules) {
      for (const [p, shape] of Object.entries(m.params)) {
        const name = m.name ? `${m.name}.${p}` : p;
        if (name in tied) continue;
        const key = lookup(name);
        let data: Float32Array;
        if (key !== undefined) {
          const t = weights.get(key)!;
          used.add(key);
          if (t.shape.join(',') !== shape.join(',')) {
            const head = inHead(heads, m.name) && t.shape[0] !== shape[0];
            throw new EngineError(
              'SHAPE_MISMATCH',
              `Weight ${key} has shape [${t.shape}] but config.json implies [${shape}] for ${name}.` +
                (head
                  ? ` The checkpoint's classification head has ${t.shape[0]} classes but num_labels is ${config.numLabels}: use data with at most ${t.shape[0]} labels, or a checkpoint without a head.`
                  : ''),
            );
          }
          if (t instanceof tf.Tensor) {
            if (t.dtype !== 'float32') throw new EngineError('SHAPE_MISMATCH', `Weight ${key} is ${t.dtype}, expected float32.`);
            const shared = t.clone(); // a handle on the same data: disposing the model leaves the source intact
            markFrozen(shared);
            params.set(name, shared);
            continue;
          }
          if (!(t.data instanceof Float32Array)) {
            throw new EngineError('SHAPE_MISMATCH', `Weight ${key} is ${t.dtype}, expected a floating-point tensor.`);
          }
          data = t.data;
        } else {
          const isHead = inHead(heads, m.name);
          if (!isHead && opts.initMissing !== 'all') {
            throw new EngineError('MISSING_WEIGHT', `The checkpoint has no tensor ${name} (shape [${shape}]).`);
          }
          data = spec.initParam(name, shape, config, rng);
          report.initialised.push(name);
        }
        const t = tf.tensor(data, shape, 'float32');
        markFrozen(t);
        params.set(name, t);
      }
    }
  } catch (e) {
    for (const t of params.values()) t.dispose();
    throw e;
  }
  for (const [name, src] of Object.entries(tied)) params.set(name, params.get(src)!);
  for (const k of weights.keys()) if (!used.has(k) && !IGNORED_KEYS.test(k)) report.unused.push(k);

  const model: Model & { report: BuildReport } = {
    arch: spec.id,
    spec,
    className,
    task,
    config,
    rawConfig: raw,
    params,
    tied,
    heads,
    modules,
    report,
    forward(input, hooks = {}) {
      const ctx = makeCtx(model.params, hooks, input);
      return spec.head(config, task, ctx, spec.hidden(config, task, ctx, input), input);
    },
    loss: (input, labels, hooks = {}) => taskLoss(spec, model, input, labels, hooks, false),
    evaluate: (input, labels, hooks = {}) => taskLoss(spec, model, input, labels, hooks, true),
    ...(spec.decoder && task === 'CAUSAL_LM'
      ? {
          startDecoding: (ids: number[], hooks: ForwardHooks = {}, o: DecodeOptions = {}) => startDecoding(spec, model, ids, hooks, o),
          maxDecodeLength: spec.decoder.maxLength(config),
        }
      : {}),
    ...(spec.seq2seq && task === 'SEQ_2_SEQ_LM'
      ? { startSeq2SeqDecoding: (ids: number[], hooks: ForwardHooks = {}) => spec.seq2seq!.start(model, ids, hooks) }
      : {}),
    dispose() {
      const seen = new Set<tf.Tensor>();
      for (const t of model.params.values()) if (!seen.has(t)) (seen.add(t), t.dispose());
      model.params.clear();
    },
  };
  return model;
}

/** Whether a module is the classification head or inside it (RoBERTa's head is a module of Linears). */
function inHead(heads: HeadInfo, name: string): boolean {
  if (heads.headExtras?.includes(name)) return true;
  return heads.classifier !== undefined && (name === heads.classifier || name.startsWith(`${heads.classifier}.`));
}

/** Bytes of a model's parameter tensors, tied ones once. */
function paramBytes(model: Model): number {
  let n = 0;
  for (const t of new Set(model.params.values())) n += 4 * t.size;
  return n;
}

/**
 * Model.startDecoding: the prompt runs through spec.decoder.step once (prefill), then each next() runs one
 * token over the cache. Only the last position goes through the LM head ([1, V], never [1, S, V]).
 */
function startDecoding(spec: ArchitectureSpec<any>, model: Model, promptIds: number[], hooks: ForwardHooks, o: DecodeOptions): Decoding {
  const decoder = spec.decoder!;
  const maxLength = decoder.maxLength(model.config);
  const virtual = hooks.prefixEmbeds?.shape[0] ?? 0;
  // Prefix tuning's keys / values occupy the first cache positions.
  const prefix = hooks.pastKeyValues?.length ?? 0;
  if (promptIds.length === 0) throw new EngineError('BAD_ARGUMENT', 'Decoding needs a prompt of at least one token.');
  if (virtual + prefix + promptIds.length > maxLength) {
    throw new EngineError(
      'BAD_ARGUMENT',
      `A prompt of ${promptIds.length} tokens${virtual + prefix ? ` (+${virtual + prefix} virtual)` : ''} does not fit this model's ${maxLength} positions.`,
    );
  }
  const ctx = makeCtx(model.params, hooks);
  if (tf.getBackend() === 'wasm') {
    // By default the copies may grow the heap to about 2.5 of its 4 GiB, leaving room for the session's own state.
    ctx.linearProducts = new LinearProducts(o.transposeBudgetBytes ?? Math.max(0, 2.5 * 2 ** 30 - paramBytes(model)));
  }
  return cachedDecoding({
    first: promptIds,
    startLength: prefix,
    maxLength,
    full: `The cache is full: this model takes at most ${maxLength} positions.`,
    step: (ids, past, length) => {
      const caches: LayerCache[] = Array.from({ length: model.config.numLayers }, (_, i) => ({ past: past[i] }));
      const S = ids.length + (length === prefix ? virtual : 0); // new positions
      const out = tf.tidy(() => {
        const input = { inputIds: tf.tensor2d([ids], [1, ids.length], 'int32') };
        const x = decoder.step(model.config, ctx, input.inputIds, caches, length); // [1, S, C]
        const last = tf.slice(x, [0, S - 1, 0], [1, 1, -1]); // [1, 1, C] (OPT-350m: word_embed_proj_dim)
        const y = spec.head(model.config, model.task, ctx, last, input).reshape([-1]) as tf.Tensor1D; // [V]
        return { y, k: caches.map((c) => c.present!.k), v: caches.map((c) => c.present!.v) };
      });
      return { logits: out.y, present: out.k.map((k, i) => ({ k, v: out.v[i] })), added: S };
    },
    release: () => ctx.linearProducts?.dispose(),
  });
}

/**
 * Maps a parameter name to the checkpoint key that holds it: the name itself, the name without the base
 * prefix (checkpoints of the bare base model, e.g. openai-community/gpt2), or old BERT gamma/beta names.
 */
function checkpointIndex(weights: Map<string, unknown>, basePrefix: string): (name: string) => string | undefined {
  return (name) => {
    const candidates = [name];
    if (name.startsWith(basePrefix)) candidates.push(name.slice(basePrefix.length));
    for (const c of [...candidates]) {
      if (c.endsWith('LayerNorm.weight')) candidates.push(c.replace(/weight$/, 'gamma'));
      if (c.endsWith('LayerNorm.bias')) candidates.push(c.replace(/bias$/, 'beta'));
    }
    return candidates.find((c) => weights.has(c));
  };
}

/**
 * Loss (and, for evaluation, argmax predictions) as transformers computes them from `labels`. For causal LM
 * the hidden states at positions 0..S-2 are scored against labels 1..S-1; the LM head and cross-entropy run
 * fused (ops/cross-entropy.ts) unless a PEFT method changes the head, in which case the logits are built.
 */
function taskLoss<P extends boolean>(
  spec: ArchitectureSpec<any>, model: Model, input: ForwardInput, labels: tf.Tensor, hooks: ForwardHooks, withPreds: P,
): P extends true ? EvalOutput : tf.Scalar;
function taskLoss(
  spec: ArchitectureSpec<any>, model: Model, input: ForwardInput, labels: tf.Tensor, hooks: ForwardHooks, withPreds: boolean,
): EvalOutput | tf.Scalar {
  return tf.tidy(() => {
    const ctx = makeCtx(model.params, hooks, input);
    // SEQ_2_SEQ_LM: the decoder reads the labels shifted right unless its inputs are given.
    if (model.task === 'SEQ_2_SEQ_LM' && !input.decoderInputIds) input = { ...input, labels };
    const x = spec.hidden(model.config, model.task, ctx, input);
    if (model.task === 'SEQ_CLS') {
      const logits = spec.head(model.config, model.task, ctx, x, input);
      const loss = seqClsLoss(logits, labels);
      return withPreds ? { loss, preds: tf.argMax(logits, -1), labels: labels.toInt() } : loss;
    }
    if (model.task === 'TOKEN_CLS') {
      const logits = spec.head(model.config, model.task, ctx, x, input); // [B, S, num_labels]
      const loss = tokenClsLoss(logits, labels);
      return withPreds ? { loss, preds: tf.argMax(logits, -1).reshape([-1]), labels: labels.toInt().reshape([-1]) } : loss;
    }
    if (model.task === 'SEQ_2_SEQ_LM') {
      // T5ForConditionalGeneration: cross-entropy of every decoder position against its label (no shift: the
      // decoder inputs are the labels shifted right), -100 ignored.
      const [B, T, C] = x.shape;
      const y = labels.toInt().reshape([-1]);
      if (hooks.wraps?.('lm_head')) {
        const logits = spec.head(model.config, model.task, ctx, x, input).reshape([B * T, -1]);
        const loss = maskedCrossEntropy(logits, y);
        return withPreds ? { loss, preds: tf.argMax(logits, -1), labels: y } : loss;
      }
      const h = x.reshape([-1, C]);
      const w = ctx.get('lm_head.weight');
      if (!withPreds) return lmHeadLoss(h, w, y);
      const r = lmHeadEval(h, w, y);
      return { loss: r.loss, preds: r.preds, labels: y };
    }
    const [B, S, C] = x.shape;
    const head = model.heads.outputEmbedding ?? 'lm_head';
    const y = tf.slice(labels.toInt(), [0, 1], [B, S - 1]).reshape([-1]);
    if (hooks.wraps?.(head) || ctx.has(`${head}.bias`)) {
      const logits = spec.head(model.config, model.task, ctx, x, input); // [B, S, V]
      const loss = causalLmLoss(logits, labels);
      if (!withPreds) return loss;
      return { loss, preds: tf.argMax(tf.slice(logits, [0, 0, 0], [B, S - 1, -1]), -1).reshape([-1]), labels: y };
    }
    const h = tf.slice(x, [0, 0, 0], [B, S - 1, C]).reshape([-1, C]); // [B*(S-1), C]
    const w = ctx.get(`${head}.weight`);
    if (!withPreds) return lmHeadLoss(h, w, y);
    const r = lmHeadEval(h, w, y);
    return { loss: r.loss, preds: r.preds, labels: y };
  });
}

/** Checkpoint tensors on the backend (see uploadWeights). */
export type DeviceWeights = Map<string, tf.Tensor>;

/** Uploads checkpoint tensors to the active backend once, for buildModel to share across runs and tasks. */
export function uploadWeights(weights: Map<string, LoadedTensor>): DeviceWeights {
  const out = new Map<string, tf.Tensor>();
  try {
    for (const [k, t] of weights) {
      if (t.data instanceof Float32Array) out.set(k, tf.tensor(t.data, t.shape, 'float32'));
    }
  } catch (e) {
    for (const t of out.values()) t.dispose();
    throw e;
  }
  return out;
}
