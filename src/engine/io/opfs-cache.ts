/**
 * The browser cache: the Origin Private File System (navigator.storage.getDirectory()), best used from the
 * training worker where synchronous access handles write in place (a reload keeps everything flushed so far).
 * Outside a worker it falls back to createWritable, which commits on close. Everything is feature-detected, so
 * importing this module in Node does nothing; without OPFS the cache lives in memory for the session.
 *
 * Only the small structural types used are declared here, so the engine needs no WebGPU/OPFS lib typings.
 */
import { FolderCache, memoryBackend, type CacheBackend } from './cache';

interface FileHandleLike {
  getFile(): Promise<Blob>;
  createSyncAccessHandle?(): Promise<{
    truncate(n: number): void;
    write(b: Uint8Array, o: { at: number }): number;
    flush(): void;
    close(): void;
  }>;
  createWritable?(o: { keepExistingData: boolean }): Promise<{
    truncate(n: number): Promise<void>;
    write(d: { type: 'write'; position: number; data: Uint8Array }): Promise<void>;
    close(): Promise<void>;
  }>;
}

interface DirHandleLike {
  getDirectoryHandle(name: string, o?: { create?: boolean }): Promise<DirHandleLike>;
  getFileHandle(name: string, o?: { create?: boolean }): Promise<FileHandleLike>;
  removeEntry(name: string, o?: { recursive?: boolean }): Promise<void>;
  keys(): AsyncIterable<string>;
}

function isNotFound(e: unknown): boolean {
  const n = (e as { name?: string })?.name;
  return n === 'NotFoundError' || n === 'TypeMismatchError';
}

/** A CacheBackend over an OPFS directory. */
export function opfsBackend(root: DirHandleLike): CacheBackend {
  const dirOf = async (path: string[], create: boolean): Promise<DirHandleLike | null> => {
    let d = root;
    try {
      for (const seg of path) d = await d.getDirectoryHandle(seg, { create });
      return d;
    } catch (e) {
      if (isNotFound(e)) return null;
      throw e;
    }
  };
  const fileOf = async (path: string[], create: boolean): Promise<FileHandleLike | null> => {
    const d = await dirOf(path.slice(0, -1), create);
    if (!d) return null;
    try {
      return await d.getFileHandle(path[path.length - 1], { create });
    } catch (e) {
      if (isNotFound(e)) return null;
      throw e;
    }
  };
  return {
    async size(path) {
      const f = await fileOf(path, false);
      return f ? (await f.getFile()).size : null;
    },
    async read(path, start, end) {
      const f = await fileOf(path, false);
      return f ? new Uint8Array(await (await f.getFile()).slice(start, end).arrayBuffer()) : null;
    },
    async write(path, bytes, at) {
      const f = (await fileOf(path, true))!;
      if (f.createSyncAccessHandle) {
        // In a worker: writes in place, durable after flush(); no copy of the file per write.
        const h = await f.createSyncAccessHandle();
        try {
          h.truncate(at);
          if (bytes.length) h.write(bytes, { at });
          h.flush();
        } finally {
          h.close();
        }
        return;
      }
      const w = await f.createWritable!({ keepExistingData: true });
      await w.truncate(at);
      if (bytes.length) await w.write({ type: 'write', position: at, data: bytes });
      await w.close();
    },
    async list(path) {
      const d = await dirOf(path, false);
      const out: string[] = [];
      if (d) for await (const name of d.keys()) out.push(name);
      return out;
    },
    async remove(path) {
      if (!path.length) return;
      const d = await dirOf(path.slice(0, -1), false);
      try {
        await d?.removeEntry(path[path.length - 1], { recursive: true });
      } catch (e) {
        if (!isNotFound(e)) throw e;
      }
    },
  };
}

interface StorageLike {
  getDirectory?: () => Promise<DirHandleLike>;
  estimate?: () => Promise<{ quota?: number; usage?: number }>;
  persist?: () => Promise<boolean>;
}

function storage(): StorageLike | undefined {
  return (globalThis as { navigator?: { storage?: StorageLike } }).navigator?.storage;
}

/**
 * The studio's model cache: OPFS folder "peft-studio-models" when available, else memory (then a second load
 * after a reload downloads again, and `persistent` is false so the UI can say so).
 */
export async function openBrowserCache(): Promise<{ cache: FolderCache; persistent: boolean }> {
  const s = storage();
  if (s?.getDirectory) {
    try {
      const root = await s.getDirectory();
      const dir = await root.getDirectoryHandle('peft-studio-models', { create: true });
      return { cache: new FolderCache(opfsBackend(dir)), persistent: true };
    } catch {
      // Private windows and some embedded browsers refuse OPFS: fall through.
    }
  }
  return { cache: new FolderCache(memoryBackend()), persistent: false };
}

/** Storage quota and use for the origin (to warn before a download that cannot fit), or null if unknown. */
export async function storageEstimate(): Promise<{ quota: number; usage: number; available: number } | null> {
  const s = storage();
  if (!s?.estimate) return null;
  try {
    const { quota, usage } = await s.estimate();
    if (typeof quota !== 'number') return null;
    return { quota, usage: usage ?? 0, available: Math.max(0, quota - (usage ?? 0)) };
  } catch {
    return null;
  }
}

/** Asks the browser not to evict the cache under storage pressure (call from a user gesture on the page). */
export async function requestPersistentStorage(): Promise<boolean> {
  try {
    return (await storage()?.persist?.()) ?? false;
  } catch {
    return false;
  }
}
