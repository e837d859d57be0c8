/**
 * One loader for every model source: a folder URL (the built-in model), files the person picked or dropped,
 * or a Hugging Face Hub repo. Each source is a FileStore that returns a named file's bytes or null when the
 * file is absent; the loader decides which files it needs (config.json, model.safetensors or a sharded
 * index, tokenizer files) and turns every failure into an EngineError that names the file.
 */
import { EngineError } from '../engine/errors';
import { readSafetensors, type LoadedTensor } from '../engine/io/safetensors';
import { resolveArchitecture } from '../engine/models';
import { loadTokenizer, type Tokenizer } from '../engine/tokenizer';
import type { ModelSource } from './protocol';

interface FileStore {
  /** How errors name this source, e.g. "the built-in model" or "gpt2 on the Hub". */
  label: string;
  /** What adapter_config.json's base_model_name_or_path should say. */
  baseName: string;
  revision: string | null;
  get(name: string): Promise<Uint8Array | null>;
}

export interface LoadedModel {
  name: string;
  baseName: string;
  revision: string | null;
  config: Record<string, unknown>;
  weights: Map<string, LoadedTensor>;
  tokenizer: Tokenizer | null;
  files: string[];
  weightBytes: number;
}

type Log = (message: string) => void;

function urlStore(base: string, label: string, baseName: string, revision: string | null, hub: boolean): FileStore {
  return {
    label,
    baseName,
    revision,
    async get(name) {
      const url = new URL(name, base).href;
      let res: Response;
      try {
        res = await fetch(url);
      } catch (e) {
        throw new EngineError(
          hub ? 'HUB' : 'BAD_CONFIG',
          hub
            ? `Could not reach huggingface.co to download ${name} of ${label} (${(e as Error).message}). You may be offline: load a local folder or the built-in model instead.`
            : `Could not download ${url}: ${(e as Error).message}`,
        );
      }
      if (res.status === 404) return null;
      if (hub && (res.status === 401 || res.status === 403)) {
        throw new EngineError('HUB', `${label} is private or gated (HTTP ${res.status}); accept its license on huggingface.co or download it and load the folder.`);
      }
      if (!res.ok) throw new EngineError(hub ? 'HUB' : 'BAD_CONFIG', `Downloading ${name} from ${label} failed: HTTP ${res.status} ${res.statusText}`);
      // Vite's dev server answers unknown paths with index.html; treat an HTML answer to a JSON/binary file as absent.
      if ((res.headers.get('content-type') ?? '').includes('text/html')) return null;
      return new Uint8Array(await res.arrayBuffer());
    },
  };
}

function fileStore(files: File[]): FileStore {
  // A picked folder gives paths like "gpt2/config.json"; files are looked up by their base name.
  const byName = new Map(files.map((f) => [f.name, f]));
  const folder = (files[0] as File & { webkitRelativePath?: string })?.webkitRelativePath?.split('/')[0];
  const name = folder || 'local files';
  return {
    label: folder ? `folder "${folder}"` : 'the chosen files',
    baseName: name,
    revision: null,
    async get(n) {
      const f = byName.get(n);
      if (!f) return null;
      return new Uint8Array(await f.arrayBuffer());
    },
  };
}

/** A FileStore for a ModelSource. */
function storeFor(source: ModelSource): FileStore {
  switch (source.kind) {
    case 'url':
      return urlStore(source.url, source.name, source.name, null, false);
    case 'files':
      return fileStore(source.files);
    case 'hub': {
      const id = source.repoId.trim();
      if (!/^[\w.-]+(\/[\w.-]+)?$/.test(id)) {
        throw new EngineError('HUB', `"${source.repoId}" is not a Hub repo id; write it like "openai-community/gpt2".`);
      }
      const rev = source.revision?.trim() || 'main';
      return urlStore(`https://huggingface.co/${id}/resolve/${encodeURIComponent(rev)}/`, `${id} on the Hub`, id, rev === 'main' ? null : rev, true);
    }
  }
}

function parseJson(bytes: Uint8Array, name: string, label: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder().decode(bytes));
  } catch (e) {
    throw new EngineError('BAD_CONFIG', `${name} in ${label} is not valid JSON (${(e as Error).message}).`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new EngineError('BAD_CONFIG', `${name} in ${label} is not a JSON object.`);
  return v as Record<string, unknown>;
}

/** Reads config, weights (single file or sharded) and tokenizer from a source. */
export async function loadModelFiles(source: ModelSource, log: Log): Promise<LoadedModel> {
  const store = storeFor(source);
  const files: string[] = [];
  const need = async (name: string, hint: string) => {
    const b = await store.get(name);
    if (!b) throw new EngineError('BAD_CONFIG', `${store.label} has no ${name}. ${hint}`);
    files.push(name);
    return b;
  };

  const config = parseJson(await need('config.json', 'A model needs its config.json next to the weights.'), 'config.json', store.label);
  log(`Read config.json (model_type ${String(config.model_type)}) from ${store.label}`);
  resolveArchitecture(config); // an unsupported model fails here, before any weights are downloaded

  const weights = new Map<string, LoadedTensor>();
  let weightBytes = 0;
  const readShard = async (name: string) => {
    const bytes = await need(name, 'The index lists it as a shard.');
    weightBytes += bytes.byteLength;
    for (const [k, t] of readSafetensors(bytes, name).tensors) weights.set(k, t);
    log(`Read ${name} (${(bytes.byteLength / 1e6).toFixed(1)} MB)`);
  };
  const single = await store.get('model.safetensors');
  if (single) {
    files.push('model.safetensors');
    weightBytes = single.byteLength;
    for (const [k, t] of readSafetensors(single, 'model.safetensors').tensors) weights.set(k, t);
    log(`Read model.safetensors (${(single.byteLength / 1e6).toFixed(1)} MB)`);
  } else {
    const idx = await store.get('model.safetensors.index.json');
    if (!idx) {
      const bin = source.kind === 'files' && (await store.get('pytorch_model.bin'));
      throw new EngineError(
        'MISSING_WEIGHT',
        bin
          ? `${store.label} has only PyTorch .bin weights; PEFT Studio reads safetensors. Convert with model.save_pretrained(..., safe_serialization=True).`
          : `${store.label} has no model.safetensors (or model.safetensors.index.json with shards).`,
      );
    }
    files.push('model.safetensors.index.json');
    const map = parseJson(idx, 'model.safetensors.index.json', store.label).weight_map;
    if (!map || typeof map !== 'object') throw new EngineError('BAD_CONFIG', `model.safetensors.index.json in ${store.label} has no weight_map.`);
    for (const shard of new Set(Object.values(map as Record<string, string>))) await readShard(shard);
  }

  let tokenizer: Tokenizer | null = null;
  const tokJson = await store.get('tokenizer.json');
  if (tokJson) {
    files.push('tokenizer.json');
    const tokCfg = await store.get('tokenizer_config.json');
    if (tokCfg) files.push('tokenizer_config.json');
    tokenizer = await loadTokenizer({
      tokenizerJson: parseJson(tokJson, 'tokenizer.json', store.label),
      tokenizerConfig: tokCfg ? parseJson(tokCfg, 'tokenizer_config.json', store.label) : undefined,
    });
  } else {
    log(`${store.label} has no tokenizer.json: text data and the playground need one.`);
  }

  const name = source.kind === 'url' ? source.name : store.baseName;
  return { name, baseName: store.baseName, revision: store.revision, config, weights, tokenizer, files, weightBytes };
}
