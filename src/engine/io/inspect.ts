/**
 * Header-first inspection: from config.json and the safetensors headers alone (HTTP range reads of a few KB per
 * weight file), work out the module tree, parameter counts, dtypes, the files to download and their sizes, and
 * anything that would make the download pointless (no safetensors, a missing shard, an unsupported
 * architecture). The same rules as the local-folder loader (node-files.ts loadModelDir) decide which weight
 * files count: model.safetensors, else model.safetensors.index.json and its shards.
 */
import { EngineError } from '../errors';
import { quoteValue } from '../quote';
import { SUPPORTED_MODEL_TYPES, countParams, resolveArchitecture } from '../models';
import type { ModuleInfo, TaskType } from '../models/types';
import { DTYPE_SIZE, headerLength, parseHeader, type DType, type SafetensorsHeader } from './safetensors';
import { cachedSource, type ModelCache } from './cache';
import { readJson, throwIfAborted, type FileEntry, type FileSource } from './model-source';

/** First read of a weight file: enough for the whole header of typical checkpoints (GPT-2's is ~15 KB). */
const FIRST_READ = 64 * 1024;

/** Small files fetched whole when present, in this order. */
export const EXTRA_FILES = ['generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json'] as const;

export interface WeightFileInfo {
  name: string;
  size: number;
  header: SafetensorsHeader;
  tensors: number;
  /** Elements stored in this file. */
  elements: number;
}

export interface ModelInspection {
  label: string;
  id: string;
  revision: string | null;
  commit: string | null;
  config: Record<string, unknown>;
  modelType: string;
  /** Architecture id (gpt2, llama, bert) and transformers class for the task. */
  arch: string;
  className: string;
  task: TaskType;
  tree: ModuleInfo[];
  tied: Record<string, string>;
  /** Parameters of the model the config describes, counted like PyTorch (tied once). */
  totalParams: number;
  /** Elements stored in the checkpoint, and how many per dtype. */
  checkpointElements: number;
  dtypes: Partial<Record<DType, number>>;
  /** The largest parameter (usually the embedding), in elements: WebGPU binds it as one buffer. */
  largestParamElements: number;
  weightFiles: WeightFileInfo[];
  /** weight_map of a sharded checkpoint (tensor -> shard), else null. */
  index: Record<string, string> | null;
  /** Every file a download fetches (config, index, tokenizer and generation files, weights), with sizes. */
  files: FileEntry[];
  tokenizerFiles: string[];
  downloadBytes: number;
  /** The weights once loaded as float32. */
  f32Bytes: number;
  /** Bytes actually read to inspect (headers + config), to show how little was fetched. */
  bytesRead: number;
  /** Read from a complete cached snapshot, without the network. */
  fromCache: boolean;
  /** Things worth telling before a download that do not stop it (missing tokenizer, tensors absent or mis-shaped). */
  notes: string[];
}

export interface InspectOptions {
  task?: TaskType;
  signal?: AbortSignal;
  /** Default true: a repo without safetensors weights is an error. False allows config-only folders. */
  requireWeights?: boolean;
  /** With a cache, a completely cached snapshot is inspected offline (unless `refresh`). */
  cache?: ModelCache | null;
  refresh?: boolean;
}

/** The cached snapshot of a Hub source when it is complete and `refresh` is not set, else the source itself. */
export async function preferCache(source: FileSource, cache?: ModelCache | null, refresh = false): Promise<FileSource> {
  if (!cache || !source.cacheKey || refresh || source.kind === 'cache') return source;
  return (await cachedSource(cache, source.cacheKey)) ?? source;
}

function numel(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Reads and validates one safetensors header with range reads: one request for most files, two for huge headers. */
export async function readRemoteHeader(source: FileSource, name: string, size: number, signal?: AbortSignal): Promise<{ header: SafetensorsHeader; bytesRead: number }> {
  if (size < 8) throw new EngineError('BAD_SAFETENSORS', `${name} in ${source.label} is only ${size} bytes, too small for a safetensors file.`);
  let bytes = await source.readRange(name, 0, Math.min(size, FIRST_READ), signal);
  const need = 8 + headerLength(bytes, name);
  if (need > size) throw new EngineError('BAD_SAFETENSORS', `${name}: header length ${need - 8} runs past the end of the file (${size} bytes).`);
  if (need > bytes.length) {
    const rest = await source.readRange(name, bytes.length, need, signal);
    const all = new Uint8Array(need);
    all.set(bytes);
    all.set(rest, bytes.length);
    bytes = all;
  }
  return { header: parseHeader(bytes.subarray(0, need), name, size), bytesRead: bytes.length };
}

/** Finds a file by name: from the listing when the source has one, else by asking for it. */
function finder(source: FileSource, listing: FileEntry[] | null, signal?: AbortSignal) {
  return async (name: string): Promise<FileEntry | null> =>
    listing ? listing.find((f) => f.name === name) ?? null : source.stat(name, signal);
}

export async function inspectModel(original: FileSource, opts: InspectOptions = {}): Promise<ModelInspection> {
  const { signal } = opts;
  const source = await preferCache(original, opts.cache, opts.refresh);
  const listing = await source.list(signal);
  const find = finder(source, listing, signal);
  const files: FileEntry[] = [];
  let bytesRead = 0;

  const configEntry = await find('config.json');
  const config = configEntry ? await readJson(source, 'config.json', signal) : null;
  if (!config) {
    throw new EngineError('BAD_CONFIG', `${source.label} has no config.json. A model folder or repo needs config.json next to its weights.`);
  }
  files.push(configEntry ?? { name: 'config.json', size: 0 });
  bytesRead += configEntry?.size ?? 0;

  let resolved;
  try {
    resolved = resolveArchitecture(config, opts.task);
  } catch (e) {
    if (e instanceof EngineError && e.code === 'UNSUPPORTED_ARCHITECTURE') {
      throw new EngineError('UNSUPPORTED_ARCHITECTURE',
        `${source.label} is a ${quoteValue(config.model_type)} model, which PEFT Studio cannot train. Supported model types: ${SUPPORTED_MODEL_TYPES.join(', ')}.`);
    }
    throw e;
  }
  const { spec, task, className } = resolved;
  const tree = spec.modules(resolved.config, task);
  const tied = spec.tied(resolved.config, task);

  // Which weight files: the same precedence as loadModelDir.
  let weightNames: string[] = [];
  let index: Record<string, string> | null = null;
  const single = await find('model.safetensors');
  if (single) {
    weightNames = ['model.safetensors'];
  } else {
    const idxEntry = await find('model.safetensors.index.json');
    const idx = idxEntry ? await readJson(source, 'model.safetensors.index.json', signal) : null;
    if (idx) {
      files.push(idxEntry!);
      bytesRead += idxEntry!.size;
      const wm = idx.weight_map;
      if (!wm || typeof wm !== 'object' || Array.isArray(wm)) {
        throw new EngineError('BAD_CONFIG', `model.safetensors.index.json in ${source.label} has no "weight_map".`);
      }
      index = {};
      for (const [t, shard] of Object.entries(wm as Record<string, unknown>)) {
        if (typeof shard !== 'string' || !shard) throw new EngineError('BAD_CONFIG', `model.safetensors.index.json in ${source.label}: the entry for '${t}' is not a file name.`);
        index[t] = shard;
      }
      weightNames = [...new Set(Object.values(index))];
    } else if ((await find('pytorch_model.bin')) || (await find('pytorch_model.bin.index.json'))) {
      throw new EngineError('MISSING_WEIGHT',
        `${source.label} has only PyTorch .bin weights (pytorch_model.bin). PEFT Studio reads only safetensors: pick a repo or revision with model.safetensors, or convert with model.save_pretrained(dir, safe_serialization=True).`);
    } else if (opts.requireWeights !== false) {
      throw new EngineError('MISSING_WEIGHT', `${source.label} has no safetensors weights (model.safetensors or model.safetensors.index.json). Only safetensors checkpoints are supported.`);
    }
  }

  for (const name of EXTRA_FILES) {
    throwIfAborted(signal, `Inspecting ${source.label}`);
    const f = await find(name);
    if (f) files.push(f);
  }

  const weightFiles: WeightFileInfo[] = [];
  const dtypes: Partial<Record<DType, number>> = {};
  let checkpointElements = 0;
  const shapes = new Map<string, number[]>();
  for (const name of weightNames) {
    const entry = await find(name);
    if (!entry) {
      throw new EngineError('MISSING_WEIGHT',
        `${source.label}: model.safetensors.index.json lists the shard ${name}, but it is not in the repo. The checkpoint is incomplete; try another revision.`);
    }
    const { header, bytesRead: n } = await readRemoteHeader(source, name, entry.size, signal);
    bytesRead += n;
    let elements = 0;
    for (const [t, e] of Object.entries(header.tensors)) {
      const k = numel(e.shape);
      elements += k;
      dtypes[e.dtype] = (dtypes[e.dtype] ?? 0) + k;
      if (!index || index[t] === name || !(t in index)) shapes.set(t, e.shape);
    }
    if (index) {
      for (const [t, shard] of Object.entries(index)) {
        if (shard === name && !(t in header.tensors)) {
          throw new EngineError('MISSING_WEIGHT', `${source.label}: tensor '${t}' is assigned to ${name} by model.safetensors.index.json but is not in that shard.`);
        }
      }
    }
    checkpointElements += elements;
    weightFiles.push({ name, size: entry.size, header, tensors: Object.keys(header.tensors).length, elements });
    files.push(entry);
  }

  const notes = checkWeights(tree, tied, spec.basePrefix, spec.heads(resolved.config, task).classifier, shapes, weightFiles.length > 0);
  const tokenizerFiles = files.map((f) => f.name).filter((n) => n.startsWith('tokenizer') || n === 'special_tokens_map.json');
  if (!tokenizerFiles.includes('tokenizer.json')) notes.push(`${source.label} has no tokenizer.json: text datasets and the playground need one (token-id data still works).`);
  const half = (dtypes.F16 ?? 0) + (dtypes.BF16 ?? 0);
  if (half) notes.push(`The checkpoint stores ${half.toLocaleString('en-US')} values in 16-bit floats; they are converted to float32 while downloading (twice the size in memory).`);

  let largestParamElements = 0;
  for (const m of tree) for (const s of Object.values(m.params)) largestParamElements = Math.max(largestParamElements, numel(s));
  // Float tensors become Float32Array; integer ones (rare in checkpoints) Int32Array: 4 bytes each either way.
  const elementsF32 = checkpointElements;

  return {
    label: source.label, id: source.id, revision: source.revision,
    commit: (source as { commit?: string | null }).commit ?? null,
    config, modelType: String(config.model_type), arch: spec.id, className, task, tree, tied,
    totalParams: countParams(tree, tied), checkpointElements, dtypes, largestParamElements,
    weightFiles, index, files, tokenizerFiles,
    downloadBytes: files.reduce((a, f) => a + f.size, 0),
    f32Bytes: elementsF32 * DTYPE_SIZE.F32,
    bytesRead, fromCache: source.kind === 'cache', notes,
  };
}

/** The inspector under the name the UI speaks of. */
export const inspectRemote = inspectModel;

/**
 * Compares the checkpoint's tensor names and shapes with what the config implies, with buildModel's lookup rules
 * (full name, name without the base prefix, legacy LayerNorm gamma/beta). Reported as notes: buildModel stays
 * the authority and throws when the model is actually built.
 */
function checkWeights(
  tree: ModuleInfo[], tied: Record<string, string>, basePrefix: string, classifier: string | undefined,
  shapes: Map<string, number[]>, haveWeights: boolean,
): string[] {
  if (!haveWeights) return [];
  const missing: string[] = [];
  const wrong: string[] = [];
  let headMissing = false;
  for (const m of tree) {
    for (const [p, shape] of Object.entries(m.params)) {
      const name = m.name ? `${m.name}.${p}` : p;
      if (name in tied) continue;
      const c = [name];
      if (name.startsWith(basePrefix)) c.push(name.slice(basePrefix.length));
      for (const x of [...c]) {
        if (x.endsWith('LayerNorm.weight')) c.push(x.replace(/weight$/, 'gamma'));
        if (x.endsWith('LayerNorm.bias')) c.push(x.replace(/bias$/, 'beta'));
      }
      const key = c.find((k) => shapes.has(k));
      if (key === undefined) {
        if (classifier !== undefined && (m.name === classifier || m.name.startsWith(`${classifier}.`))) headMissing = true;
        else missing.push(name);
      } else if (shapes.get(key)!.join(',') !== shape.join(',')) {
        wrong.push(`${key} is [${shapes.get(key)}], config implies [${shape}]`);
      }
    }
  }
  const out: string[] = [];
  const few = (xs: string[]) => xs.slice(0, 5).join('; ') + (xs.length > 5 ? `; and ${xs.length - 5} more` : '');
  if (missing.length) out.push(`The checkpoint lacks ${missing.length} parameter(s) the config implies: ${few(missing)}.`);
  if (wrong.length) out.push(`Shape mismatch between the checkpoint and config.json: ${few(wrong)}.`);
  if (headMissing) out.push(`The checkpoint has no ${classifier} head; a new one is initialised for classification (as transformers does).`);
  return out;
}
