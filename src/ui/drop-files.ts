/** Files from a drop, including the contents of dropped folders (one level of nesting is enough for a model). */
export function filesFromDrop(dt: DataTransfer): Promise<File[]> {
  // Read synchronously: the DataTransfer is emptied once the drop event returns.
  const entries = [...dt.items]
    .map((i) => (i.kind === 'file' ? (i as DataTransferItem & { webkitGetAsEntry?: () => FileSystemEntry | null }).webkitGetAsEntry?.() : null))
    .filter((e): e is FileSystemEntry => !!e);
  return filesOf(entries, [...dt.files]);
}

async function filesOf(entries: FileSystemEntry[], files: File[]): Promise<File[]> {
  if (!entries.length) return files;
  const out: File[] = [];
  const walk = async (e: FileSystemEntry, depth: number): Promise<void> => {
    if (e.isFile) {
      out.push(await new Promise<File>((res, rej) => (e as FileSystemFileEntry).file(res, rej)));
    } else if (e.isDirectory && depth < 3) {
      const reader = (e as FileSystemDirectoryEntry).createReader();
      // readEntries returns batches; an empty batch means the end.
      for (;;) {
        const batch = await new Promise<FileSystemEntry[]>((res, rej) => reader.readEntries(res, rej));
        if (!batch.length) break;
        for (const c of batch) await walk(c, depth + 1);
      }
    }
  };
  for (const e of entries) await walk(e, 0);
  return out;
}

type HandleItem = DataTransferItem & { getAsFileSystemHandle?: () => Promise<FileSystemHandle | null> };

/**
 * What a drop on the model panel holds: one folder as a directory handle where the browser offers
 * getAsFileSystemHandle (its top-level files are read lazily, in the worker), else the dropped files.
 * Every item is asked synchronously: a DataTransfer is emptied once the drop event returns.
 */
export function modelFromDrop(dt: DataTransfer): Promise<{ handle: FileSystemDirectoryHandle } | { files: File[] }> {
  const items = [...dt.items].filter((i) => i.kind === 'file') as HandleItem[];
  const handle = items.length === 1 && items[0].getAsFileSystemHandle ? items[0].getAsFileSystemHandle() : null;
  const entries = items
    .map((i) => (i as DataTransferItem & { webkitGetAsEntry?: () => FileSystemEntry | null }).webkitGetAsEntry?.())
    .filter((e): e is FileSystemEntry => !!e);
  const plain = [...dt.files];
  return (async () => {
    const h = await handle?.catch(() => null);
    if (h && h.kind === 'directory') return { handle: h as FileSystemDirectoryHandle };
    return { files: await filesOf(entries, plain) };
  })();
}
