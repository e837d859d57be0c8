/**
 * An in-memory stand-in for the Origin Private File System (FileSystemDirectoryHandle and friends), just the
 * calls opfs-cache.ts makes, so the browser cache backend runs in Node tests. `sync: true` offers
 * createSyncAccessHandle (a dedicated worker); false only createWritable (the page), which commits on close.
 */
type Node = { kind: 'file'; data: Uint8Array<ArrayBuffer> } | { kind: 'dir'; entries: Map<string, Node> };

const notFound = () => Object.assign(new Error('A requested file or directory could not be found.'), { name: 'NotFoundError' });
const mismatch = () => Object.assign(new Error('The path supplied exists, but was not an entry of requested type.'), { name: 'TypeMismatchError' });

function resized(data: Uint8Array, n: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(n);
  out.set(data.subarray(0, Math.min(n, data.length)));
  return out;
}

function fileHandle(f: Node & { kind: 'file' }, sync: boolean) {
  return {
    async getFile() {
      return new Blob([f.data.slice()]);
    },
    createSyncAccessHandle: sync ? async () => ({
      truncate(n: number) {
        f.data = resized(f.data, n);
      },
      write(b: Uint8Array, o: { at: number }) {
        if (o.at + b.length > f.data.length) f.data = resized(f.data, o.at + b.length);
        f.data.set(b, o.at);
        return b.length;
      },
      flush() {},
      close() {},
    }) : undefined,
    async createWritable(o: { keepExistingData: boolean }) {
      let buf = o.keepExistingData ? f.data.slice() : new Uint8Array(0); // a swap copy, as browsers do
      return {
        async truncate(n: number) {
          buf = resized(buf, n);
        },
        async write(d: { type: 'write'; position: number; data: Uint8Array }) {
          if (d.position + d.data.length > buf.length) buf = resized(buf, d.position + d.data.length);
          buf.set(d.data, d.position);
        },
        async close() {
          f.data = buf;
        },
      };
    },
  };
}

export interface FakeDirHandle {
  getDirectoryHandle(name: string, o?: { create?: boolean }): Promise<FakeDirHandle>;
  getFileHandle(name: string, o?: { create?: boolean }): Promise<ReturnType<typeof fileHandle>>;
  removeEntry(name: string, o?: { recursive?: boolean }): Promise<void>;
  keys(): AsyncIterable<string>;
}

export function fakeOpfs(sync: boolean, dir: Node & { kind: 'dir' } = { kind: 'dir', entries: new Map() }): FakeDirHandle {
  return {
    async getDirectoryHandle(name, o = {}) {
      let e = dir.entries.get(name);
      if (!e) {
        if (!o.create) throw notFound();
        e = { kind: 'dir', entries: new Map() };
        dir.entries.set(name, e);
      }
      if (e.kind !== 'dir') throw mismatch();
      return fakeOpfs(sync, e);
    },
    async getFileHandle(name, o = {}) {
      let e = dir.entries.get(name);
      if (!e) {
        if (!o.create) throw notFound();
        e = { kind: 'file', data: new Uint8Array(0) };
        dir.entries.set(name, e);
      }
      if (e.kind !== 'file') throw mismatch();
      return fileHandle(e, sync);
    },
    async removeEntry(name) {
      if (!dir.entries.delete(name)) throw notFound();
    },
    async *keys() {
      yield* [...dir.entries.keys()];
    },
  };
}
