/**
 * Writing large safetensors checkpoints one tensor at a time: the header is built from shapes alone, then each
 * tensor's bytes are produced, written and dropped, so a model is never held twice. Sharding follows
 * transformers' save_pretrained (huggingface_hub's split_torch_state_dict_into_shards): `model-00001-of-0000N
 * .safetensors` files of at most max_shard_size bytes each and a `model.safetensors.index.json` weight map.
 */
import { EngineError } from '../errors';
import { encodeFloats, FLOAT_SIZE, type FloatDType } from './float-encode';
import { compareCodePoints, MAX_HEADER_SIZE } from './safetensors';

/** A tensor to write: its name, shape, and how to get its float32 values when its turn comes. */
export interface StreamTensor {
  name: string;
  shape: number[];
  values: () => Promise<Float32Array>;
}

/** Where written files go: a Node file, an OPFS / File System Access writable, a zip entry. */
export interface FileWriter {
  write(chunk: Uint8Array): Promise<void> | void;
  close(): Promise<void> | void;
}
export type OpenFile = (name: string) => Promise<FileWriter> | FileWriter;

/** transformers' default max_shard_size ("5GB"). */
export const DEFAULT_MAX_SHARD_SIZE = 5_000_000_000;

/**
 * "2GB", "500MB", "1.5GiB" or a byte count -> bytes, with huggingface_hub's parse_size_to_int units (KB/MB/GB
 * are powers of 1000, KiB/MiB/GiB of 1024).
 */
export function parseShardSize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B)?\s*$/i.exec(text);
  if (!m) throw new EngineError('BAD_ARGUMENT', `max shard size must be a size such as 2GB, 500MB or 1GiB, got "${text}"`);
  const unit = (m[2] ?? 'B').toUpperCase();
  const mult: Record<string, number> = {
    B: 1, KB: 1e3, MB: 1e6, GB: 1e9, TB: 1e12, KIB: 2 ** 10, MIB: 2 ** 20, GIB: 2 ** 30, TIB: 2 ** 40,
  };
  const n = Math.floor(parseFloat(m[1]) * mult[unit]);
  if (n < 1) throw new EngineError('BAD_ARGUMENT', `max shard size must be at least 1 byte, got "${text}"`);
  return n;
}

const numel = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/**
 * Groups tensors (in state-dict order) into shards exactly as huggingface_hub does: a tensor larger than the limit
 * gets a shard of its own; otherwise a shard is closed when the next tensor would push it past the limit.
 */
export function planShards<T extends { name: string; shape: number[] }>(tensors: T[], dtype: FloatDType, maxShardSize: number): T[][] {
  const shards: T[][] = [];
  let current: T[] = [];
  let size = 0;
  for (const t of tensors) {
    const bytes = numel(t.shape) * FLOAT_SIZE[dtype];
    if (bytes > maxShardSize) {
      shards.push([t]);
      continue;
    }
    if (size + bytes > maxShardSize) {
      shards.push(current);
      current = [];
      size = 0;
    }
    current.push(t);
    size += bytes;
  }
  if (current.length) shards.push(current);
  return shards.filter((s) => s.length);
}

/** The header (length prefix included) of a file holding `tensors` in one dtype, and the order their data follows. */
export function streamHeader<T extends { name: string; shape: number[] }>(
  tensors: T[], dtype: FloatDType, metadata: Record<string, string> | null = { format: 'pt' },
): { header: Uint8Array; order: T[]; dataBytes: number } {
  // The safetensors crate's order: by dtype (all the same here), then by name, byte-wise.
  const order = tensors.slice().sort((a, b) => compareCodePoints(a.name, b.name));
  const parts: string[] = metadata ? [`"__metadata__":${JSON.stringify(metadata)}`] : [];
  let offset = 0;
  for (const t of order) {
    const n = numel(t.shape) * FLOAT_SIZE[dtype];
    parts.push(`${JSON.stringify(t.name)}:{"dtype":"${dtype}","shape":[${t.shape.join(',')}],"data_offsets":[${offset},${offset + n}]}`);
    offset += n;
  }
  const json = new TextEncoder().encode(`{${parts.join(',')}}`);
  const n = Math.ceil(json.length / 8) * 8;
  if (n > MAX_HEADER_SIZE) throw new EngineError('BAD_ARGUMENT', `safetensors header would be ${n} bytes, over the ${MAX_HEADER_SIZE}-byte limit`);
  const header = new Uint8Array(8 + n);
  new DataView(header.buffer).setUint32(0, n, true);
  header.set(json, 8);
  header.fill(0x20, 8 + json.length); // space padding keeps the header valid JSON
  return { header, order, dataBytes: offset };
}

export interface WrittenCheckpoint {
  /** The weight files, in order. */
  files: string[];
  /** model.safetensors.index.json's text when sharded, else null. */
  index: string | null;
  /** Bytes of tensor data over all shards (the index's metadata.total_size). */
  totalSize: number;
}

/**
 * Writes `tensors` (state-dict order) as model.safetensors, or as shards + model.safetensors.index.json when they
 * exceed `maxShardSize`. Each tensor's values are requested, encoded and written before the next is asked for.
 */
export async function writeCheckpoint(
  tensors: StreamTensor[],
  o: { dtype: FloatDType; maxShardSize?: number; open: OpenFile; onTensor?: (name: string, done: number, total: number) => void },
): Promise<WrittenCheckpoint> {
  const shards = planShards(tensors, o.dtype, o.maxShardSize ?? DEFAULT_MAX_SHARD_SIZE);
  const names = shards.length === 1
    ? ['model.safetensors']
    : shards.map((_, i) => `model-${String(i + 1).padStart(5, '0')}-of-${String(shards.length).padStart(5, '0')}.safetensors`);
  const weightMap: Record<string, string> = {};
  let totalSize = 0;
  let done = 0;
  for (let s = 0; s < shards.length; s++) {
    const { header, order, dataBytes } = streamHeader(shards[s], o.dtype);
    const out = await o.open(names[s]);
    await out.write(header);
    for (const t of order) {
      const values = await t.values();
      if (values.length !== numel(t.shape)) {
        throw new EngineError('BAD_ARGUMENT', `tensor '${t.name}' has ${values.length} values but shape [${t.shape}] needs ${numel(t.shape)}`);
      }
      await out.write(encodeFloats(values, o.dtype));
      weightMap[t.name] = names[s];
      o.onTensor?.(t.name, ++done, tensors.length);
    }
    await out.close();
    totalSize += dataBytes;
  }
  if (shards.length === 1) return { files: names, index: null, totalSize };
  const sorted = Object.fromEntries(Object.keys(weightMap).sort(compareCodePoints).map((k) => [k, weightMap[k]]));
  // transformers: json.dumps(index, indent=2, sort_keys=True) + "\n".
  const index = `${JSON.stringify({ metadata: { total_size: totalSize }, weight_map: sorted }, null, 2)}\n`;
  const w = await o.open('model.safetensors.index.json');
  await w.write(new TextEncoder().encode(index));
  await w.close();
  return { files: names, index, totalSize };
}
