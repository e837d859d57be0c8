/**
 * Importing a PEFT-saved adapter (adapter_config.json + adapter_model.safetensors) onto the studio's model: the
 * files are found among what the person picked, loaded with the engine's strict checks (adapter/import.ts), and
 * the result can generate, classify and be evaluated with the adapter on and off, or seed a training run
 * (SessionInit.initialAdapter). Nothing here touches the worker's globals: worker.ts holds one `AdapterImport`.
 */
import { loadAdapter, type AdapterSource } from '../engine/adapter/import';
import { EngineError } from '../engine/errors';
import { parseHeader } from '../engine/io/safetensors';
import { buildModel, type DeviceWeights } from '../engine/models';
import type { Model, TaskType } from '../engine/models/types';
import type { PeftModel } from '../engine/peft';
import { parsePeftConfig, type PeftConfig } from '../engine/peft/config';
import { methodOf } from '../engine/peft/registry';
import type { TokenizerLike } from '../engine/session';
import { encodeExamples, type Example } from '../engine/train/data';
import { evaluate, type EvalMetrics } from '../engine/train/evaluate';
import { classify, generate, type GenerateOptions } from '../engine/train/generate';
import { decodeKnown, seq2seqText } from '../engine/train/seq2seq-generate';
import { setPackPolicy } from '../engine/wasm-matmul';
import type { AdapterEvalResult, ImportedAdapterInfo, TargetSpec } from './protocol';

export const CONFIG_FILE = 'adapter_config.json';
export const WEIGHTS_FILE = 'adapter_model.safetensors';

/** The two files, as bytes, with the names messages use (`<folder>/adapter_config.json`). */
export interface AdapterFileBytes {
  name: string;
  config: Uint8Array;
  weights: Uint8Array;
  configName: string;
  weightsName: string;
}

const pathOf = (f: File) => (f as File & { webkitRelativePath?: string }).webkitRelativePath || f.name;

/**
 * Finds adapter_config.json and adapter_model.safetensors among picked or dropped files (a folder's files, or the
 * two files themselves); the top-most copy wins when subfolders (checkpoints) hold more. `name` is the folder.
 */
export async function readAdapterFiles(files: File[], name: string): Promise<AdapterFileBytes> {
  const pick = (want: string) =>
    files.filter((f) => f.name === want).sort((a, b) => pathOf(a).split('/').length - pathOf(b).split('/').length)[0];
  const config = pick(CONFIG_FILE);
  const weights = pick(WEIGHTS_FILE);
  const listed = files.slice(0, 6).map((f) => f.name).join(', ') + (files.length > 6 ? `, … (${files.length} files)` : '');
  const where = files.length ? `among the files picked (${listed})` : '(nothing was picked)';
  if (!weights && files.some((f) => f.name === 'adapter_model.bin')) {
    throw new EngineError(
      'ADAPTER_MISMATCH',
      `${name}: adapter_model.bin is a PyTorch pickle, which the studio cannot read. Save the adapter with safetensors (PEFT's default, save_pretrained(safe_serialization=True)).`,
    );
  }
  for (const [file, want] of [[config, CONFIG_FILE], [weights, WEIGHTS_FILE]] as const) {
    if (!file) {
      throw new EngineError(
        'ADAPTER_MISMATCH',
        `${want} is missing ${where}. Pick the adapter folder PEFT saved, or both ${CONFIG_FILE} and ${WEIGHTS_FILE}.`,
      );
    }
  }
  const read = async (f: File) => {
    try {
      return new Uint8Array(await f.arrayBuffer());
    } catch (e) {
      throw new EngineError('ADAPTER_MISMATCH', `${pathOf(f)} could not be read (${(e as Error).message}); pick it again.`);
    }
  };
  return { name, config: await read(config), weights: await read(weights), configName: pathOf(config), weightsName: pathOf(weights) };
}

/** The adapter's targets in one short phrase: "c_attn", "c_attn, c_proj", a regex, "all-linear". */
function targetsText(t: unknown): string {
  if (Array.isArray(t)) return t.length > 4 ? `${t.slice(0, 4).join(', ')} and ${t.length - 4} more` : t.join(', ');
  return typeof t === 'string' ? t : 'default targets';
}

/** One line saying what the adapter is: "LoRA r=8, alpha 16 on c_attn", "prompt tuning, 8 virtual tokens". */
export function describeAdapterConfig(cfg: PeftConfig): string {
  const c = cfg as unknown as Record<string, unknown>;
  const m = methodOf(cfg.peftType);
  let s: string;
  if (m.prompt) s = `${m.label}, ${c.numVirtualTokens} virtual tokens`;
  else if (cfg.peftType === 'LORA') s = `${c.useDora ? 'DoRA' : 'LoRA'} r=${c.r}, alpha ${c.loraAlpha}${c.useRslora ? ' (rsLoRA)' : ''} on ${targetsText(c.targetModules)}`;
  else if (cfg.peftType === 'ADALORA') s = `AdaLoRA r=${c.initR}→${c.targetR} on ${targetsText(c.targetModules)}`;
  else s = `${m.label} on ${targetsText(c.targetModules)}`;
  const save = c.modulesToSave;
  if (Array.isArray(save) && save.length) s += `, training ${save.join(', ')}`;
  return s;
}

/** The project's method form values and targets for an imported config (what its panels then show). */
export function settingsOfConfig(cfg: PeftConfig): { values: Record<string, unknown>; targets: TargetSpec | null } {
  const m = methodOf(cfg.peftType);
  const c = cfg as unknown as Record<string, unknown>;
  const values: Record<string, unknown> = {};
  for (const f of m.schema) if (f.kind !== 'fixed' && f.ui !== 'none' && c[f.key] !== undefined) values[f.key] = structuredClone(c[f.key]);
  if (m.prompt) return { values, targets: null };
  const layers = c.layersToTransform;
  return {
    values,
    targets: {
      targetModules: (c.targetModules as string[] | string | null) ?? [],
      excludeModules: (c.excludeModules as string[] | string | null) ?? null,
      layersToTransform: typeof layers === 'number' ? [layers] : ((layers as number[] | null) ?? null),
      layersPattern: (c.layersPattern as string | null) ?? null,
    },
  };
}

/** Classes of a SEQ_CLS head the adapter saves (modules_to_save `score` / `classifier`), from its header. */
function headClasses(weights: Uint8Array, weightsName: string): number | null {
  const h = parseHeader(weights, weightsName, weights.byteLength);
  for (const [k, t] of Object.entries(h.tensors)) {
    if (/(^|\.)(score|classifier)(\.out_proj)?\.weight$/.test(k) && t.shape.length === 2) return t.shape[0];
  }
  return null;
}

export interface ImportContext {
  /** config.json of the studio's model. */
  config: Record<string, unknown>;
  weights: DeviceWeights;
  tokenizer: TokenizerLike | null;
  /** The project's task, used when the adapter names none. */
  task: TaskType;
  /** The dataset's label names (SEQ_CLS), for the head's size when the adapter does not fix it. */
  labels: string[];
  /** The studio model's name, for messages. */
  modelName?: string;
}

/** An imported adapter on the studio's model, ready to play with and evaluate; dispose() frees its tensors. */
export class ImportedAdapter {
  private constructor(
    readonly files: AdapterFileBytes,
    readonly config: PeftConfig,
    readonly model: Model,
    readonly peft: PeftModel,
    readonly tokenizer: TokenizerLike | null,
    readonly info: ImportedAdapterInfo,
  ) {}

  /** Loads the files onto the model strictly; any problem is an EngineError naming the file and the key. */
  static create(ctx: ImportContext, files: AdapterFileBytes): ImportedAdapter {
    const config = parsePeftConfig(files.config, files.configName);
    const task = config.taskType ?? ctx.task;
    const raw = { ...ctx.config };
    const notes: string[] = [];
    if (task === 'SEQ_CLS') {
      const n = headClasses(files.weights, files.weightsName) ?? (ctx.labels.length >= 2 ? ctx.labels.length : null);
      if (n !== null) {
        raw.num_labels = n;
        delete raw.id2label;
        delete raw.label2id;
      }
      if (n !== null && ctx.labels.length >= 2 && n !== ctx.labels.length) {
        notes.push(`The adapter's head has ${n} classes but the dataset has ${ctx.labels.length}; classes are shown by number.`);
      }
      if (raw.pad_token_id == null) raw.pad_token_id = ctx.tokenizer?.padTokenId ?? ctx.tokenizer?.eosTokenId ?? null;
    } else if (task === 'TOKEN_CLS') {
      // The token-classification head's size comes from the adapter's saved classifier; the tags keep the dataset's names when they fit.
      const n = headClasses(files.weights, files.weightsName) ?? (ctx.labels.length >= 2 ? ctx.labels.length : null);
      if (n !== null) raw.num_labels = n;
      if (n !== null && ctx.labels.length === n) raw.id2label = Object.fromEntries(ctx.labels.map((l, i) => [String(i), l]));
      else delete raw.id2label;
      delete raw.label2id;
      if (n !== null && ctx.labels.length >= 2 && n !== ctx.labels.length) notes.push(`The adapter's head has ${n} tags but the dataset has ${ctx.labels.length}; tags are shown by number.`);
    }
    const model = buildModel(raw, ctx.weights, { task });
    let peft: PeftModel;
    try {
      const src: AdapterSource = { config: files.config, weights: files.weights, configName: files.configName, weightsName: files.weightsName };
      peft = loadAdapter(model, src);
    } catch (e) {
      model.dispose();
      // PEFT's own words name the targets; say which file and which base model the adapter was made for.
      if (e instanceof EngineError && e.code === 'TARGETS_NOT_FOUND') {
        throw new EngineError(
          'ADAPTER_MISMATCH',
          `${files.configName}: ${e.message} The adapter was made for ${config.baseModelNameOrPath ?? 'another base model'}${ctx.modelName ? `, not ${ctx.modelName}` : ''}: load that model first.`,
        );
      }
      throw e;
    }
    const state = peft.stateDict();
    let params = 0;
    for (const t of state.values()) params += t.size;
    const m = methodOf(config.peftType);
    const info: ImportedAdapterInfo = {
      name: files.name,
      peftType: config.peftType,
      methodLabel: m.label,
      summary: describeAdapterConfig(config),
      task,
      tensors: state.size,
      params,
      bytes: files.weights.byteLength,
      baseModel: config.baseModelNameOrPath ?? null,
      settings: settingsOfConfig(config),
      notes,
    };
    return new ImportedAdapter(files, config, model, peft, ctx.tokenizer, info);
  }

  /** The files as SessionInit.initialAdapter takes them (a run continuing from this adapter). */
  source(): AdapterSource {
    const f = this.files;
    return { config: f.config, weights: f.weights, configName: f.configName, weightsName: f.weightsName };
  }

  /** Tokens an input may have: the model's positions less the virtual tokens. */
  private get maxInput(): number {
    return this.model.config.maxPositions - this.peft.virtualTokens;
  }

  private async withAdapter<T>(on: boolean, f: () => Promise<T>): Promise<T> {
    const was = this.peft.enabled;
    this.peft.enabled = on;
    try {
      return await f();
    } finally {
      this.peft.enabled = was;
    }
  }

  async generate(prompt: string, o: GenerateOptions & { adapter?: boolean } = {}): Promise<string> {
    const tok = this.tokenizer;
    if (!tok) throw new EngineError('BAD_ARGUMENT', 'This model has no tokenizer, so it cannot generate text.');
    if (this.model.task !== 'CAUSAL_LM') throw new EngineError('BAD_ARGUMENT', `The imported adapter is for ${this.model.task}: classify text instead.`);
    return this.withAdapter(o.adapter ?? true, () => generate(this.peft, tok, prompt, o));
  }

  /** SEQ_2_SEQ_LM: the greedy target for a source text, with the adapter on or off (as TrainingSession.generateSeq2Seq). */
  async generateSeq2Seq(
    source: string, o: { maxNewTokens: number; adapter?: boolean; onText?: (text: string) => void | Promise<void>; shouldStop?: () => boolean },
  ): Promise<string> {
    const tok = this.tokenizer;
    if (!tok) throw new EngineError('BAD_ARGUMENT', 'This model has no tokenizer, so it cannot generate text.');
    if (this.model.task !== 'SEQ_2_SEQ_LM') throw new EngineError('BAD_ARGUMENT', `The imported adapter is for ${this.model.task}, not SEQ_2_SEQ_LM.`);
    const [enc] = encodeExamples([{ text: source, target: '.' }], {
      task: 'SEQ_2_SEQ_LM', maxLength: this.maxInput, encode: (s) => tok.encode(s), eosTokenId: tok.eosTokenId ?? this.model.config.eosTokenId,
    });
    return this.withAdapter(o.adapter ?? true, () => seq2seqText(this.peft, tok, enc.ids, o));
  }

  async classify(text: string, o: { adapter?: boolean } = {}): Promise<{ label: number; probs: number[] }> {
    const tok = this.tokenizer;
    if (!tok) throw new EngineError('BAD_ARGUMENT', 'This model has no tokenizer, so it cannot classify text.');
    if (this.model.task !== 'SEQ_CLS') throw new EngineError('BAD_ARGUMENT', `The imported adapter is for ${this.model.task}: generate text instead.`);
    return this.withAdapter(o.adapter ?? true, () => classify(this.peft, tok.encode(text).slice(0, this.maxInput)));
  }

  /**
   * Eval loss and accuracy (SEQ_CLS: also F1) on validation rows, with the adapter and with the base model
   * alone, as a training run's evaluation computes them (same padding, same batches).
   */
  async evaluate(rows: Example[], o: { batchSize: number; maxLength: number; generationEvalRows?: number | null }): Promise<AdapterEvalResult> {
    if (!rows.length) {
      throw new EngineError('BAD_DATA', 'The dataset has no validation rows: set a validation split in the Data panel (or use a dataset with a validation file).');
    }
    const c = this.model.config;
    const maxLength = Math.min(o.maxLength, c.maxPositions - this.peft.virtualTokens);
    const encoded = encodeExamples(rows, {
      task: this.model.task, maxLength, encode: this.tokenizer ? (s) => this.tokenizer!.encode(s) : undefined,
      eosTokenId: this.tokenizer?.eosTokenId ?? c.eosTokenId, numLabels: c.numLabels,
    });
    if (encoded.some((e) => e.ids.some((t) => t >= c.vocabSize))) throw new EngineError('BAD_DATA', `A token id is outside the model's vocabulary of ${c.vocabSize}.`);
    const padId = c.padTokenId ?? this.tokenizer?.padTokenId ?? this.tokenizer?.eosTokenId ?? 0;
    const padding = { padToMultipleOf: 16, maxLength };
    const run = (on: boolean) =>
      this.withAdapter(on, async () => {
        const pack = setPackPolicy('marked');
        try {
          const tok = this.tokenizer;
          return await evaluate(this.peft, encoded, o.batchSize, padId, padding, undefined, {
            decode: tok ? (ids) => decodeKnown(tok, ids) : undefined, eosTokenId: tok?.eosTokenId ?? c.eosTokenId, maxRows: o.generationEvalRows ?? undefined,
          });
        } finally {
          setPackPolicy(pack);
        }
      });
    const strip = (m: EvalMetrics) => ({
      evalLoss: m.evalLoss, accuracy: m.accuracy, ...(m.f1 !== undefined ? { f1: m.f1 } : {}),
      ...(m.exactMatch !== undefined ? { exactMatch: m.exactMatch, chrf: m.chrf, rougeL: m.rougeL } : {}),
    });
    const withAdapter = strip(await run(true));
    const withoutAdapter = strip(await run(false));
    return { rows: encoded.length, task: this.model.task, withAdapter, withoutAdapter };
  }

  dispose(): void {
    this.peft.dispose();
    this.model.dispose();
  }
}

/**
 * The worker's imported adapter: at most one, replaced only by a good import (a bad one leaves it as it was),
 * active in the playground from its import until a training run starts.
 */
export class AdapterImport {
  current: ImportedAdapter | null = null;
  /** Whether the playground uses it (rather than the latest run's adapter). */
  active = false;

  /** Loads a new adapter; the previous one is released only once the new one has loaded. */
  async load(ctx: ImportContext, files: File[], name: string): Promise<ImportedAdapterInfo> {
    const bytes = await readAdapterFiles(files, name);
    const next = ImportedAdapter.create(ctx, bytes);
    this.current?.dispose();
    this.current = next;
    this.active = true;
    return next.info;
  }

  /** The adapter the playground should use, when it is the imported one. */
  playing(): ImportedAdapter | null {
    return this.active ? this.current : null;
  }

  require(): ImportedAdapter {
    if (!this.current) throw new EngineError('BAD_ARGUMENT', 'No adapter is imported: import an adapter folder first.');
    return this.current;
  }

  /**
   * The peft settings of a run that continues from the imported adapter: the project's (which the import set),
   * plus what the form does not hold but the tensors' shapes depend on (AdaLoRA's rank_pattern).
   */
  continueConfig<T extends PeftConfig>(cfg: T): T {
    const imp = this.require();
    if (cfg.peftType === 'ADALORA' && imp.config.peftType === 'ADALORA') {
      return { ...cfg, rankPattern: imp.config.rankPattern ?? null };
    }
    return cfg;
  }

  close(): void {
    this.current?.dispose();
    this.current = null;
    this.active = false;
  }
}
