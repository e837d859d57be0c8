/**
 * The CLI's model cache: a folder on disk (default ~/.cache/peft-studio, or $PEFT_STUDIO_CACHE), with the same
 * layout and bookkeeping as the browser cache (cache.ts FolderCache). Node-only.
 */
import { mkdir, open, readdir, rm, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { FolderCache, type CacheBackend } from './cache';

/** $PEFT_STUDIO_CACHE, else $XDG_CACHE_HOME/peft-studio, else ~/.cache/peft-studio. */
export function defaultCacheDir(env: Record<string, string | undefined> = process.env): string {
  if (env.PEFT_STUDIO_CACHE) return env.PEFT_STUDIO_CACHE;
  return join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'peft-studio');
}

function code(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException)?.code;
}

/** A CacheBackend over a folder. Writes go straight to the file (a crash keeps what was written). */
export function nodeFsBackend(root: string): CacheBackend {
  const p = (path: string[]) => join(root, ...path);
  return {
    async size(path) {
      try {
        const s = await stat(p(path));
        return s.isFile() ? s.size : null;
      } catch (e) {
        if (code(e) === 'ENOENT' || code(e) === 'ENOTDIR') return null;
        throw e;
      }
    },
    async read(path, start, end) {
      let fh;
      try {
        fh = await open(p(path), 'r');
      } catch (e) {
        if (code(e) === 'ENOENT') return null;
        throw e;
      }
      try {
        const out = new Uint8Array(Math.max(0, end - start));
        let n = 0;
        while (n < out.length) {
          const { bytesRead } = await fh.read(out, n, out.length - n, start + n);
          if (!bytesRead) break;
          n += bytesRead;
        }
        return n === out.length ? out : out.subarray(0, n);
      } finally {
        await fh.close();
      }
    },
    async write(path, bytes, at) {
      const file = p(path);
      await mkdir(dirname(file), { recursive: true });
      // 'a' would ignore the position; open for update, creating the file when it does not exist yet.
      const fh = await open(file, 'r+').catch(async (e) => {
        if (code(e) === 'ENOENT') return open(file, 'w+');
        throw e;
      });
      try {
        await fh.truncate(at);
        let n = 0;
        while (n < bytes.length) n += (await fh.write(bytes, n, bytes.length - n, at + n)).bytesWritten;
      } finally {
        await fh.close();
      }
    },
    async list(path) {
      try {
        return (await readdir(p(path), { withFileTypes: true })).map((d) => d.name);
      } catch (e) {
        if (code(e) === 'ENOENT' || code(e) === 'ENOTDIR') return [];
        throw e;
      }
    },
    async remove(path) {
      await rm(p(path), { recursive: true, force: true });
    },
  };
}

/** The CLI cache in `dir` (default: defaultCacheDir()). */
export function openNodeCache(dir: string = defaultCacheDir()): FolderCache {
  return new FolderCache(nodeFsBackend(dir));
}
