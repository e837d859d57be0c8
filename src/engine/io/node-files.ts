/**
 * Node-only helpers for reading Hugging Face model folders from disk (CLI, tests, benchmarks).
 * The browser path fetches the same files over HTTP; keep anything reusable in safetensors.ts instead.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { EngineError } from '../errors';
import { describeValue, quoteValue } from '../quote';
import { readSafetensors, type LoadedTensor } from './safetensors';
import { readJsonObject } from './text';

/**
 * Reads a JSON file whose top level must be an object; failures (missing file, UTF-16 or binary content, invalid
 * or too deeply nested JSON) are BAD_CONFIG naming the path.
 */
export function readJson(path: string): Record<string, unknown> {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new EngineError('BAD_CONFIG', `${path}: ${code === 'ENOENT' ? 'file not found' : `cannot read (${(e as Error).message})`}`);
  }
  return readJsonObject(bytes, path, 'BAD_CONFIG');
}

/** Reads a whole .safetensors file; a missing file is MISSING_WEIGHT, format problems BAD_SAFETENSORS. */
export function readSafetensorsFile(path: string): { tensors: Map<string, LoadedTensor>; metadata: Record<string, string> } {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new EngineError('MISSING_WEIGHT', `${path}: ${code === 'ENOENT' ? 'file not found' : `cannot read (${(e as Error).message})`}`);
  }
  return readSafetensors(bytes, path);
}

/**
 * Loads config.json plus weights from a model folder:
 * - `model.safetensors`, or
 * - `model.safetensors.index.json` and every shard its weight_map names (each tensor must be in the shard
 *   the index assigns it to), or
 * - nothing: an empty tensor map, so a config-only folder can still be inspected.
 * `files` lists the weight files read, as paths joined onto `dir`, in read order.
 */
export function loadModelDir(dir: string): {
  config: Record<string, unknown>;
  tensors: Map<string, LoadedTensor>;
  files: string[];
} {
  const config = readJson(join(dir, 'config.json'));

  const single = join(dir, 'model.safetensors');
  if (existsSync(single)) {
    return { config, tensors: readSafetensorsFile(single).tensors, files: [single] };
  }

  const indexPath = join(dir, 'model.safetensors.index.json');
  if (!existsSync(indexPath)) {
    // A PyTorch-only checkpoint would silently load as "no weights"; say what is wrong instead.
    if (existsSync(join(dir, 'pytorch_model.bin')) || existsSync(join(dir, 'pytorch_model.bin.index.json'))) {
      throw new EngineError('MISSING_WEIGHT', `${dir}: only PyTorch .bin weights found; safetensors weights are required`);
    }
    return { config, tensors: new Map(), files: [] };
  }

  const index = readJson(indexPath);
  const weightMap = index.weight_map;
  if (weightMap === null || typeof weightMap !== 'object' || Array.isArray(weightMap)) {
    throw new EngineError('BAD_CONFIG', `${indexPath}: "weight_map" must be an object of tensor name -> shard file, got ${describeValue(weightMap)}`);
  }
  const byShard = new Map<string, string[]>();
  for (const [name, shard] of Object.entries(weightMap as Record<string, unknown>)) {
    if (typeof shard !== 'string' || shard === '') {
      throw new EngineError('BAD_CONFIG', `${indexPath}: weight_map entry for ${quoteValue(name)} must be a shard file name, got ${describeValue(shard)}`);
    }
    const names = byShard.get(shard) ?? [];
    names.push(name);
    byShard.set(shard, names);
  }

  const shardPaths = [...byShard.keys()].map((s) => join(dir, s));
  for (const p of shardPaths) {
    if (!existsSync(p)) throw new EngineError('MISSING_WEIGHT', `${p}: shard listed in ${indexPath} is missing`);
  }

  const tensors = new Map<string, LoadedTensor>();
  for (const [shard, names] of byShard) {
    const path = join(dir, shard);
    const loaded = readSafetensorsFile(path).tensors;
    for (const name of names) {
      const t = loaded.get(name);
      if (!t) throw new EngineError('MISSING_WEIGHT', `${path}: tensor '${name}' (assigned to this shard by the index) is not in it`);
      tensors.set(name, t);
    }
    // Keep unlisted extras too (like transformers, which loads whole shards); listed names stay with
    // the shard the index assigns them to.
    for (const [name, t] of loaded) {
      if (!Object.hasOwn(weightMap, name)) tensors.set(name, t);
    }
  }
  return { config, tensors, files: shardPaths };
}
