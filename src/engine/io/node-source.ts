/**
 * Node-only model sources for the CLI: a folder on disk through the same FileSource interface as everything
 * else (so it is inspected and loaded by the same code as the Hub), the Hub settings from the environment
 * (HF_ENDPOINT and HF_TOKEN, as huggingface_hub reads them), and "path or repo id" argument resolution.
 */
import { createReadStream, existsSync, statSync } from 'node:fs';
import { open, readdir, readFile, stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { EngineError } from '../errors';
import { HubClient, normalizeEndpoint, parseRepoId } from './hub';
import type { FileEntry, FileSource, OpenedStream } from './model-source';

export class NodeDirSource implements FileSource {
  readonly kind = 'local' as const;
  readonly label: string;
  readonly id: string;
  readonly revision = null;
  readonly cacheKey = null;

  constructor(readonly dir: string) {
    this.id = basename(resolve(dir));
    this.label = dir;
  }

  private path(name: string): string {
    if (name.includes('/') || name.includes('\\') || name === '..') throw new EngineError('BAD_ARGUMENT', `${name}: not a file name`);
    return join(this.dir, name);
  }

  async list(): Promise<FileEntry[]> {
    const out: FileEntry[] = [];
    for (const d of await readdir(this.dir, { withFileTypes: true })) {
      if (d.isFile()) out.push({ name: d.name, size: (await stat(join(this.dir, d.name))).size });
    }
    return out;
  }

  async stat(name: string): Promise<FileEntry | null> {
    try {
      const s = await stat(this.path(name));
      return s.isFile() ? { name, size: s.size } : null;
    } catch {
      return null;
    }
  }

  async read(name: string): Promise<Uint8Array | null> {
    try {
      return new Uint8Array(await readFile(this.path(name)));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw e;
    }
  }

  async readRange(name: string, start: number, end: number): Promise<Uint8Array> {
    const fh = await open(this.path(name), 'r');
    try {
      const out = new Uint8Array(end - start);
      let n = 0;
      while (n < out.length) {
        const { bytesRead } = await fh.read(out, n, out.length - n, start + n);
        if (!bytesRead) throw new EngineError('BAD_SAFETENSORS', `${join(this.dir, name)}: file ends at ${start + n}, before byte ${end}.`);
        n += bytesRead;
      }
      return out;
    } finally {
      await fh.close();
    }
  }

  async stream(name: string, opts: { start: number; signal?: AbortSignal }): Promise<OpenedStream> {
    const path = this.path(name);
    const size = statSync(path).size;
    const rs = createReadStream(path, { start: opts.start, highWaterMark: 4 << 20, signal: opts.signal });
    async function* body() {
      for await (const c of rs) yield new Uint8Array((c as Buffer).buffer, (c as Buffer).byteOffset, (c as Buffer).byteLength);
    }
    return { start: opts.start, size, etag: null, body: body() };
  }
}

/** Hub settings from the environment: HF_ENDPOINT (default https://huggingface.co) and HF_TOKEN. */
export function hubSettingsFromEnv(env: Record<string, string | undefined> = process.env): { endpoint: string; token: string | null } {
  return {
    endpoint: normalizeEndpoint(env.HF_ENDPOINT),
    token: env.HF_TOKEN?.trim() || env.HUGGING_FACE_HUB_TOKEN?.trim() || null,
  };
}

/**
 * A CLI model argument: an existing folder is read from disk, anything else is a Hub id (`owner/name[@rev]`).
 * Explicit endpoint/token win over the environment.
 */
export function openModelSource(arg: string, o: { endpoint?: string | null; token?: string | null; env?: Record<string, string | undefined> } = {}): FileSource {
  if (existsSync(arg)) {
    if (!statSync(arg).isDirectory()) throw new EngineError('BAD_ARGUMENT', `${arg} is a file; pass the model folder (with config.json) or a Hub id.`);
    return new NodeDirSource(arg);
  }
  const env = hubSettingsFromEnv(o.env ?? process.env);
  const client = new HubClient({ endpoint: o.endpoint ?? env.endpoint, token: o.token ?? env.token });
  try {
    return client.source(parseRepoId(arg));
  } catch (e) {
    if (/^[.~/\\]/.test(arg) || arg.includes('\\')) throw new EngineError('BAD_ARGUMENT', `${arg}: no such folder.`);
    throw e;
  }
}
