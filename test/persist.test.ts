/**
 * What a project keeps across a reload (src/state/persist.ts): the key table, writing only what changed,
 * reading back with versions and checks (a bad stored value is dropped with a warning, never a crash), the
 * method settings checked against the engine's schemas, the project store's reset actions, and uploaded
 * datasets in IndexedDB (fake-indexeddb).
 */
import { IDBFactory } from 'fake-indexeddb';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { methodInfo } from '../src/engine/peft/method';
import { METHODS } from '../src/engine/peft/registry';
import { DEFAULT_ARGS, DEFAULT_TARGET_TEXT, formDefaults, projectActions as P, useProject, type ProjectState } from '../src/state/project';
import {
  DatasetStore, DB_NAME, PREFIX, ProjectPersistence, TABLE, checkSettingsAgainst, loadSaved, savedPatch, snapshotOf, storageKey, storeFailure,
  type StorageLike,
} from '../src/state/persist';

/** localStorage as a Map. */
class MemoryStorage implements StorageLike {
  readonly map = new Map<string, string>();
  getItem(k: string) {
    return this.map.get(k) ?? null;
  }
  setItem(k: string, v: string) {
    this.map.set(k, v);
  }
  removeItem(k: string) {
    this.map.delete(k);
  }
  get length() {
    return this.map.size;
  }
  key(i: number) {
    return [...this.map.keys()][i] ?? null;
  }
}

const methods = METHODS.map(methodInfo);
const base = useProject.getState();
const state = (o: Partial<ProjectState> = {}): ProjectState => ({ ...base, ...o });
const put = (st: MemoryStorage, key: string, v: unknown, value: unknown) => st.setItem(`${PREFIX}${key}`, JSON.stringify({ v, value }));

/** A project someone set up: nothing at its default. */
const custom = state({
  backendChoice: 'wasm',
  args: { ...DEFAULT_ARGS, learningRate: 0.003, maxSteps: 7, batchSize: 2 },
  lrTouched: true,
  method: 'IA3',
  settings: { LORA: { r: 4, loraAlpha: 16 }, IA3: {} },
  modelRef: { kind: 'hub', repo: 'fixtures/gpt2-tiny', revision: 'main', endpoint: 'http://127.0.0.1:5199' },
  task: 'SEQ_CLS',
  targetText: { ...DEFAULT_TARGET_TEXT, target: 'c_attn, c_proj', layers: '0-1' },
  dataRef: { kind: 'upload', id: 'abc', name: 'mine.csv' },
  validationSplit: 0.2,
  chat: { format: 'sharegpt', template: 'chatml', trainOn: 'all' },
});

describe('the key table', () => {
  it('gives every key a storage, a version, its store fields and when it is restored', () => {
    for (const [key, e] of Object.entries(TABLE)) {
      expect(['localStorage', 'indexedDB'], key).toContain(e.storage);
      expect(e.version, key).toBeGreaterThanOrEqual(1);
      expect(e.restored.length, key).toBeGreaterThan(10);
      for (const f of e.fields) expect(Object.keys(base), `${key}.${f}`).toContain(f);
    }
    // Each store field is held by one localStorage key at most.
    const fields = Object.values(TABLE).filter((e) => e.storage === 'localStorage').flatMap((e) => e.fields);
    expect(new Set(fields).size).toBe(fields.length);
  });

  it('reads back what it wrote, as the same store fields', () => {
    const st = new MemoryStorage();
    const first = vi.fn();
    new ProjectPersistence(() => st, first).save(custom);
    expect(first).toHaveBeenCalled();
    expect(JSON.parse(st.getItem(storageKey('backend'))!)).toEqual({ v: 1, value: 'wasm' });
    const warn = vi.fn();
    const saved = loadSaved(st, warn);
    expect(warn).not.toHaveBeenCalled();
    expect(saved).toEqual(snapshotOf(custom));
    const patch = savedPatch(saved);
    for (const f of ['backendChoice', 'args', 'lrTouched', 'method', 'settings', 'modelRef', 'task', 'targetText', 'dataRef', 'validationSplit', 'chat'] as const) {
      expect(patch[f], f).toEqual(custom[f]);
    }
  });

  it('writes only the keys whose fields changed, and forgets everything on request', () => {
    const st = new MemoryStorage();
    const p = new ProjectPersistence(() => st, () => undefined);
    p.baseline(base);
    p.save(base, base);
    expect(st.length).toBe(0);
    const next = state({ args: { ...base.args, learningRate: 0.01 } });
    p.save(next, base);
    expect([...st.map.keys()]).toEqual([storageKey('training')]);
    const spy = vi.spyOn(st, 'setItem');
    p.save(state({ args: { ...next.args } }), next); // a new object, same value: not written again
    expect(spy).not.toHaveBeenCalled();
    st.setItem(`${PREFIX}someday`, '1');
    p.forget(next);
    expect(st.length).toBe(0);
    p.save(next, base); // as forgotten: unchanged from the new baseline
    expect(st.length).toBe(0);
  });

  it('keeps the page working when the storage refuses writes', () => {
    const warn = vi.fn();
    const full = new MemoryStorage();
    full.setItem = () => {
      throw new DOMException('full', 'QuotaExceededError');
    };
    const p = new ProjectPersistence(() => full, () => undefined, warn);
    expect(() => p.save(custom)).not.toThrow();
    expect(warn).toHaveBeenCalledTimes(1);
  });
});

describe('reading a stored project', () => {
  let st: MemoryStorage;
  let warn: ReturnType<typeof vi.fn<(m: string) => void>>;
  beforeEach(() => {
    st = new MemoryStorage();
    warn = vi.fn<(m: string) => void>();
    new ProjectPersistence(() => st, () => undefined).save(custom);
  });

  it('drops a value of another version, with a warning, and keeps the rest', () => {
    put(st, 'targets', 2, { ...DEFAULT_TARGET_TEXT, target: 'future' });
    put(st, 'backend', 0, 'wasm');
    const saved = loadSaved(st, warn);
    expect(saved.targets).toBeUndefined();
    expect(saved.backend).toBeUndefined();
    expect(saved.model).toEqual(custom.modelRef);
    expect(st.getItem(storageKey('targets'))).toBeNull();
    expect(warn.mock.calls.join('\n')).toMatch(/targets dropped \(version 2, this studio reads version 1\)/);
  });

  it('drops values that are not JSON, not an envelope, or fail their check', () => {
    st.setItem(storageKey('backend'), '{not json');
    st.setItem(storageKey('task'), JSON.stringify('SEQ_CLS'));
    put(st, 'model', 1, { kind: 'hub', repo: '../../etc', revision: 'main', endpoint: 'http://x' });
    put(st, 'method', 1, { method: 'lora; drop', settings: {} });
    put(st, 'data', 1, { ref: { kind: 'builtin', id: 'spam' }, validationSplit: 3 });
    put(st, 'targets', 1, { mode: 'list', target: 'c_attn' });
    put(st, 'chat', 1, { format: 'xml', template: 'chatml', trainOn: 'all' });
    const saved = loadSaved(st, warn);
    expect(saved).toEqual({ training: snapshotOf(custom).training });
    expect(warn).toHaveBeenCalledTimes(7);
    expect(warn.mock.calls.join('\n')).toMatch(/data format must be one of auto, text, alpaca/);
    expect(warn.mock.calls.join('\n')).toMatch(/backend dropped \(not JSON\)/);
    expect(warn.mock.calls.join('\n')).toMatch(/"\.\.\/\.\.\/etc" is not a Hub repo id/);
    expect(warn.mock.calls.join('\n')).toMatch(/validation split is out of range/);
    // Dropped values are removed: the next read is clean.
    const again = vi.fn();
    loadSaved(st, again);
    expect(again).not.toHaveBeenCalled();
  });

  it('takes the default for one bad training argument and keeps the others', () => {
    put(st, 'training', 1, { args: { learningRate: 0.003, batchSize: -4, scheduler: 'zigzag', extra: 1 }, limitBy: 'maxSteps', lrTouched: true });
    const t = loadSaved(st, warn).training!;
    expect(t.args).toEqual({ ...DEFAULT_ARGS, learningRate: 0.003 });
    expect(warn.mock.calls.join('\n')).toMatch(/batch size is out of range/);
    expect(warn.mock.calls.join('\n')).toMatch(/schedule must be one of/);
  });

  it('keeps the checkpoint and best-model settings; a bad one takes its default', () => {
    const good = { saveSteps: 5, saveTotalLimit: null, metricForBestModel: 'eval_accuracy', greaterIsBetter: true, loadBestModelAtEnd: true, earlyStoppingPatience: 2 };
    put(st, 'training', 1, { args: good, limitBy: 'maxSteps', lrTouched: false });
    expect(loadSaved(st, warn).training!.args).toEqual({ ...DEFAULT_ARGS, ...good });
    put(st, 'training', 1, { args: { ...good, saveTotalLimit: 0, metricForBestModel: 'bleu', earlyStoppingPatience: 1.5 }, limitBy: 'maxSteps', lrTouched: false });
    const t = loadSaved(st, warn).training!.args;
    expect(t).toMatchObject({ saveTotalLimit: 3, metricForBestModel: 'eval_loss', earlyStoppingPatience: null, loadBestModelAtEnd: true, saveSteps: 5 });
    expect(warn.mock.calls.join('\n')).toMatch(/checkpoints to keep is out of range/);
  });

  it('removes keys this studio does not keep, and never throws', () => {
    st.setItem(`${PREFIX}oldThing`, 'x');
    st.setItem('peft-studio.hubUrl', 'http://keep.me'); // Hub settings are not part of the project
    loadSaved(st, warn);
    expect(st.getItem(`${PREFIX}oldThing`)).toBeNull();
    expect(st.getItem('peft-studio.hubUrl')).toBe('http://keep.me');
    const broken = { getItem: () => { throw new Error('denied'); }, setItem() {}, removeItem() {}, length: 0, key: () => null };
    expect(loadSaved(broken, warn)).toEqual({});
    expect(loadSaved(undefined, warn)).toEqual({});
  });
});

describe('method settings against the schemas', () => {
  it('keeps valid values, drops unknown methods, fields and values the schema refuses', () => {
    const warn = vi.fn();
    const r = checkSettingsAgainst(methods, 'IA3', {
      LORA: { r: 4, loraDropout: 2, nope: 1, bias: 'all' },
      IA3: { feedforwardModules: ['c_fc'] },
      FANCY: { x: 1 },
    }, warn);
    expect(r.method).toBe('IA3');
    expect(r.settings).toEqual({ LORA: { r: 4, bias: 'all' }, IA3: { feedforwardModules: ['c_fc'] } });
    expect(warn).toHaveBeenCalledTimes(3);
    expect(checkSettingsAgainst(methods, 'FANCY', {}, () => undefined).method).toBe('LORA');
    // Every method's form defaults pass their own schema.
    const defaults = Object.fromEntries(methods.map((m) => [m.peftType, formDefaults(m)]));
    const none = vi.fn();
    expect(checkSettingsAgainst(methods, 'LORA', defaults, none).settings).toEqual(defaults);
    expect(none).not.toHaveBeenCalled();
  });
});

describe('project resets', () => {
  beforeEach(() => {
    useProject.setState(base, true);
    P.backendReady('cpu', 'test', methods);
    P.setBuiltinDatasets([
      { id: 'spam', name: 'spam', task: 'SEQ_CLS', description: '', rows: { train: 1 } },
      { id: 'sotu-fdr', name: 'fdr', task: 'CAUSAL_LM', description: '', rows: { train: 1 } },
    ]);
  });

  it('Reset to defaults: training and method settings; model, targets, task and data stay', () => {
    P.setMethod('IA3');
    P.updateArgs({ learningRate: 0.5, maxSteps: 3 });
    P.setMethod('LORA');
    P.updateSettings({ r: 2 });
    P.setTargetText({ target: 'c_proj' });
    P.setDataSource({ kind: 'builtin', id: 'spam' });
    P.restore({ modelRef: { kind: 'builtin' } });
    P.resetSettings();
    const s = useProject.getState();
    expect(s.args).toEqual(DEFAULT_ARGS);
    expect(s.lrTouched).toBe(false);
    expect(s.settings.LORA.r).toBe(8);
    expect(s.method).toBe('LORA');
    expect(s.targetText.target).toBe('c_proj');
    expect(s.dataRef).toEqual({ kind: 'builtin', id: 'spam' });
    expect(s.modelRef).toEqual({ kind: 'builtin' });
  });

  it('New project: every setup value at its default, the uploads list kept', () => {
    P.uploadsListed([{ id: 'a', name: 'a.csv', type: 'text/csv', size: 3, savedAt: 1, mapping: null }]);
    P.restore(savedPatch(snapshotOf(custom)));
    P.newProject();
    const s = useProject.getState();
    expect(s).toMatchObject({ backendChoice: 'auto', method: 'LORA', task: 'CAUSAL_LM', targetText: DEFAULT_TARGET_TEXT, args: DEFAULT_ARGS, lrTouched: false });
    expect(s.modelRef).toEqual({ kind: 'builtin' });
    expect(s.dataRef).toEqual({ kind: 'builtin', id: 'sotu-fdr' });
    expect(s.dataSource).toEqual({ kind: 'builtin', id: 'sotu-fdr' });
    expect(s.settings.LORA).toEqual(formDefaults(methods[0]));
    expect(s.uploads.list).toHaveLength(1);
  });

  it('a restored upload waits for IndexedDB: no default dataset is picked over it', () => {
    useProject.setState(base, true);
    P.restore({ dataRef: { kind: 'upload', id: 'x', name: 'x.csv' } });
    P.setBuiltinDatasets([{ id: 'sotu-fdr', name: 'fdr', task: 'CAUSAL_LM', description: '', rows: { train: 1 } }]);
    expect(useProject.getState().dataSource).toBeNull();
    P.useDefaultDataset(); // it is gone
    expect(useProject.getState().dataRef).toEqual({ kind: 'builtin', id: 'sotu-fdr' });
  });
});

describe('uploaded datasets in IndexedDB', () => {
  let idb: IDBFactory;
  let store: DatasetStore;
  let warn: ReturnType<typeof vi.fn<(m: string) => void>>;
  beforeEach(() => {
    idb = new IDBFactory();
    warn = vi.fn<(m: string) => void>();
    store = new DatasetStore(() => idb, warn);
  });
  const csv = (name: string, text: string) => new File([text], name, { type: 'text/csv' });

  it('keeps the bytes, name and mapping; lists, replaces by name, deletes', async () => {
    const a = await store.put(csv('a.csv', 'prompt,response\nhi,there\n'));
    const b = await store.put(csv('b.csv', 'text\nx\n'), { kind: 'text', text: 'text' });
    expect((await store.list()).map((d) => d.name).sort()).toEqual(['a.csv', 'b.csv']);
    const got = await store.get(a.id);
    expect(got!.file.name).toBe('a.csv');
    expect(await got!.file.text()).toBe('prompt,response\nhi,there\n');
    expect(got!.info.mapping).toBeNull();
    await store.setMapping(a.id, { kind: 'text', text: 'response' });
    expect((await store.get(a.id))!.info.mapping).toEqual({ kind: 'text', text: 'response' });
    const a2 = await store.put(csv('a.csv', 'text\nnew\n'));
    expect(a2.id).toBe(a.id);
    expect(await (await store.get(a.id))!.file.text()).toBe('text\nnew\n');
    await store.delete(b.id);
    expect((await store.list()).map((d) => d.name)).toEqual(['a.csv']);
    expect(await store.get(b.id)).toBeNull();
    // A second page (a reload) reads the same database.
    expect((await new DatasetStore(() => idb).list()).map((d) => d.name)).toEqual(['a.csv']);
  });

  it('drops records of another version or with bad fields, and incomplete bytes', async () => {
    const ok = await store.put(csv('ok.csv', 'text\nfine\n'));
    store.close();
    await new Promise<void>((resolve, reject) => {
      const req = idb.open(DB_NAME, 1);
      req.onsuccess = () => {
        const tx = req.result.transaction(['datasets', 'dataset-bytes'], 'readwrite');
        tx.objectStore('datasets').put({ v: 9, id: 'future', name: 'f.csv', type: '', size: 1, savedAt: 1, mapping: null });
        tx.objectStore('datasets').put({ v: 1, id: 'bad', name: 'b.csv', type: '', size: -1, savedAt: 1, mapping: { kind: '?' } });
        tx.objectStore('datasets').put({ v: 1, id: 'short', name: 's.csv', type: '', size: 100, savedAt: 1, mapping: null });
        tx.objectStore('dataset-bytes').put(new ArrayBuffer(3), 'short');
        tx.oncomplete = () => {
          req.result.close();
          resolve();
        };
        tx.onerror = () => reject(tx.error);
      };
      req.onerror = () => reject(req.error);
    });
    const list = await store.list();
    expect(list.map((d) => d.id).sort()).toEqual([ok.id, 'short'].sort());
    expect(warn.mock.calls.join('\n')).toMatch(/record version 9, this studio reads version 1/);
    expect(await store.get('short')).toBeNull();
    expect(warn.mock.calls.join('\n')).toMatch(/bytes are missing or incomplete/);
    expect((await store.list()).map((d) => d.id)).toEqual([ok.id]);
  });

  it('says why an upload could not be kept, quota first', () => {
    expect(storeFailure(new DOMException('over', 'QuotaExceededError'), 'big.csv')).toMatch(
      /^big\.csv could not be kept in this browser: the browser's storage for this site is full\. It is used for this session; after a reload it has to be uploaded again\. Deleting cached models/,
    );
    expect(storeFailure(new Error('IndexedDB is not available'), 'x.csv')).toMatch(/refused \(IndexedDB is not available\)/);
  });
});
